#!/usr/bin/env bash
# Optional: make models/<name>.onnx (default yolo11n; yolov8n for the GPU check), an Ultralytics
# export with random weights, for benchmarks (meaningless detections, realistic cost). Needs `ultralytics` from PyPI, which pulls
# torch (a ~3 GB download, several minutes); kept out of setup and CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:-yolo11n}
venv="$root/.deps/venv-ultralytics"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check ultralytics onnx
cd "$root/models"
YOLO_OFFLINE=1 "$venv/bin/python" - "$name" <<'PY'
import sys
from ultralytics import YOLO
path = YOLO(f"{sys.argv[1]}.yaml").export(format="onnx", imgsz=640, opset=17, simplify=False)
print("exported", path)
PY
ls -la "$root/models/$name.onnx"
