#!/usr/bin/env bash
# The GPU check, on the GPU machine: bench/gpu/check.sh STAGE [DEVICE] [REQUESTS]
# STAGE holds what bench/gpu/prepare.sh made (zstd/, base.tar.zst, cuda.part-NN). Unpacks the kit,
# points the loader at the machine's CUDA 13 / cuDNN 9 pip libraries and the ONNX Runtime GPU
# build, then runs bench/gpu/check.py (raw ONNX Runtime latency, host latency over HTTP, GPU
# memory before load / loaded / after unload). DEVICE cpu is a dry run of every step, e.g. here:
#   bench/gpu/prepare.sh && mkdir -p /tmp/gpu && cp -r .gpu/* /tmp/gpu/ && bench/gpu/check.sh /tmp/gpu cpu 20
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
stage=${1:?usage: check.sh STAGE [DEVICE] [REQUESTS]}
device=${2:-cuda:0}
requests=${3:-200}
kit="$stage/kit"
z() { LD_LIBRARY_PATH="$stage/zstd" "$stage/zstd/zstd" "$@"; }
if [ ! -x "$kit/host" ]; then
    mkdir -p "$kit"
    z -q -dc "$stage/base.tar.zst" | tar -C "$kit" -xf -
    cat "$stage"/cuda.part-* | z -q -d --long=27 -o "$kit/ort/libonnxruntime_providers_cuda.so"
fi
ort_lib=$(ls "$kit"/ort/libonnxruntime.so.1.* | head -1)
ln -sf "$(basename "$ort_lib")" "$kit/ort/libonnxruntime.so"

# CUDA 13 and cuDNN 9 come from the machine's Python packages (nvidia-*), wherever they are.
nv=""
for py in python3 /usr/bin/python3 /opt/conda/bin/python; do
    d=$("$py" -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null || true)
    [ -n "$d" ] && { nv=$d; break; }
done
[ -n "$nv" ] || nv=$(find /usr /opt /root /home /venv -maxdepth 7 -type d -path '*-packages/nvidia' 2>/dev/null | head -1 || true)
libs=""
[ -n "$nv" ] && libs=$(find "$nv" -maxdepth 3 -type d -name lib | tr '\n' :)
export LD_LIBRARY_PATH="${libs}$kit/ort${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export ORT_DYLIB_PATH="$ort_lib"
echo "ONNX Runtime: $ORT_DYLIB_PATH"
echo "NVIDIA libraries: ${nv:-none found}"
python3 "$here/check.py" "$kit" "$device" "$requests"
