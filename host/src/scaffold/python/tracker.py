"""{{name}}: a tracker component in Python (made by `host new tracker {{name}} --lang python`).

The example follows an object by template matching, with no model. `start` keeps the box's
colours at three sizes (4x4, 12x12 and 24x24 pixels). `track` asks the host for candidate
boxes around the last position (`pixels.crop_frame` resamples all of them natively into one
tensor per call): a dense grid compared at 4x4, where small shifts barely matter, then finer
grids at 12x12 and 24x24 around the best; the box moves to the candidate that differs least.
The state CVAT carries between frames is compact JSON: the box and the patches. For a
learned tracker, load a graph in `init` and run it on the crops instead.

Config keys: `search` (how far to look, in box sizes, 0.5).
"""
import base64
import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.tracker import TrackedShape, TrackResult
from wit_world.imports import pixels, tensor, types

# (patch side, grid half-width, step as a fraction of the previous level's step)
LEVELS = ((4, 10, 1.0), (12, 2, 0.5), (24, 2, 0.5))
SETTINGS = {"search": 0.5}


def spec(side):
    return pixels.TensorSpec(
        width=side, height=side, layout=pixels.Layout.NHWC, channels=pixels.Channels.RGB,
        element=tensor.TensorType.U8, mean=(0.0, 0.0, 0.0), scale=(1.0, 1.0, 1.0),
        pad=(0.0, 0.0, 0.0), filter=pixels.Filter.ANTIALIASED)


def info():
    return types.ModelInfo(labels=[], description="{{name}}: template-matching tracker (Python)",
                           needs=[], input_size=None)


def crops(frame, boxes, side):
    """The `side` x `side` patches of `boxes` (x1, y1, x2, y2), one bytes object per box."""
    regions = [types.Bbox(x1=b[0], y1=b[1], x2=b[2], y2=b[3]) for b in boxes]
    try:
        data = pixels.crop_frame(frame, regions, spec(side)).data()
    except Err as e:
        raise Err(types.Error_Failed(f"crop-frame: {e.value}"))
    size = side * side * 3
    return [data[i * size:(i + 1) * size] for i in range(len(boxes))]


def result(box, patches):
    state = json.dumps({"box": [round(v, 2) for v in box],
                        "patches": [base64.b64encode(p).decode() for p in patches]},
                       separators=(",", ":"))
    return TrackResult(shape=TrackedShape(shape=types.ShapeType.RECTANGLE, points=list(box)),
                       state=state)


class Tracker(exports.Tracker):
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

    def start(self, frame, shape):
        if len(shape.points) < 4:
            raise Err(types.Error_InvalidInput("a rectangle needs 4 numbers"))
        xs, ys = shape.points[0::2], shape.points[1::2]
        box = (min(xs), min(ys), max(xs), max(ys))
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            raise Err(types.Error_InvalidInput("the box is too small to track"))
        return result(box, [crops(frame, [box], side)[0] for side, _, _ in LEVELS])

    def track(self, frame, state):
        try:
            s = json.loads(state)
            box, patches = s["box"], [base64.b64decode(p) for p in s["patches"]]
        except (ValueError, KeyError, TypeError):
            raise Err(types.Error_InvalidInput("not a state this tracker wrote"))
        w, h = box[2] - box[0], box[3] - box[1]
        sx = sy = None
        best = box
        for (side, k, shrink), patch in zip(LEVELS, patches):
            if sx is None:
                sx, sy = SETTINGS["search"] * w / k, SETTINGS["search"] * h / k
            else:
                sx, sy = sx * shrink, sy * shrink
            candidates = [(best[0] + dx * sx, best[1] + dy * sy, best[2] + dx * sx, best[3] + dy * sy)
                          for dy in range(-k, k + 1) for dx in range(-k, k + 1)]
            costs = [sum(abs(a - b) for a, b in zip(c, patch)) for c in crops(frame, candidates, side)]
            best = candidates[costs.index(min(costs))]
        return result(best, patches)
