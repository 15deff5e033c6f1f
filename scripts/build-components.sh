#!/usr/bin/env bash
# Build every guest component crate (of the given workspaces, default components/ and
# tests/components/) to a wasm32-wasip2 component and copy it to
# <crate folder>/component.wasm, where the host looks for it. Offline recipe from
# shared/docs/toolchain.md: Debian's rustc-web 1.96 + its std source (build-std).
# Incremental: cargo only rebuilds what changed; the std build is cached in the target dir.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="$root/target/guest"
# Rustup's environment must not leak into Debian's cargo.
unset RUSTUP_TOOLCHAIN RUSTC RUSTDOC CARGO
cargo_bin=/usr/bin/cargo

build_workspace() {
    local ws=$1
    (cd "$ws" && "$cargo_bin" build --release --quiet)
    for dir in "$ws"/*/; do
        local name
        name=$(basename "$dir")
        local wasm="$CARGO_TARGET_DIR/wasm32-wasip2/release/${name//-/_}.wasm"
        if [ -f "$wasm" ] && grep -q 'crate-type = \["cdylib"\]' "$dir/Cargo.toml" 2>/dev/null; then
            if ! cmp -s "$wasm" "$dir/component.wasm"; then
                cp "$wasm" "$dir/component.wasm.tmp" && mv "$dir/component.wasm.tmp" "$dir/component.wasm"
                echo "built $(realpath --relative-to="$root" "$dir")/component.wasm ($(stat -c %s "$dir/component.wasm") bytes)"
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
