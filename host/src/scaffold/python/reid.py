"""{{name}}: a re-identification component in Python (made by `host new reid {{name}} --lang python`).

The example matches boxes across two frames by colour, with no model: each box becomes a
colour histogram (the host crops and resizes all boxes of a frame in one native call,
`pixels.crop_frame`), boxes are compared by cosine distance, and each box of the first frame
takes the closest free box of the second within `threshold` and `max_distance`. For a
learned embedding (OSNet and its kin), run the crops through a graph instead.

Config keys: `threshold` (cosine distance, 0.3), `max_distance` (pixels between centres, 50).
"""
import math

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import pixels, tensor, types

CROP_W, CROP_H, BINS = 16, 32, 4
SPEC = pixels.TensorSpec(
    width=CROP_W, height=CROP_H, layout=pixels.Layout.NHWC, channels=pixels.Channels.RGB,
    element=tensor.TensorType.U8, mean=(0.0, 0.0, 0.0), scale=(1.0, 1.0, 1.0),
    pad=(0.0, 0.0, 0.0), filter=pixels.Filter.ANTIALIASED)
SETTINGS = {"threshold": 0.3, "max_distance": 50.0}


def info():
    return types.ModelInfo(labels=[], description="{{name}}: colour-histogram re-identification (Python)",
                           needs=[], input_size=None)


def embeddings(frame, boxes):
    """One L2-normalised colour histogram per box."""
    if not boxes:
        return []
    try:
        data = pixels.crop_frame(frame, boxes, SPEC).data()
    except Err as e:
        raise Err(types.Error_Failed(f"crop-frame: {e.value}"))
    size, step = CROP_W * CROP_H * 3, 256 // BINS
    out = []
    for i in range(len(boxes)):
        hist = [0.0] * BINS ** 3
        crop = data[i * size:(i + 1) * size]
        for j in range(0, size, 3):
            hist[(crop[j] // step * BINS + crop[j + 1] // step) * BINS + crop[j + 2] // step] += 1
        norm = math.sqrt(sum(v * v for v in hist)) or 1.0
        out.append([v / norm for v in hist])
    return out


def centre(b):
    return (b.x1 + b.x2) / 2, (b.y1 + b.y2) / 2


class Reid(exports.Reid):
    def describe(self, cfg):
        return info()

    def init(self, cfg):
        for entry in cfg.config:
            if entry.key in SETTINGS:
                try:
                    SETTINGS[entry.key] = float(entry.value)
                except ValueError:
                    raise Err(types.Error_InvalidConfig(f"{entry.key}: not a number: {entry.value}"))
        return info()

    def match_boxes(self, frame0, boxes0, frame1, boxes1, threshold, max_distance):
        threshold = SETTINGS["threshold"] if threshold is None else threshold
        max_distance = SETTINGS["max_distance"] if max_distance is None else max_distance
        e0, e1 = embeddings(frame0, boxes0), embeddings(frame1, boxes1)
        pairs = []
        for i, (a, ea) in enumerate(zip(boxes0, e0)):
            for j, (b, eb) in enumerate(zip(boxes1, e1)):
                (ax, ay), (bx, by) = centre(a), centre(b)
                if math.hypot(ax - bx, ay - by) > max_distance:
                    continue
                d = 1.0 - sum(x * y for x, y in zip(ea, eb))
                if d <= threshold:
                    pairs.append((d, i, j))
        matches, taken = [-1] * len(boxes0), set()
        for d, i, j in sorted(pairs):
            if matches[i] == -1 and j not in taken:
                matches[i] = j
                taken.add(j)
        return matches
