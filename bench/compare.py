"""The host against the usual Python handler, driven by the same load on the same 1920x1080 JPEG.

Servers: any number of host binaries (`--host release=target/release/host --host
debug=target/debug/host`) and FastAPI + onnxruntime handlers (`--python async --python def`:
an `async def` handler, and a plain `def` one that FastAPI runs in its thread pool). Models:
BlazeFace, YOLOX-Nano and YOLOv8n int8 (those present). For each model and server: the cold
start (process start to first answer), then either the p50 of `--requests` sequential
requests (one client), or `--seconds` of load with 1 and `--clients` clients (throughput,
p50, p99); the RSS after load; for hosts, the per-stage time per request from /metrics. The
raw ONNX Runtime floor (session.run on a ready tensor, same threads) gives each server's
overhead: p50 minus the floor. Ratios are against the first Python server. Loopback only.

usage: compare.py --repo REPO [--host NAME=BIN]... [--python async|def]... [--models a,b]
                  [--requests N | --seconds S --clients C] [--backend onnxruntime]
"""
import argparse
import base64
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import onnxruntime as ort

THREADS = 2
MODELS = {  # name: (component, weights, python_server kind)
    "blazeface": ("blazeface", "models/face_detection_short_range.onnx", "blazeface"),
    "yolox-nano": ("yolo", "models/yolox_nano/yolox_nano.onnx", "yolox"),
    "yolov8n-int8": ("yolo", "models/yolov8n_int8/yolov8n_int8.onnx", "yolo"),
    "yolo11n": ("yolo", "models/yolo11n.onnx", "yolo"),
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(conn, body):
    conn.request("POST", "/", body, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{r.status}: {data[:200]!r}")
    return data


def wait_first_answer(port, proc, started, body):
    while True:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            post(http.client.HTTPConnection("127.0.0.1", port, timeout=120), body)
            return time.time() - started
        except (ConnectionError, OSError):
            time.sleep(0.01)


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def quantile(sorted_ms, q):
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * q))]


def load(port, body, clients, seconds=None, requests=None):
    """Latencies of `requests` sequential requests, or of `seconds` of load by `clients`."""
    lat, lock = [], threading.Lock()
    stop = time.time() + (seconds or 0)

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while (len(lat) < requests) if requests else (time.time() < stop):
            t = time.perf_counter()
            post(conn, body)
            with lock:
                lat.append(1e3 * (time.perf_counter() - t))

    ts = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    return {"rps": len(lat) / (time.time() - started), "p50": quantile(lat, 0.5), "p99": quantile(lat, 0.99)}


