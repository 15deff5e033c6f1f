#!/usr/bin/env bash
# Build component.wasm with the toolchain the host's setup chose (rustup's wasm32-wasip2
# target, or Debian 12's rustc-web), through the host's scripts/guest-cargo.sh: an emptied
# environment and the linker named by path, so that nothing else on this machine is picked
# up (as the host builds its own components).
set -euo pipefail
cd "$(dirname "$0")"
guest_cargo="{{host_root}}/scripts/guest-cargo.sh"
[ -x "$guest_cargo" ] || { echo "error: $guest_cargo is missing: is {{host_root}} the host's checkout?" >&2; exit 1; }
target_dir=${CARGO_TARGET_DIR:-$PWD/target}
CARGO_TARGET_DIR="$target_dir" "$guest_cargo" build --release --quiet
cp "$target_dir/wasm32-wasip2/release/{{crate}}.wasm" component.wasm.tmp
mv component.wasm.tmp component.wasm
echo "built component.wasm ($(stat -c %s component.wasm) bytes)"
