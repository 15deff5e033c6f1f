#!/usr/bin/env bash
# Optional setup step: MediaPipe's selfie segmentation and BlazePose (pose detection +
# full landmarks), Apache-2.0, from the PyPI mediapipe wheel, converted to ONNX with
# TensorFlow's tf2onnx (recipe and patch: shared/docs/models.md). Needs a 1.9 GB
# TensorFlow venv and about 4 minutes; the default models need none of it.
#   writes models/selfie_segmentation.onnx, models/pose_detection.onnx,
#          models/pose_landmark_full.onnx (+ models/LICENSE.mediapipe)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh" >/dev/null
venv="$root/.deps/venv-tf"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import tf2onnx, tensorflow, ai_edge_litert" 2>/dev/null; then
    echo "[mediapipe] creating .deps/venv-tf (tensorflow-cpu, tf2onnx; ~2 GB)" >&2
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
        echo "[mediapipe] converting $m" >&2
        "$venv/bin/python" -m tf2onnx.convert --tflite "$tmp/$m.tflite" --output "$out/$m.onnx.tmp" --opset 14 >/dev/null 2>&1
        mv "$out/$m.onnx.tmp" "$out/$m.onnx"
    fi
    ls -la "$out/$m.onnx"
done
