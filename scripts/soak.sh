#!/usr/bin/env bash
# Load and soak on loopback: scripts/soak.sh [SECONDS] [CLIENTS] (defaults 60 s, 6 clients).
# Prints throughput, p50/p99 latency, errors (503 backpressure apart), loads/unloads and
# RSS over time; fails if any request errs.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cd "$root"
SOAK_SECONDS=${1:-60} SOAK_CLIENTS=${2:-6} CARGO_TARGET_DIR="$root/target/bench" \
    cargo bench -p host --bench soak
