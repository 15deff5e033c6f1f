#!/usr/bin/env python3
"""Tests of the weights fetcher (scripts/weights.py) against a loopback HTTP server that
serves good, truncated, wrong-hash, missing, slow and stalled files, one that ignores Range
requests, and a mirror folder. Nothing here reaches the internet. Run by scripts/test.sh."""
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import weights  # noqa: E402

DATA = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(DATA).hexdigest()


class Handler(http.server.BaseHTTPRequestHandler):
    """Paths: /good, /truncated (the first answer stops halfway; a Range request gets the
    rest), /wrong (other bytes of the right size), /missing (404), /slow (pauses shorter
    than the client's timeout), /stall (a pause longer than it), /norange (ignores Range)."""
    hits = {}

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = self.path.rsplit("/", 1)[-1]
        Handler.hits[path] = Handler.hits.get(path, 0) + 1
        if path.startswith("missing"):
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and not path.startswith("norange"):
            start = int(rng.split("=")[1].rstrip("-"))
        body = DATA if not path.startswith("wrong") else bytes(len(DATA))
        part = body[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(part)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        if path.startswith("truncated") and not start:
            self.wfile.write(part[: len(part) // 2])
            self.wfile.flush()
            self.connection.close()
            return
        if path.startswith("norange") and Handler.hits[path] == 1:
            self.wfile.write(part[: len(part) // 3])
            self.connection.close()
            return
        step = len(part) // 4
        for i in range(0, len(part), step):
            self.wfile.write(part[i:i + step])
            self.wfile.flush()
            if path.startswith("slow"):
                time.sleep(0.3)
            if path.startswith("stall"):
                time.sleep(3)


class FetchTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.base = f"http://127.0.0.1:{cls.server.server_address[1]}"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="fetch-test-")
        self.dest = os.path.join(self.dir, "models")
        Handler.hits.clear()

    def tearDown(self):
        shutil.rmtree(self.dir)

    def entry(self, name, sha=SHA, size=len(DATA)):
        return {"file": f"{name}.onnx", "url": f"{self.base}/{name}", "size": size,
                "sha256": sha, "dest": f"{name}/{name}.onnx"}

    def fetch(self, name, timeout=2.0, **kw):
        return weights.fetch_one(name, self.entry(name, **kw), self.dest, timeout=timeout)

    def leftovers(self, name):
        folder = os.path.join(self.dest, name)
        return sorted(os.listdir(folder)) if os.path.isdir(folder) else []

    def test_good_file_lands_verified_and_is_not_fetched_twice(self):
        path = self.fetch("good")
        self.assertEqual(open(path, "rb").read(), DATA)
        self.assertEqual(self.leftovers("good"), ["good.onnx"])
        self.fetch("good")
        self.assertEqual(Handler.hits["good"], 1, "a verified file is kept")

    def test_truncated_download_resumes_with_a_range_request(self):
        path = self.fetch("truncated")
        self.assertEqual(open(path, "rb").read(), DATA)
        self.assertEqual(Handler.hits["truncated"], 2)
        self.assertEqual(self.leftovers("truncated"), ["truncated.onnx"])

    def test_a_server_ignoring_range_restarts_the_file(self):
        path = self.fetch("norange")
        self.assertEqual(open(path, "rb").read(), DATA)

    def test_wrong_hash_never_reaches_the_destination(self):
        with self.assertRaises(weights.FetchError) as e:
            self.fetch("wrong")
        self.assertIn("SHA-256", str(e.exception))
        self.assertEqual(self.leftovers("wrong"), [], "no partial or unverified file is left")

    def test_missing_file_fails_at_once_naming_the_url(self):
        with self.assertRaises(weights.FetchError) as e:
            self.fetch("missing")
        self.assertIn("HTTP 404", str(e.exception))
        self.assertIn(f"{self.base}/missing", str(e.exception))
        self.assertEqual(Handler.hits["missing"], 1, "a 404 is not retried")
        self.assertFalse(os.path.exists(os.path.join(self.dest, "missing/missing.onnx")))

    def test_slow_but_steady_download_completes(self):
        path = self.fetch("slow", timeout=2.0)
        self.assertEqual(open(path, "rb").read(), DATA)

    def test_stalled_download_times_out_and_leaves_nothing_loadable(self):
        started = time.time()
        with self.assertRaises(weights.FetchError) as e:
            self.fetch("stall", timeout=1.0)
        self.assertLess(time.time() - started, 20)
        self.assertIn("timed out", str(e.exception))
        self.assertNotIn("stall.onnx", self.leftovers("stall"))

    def test_a_mirror_folder_replaces_the_url(self):
        mirror = os.path.join(self.dir, "mirror")
        os.makedirs(mirror)
        with open(os.path.join(mirror, "good.onnx"), "wb") as f:
            f.write(DATA)
        path = weights.fetch_one("good", self.entry("good"), self.dest, mirror=mirror)
        self.assertEqual(open(path, "rb").read(), DATA)
        self.assertNotIn("good", Handler.hits, "the URL was not used")
        # A mirror holding other bytes is refused.
        with open(os.path.join(mirror, "wrong.onnx"), "wb") as f:
            f.write(DATA[:-1] + b"x")
        with self.assertRaises(weights.FetchError):
            weights.fetch_one("wrong", self.entry("wrong"), self.dest, mirror=mirror)
        self.assertEqual(self.leftovers("wrong"), [])

    def test_a_mirror_url_replaces_the_publishers(self):
        entry = dict(self.entry("good"), url="https://publisher.invalid/x.onnx", file="good")
        path = weights.fetch_one("good", entry, self.dest, mirror=self.base + "/")
        self.assertEqual(open(path, "rb").read(), DATA)

    def test_the_command_line_exits_non_zero_and_names_the_failure(self):
        manifest = os.path.join(self.dir, "manifest.json")
        with open(manifest, "w") as f:
            json.dump({"models": {"missing": self.entry("missing")}}, f)
        p = subprocess.run([sys.executable, os.path.join(weights.ROOT, "scripts/models.py"), "fetch",
                            "missing", "--dest", self.dest, "--manifest", manifest],
                           capture_output=True, text=True, env=dict(os.environ, MODELS_MIRROR=""))
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("error: missing: could not fetch", p.stderr)

    def test_the_real_manifest_pins_every_file(self):
        for name, e in weights.load_manifest().items():
            self.assertRegex(e["sha256"], "^[0-9a-f]{64}$", name)
            self.assertGreater(e["size"], 0, name)
            self.assertTrue(e["url"].startswith("https://"), name)
            self.assertFalse(os.path.isabs(e["dest"]) or ".." in e["dest"], name)


if __name__ == "__main__":
    unittest.main(verbosity=2)
