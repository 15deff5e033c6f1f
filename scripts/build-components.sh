#!/usr/bin/env bash
# Build every guest component crate (of the given workspaces, default components/ and
# tests/components/) to a wasm32-wasip2 component and copy it to
# <crate folder>/component.wasm, where the host looks for it. Offline recipe from
# shared/docs/toolchain.md: Debian's rustc-web 1.96 + its std source (build-std).
# Incremental: cargo only rebuilds what changed; the std build is cached in the target dir.
#
# The build is hermetic on purpose: Debian's cargo runs with an emptied environment whose
# PATH holds only system directories, and the linker is the project's pinned
# .deps/bin/wasm-component-ld named by absolute path. A tool left on this machine by hand
# (rustup's copy of the linker, a ~/.cargo/bin install) cannot be picked up, so a build that
# works here works on a fresh machine. Every component is then checked to have been linked
# by that exact linker version (its `producers` section).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
linker="$root/.deps/bin/wasm-component-ld"
# "<linker version> wit-component <version>", written by setup.sh when it installed the linker.
read -r linker_version want_witc < "$root/.deps/bin/.wasm-component-ld-version" 2>/dev/null || true
want_version=${want_witc:-}
[ -x "$linker" ] && [ -n "$want_version" ] ||
    { echo "error: $linker is missing: run scripts/setup.sh (it installs the pinned linker)" >&2; exit 1; }
for tool in /usr/bin/cargo /usr/bin/rustc; do
    [ -x "$tool" ] || { echo "error: $tool is missing: run scripts/setup.sh (apt: rustc-web cargo-web)" >&2; exit 1; }
done
target_dir="$root/target/guest"

guest_cargo() { # run Debian's cargo with nothing from this shell but what the build needs
    env -i HOME="$HOME" PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
        ${SSL_CERT_FILE:+SSL_CERT_FILE="$SSL_CERT_FILE"} ${SSL_CERT_DIR:+SSL_CERT_DIR="$SSL_CERT_DIR"} \
        ${CARGO_HOME:+CARGO_HOME="$CARGO_HOME"} \
        RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$target_dir" \
        CARGO_TARGET_WASM32_WASIP2_LINKER="$linker" \
        /usr/bin/cargo "$@"
}

# The wit-component version in a component's own producers section (the last one in the
# file; nested core modules carry their own): the linker that made the component wrote it.
linked_by() {
    python3 - "$1" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
last = None
for m in re.finditer(rb"\rwit-component([\x01-\x20])", data):
    last = data[m.end():m.end() + m.group(1)[0]].decode(errors="replace")
print(f"wit-component {last}" if last else "unknown")
PY
}

build_workspace() {
    local ws=$1
    (cd "$ws" && guest_cargo build --release --quiet)
    for dir in "$ws"/*/; do
        local name
        name=$(basename "$dir")
        local wasm="$target_dir/wasm32-wasip2/release/${name//-/_}.wasm"
        if [ -f "$wasm" ] && grep -q 'crate-type = \["cdylib"\]' "$dir/Cargo.toml" 2>/dev/null; then
            local used
            used=$(linked_by "$wasm")
            if [ "$used" != "$want_version" ]; then
                echo "error: $wasm was not linked by the project's wasm-component-ld $linker_version ($linker): its producers say '$used', expected '$want_version'" >&2
                exit 1
            fi
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
