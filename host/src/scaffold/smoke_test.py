#!/usr/bin/env python3
"""Smoke test of component.wasm against the host (Python standard library only).

Installs the component into a throwaway host root (.smoke/) with `host add`, which checks
its kind, contract version, imports and describe; serves it with `host up -d`; checks that
the gateway lists it as CVAT would see it; sends the sample image the way CVAT does; checks
the answer; stops the host. Edit the settings below for your own model.
"""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request

HOST = os.environ.get("HOST_BIN", "{{host_bin}}")
WEIGHTS = [{{weights}}]  # --weights arguments: FILE or KEY=FILE
CONFIG = [{{config}}]  # --config arguments: KEY=VALUE
CLASSES = "{{classes}}"  # --classes, for a component that takes its labels from the instance
IMAGE = "{{image}}"
EXPECT_AT_LEAST = {{expect}}  # detections the answer must hold for IMAGE
NAME = "{{name}}"
KIND = "{{kind}}"
BOX = [179.0, 81.0, 272.0, 174.0]  # an object in IMAGE (the astronaut's face)

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, ".smoke")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host(*args):
    run = subprocess.run([HOST, "--root", root, *args], capture_output=True, text=True)
    sys.stdout.write(run.stdout)
    if run.returncode != 0:
        sys.exit(f"host {' '.join(args)} failed:\n{run.stderr}")
    return run.stdout


def http(port, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"{path} on port {port}: HTTP {e.code}: {e.read().decode(errors='replace')}")


def call(port, image):
    """Send IMAGE the way CVAT does for this kind and check the answer's shape."""
    if KIND == "detector":
        answer = http(port, "/", {"image": image})
        assert isinstance(answer, list), f"expected a list of shapes, got {answer!r}"
        print(f"answer: {len(answer)} shape(s): {json.dumps(answer)[:400]}")
        assert len(answer) >= EXPECT_AT_LEAST, f"expected at least {EXPECT_AT_LEAST} shape(s)"
    elif KIND == "tracker":
        first = http(port, "/", {"image": image, "shapes": [BOX], "states": []})
        assert len(first["shapes"]) == 1 and len(first["states"]) == 1, first
        then = http(port, "/", {"image": image, "shapes": [None], "states": first["states"]})
        print(f"tracked: {first['shapes'][0]} -> {then['shapes'][0]}")
        assert then["shapes"][0] is not None, then
    elif KIND == "interactor":
        click = [(BOX[0] + BOX[2]) / 2, (BOX[1] + BOX[3]) / 2]
        answer = http(port, "/", {"image": image, "pos_points": [click], "neg_points": [],
                                  "obj_bbox": []})
        masks = [s for s in answer["shapes"] if s["type"] == "mask"]
        print(f"answer: {len(masks)} mask(s)")
        assert masks, answer
    elif KIND == "reid":
        elsewhere = [0.0, 400.0, 100.0, 500.0]
        shifted = [BOX[0] + 4, BOX[1] + 4, BOX[2] + 4, BOX[3] + 4]
        answer = http(port, "/", {"image0": image, "image1": image,
                                  "boxes0": [{"points": BOX}],
                                  "boxes1": [{"points": elsewhere}, {"points": shifted}]})
        print(f"matches: {answer}")
        assert answer == [1], answer
    else:
        sys.exit(f"unknown kind {KIND}")


shutil.rmtree(root, ignore_errors=True)
os.makedirs(os.path.join(root, "config"))
gateway, port = free_port(), free_port()
with open(os.path.join(root, "config", "models.yaml"), "w") as f:
    f.write(f"settings:\n  bind: 127.0.0.1\n  gateway_port: {gateway}\n  backend: onnxruntime\n"
            "models: {}\n")
args = ["add", os.path.join(here, "component.wasm"), "--name", NAME, "--port", str(port)]
for w in WEIGHTS:
    args += ["--weights", w]
for c in CONFIG:
    args += ["--config", c]
if CLASSES:
    args += ["--classes", CLASSES]
host(*args)
host("up", "-d")
try:
    functions = http(gateway, "/api/functions")
    listed = functions.get(NAME)
    assert listed, f"the gateway does not list {NAME}: {list(functions)}"
    kind = listed["metadata"]["annotations"]["type"]
    labels = json.loads(listed["metadata"]["annotations"]["spec"])
    print(f"listed: {NAME} ({kind}), labels {[l['name'] for l in labels]}")
    assert labels or kind != "detector", "CVAT would list it with no labels"
    with open(IMAGE, "rb") as f:
        image = base64.b64encode(f.read()).decode()
    call(port, image)
    print("smoke test passed")
finally:
    host("down")
