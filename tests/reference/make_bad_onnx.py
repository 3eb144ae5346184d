"""Malformed and unsupported ONNX models for nnc's importer tests.

Run with Debian's python3-onnx (not needed by CI, which reads the committed
files):  /usr/bin/python3 tests/reference/make_bad_onnx.py
Writes tests/data/onnx/bad/*.onnx. Each file is broken in one way that
tests/test_onnx_import.cpp expects a clear error for.
"""
import os

import onnx
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(__file__), "..", "data", "onnx", "bad")


def model(nodes, inputs, outputs, inits=(), opset=13, check=True, **kw):
    g = helper.make_graph(nodes, "bad", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], **kw)
    m.ir_version = 8
    if check:
        onnx.checker.check_model(m)
    return m


def vi(name, dims, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, dims)


def save(m, name):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(m.SerializeToString())


def main():
    os.makedirs(OUT, exist_ok=True)
    x, y = vi("x", ["N", 4]), vi("y", ["N", 4])
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu1")
    save(model([relu], [x], [y], opset=99, check=False), "opset99.onnx")
    save(model([helper.make_node("Relu", ["x"], ["y"], name="custom1", domain="com.example")], [x], [y],
               check=False), "domain.onnx")
    # Three nodes nnc cannot import, one of each kind: all must be listed.
    nodes = [helper.make_node("Erf", ["x"], ["a"], name="erf1"),
             helper.make_node("Conv", ["x4", "w"], ["b"], name="conv_dilated", dilations=[2, 2]),
             helper.make_node("Pad", ["x", "pads"], ["c"], name="pad1"),
             helper.make_node("Relu", ["x"], ["y"], name="fine")]
    w = helper.make_tensor("w", TensorProto.FLOAT, [2, 1, 3, 3], [0.1] * 18)
    pads = helper.make_tensor("pads", TensorProto.INT64, [4], [0, 1, 0, 1])
    save(model(nodes, [x, vi("x4", ["N", 1, 8, 8])], [y, vi("a", ["N", 4]), vi("b", ["N", 2, 4, 4]), vi("c", ["N", 6])],
               [w, pads]), "unsupported3.onnx")
    # Tensor claims.
    save(model([relu], [vi("x", ["N", 0])], [y], check=False), "dim0.onnx")
    save(model([relu], [vi("x", ["N", 2 ** 40])], [y], check=False), "dim2p40.onnx")
    huge = TensorProto(name="h", data_type=TensorProto.FLOAT, dims=[2 ** 20, 2 ** 20])
    save(model([helper.make_node("Add", ["x", "h"], ["y"], name="add1")], [x], [y], [huge], check=False),
         "init2p40.onnx")
    ext = TensorProto(name="e", data_type=TensorProto.FLOAT, dims=[4])
    ext.data_location = TensorProto.EXTERNAL
    ext.external_data.add(key="location", value="missing_weights.bin")
    save(model([helper.make_node("Add", ["x", "e"], ["y"], name="add_ext")], [x], [y], [ext], check=False),
         "external_missing.onnx")
    # Graph structure.
    cyc = [helper.make_node("Relu", ["b"], ["a"], name="r1"), helper.make_node("Relu", ["a"], ["b"], name="r2"),
           helper.make_node("Add", ["x", "b"], ["y"], name="r3")]
    save(model(cyc, [x], [y], check=False), "cycle.onnx")
    save(model([helper.make_node("Add", ["x", "nowhere"], ["y"], name="add_undef")], [x], [y], check=False),
         "undefined_input.onnx")
    # Not a model: a tensor, and random bytes; and a truncated model.
    with open(os.path.join(OUT, "tensor.onnx"), "wb") as f:
        f.write(helper.make_tensor("t", TensorProto.FLOAT, [3], [1, 2, 3]).SerializeToString())
    rnd = bytes((i * 2654435761 >> 7) & 0xFF for i in range(4096))
    with open(os.path.join(OUT, "random.onnx"), "wb") as f:
        f.write(rnd)
    good = model([relu], [x], [y]).SerializeToString()
    with open(os.path.join(OUT, "truncated.onnx"), "wb") as f:
        f.write(good[: len(good) // 2])


if __name__ == "__main__":
    main()
