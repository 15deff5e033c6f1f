#!/usr/bin/env bash
# Nightly-style fuzzing of the HTTP layer: FUZZ_CASES random and mutated requests
# (default 100000) across a detector, a tracker, an interactor and a reid instance.
# Every answer must be JSON with a 2xx/4xx/5xx status and the host must keep serving.
#   scripts/fuzz.sh [CASES] [SEED]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
FUZZ_CASES=${1:-100000} FUZZ_SEED=${2:-$(date +%s)} CARGO_TARGET_DIR="$root/target/bench" \
    cargo test --release -p host --test fuzz_http -- --nocapture
