#!/usr/bin/env bash
# Run cargo for guest components with the toolchain scripts/setup.sh chose (written to
# .deps/guest.env), in an emptied environment, so that nothing else on this machine (a
# stray linker, another toolchain, a ~/.cargo/bin install) can take part:
#
#   scripts/guest-cargo.sh build --release      in a guest workspace: wasm32-wasip2
#   scripts/guest-cargo.sh --native test ...     the same toolchain, for this machine
#
# The two toolchains (ARCHITECTURE.md, "Guest side"):
#   rustup  the toolchain the host builds with, its wasm32-wasip2 target (std from rustup)
#           and the wasm-component-ld it ships;
#   debian  Debian 12's rustc-web 1.96 building std from rust-web-src (-Zbuild-std, offline),
#           Debian's wasi-libc and lld, and the pinned wasm-component-ld in .deps/bin.
# CARGO_TARGET_DIR and CARGO_HOME are passed through; the workspace's .cargo/config.toml
# names the target and the flags both toolchains share.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
env_file="$root/.deps/guest.env"
[ -f "$env_file" ] || { echo "error: $env_file is missing: run scripts/setup.sh (it chooses the guest toolchain)" >&2; exit 1; }
# shellcheck source=/dev/null
. "$env_file"
native=false
if [ "${1:-}" = "--native" ]; then native=true; shift; fi
[ $# -ge 1 ] || { echo "usage: scripts/guest-cargo.sh [--native] CARGO-COMMAND [ARGS...]" >&2; exit 2; }
command=$1
shift
for tool in "$GUEST_CARGO" "$GUEST_RUSTC" "$GUEST_LINKER"; do
    [ -x "$tool" ] || { echo "error: $tool ($GUEST_TOOLCHAIN guest toolchain) is missing: run scripts/setup.sh" >&2; exit 1; }
done
args=()
# rustdoc (doc tests) beside the compiler: the one on PATH may be another toolchain's.
vars=(RUSTC="$GUEST_RUSTC" RUSTDOC="$(dirname "$GUEST_RUSTC")/rustdoc")
if $native; then
    # The crates' logic, compiled for this machine (their WIT imports are never called).
    args+=(--target "$("$GUEST_RUSTC" -vV | sed -n 's/^host: //p')")
else
    vars+=(CARGO_TARGET_WASM32_WASIP2_LINKER="$GUEST_LINKER")
fi
if [ "$GUEST_TOOLCHAIN" = debian ]; then
    # Stable rustc-web builds std from its source with RUSTC_BOOTSTRAP (toolchain.md §1).
    vars+=(RUSTC_BOOTSTRAP=1)
    if ! $native; then
        args+=(-Zbuild-std=std,panic_abort
               --config 'target.wasm32-wasip2.rustflags=["-C", "link-self-contained=no", "-L", "native=/usr/lib/wasm32-wasi", "-C", "link-arg=--wasm-ld-path=/usr/lib/llvm-19/bin/wasm-ld"]')
    fi
fi
exec env -i HOME="$HOME" PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    ${SSL_CERT_FILE:+SSL_CERT_FILE="$SSL_CERT_FILE"} ${SSL_CERT_DIR:+SSL_CERT_DIR="$SSL_CERT_DIR"} \
    ${CARGO_HOME:+CARGO_HOME="$CARGO_HOME"} ${CARGO_TARGET_DIR:+CARGO_TARGET_DIR="$CARGO_TARGET_DIR"} \
    "${vars[@]}" "$GUEST_CARGO" "$command" "${args[@]}" "$@"
