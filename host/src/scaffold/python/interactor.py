"""{{name}}: an interactor component in Python (made by `host new interactor {{name}} --lang python`).

The example segments by colour, with no model: around the first positive click (or inside
the box, when one was drawn) it grows the region of pixels whose colour is close to the
clicked one, and leaves out pixels closer in colour to a negative click. The window comes
from the host (`pixels.crop_frame`, pixel for pixel); the answer is a mask the host turns
into CVAT's RLE. For a learned segmenter (SAM and its kin), run an encoder and a decoder
graph instead.

Config keys: `tolerance` (colour distance, 0-441, default 40), `window` (pixels, 256).
"""
from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.interactor import Proposal
from wit_world.imports import pixels, tensor, types

SETTINGS = {"tolerance": 40.0, "window": 256}


def info():
    return types.ModelInfo(labels=[], description="{{name}}: colour-region interactor (Python)",
                           needs=[], input_size=None)


def rgb_at(data, width, x, y):
    i = (y * width + x) * 3
    return data[i], data[i + 1], data[i + 2]


def distance(a, b):
    return ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2 + (a[2] - b[2]) ** 2) ** 0.5


class Interactor(exports.Interactor):
    def describe(self, cfg):
        return info()

    def init(self, cfg):
        for entry in cfg.config:
            if entry.key in SETTINGS:
                try:
                    SETTINGS[entry.key] = type(SETTINGS[entry.key])(entry.value)
                except ValueError:
                    raise Err(types.Error_InvalidConfig(f"{entry.key}: not a number: {entry.value}"))
        return info()

    def interact(self, frame, prompt):
        if not prompt.positive:
            raise Err(types.Error_InvalidInput("needs a positive click"))
        fw, fh = frame.width(), frame.height()
        click = prompt.positive[0]
        cx, cy = min(max(int(click.x), 0), fw - 1), min(max(int(click.y), 0), fh - 1)
        if prompt.bbox is not None:
            b = prompt.bbox
            x1, y1, x2, y2 = int(b.x1), int(b.y1), int(b.x2) + 1, int(b.y2) + 1
        else:
            half = SETTINGS["window"] // 2
            x1, y1, x2, y2 = cx - half, cy - half, cx + half, cy + half
        x1, y1 = max(x1, 0), max(y1, 0)
        x2, y2 = min(x2, fw), min(y2, fh)
        w, h = x2 - x1, y2 - y1
        if not (x1 <= cx < x2 and y1 <= cy < y2):
            raise Err(types.Error_InvalidInput("the click lies outside the box"))
        spec = pixels.TensorSpec(
            width=w, height=h, layout=pixels.Layout.NHWC, channels=pixels.Channels.RGB,
            element=tensor.TensorType.U8, mean=(0.0, 0.0, 0.0), scale=(1.0, 1.0, 1.0),
            pad=(0.0, 0.0, 0.0), filter=pixels.Filter.BILINEAR)
        region = types.Bbox(x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y2))
        try:
            data = pixels.crop_frame(frame, [region], spec).data()
        except Err as e:
            raise Err(types.Error_Failed(f"crop-frame: {e.value}"))
        seed = rgb_at(data, w, cx - x1, cy - y1)
        avoid = [rgb_at(data, w, int(p.x) - x1, int(p.y) - y1) for p in prompt.negative
                 if x1 <= p.x < x2 and y1 <= p.y < y2]
        tolerance = SETTINGS["tolerance"]

        def inside(x, y):
            c = rgb_at(data, w, x, y)
            d = distance(c, seed)
            return d <= tolerance and all(distance(c, a) > d for a in avoid)

        bitmap = bytearray(w * h)
        stack = [(cx - x1, cy - y1)]
        bitmap[(cy - y1) * w + cx - x1] = 1
        while stack:
            x, y = stack.pop()
            for nx, ny in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if 0 <= nx < w and 0 <= ny < h and not bitmap[ny * w + nx] and inside(nx, ny):
                    bitmap[ny * w + nx] = 1
                    stack.append((nx, ny))
        mask = types.Mask(x1=x1, y1=y1, x2=x2 - 1, y2=y2 - 1, bitmap=bytes(bitmap))
        return [Proposal(mask=mask, confidence=1.0)]
