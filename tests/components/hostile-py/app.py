"""A Python detector that misbehaves when asked (the sandbox suite's CPython counterpart of
tests/components/hostile). The request's `threshold` picks the attack:

| threshold | behaviour |
|---|---|
| 0.92 | loops forever (must hit the deadline) |
| 0.93 | allocates until the memory cap stops it |
| 0.95 | returns 20,000 detections (over the host's result cap) |
| 0.96 | opens a TCP connection to the host's gateway (sockets are linked inert) |
| 0.97 | reads /etc/passwd (there is no filesystem to read it from) |
| other | returns one `ok` rectangle over the frame |
"""
# Imported at the top: componentize-py snapshots the modules imported at build time, and the
# component has no filesystem to import others from later (socket needs the idna codec).
import encodings.idna  # noqa: F401
import socket

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types

RECT = types.ShapeType.RECTANGLE


def info():
    return types.ModelInfo(labels=[], description="misbehaves on request", needs=[],
                           input_size=None)


def box(label, w, h):
    return types.Detection(label=label, confidence=1.0, shape=RECT, points=[0.0, 0.0, w, h],
                           mask=None, rotation=None, attributes=[], elements=[])


class Detector(exports.Detector):
    def describe(self, cfg):
        return info()

    def init(self, cfg):
        return info()

    def detect(self, frame, threshold):
        pick = None if threshold is None else round(threshold * 100)
        w, h = float(frame.width()), float(frame.height())
        if pick == 92:
            n = 0
            while True:
                n += 1
        if pick == 93:
            hoard = []
            while True:
                hoard.append(bytearray(16 << 20))
        if pick == 95:
            return [box("flood", 1.0, 1.0)] * 20_000
        if pick == 96:
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                    s.connect(("127.0.0.1", 8070))
            except OSError as e:
                raise Err(types.Error_Failed(f"socket refused: {e!r}"))
            raise Err(types.Error_Failed("socket connected"))
        if pick == 97:
            try:
                with open("/etc/passwd") as f:
                    f.read()
            except OSError as e:
                raise Err(types.Error_Failed(f"file refused: {e!r}"))
            raise Err(types.Error_Failed("file read"))
        return [box("ok", w, h)]
