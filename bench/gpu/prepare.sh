#!/usr/bin/env bash
# Stage the GPU check (bench/gpu/check.sh) under .gpu/, on this machine (the GPU machine has no
# cargo, no registries and no zstd). Every file stays under the device tool's 64 MiB transfer
# limit:
#   .gpu/zstd/             Debian's zstd and the libraries it needs (the GPU machine has none)
#   .gpu/base.tar.zst      release host, libonnxruntime 1.31.1 (CUDA 13 build) + providers_shared,
#                          face detector + YOLOv8n (random weights), components, the 1080p frame
#   .gpu/cuda.part-NN      libonnxruntime_providers_cuda.so (284 MB), zstd -19 --long, split
# Then it prints the device calls to make, back to back (the machine is released after 30 s idle).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
ORT_GPU_VERSION=1.31.1
say() { printf '[gpu-prepare] %s\n' "$*" >&2; }

scripts/setup.sh
[ -f models/yolov8n.onnx ] || scripts/yolo-export.sh yolov8n
say "building the release host"
CARGO_TARGET_DIR="$root/target/bench" cargo build --quiet --release -p host

wheels=.deps/wheels
if ! ls "$wheels"/onnxruntime_gpu-$ORT_GPU_VERSION-*.whl >/dev/null 2>&1; then
    say "downloading onnxruntime-gpu $ORT_GPU_VERSION (pip, 256 MB)"
    .deps/venv/bin/pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        -d "$wheels" "onnxruntime-gpu==$ORT_GPU_VERSION"
fi

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
kit="$tmp/kit"
mkdir -p "$kit/ort" "$kit/models" "$kit/components"
cp target/bench/release/host "$kit/"
# The host links libjpeg-turbo (Debian's libturbojpeg0); the GPU machine may lack it. It
# travels with the ONNX Runtime libraries, which check.sh puts on LD_LIBRARY_PATH.
cp -L "$(ldd target/bench/release/host | awk '/libturbojpeg/ {print $3}')" "$kit/ort/"
cp tests/fixtures/frame_1080p.jpg "$kit/"
cp models/face_detection_short_range.onnx models/yolov8n.onnx "$kit/models/"
if [ -f models/yolox_nano/yolox_nano.onnx ]; then
    mkdir -p "$kit/models/yolox_nano"
    cp models/yolox_nano/yolox_nano.onnx models/yolox_nano/classes.txt "$kit/models/yolox_nano/"
fi
for c in blazeface yolo; do
    mkdir -p "$kit/components/$c"
    cp "components/$c/component.wasm" "$kit/components/$c/"
done
say "extracting the ONNX Runtime GPU libraries"
.deps/venv/bin/python - "$(ls "$wheels"/onnxruntime_gpu-$ORT_GPU_VERSION-*.whl)" "$kit/ort" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if "/capi/libonnxruntime" in n and "tensorrt" not in n:
            with open(os.path.join(sys.argv[2], os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
PY
ls "$kit/ort"

out=.gpu
rm -rf "$out"
mkdir -p "$out/zstd"
cp /usr/bin/zstd "$out/zstd/"
for lib in $(ldd /usr/bin/zstd | awk '/=>/ {print $3}' | grep -v -e libc.so -e ld-linux); do
    cp -L "$lib" "$out/zstd/"
done
say "compressing (zstd -19; a few minutes on 2 cores)"
tar -C "$kit" --exclude=ort/libonnxruntime_providers_cuda.so -cf - . | zstd -q -19 -T0 -o "$out/base.tar.zst"
zstd -q -19 -T0 --long=27 -c "$kit/ort/libonnxruntime_providers_cuda.so" | split -b 56m -d - "$out/cuda.part-"
ls -la "$out" "$out/zstd"

# Call 1 carries the small files and the last (short) chunk; each other chunk gets its own call.
last=$(cd "$out" && ls cuda.part-* | tail -1)
rest=$(cd "$out" && ls cuda.part-* | head -n -1)
echo
echo "Device calls, back to back (the machine is released after 30 s idle; the last call runs the check):"
echo "  1. carry [\".gpu/zstd\", \".gpu/base.tar.zst\", \".gpu/$last\"]"
echo "     command: mkdir -p /tmp/gpu && cp -r .gpu/zstd .gpu/base.tar.zst .gpu/$last /tmp/gpu/"
i=2
n=$(echo "$rest" | wc -l)
for p in $rest; do
    cmd="cp .gpu/$p /tmp/gpu/"
    [ "$i" -gt "$n" ] && cmd="$cmd && bash bench/gpu/check.sh /tmp/gpu cuda:0 200"
    echo "  $i. carry [\".gpu/$p\"]  command: $cmd"
    i=$((i + 1))
done
