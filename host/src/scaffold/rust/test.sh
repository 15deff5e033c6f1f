#!/usr/bin/env bash
# Run the unit tests natively, with the toolchain the host's setup chose (the one build.sh
# builds with), in an emptied environment: the host's scripts/guest-cargo.sh --native.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$here/target}" "{{host_root}}/scripts/guest-cargo.sh" --native test --quiet "$@"
