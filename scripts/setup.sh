#!/usr/bin/env bash
# Install everything the host, its components and its tests need, from the registries only
# (Debian apt, PyPI, crates.io). Idempotent: each step is skipped when its output is there.
#
#   1. apt: Debian's rustc-web + std source + lld + wasi-libc (the offline WASM guest toolchain)
#   2. .deps/venv: Python packages for model conversion and test fixtures
#   3. .deps/wheels: onnxruntime, openvino, mediapipe, scikit-image wheels (downloaded, not installed)
#   4. .deps/onnxruntime: libonnxruntime.so from the onnxruntime wheel;
#      .deps/openvino: OpenVINO's C library, CPU plugin and ONNX frontend from the openvino wheel
#   5. models/: the default face detector (BlazeFace, converted to ONNX) and its licence
#   6. tests/fixtures/: synthetic YOLO test graphs and test images
#   7. components/*/component.wasm: every guest component, built
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.deps"
mkdir -p "$deps"
say() { printf '[setup] %s\n' "$*" >&2; }

ORT_VERSION=1.32.0
OPENVINO_VERSION=2026.4.1
MEDIAPIPE_VERSION=0.10.21
SKIMAGE_VERSION=0.26.0

# 1. Guest toolchain -----------------------------------------------------------------------
apt_packages=(rustc-web cargo-web rust-web-src lld-19 wasi-libc)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]} (apt)"
    sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Python environment --------------------------------------------------------------------
req="$root/scripts/requirements.txt"
if ! cmp -s "$req" "$deps/venv/requirements.txt" 2>/dev/null; then
    say "creating .deps/venv (pip)"
    rm -rf "$deps/venv"
    python3 -m venv "$deps/venv"
    "$deps/venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$deps/venv/requirements.txt"
fi
py="$deps/venv/bin/python"

# 3. Wheels we unpack rather than install ------------------------------------------------
wheels="$deps/wheels"
mkdir -p "$wheels"
fetch_wheel() { # name==version
    local prefix=${1%%==*}; prefix=${prefix//-/_}
    ls "$wheels/${prefix}-${1##*==}-"*.whl >/dev/null 2>&1 && return 0
    say "downloading $1 (pip)"
    "$deps/venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        -d "$wheels" "$1"
}
fetch_wheel "onnxruntime==$ORT_VERSION"
fetch_wheel "openvino==$OPENVINO_VERSION"
fetch_wheel "mediapipe==$MEDIAPIPE_VERSION"
fetch_wheel "scikit-image==$SKIMAGE_VERSION"

# 4. ONNX Runtime shared library ------------------------------------------------------------
ort_dir="$deps/onnxruntime"
if [ ! -f "$ort_dir/libonnxruntime.so.$ORT_VERSION" ]; then
    say "extracting libonnxruntime.so.$ORT_VERSION"
    tmp=$(mktemp -d)
    "$py" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], [n for n in zipfile.ZipFile(sys.argv[1]).namelist() if "/capi/libonnxruntime" in n])' \
        "$(ls "$wheels"/onnxruntime-$ORT_VERSION-*.whl)" "$tmp"
    mkdir -p "$ort_dir"
    cp "$tmp"/onnxruntime/capi/libonnxruntime* "$ort_dir/"
    rm -rf "$tmp"
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ort_dir/libonnxruntime.so"
ln -sf "libonnxruntime.so.$ORT_VERSION" "$ort_dir/libonnxruntime.so.1"

# 4b. OpenVINO (the optional CPU backend): only what reading ONNX on the CPU needs, ~90 MB
# (the IR frontend too: the CPU plugin reads its compiled-model cache with it).
ov_dir="$deps/openvino"
if [ ! -f "$ov_dir/.version-$OPENVINO_VERSION-2" ]; then
    say "extracting OpenVINO $OPENVINO_VERSION (C library, CPU plugin, ONNX and IR frontends)"
    rm -rf "$ov_dir" && mkdir -p "$ov_dir"
    "$py" - "$(ls "$wheels"/openvino-$OPENVINO_VERSION-*.whl)" "$ov_dir" <<'PY'
import os, re, sys, zipfile
keep = re.compile(r"openvino/libs/lib(openvino(_c|_intel_cpu_plugin|_onnx_frontend|_ir_frontend)?\.so[.0-9]*|tbb\.so.*|tbbbind.*|tbbmalloc\.so.*|hwloc.*)$")
with zipfile.ZipFile(sys.argv[1]) as z:
    for n in z.namelist():
        if keep.match(n):
            with open(os.path.join(sys.argv[2], os.path.basename(n)), "wb") as f:
                f.write(z.read(n))
PY
    touch "$ov_dir/.version-$OPENVINO_VERSION-2"
fi
ln -sf "$(cd "$ov_dir" && ls libopenvino_c.so.* | head -1)" "$ov_dir/libopenvino_c.so"

# 5-6. Models and fixtures -------------------------------------------------------------
if [ ! -f "$root/models/face_detection_short_range.onnx" ]; then
    say "converting the default face detector"
    "$py" "$root/scripts/models.py" default "$wheels" "$root/models"
fi
if [ ! -f "$root/tests/fixtures/.stamp" ] || [ "$root/scripts/models.py" -nt "$root/tests/fixtures/.stamp" ]; then
    say "generating test fixtures"
    "$py" "$root/scripts/models.py" fixtures "$wheels" "$root/tests/fixtures"
    touch "$root/tests/fixtures/.stamp"
fi

# 7. Components ----------------------------------------------------------------------------
"$root/scripts/build-components.sh"
