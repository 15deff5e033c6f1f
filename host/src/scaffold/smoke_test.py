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
EXPECT_AT_LEAST = {{expect}}  # shapes the answer must hold for IMAGE
NAME = "{{name}}"

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
    with urllib.request.urlopen(req, timeout=300) as r:
        return json.load(r)


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
    assert labels, "CVAT would list it with no labels"
    with open(IMAGE, "rb") as f:
        image = base64.b64encode(f.read()).decode()
    answer = http(port, "/", {"image": image})
    assert isinstance(answer, list), f"expected a list of shapes, got {answer!r}"
    print(f"answer: {len(answer)} shape(s): {json.dumps(answer)[:400]}")
    assert len(answer) >= EXPECT_AT_LEAST, f"expected at least {EXPECT_AT_LEAST} shape(s)"
    print("smoke test passed")
finally:
    host("down")
