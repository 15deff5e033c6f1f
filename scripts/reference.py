#!/usr/bin/env python3
"""The reference path the real-model tests compare the host with: each model run the usual
Python way (PIL + numpy + onnxruntime), written here independently of the components.

usage:
  reference.py yolox  MODEL CLASSES_TXT IMAGE   # YOLOX: BGR bytes, top-left letterbox
  reference.py yolov8 MODEL IMAGE               # Ultralytics v8 export: RGB/255, centred letterbox
  reference.py ssd    MODEL LABELS_TXT IMAGE    # TFLite SSD converted by tf2onnx: uint8 NHWC, plain resize
  reference.py sam    ENCODER DECODER IMAGE OUT_PNG X,Y[,label] ...   # label 1 (default) or 0
Detectors print a JSON list of {label, score, box: [x1, y1, x2, y2]} (original pixels,
score >= 0.3, class-wise NMS at IoU 0.45); sam writes the mask to OUT_PNG and prints
{width, height, area, iou}.
"""
import ast
import json
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image

THRESHOLD, IOU = 0.3, 0.45


def session(path):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    return ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])


def nms(dets):
    """Class-wise greedy NMS over [(label, score, [x1, y1, x2, y2])]."""
    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0
    kept = []
    for d in sorted(dets, key=lambda d: -d[1]):
        if all(k[0] != d[0] or iou(k[2], d[2]) <= IOU for k in kept):
            kept.append(d)
    return kept


