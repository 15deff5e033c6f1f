"""What a CVAT user typically writes today: a Python handler per model (base64 -> PIL ->
numpy -> onnxruntime -> JSON), here served by FastAPI + uvicorn, for the comparison in
bench/compare.py. It answers the same CVAT detector payload as the host.

usage: python python_server.py MODEL PORT      MODEL = blazeface | yolo | yolox (path in env MODEL_PATH)

HANDLER=async (default) serves an `async def` handler, which decodes and infers on the event loop;
HANDLER=def a plain `def` one, which FastAPI runs in its thread pool (requests overlap: the
strongest simple setup).
"""
import base64
import io
import os
import sys

import numpy as np
import onnxruntime as ort
import uvicorn
from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image

KIND, PORT = sys.argv[1], int(sys.argv[2])
opts = ort.SessionOptions()
opts.intra_op_num_threads = int(os.environ.get("ORT_THREADS", "2"))
session = ort.InferenceSession(os.environ["MODEL_PATH"], opts, providers=["CPUExecutionProvider"])
inp = session.get_inputs()[0]
app = FastAPI()


def letterbox(img, size, pad, top_left=False):
    w, h = img.size
    s = min(size / w, size / h)
    nw, nh = round(w * s), round(h * s)
    canvas = Image.new("RGB", (size, size), (pad, pad, pad))
    px, py = (0, 0) if top_left else ((size - nw) // 2, (size - nh) // 2)
    canvas.paste(img.resize((nw, nh), Image.BILINEAR), (px, py))
    return np.asarray(canvas, dtype=np.float32), s, px, py


def iou(b, others):
    x1 = np.maximum(b[0], others[:, 0]); y1 = np.maximum(b[1], others[:, 1])
    x2 = np.minimum(b[2], others[:, 2]); y2 = np.minimum(b[3], others[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda a: (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    return inter / (area(b) + area(others) - inter + 1e-9)


def nms(boxes, scores, thr):
    order, keep = np.argsort(-scores), []
    while order.size:
        i = order[0]
        keep.append(i)
        order = order[1:][iou(boxes[i], boxes[order[1:]]) <= thr]
    return keep


def anchors(size=128):
    out = []
    for stride, per in ((8, 2), (16, 6)):
        g = size // stride
        for y in range(g):
            for x in range(g):
                out += [((x + 0.5) / g, (y + 0.5) / g)] * per
    return np.array(out, dtype=np.float32)


ANCHORS = anchors()


def yolox_grid(size):
    cells = []
    for stride in (8, 16, 32):
        g = size // stride
        ys, xs = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
        cells.append(np.stack([xs.ravel(), ys.ravel(), np.full(g * g, stride)], 1))
    return np.concatenate(cells).astype(np.float32)


GRID = yolox_grid(inp.shape[2]) if KIND == "yolox" else None


def detect(img, threshold):
    w, h = img.size
    if KIND == "yolox":
        size = inp.shape[2]
        arr, s, px, py = letterbox(img, size, 114, top_left=True)
        x = np.ascontiguousarray(arr[:, :, ::-1].transpose(2, 0, 1)[None])  # BGR bytes
        out = session.run(None, {inp.name: x})[0][0]  # [N, 5+nc]
        scores = out[:, 4:5] * out[:, 5:]
        cls = scores.argmax(1); sc = scores.max(1)
        m = sc >= threshold
        o, g, sc, c = out[m], GRID[m], sc[m], cls[m]
        cx, cy = (o[:, 0] + g[:, 0]) * g[:, 2], (o[:, 1] + g[:, 1]) * g[:, 2]
        bw, bh = np.exp(o[:, 2]) * g[:, 2], np.exp(o[:, 3]) * g[:, 2]
        xyxy = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
        keep = []
        for k in np.unique(c):
            idx = np.where(c == k)[0]
            keep += [idx[i] for i in nms(xyxy[idx], sc[idx], 0.45)]
        labels = [f"class_{int(k)}" for k in c]
    elif KIND == "yolo":
        arr, s, px, py = letterbox(img, 640, 114)
        x = (arr / 255.0).transpose(2, 0, 1)[None]
        out = session.run(None, {inp.name: x})[0][0]  # [4+nc, N]
        scores = out[4:].max(0); cls = out[4:].argmax(0)
        m = scores >= threshold
        b, sc, c = out[:4, m].T, scores[m], cls[m]
        xyxy = np.stack([b[:, 0] - b[:, 2] / 2, b[:, 1] - b[:, 3] / 2, b[:, 0] + b[:, 2] / 2, b[:, 1] + b[:, 3] / 2], 1)
        keep = []
        for k in np.unique(c):
            idx = np.where(c == k)[0]
            keep += [idx[i] for i in nms(xyxy[idx], sc[idx], 0.45)]
        labels = [f"class_{int(k)}" for k in c]
    else:
        arr, s, px, py = letterbox(img, 128, 0)
        x = (arr / 127.5 - 1.0).transpose(2, 0, 1)[None]
        reg, cls = session.run(None, {inp.name: x})
        sc = 1 / (1 + np.exp(-np.clip(cls[0, :, 0], -100, 100)))
        m = sc >= threshold
        r, a, sc = reg[0][m], ANCHORS[m], sc[m]
        cx, cy = r[:, 0] + a[:, 0] * 128, r[:, 1] + a[:, 1] * 128
        xyxy = np.stack([cx - r[:, 2] / 2, cy - r[:, 3] / 2, cx + r[:, 2] / 2, cy + r[:, 3] / 2], 1)
        keep = nms(xyxy, sc, 0.3)
        labels = ["face"] * len(sc)
    res = []
    for i in keep:
        x1, y1, x2, y2 = (xyxy[i] - [px, py, px, py]) / s
        res.append({"label": labels[i], "type": "rectangle", "confidence": str(round(float(sc[i]), 4)),
                    "points": [float(np.clip(x1, 0, w)), float(np.clip(y1, 0, h)), float(np.clip(x2, 0, w)), float(np.clip(y2, 0, h))]})
    return res


def answer(data):
    img = Image.open(io.BytesIO(base64.b64decode(data["image"]))).convert("RGB")
    return JSONResponse(detect(img, float(data.get("threshold", 0.5))))


if os.environ.get("HANDLER", "async") == "def":
    @app.post("/")
    def handler(data: dict = Body(...)):
        return answer(data)
else:
    @app.post("/")
    async def handler(request: Request):
        return answer(await request.json())


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning")
