"""Synthetic graphs with the inputs, outputs and metadata of today's exports, whose answers
are exact functions of the input, for the tests (scripts/models.py fixtures writes them).

Every detector here sees the same planted objects as models.py's YOLO graphs: on an S x S
input in [0, 1], "red" covers pixels with R > 0.3 and G, B < 0.2, "green" pixels with
G > 0.3 and R, B < 0.2. Each object's box is the exact pixel box of its pixels (input
pixels, edges on pixel borders) and its score the brightest value of its channel there; a
decoy repeats red one pixel to the right with 0.8x the score. Each graph then writes them
the way its exporter does (see each function).
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

S = 64
F, I64 = TensorProto.FLOAT, TensorProto.INT64


class Graph:
    """Nodes and constants, named as they are added."""

    def __init__(self):
        self.nodes, self.inits = [], []

    def const(self, name, value, dtype=np.float32):
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(self, op, inputs, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [name], **attrs))
        return name

    def model(self, name, inputs, outputs, props=None, opset=13):
        used = {i for n in self.nodes for i in n.input}
        inits = [t for t in self.inits if t.name in used]
        g = helper.make_graph(self.nodes, name, inputs, outputs, inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
        m.ir_version = 8
        if props:
            helper.set_model_props(m, props)
        onnx.checker.check_model(m, full_check=True)
        return m


def planted(g, image="images"):
    """The planted objects: {tag: (x1, y1, x2, y2, score, mask)}, each a [1] tensor name
    (mask: the [1, 1, S, S] float mask of its pixels), for red, green and the decoy."""
    col = np.arange(1, S + 1, dtype=np.float32).reshape(1, 1, 1, S)
    g.const("p_col", col)
    g.const("p_colrev", S + 1 - col)
    g.const("p_row", col.reshape(1, 1, S, 1))
    g.const("p_rowrev", S + 1 - col.reshape(1, 1, S, 1))
    g.const("p_hi", [0.3])
    g.const("p_lo", [0.2])
    g.const("p_size", [float(S)])
    g.const("p_shift", [1.0])
    g.const("p_decay", [0.8])
    g.nodes.append(helper.make_node("Split", [image], ["p_r", "p_g", "p_b"], axis=1))
    out = {}
    for tag, on, off1, off2 in (("red", "p_r", "p_g", "p_b"), ("green", "p_g", "p_r", "p_b")):
        n = lambda op, ins, suffix, **kw: g.node(op, ins, f"{tag}_{suffix}", **kw)
        m = n("And", [n("And", [n("Greater", [on, "p_hi"], "bright"), n("Less", [off1, "p_lo"], "d1")], "a"),
                      n("Less", [off2, "p_lo"], "d2")], "m")
        mf = n("Cast", [m], "mf", to=F)
        rmax = lambda x, suffix: n("ReduceMax", [x], suffix, axes=[1, 2, 3], keepdims=0)
        x2 = rmax(n("Mul", [mf, "p_col"], "xc"), "x2")
        x1 = n("Sub", ["p_size", rmax(n("Mul", [mf, "p_colrev"], "xr"), "xrm")], "x1")
        y2 = rmax(n("Mul", [mf, "p_row"], "yc"), "y2")
        y1 = n("Sub", ["p_size", rmax(n("Mul", [mf, "p_rowrev"], "yr"), "yrm")], "y1")
        score = rmax(n("Mul", [mf, on], "sc"), "score")
        out[tag] = (x1, y1, x2, y2, score, mf)
    x1, y1, x2, y2, score, mf = out["red"]
    out["decoy"] = (g.node("Add", [x1, "p_shift"], "decoy_x1"), y1, g.node("Add", [x2, "p_shift"], "decoy_x2"), y2,
                    g.node("Mul", [score, "p_decay"], "decoy_score"), mf)
    return out


def rows(g, name, per_object, pad_to=None):
    """Stack per-object rows (lists of [1] tensors) into [1, n, c], zero-padded to `pad_to` rows."""
    cols = [g.node("Concat", parts, f"{name}_row{i}", axis=0) for i, parts in enumerate(per_object)]
    c = len(per_object[0])
    stacked = g.node("Concat", cols, f"{name}_stacked", axis=0)
    g.const(f"{name}_shape", [1, len(per_object), c], np.int64)
    out = g.node("Reshape", [stacked, f"{name}_shape"], f"{name}_rows")
    if pad_to:
        g.const(f"{name}_pad", np.zeros((1, pad_to - len(per_object), c)))
        out = g.node("Concat", [out, f"{name}_pad"], f"{name}_padded", axis=1)
    return out


def image_input(name="images", batch=1):
    return helper.make_tensor_value_info(name, F, [batch, 3, S, S])


# ---------------------------------------------------------------------------------------
# DETR family: RT-DETR / D-FINE / DEIM (tools/export_onnx.py) and RF-DETR (deploy/export.py).
# ---------------------------------------------------------------------------------------
def rtdetr_graph():
    """Inputs `images` [N,3,S,S] and `orig_target_sizes` int64 [N,2] = (w, h); outputs
    `labels` int64 [1,3] (red 0, green 1, decoy 0), `boxes` [1,3,4] xyxy scaled from input
    pixels to (w, h) as the exported postprocessor does, `scores` [1,3]."""
    g = Graph()
    p = planted(g)
    objects = [p["red"], p["green"], p["decoy"]]
    g.const("inv", [1.0 / S])
    size = g.node("Cast", ["orig_target_sizes"], "size_f", to=F)  # [1, 2]
    scale = g.node("Concat", [size, size], "scale4", axis=1)  # [1, 4] = w h w h
    boxes = rows(g, "b", [[g.node("Mul", [c, "inv"], f"n{i}_{k}") for k, c in enumerate(o[:4])]
                          for i, o in enumerate(objects)])
    g.node("Mul", [boxes, g.node("Unsqueeze", [scale, g.const("ax1", [1], np.int64)], "scale_u")], "boxes")
    g.node("Reshape", [g.node("Concat", [o[4] for o in objects], "sc", axis=0), g.const("s13", [1, 3], np.int64)], "scores")
    g.nodes.append(helper.make_node("Constant", [], ["labels"],
                                    value=numpy_helper.from_array(np.array([[0, 1, 0]], dtype=np.int64))))
    return g.model("rtdetr_test",
                   [image_input("images", "N"), helper.make_tensor_value_info("orig_target_sizes", I64, ["N", 2])],
                   [helper.make_tensor_value_info("labels", I64, [1, 3]),
                    helper.make_tensor_value_info("boxes", F, [1, 3, 4]),
                    helper.make_tensor_value_info("scores", F, [1, 3])], opset=16)


def rfdetr_graph():
    """Input `input` [1,3,S,S]; outputs `dets` [1,3,4] cxcywh normalised and `labels`
    [1,3,3] logits: red is class 1, green class 2 (COCO-style ids from 1), logit = 10 *
    score - 5 on its class and -20 elsewhere; the decoy is class 1."""
    g = Graph()
    p = planted(g, "input")
    g.const("inv", [1.0 / S])
    g.const("half", [0.5])
    g.const("ten", [10.0])
    g.const("five", [5.0])
    g.const("low", [-20.0])
    dets, logits = [], []
    for i, (tag, cls) in enumerate((("red", 1), ("green", 2), ("decoy", 1))):
        x1, y1, x2, y2, score, _ = p[tag]
        cx = g.node("Mul", [g.node("Mul", [g.node("Add", [x1, x2], f"d{i}_xs"), "half"], f"d{i}_cx0"), "inv"], f"d{i}_cx")
        cy = g.node("Mul", [g.node("Mul", [g.node("Add", [y1, y2], f"d{i}_ys"), "half"], f"d{i}_cy0"), "inv"], f"d{i}_cy")
        w = g.node("Mul", [g.node("Sub", [x2, x1], f"d{i}_w0"), "inv"], f"d{i}_w")
        h = g.node("Mul", [g.node("Sub", [y2, y1], f"d{i}_h0"), "inv"], f"d{i}_h")
        dets.append([cx, cy, w, h])
        logit = g.node("Sub", [g.node("Mul", [score, "ten"], f"l{i}_10"), "five"], f"l{i}")
        logits.append([logit if c == cls else "low" for c in range(3)])
    d = rows(g, "dets", dets)
    g.node("Identity", [d], "dets")
    g.node("Identity", [rows(g, "lab", logits)], "labels")
    return g.model("rfdetr_test", [image_input("input")],
                   [helper.make_tensor_value_info("dets", F, [1, 3, 4]),
                    helper.make_tensor_value_info("labels", F, [1, 3, 3])], opset=17)


# ---------------------------------------------------------------------------------------
# SAM2 as samexporter exports it: encoder `image` -> high_res_feats_0, high_res_feats_1,
# image_embed; decoder -> 3 low-resolution masks and their predicted IoUs.
# ---------------------------------------------------------------------------------------
def sam2_graphs():
    """Encoder `image` [1,3,S,S] -> `high_res_feats_0` [1,3,32,32], `high_res_feats_1`
    [1,3,16,16], `image_embed` [1,3,8,8] (average pools). Decoder (samexporter's inputs,
    no orig_im_size) -> `masks` [1,3,S/4,S/4] and `iou_predictions` [1,3] = (0.2, 0.9, 0.1):
    mask 1 (the best) holds 400 - d^2 at each low-resolution cell centre, d the distance in
    input pixels to the nearest positive click (input-pixel coordinates, as SAM2 takes them),
    so it is a disc of radius 20 around each click; masks 0 and 2 are -10 everywhere."""
    enc = Graph()
    for name, k in (("high_res_feats_0", 2), ("high_res_feats_1", 4), ("image_embed", 8)):
        enc.node("AveragePool", ["image"], name, kernel_shape=[k, k], strides=[k, k])
    encoder = enc.model("sam2_encoder_test", [image_input("image")],
                        [helper.make_tensor_value_info("high_res_feats_0", F, [1, 3, 32, 32]),
                         helper.make_tensor_value_info("high_res_feats_1", F, [1, 3, 16, 16]),
                         helper.make_tensor_value_info("image_embed", F, [1, 3, 8, 8])])
    low = S // 4
    g = Graph()
    centres = (np.arange(low, dtype=np.float32) + 0.5) * (S / low)
    g.const("centres", centres)
    g.const("r2", [400.0])
    g.const("neg_big", [-1e9])
    g.const("one", [1.0])
    g.const("zero", [0.0])
    g.const("bad", np.full((1, 1, low, low), -10.0))
    g.const("iou", [[0.2, 0.9, 0.1]])
    for name, v in (("i0", [0]), ("i1", [1]), ("i2", [2]), ("n1", [-1, 1]), ("n11", [-1, 1, 1])):
        g.const(name, v, np.int64)
    px = g.node("Reshape", [g.node("Slice", ["point_coords", "i0", "i1", "i2"], "pxs"), "n1"], "px")  # [N,1]
    py = g.node("Reshape", [g.node("Slice", ["point_coords", "i1", "i2", "i2"], "pys"), "n1"], "py")
    dx = g.node("Sub", ["centres", px], "dx")  # [N, low]
    dy = g.node("Sub", ["centres", py], "dy")
    d2 = g.node("Add", [g.node("Unsqueeze", [g.node("Mul", [dx, dx], "dxx"), "i1"], "dx2"),
                        g.node("Unsqueeze", [g.node("Mul", [dy, dy], "dyy"), "i2"], "dy2")], "d2")  # [N,low,low]
    pos = g.node("Equal", [g.node("Reshape", ["point_labels", "n11"], "lab"), "one"], "is_pos")
    disc = g.node("ReduceMax", [g.node("Where", [pos, g.node("Sub", ["r2", d2], "v"), "neg_big"], "w")],
                  "disc", axes=[0], keepdims=1)  # [1, low, low]
    tie = g.node("Mul", ["zero", g.node("Add", [
        g.node("Add", [g.node("ReduceSum", ["image_embed"], "s0", keepdims=0),
                       g.node("ReduceSum", ["high_res_feats_0"], "s1", keepdims=0)], "s01"),
        g.node("Add", [g.node("Add", [g.node("ReduceSum", ["high_res_feats_1"], "s2", keepdims=0),
                                      g.node("ReduceSum", ["mask_input"], "s3", keepdims=0)], "s23"),
                       g.node("ReduceSum", ["has_mask_input"], "s4", keepdims=0)], "s234")], "sall")], "tie")
    best = g.node("Add", [g.node("Unsqueeze", [disc, "i0"], "disc4"), tie], "best")  # [1,1,low,low]
    g.node("Concat", ["bad", best, "bad"], "masks", axis=1)
    g.node("Identity", ["iou"], "iou_predictions")
    decoder = g.model("sam2_decoder_test",
                      [helper.make_tensor_value_info("image_embed", F, [1, 3, 8, 8]),
                       helper.make_tensor_value_info("high_res_feats_0", F, [1, 3, 32, 32]),
                       helper.make_tensor_value_info("high_res_feats_1", F, [1, 3, 16, 16]),
                       helper.make_tensor_value_info("point_coords", F, ["L", "N", 2]),
                       helper.make_tensor_value_info("point_labels", F, ["L", "N"]),
                       helper.make_tensor_value_info("mask_input", F, ["L", 1, 256, 256]),
                       helper.make_tensor_value_info("has_mask_input", F, ["L"])],
                      [helper.make_tensor_value_info("masks", F, [1, 3, low, low]),
                       helper.make_tensor_value_info("iou_predictions", F, [1, 3])])
    return encoder, decoder


# ---------------------------------------------------------------------------------------
# Ultralytics 8.4 exports: end-to-end rows (YOLO26 / YOLOv10 with nms=False), NMS in the
# graph (nms=True), oriented boxes (raw head and rows), RT-DETR (8.4.50+ and before).
# Metadata as Exporter writes it: every value Python's str() of it.
# ---------------------------------------------------------------------------------------
NAMES = "{0: 'red', 1: 'green'}"


def ultralytics_props(task, head, end2end, nms="False", names=NAMES, **more):
    props = {"description": f"Ultralytics test {head}", "author": "Ultralytics", "version": "8.4.190",
             "stride": "32", "task": task, "head": head, "batch": "1", "imgsz": f"[{S}, {S}]",
             "names": names, "channels": "3", "end2end": end2end,
             "args": f"{{'batch': 1, 'nms': {nms}, 'dynamic': False, 'simplify': True, 'opset': None}}"}
    props.update(more)
    return props


# Each OBB object's angle, radians.
ANGLES = {"red": 0.3, "green": -0.2, "decoy": 0.3}


def centre_xywh(g, tag, o):
    """Centre, width and height of box `o` (uses constant `half`)."""
    x1, y1, x2, y2 = o[:4]
    cx = g.node("Mul", [g.node("Add", [x1, x2], f"{tag}_xs"), "half"], f"{tag}_cx")
    cy = g.node("Mul", [g.node("Add", [y1, y2], f"{tag}_ys"), "half"], f"{tag}_cy")
    return cx, cy, g.node("Sub", [x2, x1], f"{tag}_w"), g.node("Sub", [y2, y1], f"{tag}_h")


def ultralytics_rows(kind):
    """`kind`: e2e (end-to-end detect), nms (NMS in the graph), seg, pose, obb (rows),
    obb_raw (the classic OBB head), rtdetr (8.4.50+ rows), rtdetr_old ([1, K, 4 + nc]).
    Row objects: red (class 0), green (class 1), the decoy (class 0), 300 rows zero-padded;
    the pose graph has one class and red and the decoy, keypoints red's corners."""
    g = Graph()
    p = planted(g)
    tags = ["red", "decoy"] if kind == "pose" else ["red", "green", "decoy"]
    cls = {"red": 0, "green": 1, "decoy": 0}
    g.const("c0", [0.0])
    g.const("c1", [1.0])
    g.const("half", [0.5])
    g.const("kconf", [0.9])
    g.const("inv", [1.0 / S])
    for t, a in ANGLES.items():
        g.const(f"angle_{t}", [a])
    per = []
    for t in tags:
        o = p[t]
        c = f"c{cls[t]}"
        if kind in ("e2e", "nms"):
            per.append([*o[:4], o[4], c])
        elif kind == "seg":
            per.append([*o[:4], o[4], c] + (["c1", "c0"] if cls[t] == 0 else ["c0", "c1"]))
        elif kind == "pose":
            x1, y1, x2, y2 = p["red"][:4]
            per.append([*o[:4], o[4], "c0", x1, y1, "kconf", x2, y2, "kconf"])
        elif kind in ("obb", "obb_raw"):
            per.append([*centre_xywh(g, t, o), o[4], c, f"angle_{t}"])
        elif kind == "rtdetr":
            per.append([g.node("Mul", [v, "inv"], f"{t}_n{i}") for i, v in enumerate(centre_xywh(g, t, o))] + [o[4], c])
        elif kind == "rtdetr_old":
            scores = [o[4], "c0"] if cls[t] == 0 else ["c0", o[4]]
            per.append([g.node("Mul", [v, "inv"], f"{t}_n{i}") for i, v in enumerate(centre_xywh(g, t, o))] + scores)
    outputs = []
    if kind == "obb_raw":
        # [1, 4 + nc + 1, N], channel-major: xywh, class scores, angle.
        chans = [[*r[:4], r[4] if r[5] == "c0" else "c0", r[4] if r[5] == "c1" else "c0", r[6]] for r in per]
        out = rows(g, "o", chans)
        g.node("Transpose", [out], "output0", perm=[0, 2, 1])
        outputs.append(helper.make_tensor_value_info("output0", F, [1, 7, 3]))
    else:
        out = rows(g, "o", per, pad_to=300)
        g.node("Identity", [out], "output0")
        outputs.append(helper.make_tensor_value_info("output0", F, [1, 300, len(per[0])]))
    if kind == "seg":
        g.const("twenty", [20.0])
        g.const("ten", [10.0])
        protos = [g.node("Sub", [g.node("Mul", [g.node("AveragePool", [p[t][5]], f"{t}_pool", kernel_shape=[4, 4], strides=[4, 4]), "twenty"], f"{t}_p20"), "ten"], f"{t}_proto")
                  for t in ("red", "green")]
        g.node("Concat", protos, "output1", axis=1)
        outputs.append(helper.make_tensor_value_info("output1", F, [1, 2, S // 4, S // 4]))
    props = {
        "e2e": ultralytics_props("detect", "Detect", "True"),
        "nms": ultralytics_props("detect", "Detect", "False", nms="True"),
        "seg": ultralytics_props("segment", "Segment26", "True"),
        "pose": ultralytics_props("pose", "Pose26", "True", names="{0: 'red'}", kpt_shape="[2, 3]"),
        "obb": ultralytics_props("obb", "OBB26", "True"),
        "obb_raw": ultralytics_props("obb", "OBB", "False", nms="None"),
        "rtdetr": ultralytics_props("detect", "RTDETRDecoder", "False", nms="None"),
        # Before 8.4.50 (and 8.4.100's `head` key): names and task only.
        "rtdetr_old": {"task": "detect", "names": NAMES, "imgsz": f"[{S}, {S}]", "stride": "32"},
    }[kind]
    return g.model(f"yolo_{kind}_test", [image_input()], outputs, props)


def all_graphs():
    """{file name: model} for every graph here."""
    enc, dec = sam2_graphs()
    graphs = {"rtdetr_test.onnx": rtdetr_graph(), "rfdetr_test.onnx": rfdetr_graph(),
              "sam2_encoder_test.onnx": enc, "sam2_decoder_test.onnx": dec}
    for kind in ("e2e", "nms", "seg", "pose", "obb", "obb_raw", "rtdetr", "rtdetr_old"):
        graphs[f"ultralytics_{kind}_test.onnx"] = ultralytics_rows(kind)
    return graphs
