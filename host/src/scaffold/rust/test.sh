#!/usr/bin/env bash
# Run the unit tests natively, with the toolchain the host's setup installed (Debian's cargo
# and rustc) in an emptied environment, as build.sh builds. Cargo reads .cargo/config.toml
# (the wasm32 build settings) only when run inside the project, so this runs from / and names
# the manifest: the tests build for this machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ -x /usr/bin/cargo ] || { echo "error: /usr/bin/cargo is missing: run {{host_root}}/scripts/setup.sh (apt: cargo-web)" >&2; exit 1; }
cd /
env -i HOME="$HOME" PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    ${SSL_CERT_FILE:+SSL_CERT_FILE="$SSL_CERT_FILE"} ${CARGO_HOME:+CARGO_HOME="$CARGO_HOME"} \
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}" \
    /usr/bin/cargo test --quiet --manifest-path "$here/Cargo.toml" "$@"
