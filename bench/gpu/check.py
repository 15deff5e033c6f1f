"""The GPU check, driven over HTTP: the release host serving the face detector and a YOLOv8n
export on one device, with per-request latency, the raw ONNX Runtime latency of the same
models (`host probe`), and GPU memory before load, loaded, after idle unload and after a
second load/unload cycle. Standard library only (the GPU machine has no pip access).

usage: check.py KIT_DIR DEVICE [REQUESTS]
  KIT_DIR  holds host, the ONNX Runtime libraries, models/, components/, frame_1080p.jpg
  DEVICE   cuda:0, or cpu for a dry run of the same steps on a machine without a GPU
"""
import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

KIT, DEVICE = sys.argv[1], sys.argv[2]
REQUESTS = int(sys.argv[3]) if len(sys.argv) > 3 else 200
HOST = os.path.join(KIT, "host")
IDLE = 4  # seconds: the instances' idle_timeout
BODY = json.dumps({"image": base64.b64encode(open(os.path.join(KIT, "frame_1080p.jpg"), "rb").read()).decode()}).encode()
MODELS = [  # instance, implementation, weights, classes
    ("face", "blazeface", "models/face_detection_short_range.onnx", "[face]"),
    ("yolov8n", "yolo", "models/yolov8n.onnx", None),
]
GPU = DEVICE.startswith("cuda")


def say(*a):
    print(*a, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gpu_memory(pid=None):
    """(device MiB used, this process's MiB) from nvidia-smi; (None, None) without a GPU."""
    if not GPU or shutil.which("nvidia-smi") is None:
        return None, None
    idx = DEVICE.split(":")[1] if ":" in DEVICE else "0"
    used = subprocess.run(["nvidia-smi", "-i", idx, "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True).stdout.strip()
    mine = 0
    apps = subprocess.run(["nvidia-smi", "-i", idx, "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                          capture_output=True, text=True).stdout
    for line in apps.splitlines():
        p, _, m = line.partition(",")
        if pid is not None and p.strip() == str(pid):
            mine += int(m.strip() or 0)
    return int(used or 0), mine


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def post(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("POST", "/", BODY, {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {data[:300]!r}")
    return json.loads(data)


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * q))]


def status(gateway):
    conn = http.client.HTTPConnection("127.0.0.1", gateway, timeout=10)
    conn.request("GET", "/api/status")
    v = json.loads(conn.getresponse().read())
    conn.close()
    return {i["name"]: i for i in v["instances"]}


def wait_state(gateway, name, state, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if status(gateway)[name]["state"] == state:
            return True
        time.sleep(0.2)
    return False


def probe(weights, device, runs):
    out = subprocess.run([HOST, "--root", KIT, "probe", os.path.join(KIT, weights), "--device", device, "--runs", str(runs)],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return "FAILED: " + (out.stderr or out.stdout).strip().splitlines()[0]
    return out.stdout.strip().splitlines()[-1]


def main():
    say(f"== GPU check: device {DEVICE}, {REQUESTS} requests per model, 1920x1080 JPEG ({len(BODY) // 1024} KB body)")
    if GPU:
        say(subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                           capture_output=True, text=True).stdout.strip())

    say("\n== raw ONNX Runtime (host probe: load, first run, then 300 runs on a ready tensor)")
    for _, _, weights, _ in MODELS:
        say(f"{weights} on {DEVICE}: {probe(weights, DEVICE, 300)}")
        if GPU:
            say(f"{weights} on cpu:    {probe(weights, 'cpu', 100)}")

    root = tempfile.mkdtemp(prefix="gpu-check-")
    os.makedirs(os.path.join(root, "config"))
    os.symlink(os.path.join(KIT, "components"), os.path.join(root, "components"))
    gateway = free_port()
    ports = {name: free_port() for name, *_ in MODELS}
    yaml = f"settings:\n  bind: 127.0.0.1\n  gateway_port: {gateway}\n  models_root: {KIT}\n  idle_timeout: {IDLE}s\nmodels:\n"
    for name, impl, weights, classes in MODELS:
        yaml += f"  {name}:\n    implementation: {impl}\n    port: {ports[name]}\n    device: {DEVICE}\n    config: {{weights: {weights}}}\n"
        if classes:
            yaml += f"    classes: {classes}\n"
    open(os.path.join(root, "config/models.yaml"), "w").write(yaml)
    log = open(os.path.join(root, "host.log"), "w")
    proc = subprocess.Popen([HOST, "--root", root, "up"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                status(gateway)
                break
            except OSError:
                time.sleep(0.1)
        before = gpu_memory(proc.pid)
        say(f"\n== host over HTTP (pid {proc.pid}); GPU memory before any load: device {before[0]} MiB, host process {before[1]} MiB; RSS {rss_mib(proc.pid):.0f} MiB")
        rows = []
        for name, *_ in MODELS:
            port = ports[name]
            t = time.time()
            first = post(port)
            cold = (time.time() - t) * 1000
            lat = []
            for _ in range(REQUESTS):
                t = time.time()
                post(port)
                lat.append((time.time() - t) * 1000)
            # 4 concurrent clients for throughput.
            done = []
            def client():
                for _ in range(REQUESTS // 4):
                    post(port)
                    done.append(1)
            t = time.time()
            threads = [threading.Thread(target=client) for _ in range(4)]
            [th.start() for th in threads]
            [th.join() for th in threads]
            rps4 = len(done) / (time.time() - t)
            loaded = gpu_memory(proc.pid)
            st = status(gateway)[name]
            rows.append(name)
            say(f"{name}: device {st['device']}, state {st['state']}, {len(first)} shapes in the first answer")
            say(f"  first request (load + CUDA/cuDNN init + first run): {cold:.0f} ms")
            say(f"  1 client: p50 {quantile(lat, 0.5):.2f} ms, p99 {quantile(lat, 0.99):.2f} ms, {1000 / (sum(lat) / len(lat)):.1f} req/s; 4 clients: {rps4:.1f} req/s")
            say(f"  GPU memory loaded: device {loaded[0]} MiB, host process {loaded[1]} MiB; RSS {rss_mib(proc.pid):.0f} MiB")
        for cycle in (1, 2):
            ok = all(wait_state(gateway, n, "unloaded", IDLE + 10) for n in rows)
            time.sleep(1)
            after = gpu_memory(proc.pid)
            say(f"\n== after idle unload #{cycle} ({'every instance unloaded' if ok else 'NOT UNLOADED'}): device {after[0]} MiB, host process {after[1]} MiB; RSS {rss_mib(proc.pid):.0f} MiB")
            if cycle == 1:
                for n in rows:
                    post(ports[n])
                again = gpu_memory(proc.pid)
                say(f"== loaded again: device {again[0]} MiB, host process {again[1]} MiB")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        errors = [l for l in open(os.path.join(root, "host.log")) if " ERROR " in l or " WARN " in l]
        if errors:
            say("\n== host warnings and errors:\n" + "".join(errors[-20:]))
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
