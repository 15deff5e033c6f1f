#!/usr/bin/env bash
# The test command: set up (idempotent; builds the components), then run every test:
# the guest crates' unit tests (natively) and the host's unit and end-to-end tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
# Guest crates are plain Rust apart from their WIT imports: their logic tests run natively
# with the host toolchain (the wasm32 settings in components/.cargo are overridden).
for ws in components tests/components; do
    cargo test --quiet --manifest-path "$ws/Cargo.toml" --target-dir "$root/target/guest-native" \
        --target "$(rustc -vV | sed -n 's/^host: //p')" --config 'build.rustc="rustc"' \
        --config 'target.wasm32-wasip2.rustflags=[]'
done
cargo test --workspace "$@"
