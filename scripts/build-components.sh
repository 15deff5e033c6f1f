#!/usr/bin/env bash
# Build every guest component crate (of the given workspaces, default components/ and
# tests/components/) to a wasm32-wasip2 component and copy it to
# <crate folder>/component.wasm, where the host looks for it. The toolchain is the one
# scripts/setup.sh chose (.deps/guest.env: rustup's wasm32-wasip2 target, or Debian 12's
# rustc-web with build-std), run by scripts/guest-cargo.sh in an emptied environment with
# the linker named by absolute path, so that nothing left on this machine by hand can be
# picked up. Every component is then checked to have been linked by that linker (the
# wit-component version in its `producers` section).
# Incremental: cargo only rebuilds what changed; each toolchain has its own target dir.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
env_file="$root/.deps/guest.env"
[ -f "$env_file" ] || { echo "error: $env_file is missing: run scripts/setup.sh (it chooses the guest toolchain)" >&2; exit 1; }
# shellcheck source=/dev/null
. "$env_file"
target_dir="$root/target/guest-$GUEST_TOOLCHAIN"

build_workspace() {
    local ws=$1
    (cd "$ws" && CARGO_TARGET_DIR="$target_dir" "$root/scripts/guest-cargo.sh" build --release --quiet)
    for dir in "$ws"/*/; do
        local name
        name=$(basename "$dir")
        local wasm="$target_dir/wasm32-wasip2/release/${name//-/_}.wasm"
        if [ -f "$wasm" ] && grep -q 'crate-type = \["cdylib"\]' "$dir/Cargo.toml" 2>/dev/null; then
            local used
            used=$(python3 "$root/scripts/wasm-producers.py" "$wasm")
            if [ "$used" != "$GUEST_LINKER_WITC" ]; then
                echo "error: $wasm was not linked by the $GUEST_TOOLCHAIN toolchain's linker $GUEST_LINKER_VERSION ($GUEST_LINKER): its producers say '$used', expected '$GUEST_LINKER_WITC'" >&2
                exit 1
            fi
            if ! cmp -s "$wasm" "$dir/component.wasm"; then
                cp "$wasm" "$dir/component.wasm.tmp" && mv "$dir/component.wasm.tmp" "$dir/component.wasm"
                echo "built $(realpath --relative-to="$root" "$dir")/component.wasm ($(stat -c %s "$dir/component.wasm") bytes, $GUEST_TOOLCHAIN toolchain)"
            fi
        fi
    done
}

# Arguments: guest workspaces to build (default: components/ and tests/components/).
if [ $# -gt 0 ]; then
    for ws in "$@"; do build_workspace "$(cd "$ws" && pwd)"; done
else
    build_workspace "$root/components"
    build_workspace "$root/tests/components"
fi
