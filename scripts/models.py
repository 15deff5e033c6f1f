#!/usr/bin/env python3
"""Build the models and images the host serves and tests with. Nothing here downloads
from anywhere but PyPI (via pip, run by setup.sh); everything is derived locally.

usage:
  models.py default  WHEELS_DIR OUT_DIR   # MediaPipe BlazeFace -> OUT_DIR/face_detection_short_range.onnx
  models.py fixtures WHEELS_DIR OUT_DIR   # synthetic YOLO test graphs and test images
"""
import io
import os
import sys
import tempfile
import zipfile

import numpy as np


def wheel(wheels, prefix):
    for name in sorted(os.listdir(wheels)):
        if name.startswith(prefix) and name.endswith(".whl"):
            return os.path.join(wheels, name)
    sys.exit(f"no {prefix}*.whl in {wheels}; run scripts/setup.sh")


def default_models(wheels, out):
    """Convert MediaPipe's short-range BlazeFace (Apache-2.0) from the mediapipe wheel."""
    os.makedirs(out, exist_ok=True)
    dst = os.path.join(out, "face_detection_short_range.onnx")
    with zipfile.ZipFile(wheel(wheels, "mediapipe-0.10.21")) as z:
        tfl = z.read("mediapipe/modules/face_detection/face_detection_short_range.tflite")
        lic = [n for n in z.namelist() if n.endswith(".dist-info/LICENSE")]
        with open(os.path.join(out, "LICENSE.mediapipe"), "wb") as f:
            f.write(z.read(lic[0]))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "face_detection_short_range.tflite")
        with open(src, "wb") as f:
            f.write(tfl)
        import tflite2onnx
        tflite2onnx.convert(src, dst + ".tmp")
    os.replace(dst + ".tmp", dst)
    print(f"wrote {dst} ({os.path.getsize(dst)} bytes)")


# ---------------------------------------------------------------------------------------
# Synthetic YOLO graphs whose output is an exact function of the input.
#
# Input `images` [1,3,S,S] in [0,1]. Class 0 ("red") covers pixels with R > 0.3 and G, B <
# 0.2; class 1 ("green") pixels with G > 0.3 and R, B < 0.2. For each class the graph emits
# one candidate: the exact pixel bounding box of its pixels (edges on pixel borders, in
# input pixels, centre-xywh) with score = the brightest value of that channel inside it.
# A third candidate repeats class 0 shifted by one pixel with 0.8x the score, so NMS has
# something to suppress. Output v8: [1, 4+2, 3]; v5: [1, 3, 5+2] with objectness 1.
# ---------------------------------------------------------------------------------------
S = 64


