"""Fetch the model files no registry serves, from their publishers (models/manifest.json).

A file is downloaded next to its destination as a hidden `.part` file, its size and SHA-256
checked, and only then renamed into place, so an instance never loads a partial or
unverified file. An interrupted download resumes (HTTP Range) on the next attempt or run;
a stalled one times out and is retried. Sources, in order:

  1. MODELS_MIRROR, when set: a folder, or a base URL, holding the files by their manifest
     `file` names (it replaces the publishers' URLs);
  2. ../shared/models beside the project, when it exists (this project's own machines);
  3. the publisher's URL.

Standard library only. Used by `scripts/models.py fetch` (and so by scripts/setup.sh).
"""
import hashlib
import json
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(ROOT, "models", "manifest.json")
CHUNK = 1 << 16


class FetchError(Exception):
    """A file could not be fetched and verified (the message says why and from where)."""


def load_manifest(path=MANIFEST):
    with open(path) as f:
        return json.load(f)["models"]


def say(msg):
    print(f"[fetch] {msg}", file=sys.stderr, flush=True)


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verified(path, entry):
    """Whether `path` is exactly the manifest's file (size, then SHA-256)."""
    return (os.path.isfile(path) and os.path.getsize(path) == entry["size"]
            and sha256_of(path) == entry["sha256"])


def sources(entry, mirror=None, shared=None):
    """Where to look, in order: (label, location) with location a path or an http(s) URL."""
    if mirror:
        base = mirror.rstrip("/")
        if base.startswith(("http://", "https://")):
            return [("MODELS_MIRROR", f"{base}/{urllib.parse.quote(entry['file'])}")]
        return [("MODELS_MIRROR", os.path.join(base, entry["file"]))]
    out = []
    if shared and os.path.isfile(os.path.join(shared, entry["file"])):
        out.append(("../shared/models", os.path.join(shared, entry["file"])))
    out.append(("publisher", entry["url"]))
    return out


class Progress:
    """One progress line: rewritten in place on a terminal, else a line per quarter."""

    def __init__(self, name, total):
        self.name, self.total, self.shown = name, total, -1
        self.tty = sys.stderr.isatty()

    def update(self, done):
        pct = 100 * done // max(self.total, 1)
        if self.tty:
            print(f"\r[fetch] {self.name}: {done / 1e6:.1f} / {self.total / 1e6:.1f} MB ({pct}%)",
                  end="", file=sys.stderr, flush=True)
        elif pct // 25 > self.shown:
            self.shown = pct // 25
            say(f"{self.name}: {done / 1e6:.1f} / {self.total / 1e6:.1f} MB ({pct}%)")

    def end(self):
        if self.tty:
            print(file=sys.stderr)


def download(url, part, entry, progress, timeout):
    """Append to `part` from `url`, resuming from its current size with a Range request.
    Raises FetchError (or OSError) on any failure; `part` keeps what arrived."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    if have > entry["size"]:
        os.remove(part)
        have = 0
    req = urllib.request.Request(url, headers={"User-Agent": "cvat-wasm-host-fetch/1"})
    if have:
        req.add_header("Range", f"bytes={have}-")
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have == entry["size"]:
            return  # already complete
        raise FetchError(f"HTTP {e.code} {e.reason}") from None
    with resp:
        if have and resp.status != 206:
            have = 0  # the server ignored the range: start over
        mode = "ab" if have else "wb"
        with open(part, mode) as f:
            done = have
            while True:
                block = resp.read(CHUNK)
                if not block:
                    break
                f.write(block)
                done += len(block)
                if done > entry["size"]:
                    raise FetchError(f"more than the expected {entry['size']} bytes")
                progress.update(done)
    if done < entry["size"]:
        raise FetchError(f"the connection ended after {done} of {entry['size']} bytes")


def fetch_one(name, entry, dest_root, mirror=None, shared=None, attempts=3, timeout=30.0):
    """Put `entry`'s file at dest_root/entry['dest'], verified. Returns the path. Raises
    FetchError naming every source tried and why each failed."""
    dest = os.path.join(dest_root, entry["dest"])
    if verified(dest, entry):
        return dest
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    part = os.path.join(os.path.dirname(dest), f".{os.path.basename(dest)}.{entry['sha256'][:12]}.part")
    failures = []
    for label, where in sources(entry, mirror, shared):
        if not where.startswith(("http://", "https://")):
            if not os.path.isfile(where):
                failures.append(f"{label} {where}: no such file")
                continue
            shutil.copyfile(where, part)
            if verified(part, entry):
                os.replace(part, dest)
                say(f"{name}: copied from {where} (size and SHA-256 checked)")
                return dest
            os.remove(part)
            failures.append(f"{label} {where}: not the pinned file (size or SHA-256 differ)")
            continue
        say(f"{name}: {entry['size'] / 1e6:.1f} MB from {where}")
        for attempt in range(1, attempts + 1):
            progress = Progress(name, entry["size"])
            try:
                download(where, part, entry, progress, timeout)
                error = None
            except (FetchError, OSError) as e:  # timeouts and resets are OSErrors
                error = str(e) or type(e).__name__
            finally:
                progress.end()
            if error is None:
                if verified(part, entry):
                    os.replace(part, dest)
                    say(f"{name}: verified (SHA-256 {entry['sha256'][:16]}...) -> {dest}")
                    return dest
                os.remove(part)  # complete but wrong: never resume from it
                error = "downloaded, but its SHA-256 is not the pinned one"
            say(f"{name}: attempt {attempt} of {attempts} failed: {error}")
            if error.startswith("HTTP 4") or "SHA-256" in error:
                break  # missing, forbidden or other bytes: retrying will not help
            if attempt < attempts:
                time.sleep(min(2 ** attempt, 10) / 10)
        failures.append(f"{label} {where}: {error}")
    raise FetchError(f"{name}: could not fetch {entry['file']}: " + "; ".join(failures))


def after_fetch(entry, path, dest_root):
    """The manifest's `then` step: files derived from the fetched one."""
    step = entry.get("then")
    if not step:
        return
    kind, _, arg = step.partition(":")
    if kind == "coco80":
        import models  # scripts/models.py, beside this file
        models.coco80(None, os.path.join(os.path.dirname(path), "classes.txt"))
    elif kind == "symbolic_hw":
        import models
        models.symbolic_hw(path, os.path.join(dest_root, arg))
    else:
        raise FetchError(f"unknown step `{step}` in the manifest")


def fetch(names, dest_root, manifest=MANIFEST, mirror=None, shared=None, timeout=30.0):
    """Fetch `names` (manifest keys); returns the names that failed, each with its error."""
    entries = load_manifest(manifest)
    failed = []
    for name in names:
        if name not in entries:
            failed.append((name, f"no model `{name}` in {manifest} (known: {', '.join(entries)})"))
            continue
        try:
            path = fetch_one(name, entries[name], dest_root, mirror, shared, timeout=timeout)
            after_fetch(entries[name], path, dest_root)
        except FetchError as e:
            failed.append((name, str(e)))
    return failed