def raw_floor(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = THREADS
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    dtype = np.uint8 if "uint8" in i.type else np.float32
    x = (np.random.rand(*[d if isinstance(d, int) else 1 for d in i.shape]) * 255).astype(dtype)
    for _ in range(3):
        s.run(None, {i.name: x})
    t = []
    for _ in range(30):
        a = time.perf_counter()
        s.run(None, {i.name: x})
        t.append(1e3 * (time.perf_counter() - a))
    t.sort()
    return t[len(t) // 2]


def stages(gateway):
    """Mean time per request of each stage, from the host's /metrics histograms."""
    text = urlopen_text(f"http://127.0.0.1:{gateway}/metrics")
    sums = dict(re.findall(r'host_request_duration_seconds_sum\{instance="m",stage="(\w+)"\} ([0-9.e+-]+)', text))
    counts = dict(re.findall(r'host_request_duration_seconds_count\{instance="m",stage="(\w+)"\} ([0-9.e+-]+)', text))
    return {k: 1e3 * float(sums[k]) / max(1.0, float(counts.get(k, 0))) for k in sums}


def urlopen_text(url):
    import urllib.request
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def start_host(binary, repo, component, weights, port, backend, replicas=1):
    root = tempfile.mkdtemp(prefix="host-compare-", dir=f"{repo}/target")
    # An older build may not know `settings.backend: auto`; onnxruntime is what it ran.
    os.makedirs(f"{root}/config")
    os.makedirs(f"{root}/components")
    os.symlink(f"{repo}/components/{component}", f"{root}/components/{component}")
    gateway = free_port()
    with open(f"{root}/config/models.yaml", "w") as f:
        f.write(f"settings:\n  bind: 127.0.0.1\n  gateway_port: {gateway}\n  models_root: {repo}\n"
                f"  ort_threads: {THREADS}\n  backend: {backend}\n"
                f"models:\n  m:\n    implementation: {component}\n    port: {port}\n    config: {{weights: {weights}}}\n"
                + (f"    replicas: {replicas}\n" if replicas > 1 else ""))
    env = dict(os.environ, ORT_DYLIB_PATH=f"{repo}/.deps/onnxruntime/libonnxruntime.so", RUST_LOG="warn")
    proc = subprocess.Popen([binary, "--root", root, "up"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, root, gateway


def start_python(repo, kind, weights, port, handler):
    env = dict(os.environ, MODEL_PATH=f"{repo}/{weights}", ORT_THREADS=str(THREADS), HANDLER=handler)
    proc = subprocess.Popen([sys.executable, f"{repo}/bench/python_server.py", kind, str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, None, None


def measure(start, body, args):
    port = free_port()
    t0 = time.time()
    proc, root, gateway = start(port)
    try:
        cold = wait_first_answer(port, proc, t0, body)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        for _ in range(3):
            post(conn, body)
        if args.requests:
            r = {"one": load(port, body, 1, requests=args.requests)}
        else:
            r = {"one": load(port, body, 1, seconds=args.seconds),
                 "many": load(port, body, args.clients, seconds=args.seconds)}
        r["cold_s"] = cold
        r["rss"] = rss_mib(proc.pid)
        r["stages"] = stages(gateway) if gateway else None
        return r
    finally:
        proc.terminate()
        proc.wait()
        if root:
            shutil.rmtree(root, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", required=True)
    ap.add_argument("--host", action="append", default=[],
                    help="NAME=BINARY[@REPO]: a host build, with its own checkout's components (default --repo)")
    ap.add_argument("--python", action="append", default=[], choices=["async", "def"])
    ap.add_argument("--models", default="blazeface,yolox-nano,yolov8n-int8")
    ap.add_argument("--requests", type=int, help="p50 of this many sequential requests (1 client)")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--backend", default="onnxruntime", help="the hosts' backend (onnxruntime: same engine as Python)")
    ap.add_argument("--replicas", type=int, default=1, help="the hosts' instance replicas")
    args = ap.parse_args()
    repo = args.repo
    body = json.dumps({"image": base64.b64encode(open(f"{repo}/tests/fixtures/frame_1080p.jpg", "rb").read()).decode()}).encode()
    servers = [(f"host {n}", b) for n, b in (h.split("=", 1) for h in args.host)]
    servers += [(f"python {h}", h) for h in args.python]
    mode = f"p50 of {args.requests} requests, 1 client" if args.requests else f"{args.seconds:.0f} s of load with 1 and {args.clients} clients"
    print(f"1920x1080 JPEG ({len(body) // 1024} KB request), {THREADS} ONNX Runtime threads, {os.cpu_count()} cores "
          f"({cpu()}), hosts on {args.backend}; {mode}")
    for name in args.models.split(","):
        component, weights, kind = MODELS[name]
        if not os.path.exists(f"{repo}/{weights}"):
            print(f"\n{name}: {weights} missing, skipped")
            continue
        results = {}
        for label, what in servers:
            if label.startswith("host"):
                binary, _, host_repo = what.partition("@")
                start = lambda p, b=binary, r=host_repo or repo: start_host(b, r, component, weights, p, args.backend, args.replicas)
            else:
                start = lambda p, h=what: start_python(repo, kind, weights, p, h)
            results[label] = measure(start, body, args)
        floor = raw_floor(f"{repo}/{weights}")
        print(f"\n{name}: raw ONNX Runtime floor {floor:.2f} ms (session.run, {THREADS} threads)")
        base = next((l for l in results if l.startswith("python")), None)
        rows = [("cold start (s)", lambda r: r["cold_s"]),
                ("1 client p50 (ms)", lambda r: r["one"]["p50"]),
                ("1 client p99 (ms)", lambda r: r["one"]["p99"]),
                ("1 client overhead (ms)", lambda r: r["one"]["p50"] - floor),
                ("1 client req/s", lambda r: r["one"]["rps"])]
        if not args.requests:
            rows += [(f"{args.clients} clients req/s", lambda r: r["many"]["rps"]),
                     (f"{args.clients} clients p50 (ms)", lambda r: r["many"]["p50"]),
                     (f"{args.clients} clients p99 (ms)", lambda r: r["many"]["p99"])]
        rows.append(("RSS after load (MiB)", lambda r: r["rss"]))
        print(f"{'':26}" + "".join(f"{l:>15}" for l in results))
        for title, get in rows:
            print(f"{title:26}" + "".join(f"{get(r):15.2f}" for r in results.values()))
        if base:
            for title, get in rows[1:]:
                b = get(results[base])
                print(f"{title + ' / ' + base:42}" + "".join(f"{get(r) / b:10.2f}" for r in results.values()))
        for label, r in results.items():
            if r["stages"]:
                print(f"{label} per request: " + ", ".join(f"{k} {v:.2f} ms" for k, v in sorted(r["stages"].items())))


def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "?"


if __name__ == "__main__":
    main()