def yolo_graph(fmt):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], **attrs))
        return name

    col = np.arange(1, S + 1, dtype=np.float32).reshape(1, 1, 1, S)
    row = col.reshape(1, 1, S, 1)
    const("col", col)
    const("colrev", S + 1 - col)
    const("row", row)
    const("rowrev", S + 1 - row)
    const("hi", [0.3])
    const("lo", [0.2])
    const("half", [0.5])
    const("size", [float(S)])
    const("zero", [0.0])
    if fmt == "v5":
        const("one", [1.0])
    const("shift", [1.0])
    const("decay", [0.8])
    nodes.append(helper.make_node("Split", ["images"], ["r", "g", "b"], axis=1))

    def candidate(tag, on, off1, off2):
        bright = node("Greater", [on, "hi"], f"{tag}_bright")
        d1 = node("Less", [off1, "lo"], f"{tag}_d1")
        d2 = node("Less", [off2, "lo"], f"{tag}_d2")
        m = node("And", [node("And", [bright, d1], f"{tag}_a"), d2], f"{tag}_m")
        mf = node("Cast", [m], f"{tag}_mf", to=TensorProto.FLOAT)

        def rmax(x, name):
            return node("ReduceMax", [x], name, axes=[1, 2, 3], keepdims=0)

        x2 = rmax(node("Mul", [mf, "col"], f"{tag}_xc"), f"{tag}_x2")
        x1 = node("Sub", ["size", rmax(node("Mul", [mf, "colrev"], f"{tag}_xr"), f"{tag}_xrm")], f"{tag}_x1")
        y2 = rmax(node("Mul", [mf, "row"], f"{tag}_yc"), f"{tag}_y2")
        y1 = node("Sub", ["size", rmax(node("Mul", [mf, "rowrev"], f"{tag}_yr"), f"{tag}_yrm")], f"{tag}_y1")
        score = rmax(node("Mul", [mf, on], f"{tag}_sc"), f"{tag}_score")
        cx = node("Mul", [node("Add", [x1, x2], f"{tag}_xs"), "half"], f"{tag}_cx")
        cy = node("Mul", [node("Add", [y1, y2], f"{tag}_ys"), "half"], f"{tag}_cy")
        w = node("Sub", [x2, x1], f"{tag}_w")
        h = node("Sub", [y2, y1], f"{tag}_h")
        return cx, cy, w, h, score

    red = candidate("red", "r", "g", "b")
    green = candidate("green", "g", "r", "b")
    decoy = (node("Add", [red[0], "shift"], "decoy_cx"), red[1], red[2], red[3],
             node("Mul", [red[4], "decay"], "decoy_score"))

    def column(tag, c, cls):
        cx, cy, w, h, score = c
        scores = [score, "zero"] if cls == 0 else ["zero", score]
        parts = [cx, cy, w, h] + (["one"] if fmt == "v5" else []) + scores
        return node("Concat", parts, f"{tag}_col", axis=0)  # [4(+1)+2]

    cols = [column("red", red, 0), column("green", green, 1), column("decoy", decoy, 0)]
    ch = 6 if fmt == "v8" else 7
    stacked = node("Concat", cols, "stacked", axis=0)  # [3*ch], candidate-major
    const("shape", [1, 3, ch])
    inits[-1] = numpy_helper.from_array(np.array([1, 3, ch], dtype=np.int64), "shape")
    rows = node("Reshape", [stacked, "shape"], "rows")  # [1, 3, ch]
    if fmt == "v8":
        nodes.append(helper.make_node("Transpose", [rows], ["output0"], perm=[0, 2, 1]))
        out_shape = [1, ch, 3]
    else:
        nodes.append(helper.make_node("Identity", [rows], ["output0"]))
        out_shape = [1, 3, ch]

    graph = helper.make_graph(
        nodes, f"yolo_{fmt}_test",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, S, S])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)],
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if fmt == "v5":
        helper.set_model_props(model, {"names": "{0: 'red', 1: 'green'}"})
    onnx.checker.check_model(model, full_check=True)
    return model


def fixtures(wheels, out):
    import onnx
    from PIL import Image

    os.makedirs(out, exist_ok=True)
    for fmt in ("v8", "v5"):
        path = os.path.join(out, f"yolo_{fmt}_test.onnx")
        onnx.save(yolo_graph(fmt), path)
        print(f"wrote {path}")
    with zipfile.ZipFile(wheel(wheels, "scikit_image")) as z:
        png = z.read("skimage/data/astronaut.png")
    with open(os.path.join(out, "astronaut.png"), "wb") as f:
        f.write(png)
    astro = Image.open(io.BytesIO(png)).convert("RGB")
    astro.save(os.path.join(out, "astronaut.jpg"), quality=92)
    # A 1920x1080 JPEG for benchmarks: the astronaut scaled to full height on a grey canvas.
    canvas = Image.new("RGB", (1920, 1080), (90, 90, 90))
    canvas.paste(astro.resize((1080, 1080), Image.BILINEAR), (420, 0))
    canvas.save(os.path.join(out, "frame_1080p.jpg"), quality=90)
    print(f"wrote images to {out}")


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("default", "fixtures"):
        sys.exit(__doc__)
    {"default": default_models, "fixtures": fixtures}[sys.argv[1]](sys.argv[2], sys.argv[3])
