"""Rewrite a MediaPipe .tflite so that tf2onnx can convert it.

1. DENSIFY ops (sparse constant weights, in *_sparse / pose_detection models):
   the dense value is read back from the LiteRT interpreter and stored as a
   plain constant buffer; the DENSIFY op is removed.
2. MediaPipe custom op Convolution2DTransposeBias (selfie_segmentation):
   replaced by builtin TRANSPOSE_CONV followed by ADD(bias).

usage: python patch_tflite.py in.tflite out.tflite
"""
import struct
import sys

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from tensorflow.lite.python import schema_py_generated as S
from tensorflow.lite.tools import flatbuffer_utils as fu

NP_OF_TFL = {S.TensorType.FLOAT32: np.float32, S.TensorType.FLOAT16: np.float16,
             S.TensorType.INT8: np.int8, S.TensorType.INT32: np.int32}


def opcode_index(model, builtin):
    for i, oc in enumerate(model.operatorCodes):
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) == builtin and not oc.customCode:
            return i
    oc = S.OperatorCodeT()
    oc.builtinCode = builtin
    oc.deprecatedBuiltinCode = min(builtin, 127)
    oc.version = 1
    model.operatorCodes.append(oc)
    return len(model.operatorCodes) - 1


def new_const(model, sg, name, arr, ttype):
    buf = S.BufferT()
    buf.data = np.frombuffer(arr.tobytes(), dtype=np.uint8)
    model.buffers.append(buf)
    t = S.TensorT()
    t.name = name.encode()
    t.shape = np.array(arr.shape, dtype=np.int32)
    t.type = ttype
    t.buffer = len(model.buffers) - 1
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def op_name(model, op):
    oc = model.operatorCodes[op.opcodeIndex]
    return oc.customCode.decode() if oc.customCode else max(oc.builtinCode, oc.deprecatedBuiltinCode)


def densify(path, model):
    sg = model.subgraphs[0]
    dens = [op for op in sg.operators if op_name(model, op) == S.BuiltinOperator.DENSIFY]
    if not dens:
        return 0
    it = Interpreter(model_path=path, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    it.invoke()
    for op in dens:
        src, dst = int(op.inputs[0]), int(op.outputs[0])
        dense = it.get_tensor(dst)
        t = sg.tensors[dst]
        want = NP_OF_TFL[t.type]
        assert dense.dtype == want and list(dense.shape) == list(t.shape), (dense.dtype, dense.shape, t.shape)
        buf = S.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(dense).tobytes(), dtype=np.uint8)
        model.buffers.append(buf)
        t.buffer = len(model.buffers) - 1
        # drop the now unused sparse tensor's data
        sg.tensors[src].sparsity = None
        model.buffers[sg.tensors[src].buffer].data = None
    sg.operators = [op for op in sg.operators if op not in dens]
    return len(dens)


def transpose_conv_bias(model):
    sg = model.subgraphs[0]
    out_ops, n = [], 0
    for op in sg.operators:
        if op_name(model, op) != 'Convolution2DTransposeBias':
            out_ops.append(op)
            continue
        n += 1
        # custom options = TfLiteTransposeConvParams {padding, stride_w, stride_h}
        pad, sw, sh = struct.unpack('<iii', bytes(op.customOptions)[:12])
        x, w, b = (int(i) for i in op.inputs)
        y = int(op.outputs[0])
        yt = sg.tensors[y]
        shp = new_const(model, sg, yt.name.decode() + '/output_shape',
                        np.array(yt.shape, dtype=np.int32), S.TensorType.INT32)
        mid = S.TensorT()
        mid.name = yt.name + b'/no_bias'
        mid.shape = np.array(yt.shape, dtype=np.int32)
        mid.type = yt.type
        mid.buffer = 0
        sg.tensors.append(mid)
        mid_i = len(sg.tensors) - 1

        tc = S.OperatorT()
        tc.opcodeIndex = opcode_index(model, S.BuiltinOperator.TRANSPOSE_CONV)
        tc.inputs = np.array([shp, w, x], dtype=np.int32)
        tc.outputs = np.array([mid_i], dtype=np.int32)
        tc.builtinOptionsType = S.BuiltinOptions.TransposeConvOptions
        o = S.TransposeConvOptionsT()
        # TfLitePadding: 1 SAME, 2 VALID ; schema Padding: 0 SAME, 1 VALID
        o.padding = {1: S.Padding.SAME, 2: S.Padding.VALID}[pad]
        o.strideW, o.strideH = sw, sh
        tc.builtinOptions = o

        add = S.OperatorT()
        add.opcodeIndex = opcode_index(model, S.BuiltinOperator.ADD)
        add.inputs = np.array([mid_i, b], dtype=np.int32)
        add.outputs = np.array([y], dtype=np.int32)
        add.builtinOptionsType = S.BuiltinOptions.AddOptions
        add.builtinOptions = S.AddOptionsT()
        out_ops += [tc, add]
    sg.operators = out_ops
    return n


def main(src, dst):
    model = fu.read_model(src)
    nd = densify(src, model)
    nt = transpose_conv_bias(model)
    fu.write_model(model, dst)
    print(f'{src}: removed {nd} DENSIFY, replaced {nt} Convolution2DTransposeBias -> {dst}')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
