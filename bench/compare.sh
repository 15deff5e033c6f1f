#!/usr/bin/env bash
# Host vs a FastAPI + onnxruntime server (the usual hand-written CVAT handler) under the
# same load: bench/compare.sh [CLIENTS] [SECONDS]. Builds the release host, makes
# .deps/venv-bench (fastapi, uvicorn, pillow, numpy, onnxruntime from PyPI) and runs
# bench/compare.py. yolo11n is included when models/yolo11n.onnx exists
# (scripts/yolo-export.sh).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
CARGO_TARGET_DIR="$root/target/bench" cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p host
venv="$root/.deps/venv-bench"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check fastapi==0.163.2 uvicorn==0.54.0 pillow==13.0.0 numpy==2.4.6 onnxruntime==1.32.0
fi
"$venv/bin/python" "$root/bench/compare.py" "$root/target/bench/release/host" "$root" "${1:-4}" "${2:-15}"
