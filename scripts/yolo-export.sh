#!/usr/bin/env bash
# Optional: make models/yolo11n.onnx, an Ultralytics YOLO11n export with random weights, for
# benchmarks (meaningless detections, realistic cost). Needs `ultralytics` from PyPI, which pulls
# torch (a ~3 GB download, several minutes); kept out of setup and CI.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv="$root/.deps/venv-ultralytics"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check ultralytics onnx
cd "$root/models"
YOLO_OFFLINE=1 "$venv/bin/python" - <<'PY'
from ultralytics import YOLO
path = YOLO("yolo11n.yaml").export(format="onnx", imgsz=640, opset=17, simplify=False)
print("exported", path)
PY
ls -la "$root/models/"yolo11n*.onnx
