#!/usr/bin/env python3
"""Checks tests/data/onnx/ without torch and without nnc: every NAME.onnx
passes onnx.checker.check_model (full_check), and a small numpy interpreter
of the ops these fixtures use (ONNX opset 13 semantics, written from the
spec) reproduces NAME.output.npy from NAME.input.npy, on the whole batch and
on each single row (the batch dimension is dynamic).

Needs numpy and the python `onnx` module (Debian: apt-get install
python3-onnx). CI does not run this. Run:

  /usr/bin/python3 tests/reference/check_onnx_fixtures.py
"""
import glob
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "onnx")


def conv(x, w, b, strides, pads, dilations, group):
    assert group == 1 and dilations == [1, 1]
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    oh = (xp.shape[2] - kh) // strides[0] + 1
    ow = (xp.shape[3] - kw) // strides[1] + 1
    y = np.zeros((n, f, oh, ow), np.float64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, :, i:i + strides[0] * oh:strides[0], j:j + strides[1] * ow:strides[1]]
            y += np.einsum("nchw,fc->nfhw", patch, w[:, :, i, j])
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def maxpool(x, k, s, pads, ceil_mode):
    assert ceil_mode == 0 and not any(pads)
    n, c, h, w = x.shape
    oh, ow = (h - k[0]) // s[0] + 1, (w - k[1]) // s[1] + 1
    y = np.full((n, c, oh, ow), -np.inf)
    for i in range(k[0]):
        for j in range(k[1]):
            y = np.maximum(y, x[:, :, i:i + s[0] * oh:s[0], j:j + s[1] * ow:s[1]])
    return y


def softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def run(model, x):
    env = {i.name: numpy_helper.to_array(i).astype(np.float64) if i.data_type == 1 else numpy_helper.to_array(i)
           for i in model.graph.initializer}
    env[model.graph.input[0].name] = x.astype(np.float64)
    for node in model.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
        ins = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Constant":
            t = numpy_helper.to_array(a["value"])
            y = t.astype(np.float64) if t.dtype == np.float32 else t
        elif op == "Identity":
            y = ins[0]
        elif op == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.T
            if a.get("transB", 0):
                B = B.T
            y = a.get("alpha", 1.0) * A @ B
            if len(ins) > 2:
                y = y + a.get("beta", 1.0) * ins[2]
        elif op == "Relu":
            y = np.maximum(ins[0], 0)
        elif op == "LeakyRelu":
            y = np.where(ins[0] >= 0, ins[0], a.get("alpha", 0.01) * ins[0])
        elif op == "Sigmoid":
            y = 1 / (1 + np.exp(-ins[0]))
        elif op == "Tanh":
            y = np.tanh(ins[0])
        elif op in ("Add", "Sub", "Mul", "Div"):
            y = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op](ins[0], ins[1])
        elif op == "Softmax":
            y = softmax(ins[0], a.get("axis", -1))
        elif op == "LogSoftmax":
            y = np.log(softmax(ins[0], a.get("axis", -1)))
        elif op == "Conv":
            y = conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a["strides"], a["pads"],
                     a["dilations"], a["group"])
        elif op == "MaxPool":
            y = maxpool(ins[0], a["kernel_shape"], a["strides"], a["pads"], a.get("ceil_mode", 0))
        elif op == "BatchNormalization":
            assert a.get("training_mode", 0) == 0 and len(node.output) == 1
            xx, s, b, m, v = ins
            r = (1, -1, 1, 1)
            y = (xx - m.reshape(r)) / np.sqrt(v.reshape(r) + a.get("epsilon", 1e-5)) * s.reshape(r) + b.reshape(r)
        elif op == "GlobalAveragePool":
            y = ins[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == "Shape":
            y = np.array(ins[0].shape, np.int64)
        elif op == "Gather":
            y = np.take(ins[0], ins[1], axis=a.get("axis", 0))
        elif op == "Unsqueeze":
            y = ins[0]
            for ax in sorted(int(v) % (y.ndim + len(ins[1])) for v in ins[1]):
                y = np.expand_dims(y, ax)
        elif op == "Squeeze":
            y = np.squeeze(ins[0], axis=tuple(int(v) for v in ins[1]))
        elif op == "Concat":
            y = np.concatenate(ins, axis=a["axis"])
        elif op == "Reshape":
            shape = [int(s) if s != 0 else ins[0].shape[i] for i, s in enumerate(ins[1])]
            y = ins[0].reshape(shape)
        elif op == "Transpose":
            y = np.transpose(ins[0], a["perm"])
        elif op == "Slice":
            data, starts, ends = ins[0], ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else range(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
            idx = [slice(None)] * data.ndim
            for s, e, ax, st in zip(starts, ends, axes, steps):
                idx[int(ax)] = slice(int(s), int(e), int(st))
            y = data[tuple(idx)]
        else:
            raise NotImplementedError(op)
        env[node.output[0]] = y
    return env[model.graph.output[0].name]


def main():
    failed = 0
    for path in sorted(glob.glob(os.path.join(DATA, "*.onnx"))):
        name = os.path.basename(path)[:-5]
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        x = np.load(os.path.join(DATA, name + ".input.npy"))
        ref = np.load(os.path.join(DATA, name + ".output.npy"))
        got = run(model, x)
        err = float(np.max(np.abs(got - ref)))
        rows = max(float(np.max(np.abs(run(model, x[i:i + 1]) - ref[i:i + 1]))) for i in range(len(x)))
        ok = got.shape == ref.shape and np.allclose(got, ref, rtol=1e-4, atol=1e-5) and rows < 1e-4
        failed += not ok
        print("%-20s %s  out %s  max |diff| %.2e (batch), %.2e (rows one by one)"
              % (name, "ok  " if ok else "FAIL", ref.shape, err, rows))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
