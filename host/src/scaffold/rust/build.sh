#!/usr/bin/env bash
# Build component.wasm with the toolchain the host's setup installed: Debian's rustc-web and
# its std source (build-std, offline) and the pinned wasm-component-ld, run with an emptied
# environment so that nothing else on this machine is picked up (as the host builds its own).
set -euo pipefail
cd "$(dirname "$0")"
linker="{{host_root}}/.deps/bin/wasm-component-ld"
[ -x "$linker" ] || { echo "error: $linker is missing: run {{host_root}}/scripts/setup.sh" >&2; exit 1; }
[ -x /usr/bin/cargo ] || { echo "error: /usr/bin/cargo is missing: run {{host_root}}/scripts/setup.sh (apt: cargo-web)" >&2; exit 1; }
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
env -i HOME="$HOME" PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    ${SSL_CERT_FILE:+SSL_CERT_FILE="$SSL_CERT_FILE"} ${CARGO_HOME:+CARGO_HOME="$CARGO_HOME"} \
    RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target_dir" CARGO_TARGET_WASM32_WASIP2_LINKER="$linker" \
    /usr/bin/cargo build --release --quiet
cp "$target_dir/wasm32-wasip2/release/{{crate}}.wasm" component.wasm.tmp
mv component.wasm.tmp component.wasm
echo "built component.wasm ($(stat -c %s component.wasm) bytes)"
