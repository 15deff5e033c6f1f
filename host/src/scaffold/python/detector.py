"""{{name}}: a detector component in Python (made by `host new detector {{name}} --lang python`).

The example is MediaPipe's BlazeFace face detector. The host does the pixel work
(`pixels.fit_frame` letterboxes the frame into the model's input tensor natively) and runs
the model (`wasi:nn`); this code decodes the model's 896 anchors into boxes: sigmoid scores,
offsets from the anchors, weighted NMS, and the mapping back to frame pixels. For your own
model, keep the shape of the class (describe, init, detect) and replace the decoding.

Config keys: `weights` (the model file, required), `threshold` (0.5), `iou_threshold` (0.3).
The contract is in wit/cvat-model.wit; ./build.sh makes component.wasm, ./smoke_test.py runs it
in the host.
"""
import array
import math

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import graph, graphs, pixels, tensor, types

STRIDES = (8, 16, 16, 16)
RECTANGLE = types.ShapeType.RECTANGLE


def anchors(w, h):
    """MediaPipe's SSD anchors: one grid per stride, 2 per layer per cell, offset 0.5."""
    out, layer = [], 0
    while layer < len(STRIDES):
        stride, per_cell = STRIDES[layer], 0
        while layer < len(STRIDES) and STRIDES[layer] == stride:
            per_cell, layer = per_cell + 2, layer + 1
        gw, gh = -(-w // stride), -(-h // stride)
        for y in range(gh):
            for x in range(gw):
                out += [((x + 0.5) / gw, (y + 0.5) / gh)] * per_cell
    return out


def config(cfg, key, default):
    for entry in cfg.config:
        if entry.key == key:
            return entry.value
    return default


def info(label, size=None):
    return types.ModelInfo(
        labels=[types.Label(id=0, name=label, shape=RECTANGLE, attributes=[], sublabels=[], svg=None)],
        description="{{name}}: BlazeFace face detector (a Python component)",
        needs=["weights"],
        input_size=size,
    )


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def weighted_nms(boxes, threshold):
    """Each kept box is the score-weighted mean of the boxes it suppresses."""
    boxes = sorted(boxes, key=lambda b: -b[4])
    out = []
    while boxes:
        best = boxes[0]
        group = [b for b in boxes if iou(best, b) > threshold]
        boxes = [b for b in boxes if iou(best, b) <= threshold]
        total = sum(b[4] for b in group)
        out.append([sum(b[i] * b[4] for b in group) / total for i in range(4)] + [best[4]])
    return out


STATE = {}


class Detector(exports.Detector):
    def describe(self, cfg):
        return info(cfg.labels[0].name if cfg.labels else "face")

    def init(self, cfg):
        try:
            sig = graphs.signature("weights")
            ctx = graph.load_by_name("weights").init_execution_context()
        except Exception as e:
            raise Err(types.Error_InvalidConfig(f"weights: {e}"))
        dims = sig.inputs[0].dims
        nchw = dims[1] == 3
        h, w = (dims[2], dims[3]) if nchw else (dims[1], dims[2])
        STATE.update(
            ctx=ctx,
            input=sig.inputs[0].name,
            size=(w, h),
            anchors=anchors(w, h),
            label=cfg.labels[0].name if cfg.labels else "face",
            threshold=float(config(cfg, "threshold", 0.5)),
            iou=float(config(cfg, "iou_threshold", 0.3)),
            spec=pixels.TensorSpec(
                width=w, height=h,
                layout=pixels.Layout.NCHW if nchw else pixels.Layout.NHWC,
                channels=pixels.Channels.RGB,
                element=tensor.TensorType.FP32,
                # [-1, 1]: (byte - 127.5) / 127.5; letterbox padding black.
                mean=(127.5, 127.5, 127.5), scale=(1 / 127.5,) * 3, pad=(0.0, 0.0, 0.0),
                filter=pixels.Filter.BILINEAR,
            ),
        )
        return info(STATE["label"], (w, h))

    def detect(self, frame, threshold):
        st = STATE
        t, m = pixels.fit_frame(frame, pixels.Fit.LETTERBOX_CENTRE, st["spec"])
        n = len(st["anchors"])
        regressors = scores = None
        for _, out in st["ctx"].compute([(st["input"], t)]):
            values = array.array("f", out.data())
            if len(values) == n * 16:
                regressors = values
            elif len(values) == n:
                scores = values
        if regressors is None or scores is None:
            raise Err(types.Error_Failed(f"expected outputs [1, {n}, 16] and [1, {n}, 1]"))
        threshold = st["threshold"] if threshold is None else threshold
        (iw, ih), boxes = st["size"], []
        for i, (ax, ay) in enumerate(st["anchors"]):
            score = 1.0 / (1.0 + math.exp(-max(-100.0, min(100.0, scores[i]))))
            if score < threshold:
                continue
            r = regressors[i * 16:i * 16 + 4]
            cx, cy = r[0] + ax * iw, r[1] + ay * ih
            boxes.append([cx - r[2] / 2, cy - r[3] / 2, cx + r[2] / 2, cy + r[3] / 2, score])
        fw, fh = frame.width(), frame.height()
        result = []
        for b in weighted_nms(boxes, st["iou"]):
            x1 = min(max((b[0] - m.offset_x) / m.scale_x, 0.0), fw)
            y1 = min(max((b[1] - m.offset_y) / m.scale_y, 0.0), fh)
            x2 = min(max((b[2] - m.offset_x) / m.scale_x, 0.0), fw)
            y2 = min(max((b[3] - m.offset_y) / m.scale_y, 0.0), fh)
            if x2 > x1 and y2 > y1:
                result.append(types.Detection(
                    label=st["label"], confidence=b[4], shape=RECTANGLE, points=[x1, y1, x2, y2],
                    mask=None, rotation=None, attributes=[], elements=[]))
        return result
