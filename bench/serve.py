"""The release host on a models.yaml of a bench's own, and HTTP calls to it: what the benches
that drive the host over HTTP share (bench/models.py, memory.py, attack.py,
ultralytics_exports.py)."""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Host:
    """`with Host(gateway, models_lines, settings_lines) as h:` serves the models (YAML lines
    under `models:`) from this checkout's components and models, on loopback; `h.get(path)`
    asks the management port."""

    def __init__(self, gateway, models, settings=()):
        self.gateway, self.models, self.settings = gateway, list(models), list(settings)

    def __enter__(self):
        host = os.path.join(ROOT, "target/release/host")
        if not os.path.exists(host):
            sys.exit("build the release host first: cargo build --release -p host")
        self.tmp = tempfile.TemporaryDirectory()
        lines = ["settings:", f"  gateway_port: {self.gateway}", "  bind: 127.0.0.1", f"  models_root: {ROOT}",
                 f"  components_dir: {ROOT}/components", f"  nuclio_dir: {self.tmp.name}/nuclio"]
        lines += [f"  {s}" for s in self.settings] + ["models:"] + self.models
        cfg = os.path.join(self.tmp.name, "models.yaml")
        open(cfg, "w").write("\n".join(lines) + "\n")
        log = open(os.path.join(self.tmp.name, "host.log"), "w")
        # The project's root: components compiled before come from its cache (.state/cache).
        self.proc = subprocess.Popen([host, "--root", ROOT, "--config", cfg, "up"], stdout=log, stderr=log,
                                     env={**os.environ, "ORT_DYLIB_PATH": os.path.join(ROOT, ".deps/onnxruntime/libonnxruntime.so")})
        for _ in range(600):
            try:
                self.get("/readyz")
                return self
            except Exception:
                time.sleep(0.1)
        self.__exit__()
        sys.exit("the host did not become ready")

    def __exit__(self, *_):
        self.proc.terminate()
        self.proc.wait(30)
        self.tmp.cleanup()

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.gateway}{path}", timeout=60) as r:
            return json.load(r)


def instance(name, implementation, port, config, *extra):
    """The YAML lines of one instance."""
    lines = [f"  {name}:", f"    implementation: {implementation}", f"    port: {port}"]
    lines += [f"    {e}" for e in extra]
    if config:
        lines += ["    config:"] + [f"      {k}: {v}" for k, v in config.items()]
    return lines


def post(port, body):
    """POST `body` as JSON: (status, milliseconds, answer)."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", json.dumps(body).encode(),
                                 {"content-type": "application/json"})
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            status, answer = r.status, json.load(r)
    except urllib.error.HTTPError as e:
        status, answer = e.code, json.load(e)
    return status, (time.perf_counter() - started) * 1000, answer
