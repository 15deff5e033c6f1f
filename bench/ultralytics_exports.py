#!/usr/bin/env python3
"""A local check (not CI: it needs Ultralytics and torch, ~3 GB): export Ultralytics models
built from its own YAMLs (random weights, nothing downloaded) to ONNX, in every variant the
issue lists (default, nms=False, nms=True), serve each as `implementation: yolo` with nothing
else, and check that CVAT's listing shows its names and that a request answers well-formed
shapes (rotated rectangles for OBB).

usage: bench/ultralytics_exports.py PYTHON
  PYTHON: a Python with `ultralytics` installed (e.g. a venv: pip install ultralytics onnx)
The exports go to models/ultralytics-exports/ (under the models root, as instances need);
existing ones are reused.

Needs the release host (cargo build --release -p host) and scripts/setup.sh.
"""
import base64
import json
import os
import subprocess
import sys

from serve import ROOT, Host, instance, post

GATEWAY = 8172

# (name, model YAML, export arguments)
EXPORTS = [
    ("yolov5nu", "yolov5nu.yaml", {}),
    ("yolov8n", "yolov8n.yaml", {}),
    ("yolov10n", "yolov10n.yaml", {}),
    ("yolo11n", "yolo11n.yaml", {}),
    ("yolo11n-seg", "yolo11n-seg.yaml", {}),
    ("yolo12n", "yolo12n.yaml", {}),
    ("yolo26n", "yolo26n.yaml", {}),
    ("yolo26n-seg", "yolo26n-seg.yaml", {}),
    ("yolo26n-pose", "yolo26n-pose.yaml", {}),
    ("yolo26n-cls-224", "yolo26n-cls.yaml", {"imgsz": 224}),
    ("yolo26n-cls-640", "yolo26n-cls.yaml", {"imgsz": 640}),
    ("yolo26n-e2e", "yolo26n.yaml", {"nms": False}),
    ("yolo26n-seg-e2e", "yolo26n-seg.yaml", {"nms": False}),
    ("yolo26n-pose-e2e", "yolo26n-pose.yaml", {"nms": False}),
    ("yolo26n-obb-e2e", "yolo26n-obb.yaml", {"nms": False}),
    ("yolov10n-e2e", "yolov10n.yaml", {"nms": False}),
    ("yolo11n-nms", "yolo11n.yaml", {"nms": True}),
    ("rtdetr-l", "rtdetr-l.yaml", {}),
    ("yolo11n-obb", "yolo11n-obb.yaml", {}),
    ("yolo26n-obb", "yolo26n-obb.yaml", {}),
]

EXPORT = r"""
import os, shutil, sys
from ultralytics import RTDETR, YOLO
name, cfg, kw, out = sys.argv[1], sys.argv[2], eval(sys.argv[3]), sys.argv[4]
os.chdir(out)
kw.setdefault("imgsz", 640)
f = (RTDETR if "rtdetr" in cfg else YOLO)(cfg).export(format="onnx", **kw)
shutil.move(f, os.path.join(out, name, "model.onnx"))
"""


def well_formed(item):
    t = item["type"]
    if t == "rectangle":
        return len(item["points"]) == 4 and item["points"][0] <= item["points"][2]
    if t == "mask":
        return len(item["mask"]) > 4
    if t == "skeleton":
        return len(item["elements"]) > 0
    return t == "tag"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    python, out = sys.argv[1], os.path.join(ROOT, "models", "ultralytics-exports")
    for name, cfg, kw in EXPORTS:
        if not os.path.exists(os.path.join(out, name, "model.onnx")):
            os.makedirs(os.path.join(out, name), exist_ok=True)
            print(f"exporting {name} ({cfg}, {kw})", flush=True)
            subprocess.run([python, "-c", EXPORT, name, cfg, repr(kw), out], check=True,
                           env={**os.environ, "YOLO_OFFLINE": "1"}, capture_output=True)
    photo = base64.b64encode(open(os.path.join(ROOT, "tests/fixtures/astronaut.jpg"), "rb").read()).decode()
    models = []
    for i, (name, _, _) in enumerate(EXPORTS):
        models += instance(name, "yolo", 5201 + i, {"weights": f"models/ultralytics-exports/{name}/model.onnx",
                                                    "threshold": 0.01})
    with Host(GATEWAY, models, ["backend: onnxruntime"]) as h:
        functions = h.get("/api/functions")
        print(f"{'export':<18} {'labels':>6} {'state':<8} {'answer':<7} shapes")
        failures = 0
        for i, (name, _, _) in enumerate(EXPORTS):
            f = functions.get(name, {})
            spec = json.loads(f.get("metadata", {}).get("annotations", {}).get("spec", "[]"))
            # Random weights score ~1e-4 (the heads' bias prior): a threshold under it.
            status, _, v = post(5201 + i, {"image": photo, "threshold": 0.00001})
            ok = status == 200 and isinstance(v, list) and all(well_formed(d) for d in v)
            kinds = sorted({d["type"] + ("+rotation" if "rotation" in d else "") for d in v}) if status == 200 else [v.get("error", "")[:150]]
            state = f.get("status", {}).get("state", "?")
            failures += not ok or not spec
            print(f"{name:<18} {len(spec):>6} {state:<8} {status:<7} {len(v) if status == 200 else ''} {', '.join(kinds)}")
        print(f"\n{len(EXPORTS) - failures} of {len(EXPORTS)} listed with names and answered well-formed shapes")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
