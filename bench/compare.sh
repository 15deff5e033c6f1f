#!/usr/bin/env bash
# The host against FastAPI + onnxruntime handlers (an `async def` one and a plain `def` one,
# the strongest simple Python setup) under the same load, on the same 1920x1080 JPEG:
#   bench/compare.sh [compare.py options]     e.g. --seconds 10 --clients 4, or --requests 50
# Builds the release host (and, with --debug-too, the debug one as a second host), makes
# .deps/venv-bench (fastapi, uvicorn, pillow, numpy, onnxruntime from PyPI) and runs
# bench/compare.py on BlazeFace, YOLOX-Nano and YOLOv8n int8 (those present).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p host
hosts=(--host "release=$root/target/release/host")
if [ "${1:-}" = "--debug-too" ]; then
    shift
    cargo build --quiet --manifest-path "$root/Cargo.toml" -p host
    hosts+=(--host "debug=$root/target/debug/host")
fi
venv="$root/.deps/venv-bench"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check fastapi==0.163.2 uvicorn==0.54.0 pillow==13.0.0 numpy==2.4.6 onnxruntime==1.32.0
fi
"$venv/bin/python" "$root/bench/compare.py" --repo "$root" "${hosts[@]}" --python async --python def "$@"
