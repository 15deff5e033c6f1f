"""Host vs the usual Python handler, driven by the same load on the same 1920x1080 JPEG.

For each model: cold start (process start to first answer), then 1 client and N concurrent
clients (throughput, p50/p99 latency), the server's RSS, and the raw ONNX Runtime floor
(session.run on a ready tensor). Prints a table and host/Python ratios. Loopback only.

usage: compare.py HOST_BIN REPO [CLIENTS] [SECONDS]
"""
import base64
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import onnxruntime as ort

HOST_BIN, REPO = sys.argv[1], sys.argv[2]
CLIENTS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
SECONDS = float(sys.argv[4]) if len(sys.argv) > 4 else 15
THREADS = 2
BODY = json.dumps({"image": base64.b64encode(open(f"{REPO}/tests/fixtures/frame_1080p.jpg", "rb").read()).decode()}).encode()
MODELS = [("blazeface", "blazeface", "models/face_detection_short_range.onnx"),
          ("yolo11n", "yolo", "models/yolo11n.onnx")]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(conn):
    conn.request("POST", "/", BODY, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"{r.status}: {data[:200]!r}")
    return data


def wait_first_answer(port, proc, started):
    while True:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            post(conn)
            return time.time() - started
        except (ConnectionError, OSError):
            time.sleep(0.01)


def rss_mib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def load(port, clients, seconds):
    lat, stop = [], time.time() + seconds
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while time.time() < stop:
            t = time.perf_counter()
            post(conn)
            with lock:
                lat.append(time.perf_counter() - t)

    ts = [threading.Thread(target=worker) for _ in range(clients)]
    started = time.time()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat.sort()
    wall = time.time() - started
    return {"rps": len(lat) / wall, "p50": 1e3 * lat[len(lat) // 2], "p99": 1e3 * lat[min(len(lat) - 1, int(len(lat) * 0.99))]}


def raw_floor(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = THREADS
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    x = np.random.rand(*[d if isinstance(d, int) else 1 for d in i.shape]).astype(np.float32)
    for _ in range(3):
        s.run(None, {i.name: x})
    t = []
    for _ in range(30):
        a = time.perf_counter()
        s.run(None, {i.name: x})
        t.append(time.perf_counter() - a)
    return 1e3 * statistics.median(t)


def start_host(impl, weights, root, port):
    os.makedirs(f"{root}/config", exist_ok=True)
    os.makedirs(f"{root}/components", exist_ok=True)
    link = f"{root}/components/{impl}"
    if not os.path.exists(link):
        os.symlink(f"{REPO}/components/{impl}", link)
    with open(f"{root}/config/models.yaml", "w") as f:
        f.write(f"settings:\n  bind: 127.0.0.1\n  gateway_port: {free_port()}\n  models_root: {REPO}\n  ort_threads: {THREADS}\n"
                f"models:\n  m:\n    implementation: {impl}\n    port: {port}\n    config: {{weights: {weights}}}\n")
    env = dict(os.environ, ORT_DYLIB_PATH=f"{REPO}/.deps/onnxruntime/libonnxruntime.so", RUST_LOG="warn")
    return subprocess.Popen([HOST_BIN, "--root", root, "up"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_python(kind, weights, port):
    env = dict(os.environ, MODEL_PATH=f"{REPO}/{weights}", ORT_THREADS=str(THREADS))
    return subprocess.Popen([sys.executable, f"{REPO}/bench/python_server.py", "yolo" if kind == "yolo" else "blazeface", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure(name, start):
    port = free_port()
    t0 = time.time()
    proc = start(port)
    try:
        cold = wait_first_answer(port, proc, t0)
        for _ in range(3):
            post(http.client.HTTPConnection("127.0.0.1", port, timeout=120))
        one = load(port, 1, SECONDS)
        many = load(port, CLIENTS, SECONDS)
        return {"cold_s": cold, "one": one, "many": many, "rss": rss_mib(proc.pid)}
    finally:
        proc.terminate()
        proc.wait()


def main():
    print(f"1920x1080 JPEG ({len(BODY) // 1024} KB request), {THREADS} ORT threads, {os.cpu_count()} cores, {CLIENTS} clients, {SECONDS:.0f} s per load")
    for label, impl, weights in MODELS:
        if not os.path.exists(f"{REPO}/{weights}"):
            print(f"{label}: {weights} missing, skipped (scripts/yolo-export.sh makes yolo11n)")
            continue
        root = tempfile.mkdtemp(prefix="host-compare-", dir=f"{REPO}/target")
        host_cold = measure("host", lambda p: start_host(impl, weights, root, p))  # empty compile cache
        host = measure("host", lambda p: start_host(impl, weights, root, p))  # warm cache
        py = measure("python", lambda p: start_python(impl, weights, p))
        shutil.rmtree(root, ignore_errors=True)
        floor = raw_floor(f"{REPO}/{weights}")
        print(f"\n{label}: raw ONNX Runtime floor {floor:.2f} ms")
        print(f"{'':26}{'host':>12}{'python':>12}{'host/python':>14}")
        rows = [
            ("cold start, cache empty (s)", host_cold["cold_s"], py["cold_s"]),
            ("cold start, cache warm (s)", host["cold_s"], py["cold_s"]),
            ("1 client req/s", host["one"]["rps"], py["one"]["rps"]),
            ("1 client p50 (ms)", host["one"]["p50"], py["one"]["p50"]),
            ("1 client p99 (ms)", host["one"]["p99"], py["one"]["p99"]),
            (f"{CLIENTS} clients req/s", host["many"]["rps"], py["many"]["rps"]),
            (f"{CLIENTS} clients p50 (ms)", host["many"]["p50"], py["many"]["p50"]),
            (f"{CLIENTS} clients p99 (ms)", host["many"]["p99"], py["many"]["p99"]),
            ("RSS after load (MiB)", host["rss"], py["rss"]),
        ]
        for name, h, p in rows:
            print(f"{name:26}{h:12.2f}{p:12.2f}{h / p:14.2f}")


if __name__ == "__main__":
    main()