def letterbox(img, size, top_left, pad):
    """Fit img into size x size keeping the aspect ratio (bilinear); return array, scale, offsets."""
    w, h = img.size
    r = min(size / w, size / h)
    nw, nh = max(1, round(w * r)), max(1, round(h * r))
    canvas = Image.new("RGB", (size, size), (pad, pad, pad))
    ox, oy = (0, 0) if top_left else ((size - nw) // 2, (size - nh) // 2)
    canvas.paste(img.resize((nw, nh), Image.BILINEAR), (ox, oy))
    return np.asarray(canvas, dtype=np.float32), r, ox, oy


def out(dets):
    print(json.dumps([{"label": l, "score": round(float(s), 4), "box": [round(float(v), 2) for v in b]}
                      for l, s, b in nms(dets)]))


def yolox(model, classes, image):
    names = [l.strip() for l in open(classes) if l.strip()]
    s = session(model)
    inp = s.get_inputs()[0]
    size = inp.shape[2]
    img = Image.open(image).convert("RGB")
    arr, r, _, _ = letterbox(img, size, top_left=True, pad=114)
    x = arr[:, :, ::-1].transpose(2, 0, 1)[None].copy()  # BGR, NCHW, 0-255
    pred = s.run(None, {inp.name: x})[0][0]
    grids = []
    for stride in (8, 16, 32):
        g = size // stride
        ys, xs = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
        grids.append(np.stack([xs.ravel(), ys.ravel(), np.full(g * g, stride)], 1))
    grid = np.concatenate(grids).astype(np.float32)
    cx = (pred[:, 0] + grid[:, 0]) * grid[:, 2]
    cy = (pred[:, 1] + grid[:, 1]) * grid[:, 2]
    bw, bh = np.exp(pred[:, 2]) * grid[:, 2], np.exp(pred[:, 3]) * grid[:, 2]
    scores = pred[:, 4:5] * pred[:, 5:]
    dets = []
    for i in np.where(scores.max(1) >= THRESHOLD)[0]:
        c = int(scores[i].argmax())
        box = [(cx[i] - bw[i] / 2) / r, (cy[i] - bh[i] / 2) / r, (cx[i] + bw[i] / 2) / r, (cy[i] + bh[i] / 2) / r]
        dets.append((names[c], scores[i, c], clip(box, img.size)))
    out(dets)


def yolov8(model, image):
    s = session(model)
    names = ast.literal_eval(s.get_modelmeta().custom_metadata_map["names"])
    inp = s.get_inputs()[0]
    size = inp.shape[2]
    img = Image.open(image).convert("RGB")
    arr, r, ox, oy = letterbox(img, size, top_left=False, pad=114)
    x = (arr / 255.0).transpose(2, 0, 1)[None].astype(np.float32)
    pred = s.run(None, {inp.name: x})[0][0].T  # [N, 4 + nc]
    dets = []
    for row in pred[pred[:, 4:].max(1) >= THRESHOLD]:
        c = int(row[4:].argmax())
        cx, cy, w, h = row[:4]
        box = [(cx - w / 2 - ox) / r, (cy - h / 2 - oy) / r, (cx + w / 2 - ox) / r, (cy + h / 2 - oy) / r]
        dets.append((names[c], row[4 + c], clip(box, img.size)))
    out(dets)


def ssd(model, labels, image):
    names = {}
    for line in open(labels):
        if line.strip():
            i, n = line.strip().split(maxsplit=1)
            names[int(i)] = n
    s = session(model)
    inp = s.get_inputs()[0]
    _, h, w, _ = inp.shape
    img = Image.open(image).convert("RGB")
    x = np.asarray(img.resize((w, h), Image.BILINEAR), dtype=np.uint8)[None]
    outs = {o.name: v for o, v in zip(s.get_outputs(), s.run(None, {inp.name: x}))}
    boxes, classes, scores, count = ssd_outputs(outs)
    W, H = img.size
    dets = []
    for i in range(int(count)):
        if scores[i] >= THRESHOLD and int(classes[i]) in names:
            y1, x1, y2, x2 = boxes[i]
            dets.append((names[int(classes[i])], scores[i], clip([x1 * W, y1 * H, x2 * W, y2 * H], img.size)))
    out(dets)


def ssd_outputs(outs):
    """TFLite_Detection_PostProcess's four outputs, in its documented order: boxes [1,N,4]
    (ymin, xmin, ymax, xmax in [0, 1]), classes [1,N], scores [1,N], count [1]."""
    boxes, classes, scores, count = outs.values()
    return boxes[0], classes[0], scores[0], count.ravel()[0]


def clip(box, size):
    w, h = size
    return [min(max(box[0], 0), w), min(max(box[1], 0), h), min(max(box[2], 0), w), min(max(box[3], 0), h)]


def sam(encoder, decoder, image, out_png, *clicks):
    enc, dec = session(encoder), session(decoder)
    img = Image.open(image).convert("RGB")
    w, h = img.size
    size = enc.get_inputs()[0].shape[2]
    r = size / max(w, h)
    nw, nh = int(w * r + 0.5), int(h * r + 0.5)
    arr = np.asarray(img.resize((nw, nh), Image.BILINEAR), dtype=np.float32)
    arr = (arr - [123.675, 116.28, 103.53]) / [58.395, 57.12, 57.375]
    x = np.zeros((1, 3, size, size), np.float32)
    x[0, :, :nh, :nw] = arr.transpose(2, 0, 1)
    emb = enc.run(None, {enc.get_inputs()[0].name: x})[0]
    pts, labels = [], []
    for c in clicks:
        p = [float(v) for v in c.split(",")]
        pts.append([p[0] * nw / w, p[1] * nh / h])
        labels.append(p[2] if len(p) > 2 else 1.0)
    pts.append([0.0, 0.0])
    labels.append(-1.0)
    feeds = {"image_embeddings": emb, "point_coords": np.array([pts], np.float32),
             "point_labels": np.array([labels], np.float32),
             "mask_input": np.zeros((1, 1, 256, 256), np.float32),
             "has_mask_input": np.zeros(1, np.float32), "orig_im_size": np.array([h, w], np.float32)}
    masks, ious = dec.run(["masks", "iou_predictions"], feeds)[:2]
    best = int(ious[0].argmax())
    mask = masks[0, best] > 0.0
    Image.fromarray((mask * 255).astype(np.uint8)).save(out_png)
    print(json.dumps({"width": w, "height": h, "area": int(mask.sum()), "iou": float(ious[0, best])}))


if __name__ == "__main__":
    commands = {"yolox": (yolox, 3), "yolov8": (yolov8, 2), "ssd": (ssd, 3), "sam": (sam, None)}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    f, n = commands[sys.argv[1]]
    if n is not None and len(sys.argv) != n + 2:
        sys.exit(__doc__)
    f(*sys.argv[2:])
