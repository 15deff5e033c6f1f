#!/usr/bin/env python3
"""The Python BlazeFace component (`host new detector --lang python`) against the Rust one
(components/blazeface), same model, same host, measured in the same run.

usage: bench/python_component.py [RUNS]   (needs scripts/setup.sh and the release build:
                                           `cargo build --release -p host`)

Scaffolds and builds the Python component in a temporary folder, then runs
target/release/host on a root of its own (gateway 8171, ports 5121-5122) three times:
  1. with an empty compile cache: the one-time compile of each component (from the log);
  2. with the cache warm, each instance alone: its first request (instantiate from the
     cache, init, model load, first inference), the host's RSS before and after, and the
     component's linear memory;
  3. the median of RUNS more requests, one client, on scikit-image's astronaut.
"""
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOST = os.path.join(ROOT, "target/release/host")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 50
GATEWAY = 8171
WEIGHTS = "models/face_detection_short_range.onnx"
IMAGE = base64.b64encode(open(os.path.join(ROOT, "tests/fixtures/astronaut.png"), "rb").read()).decode()


def http(port, path="/", body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data,
                                 {"content-type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        answer = json.load(r)
    return (time.perf_counter() - started) * 1000, answer


def run(*args, cwd=None):
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{out.stdout}{out.stderr}")
    return out.stdout


def write_config(root, instances):
    lines = ["settings:", "  bind: 127.0.0.1", f"  gateway_port: {GATEWAY}",
             f"  models_root: {ROOT}", "  backend: onnxruntime", "  ort_threads: 1", "models:"]
    for name, impl, port in instances:
        lines += [f"  {name}:", f"    implementation: {impl}", f"    port: {port}",
                  "    classes: [face]", "    config:", f"      weights: {WEIGHTS}"]
    with open(os.path.join(root, "config/models.yaml"), "w") as f:
        f.write("\n".join(lines) + "\n")


def up(root):
    run(HOST, "--root", root, "up", "-d")


def down(root):
    run(HOST, "--root", root, "down")


def status(name=None):
    _, s = http(GATEWAY, "/api/status")
    if name is None:
        return s
    return next(i for i in s["instances"] if i["name"] == name)


def main():
    if not os.access(HOST, os.X_OK):
        sys.exit("build the release host first: cargo build --release -p host")
    work = tempfile.mkdtemp(prefix="py-bench-")
    try:
        project = os.path.join(work, "pyface")
        run(HOST, "--root", ROOT, "new", "detector", "pyface", "--lang", "python", "--dir", project)
        run(os.path.join(project, "build.sh"))
        root = os.path.join(work, "root")
        os.makedirs(os.path.join(root, "config"))
        os.makedirs(os.path.join(root, "components/pyface"))
        shutil.copy(os.path.join(project, "component.wasm"), os.path.join(root, "components/pyface"))
        os.symlink(os.path.join(ROOT, "components/blazeface"), os.path.join(root, "components/blazeface"))
        sizes = {impl: os.path.getsize(os.path.join(root, "components", impl, "component.wasm"))
                 for impl in ("blazeface", "pyface")}
        instances = [("rust", "blazeface", 5121), ("python", "pyface", 5122)]
        # 1. Cold compile cache: each component compiles once (listing calls describe).
        write_config(root, instances)
        up(root)
        log = os.path.join(root, ".state/host.log")
        deadline = time.time() + 600
        compiled = []
        while time.time() < deadline and len(compiled) < 2:
            text = open(log).read()
            compiled = re.findall(r"compiling a component.*?bytes=(\d+)\n.*?component compiled ms=(\d+)", text, re.S)
            time.sleep(0.5)
        down(root)
        compile_ms = {}
        for nbytes, ms in compiled:
            impl = next(i for i, s in sizes.items() if s == int(nbytes))
            compile_ms[impl] = int(ms)
        # 2-3. Warm cache, one instance at a time.
        results = {}
        for name, impl, port in instances:
            write_config(root, [(name, impl, port)])
            up(root)
            time.sleep(1)
            rss_before = status()["rss_bytes"]
            first, answer = http(port, "/", {"image": IMAGE})
            s = status()
            steady = [http(port, "/", {"image": IMAGE})[0] for _ in range(RUNS)]
            results[name] = {
                "boxes": answer,
                "first": first,
                "steady": statistics.median(steady),
                "p90": statistics.quantiles(steady, n=10)[-1],
                "rss": (s["rss_bytes"] - rss_before) / 2**20,
                "wasm": status(name)["wasm_memory_bytes"] / 2**20,
                "size": sizes[impl] / 1e6,
                "compile": compile_ms.get(impl, float("nan")),
            }
            down(root)
        assert results["rust"]["boxes"] == results["python"]["boxes"], results
        print(f"BlazeFace on the astronaut, {RUNS} requests, one client, same host and model "
              "(answers identical)")
        print(f"{'':28}{'Rust':>10}{'Python':>10}{'Python/Rust':>13}")
        rows = [("component size (MB)", "size", "{:.2f}"),
                ("compile, once (ms)", "compile", "{:.0f}"),
                ("first request (ms)", "first", "{:.1f}"),
                ("steady p50 (ms)", "steady", "{:.2f}"),
                ("steady p90 (ms)", "p90", "{:.2f}"),
                ("linear memory (MiB)", "wasm", "{:.1f}"),
                ("host RSS growth (MiB)", "rss", "{:.1f}")]
        for label, key, fmt in rows:
            r, p = results["rust"][key], results["python"][key]
            ratio = p / r if r else float("nan")
            print(f"{label:28}{fmt.format(r):>10}{fmt.format(p):>10}{ratio:>12.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
