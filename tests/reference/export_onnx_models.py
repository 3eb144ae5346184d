#!/usr/bin/env python3
"""PyTorch -> ONNX fixtures for nnc's ONNX importer (tests/data/onnx/).

Builds a few small models with fixed seeds, puts them in eval mode and exports
each with torch.onnx.export (opset 13, do_constant_folding=True, input "x",
output "logits" or "probs", the batch dimension dynamic on both as "N"). For
every model NAME this writes tests/data/onnx/:

  NAME.onnx         the exported model (weights inside, no external data)
  NAME.input.npy    a fixed random batch of 4, float32
  NAME.output.npy   PyTorch's output on that batch, float32

and prints, per model, the file size and the ONNX op types in its graph (read
back from the written file with a small protobuf reader below, so the python
`onnx` module is not needed; where it is installed, onnx.checker.check_model
is run on every file too). tests/data/onnx/README.md records that listing.

CI does not run this (it has no torch); the outputs are committed. Regenerate
with Debian's interpreter, which has torch 1.13 and numpy:

  /usr/bin/python3 tests/reference/export_onnx_models.py
"""
import collections
import os
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(os.path.dirname(HERE), "data", "onnx")
OPSET = 13
BATCH = 4


# ---------------------------------------------------------------- the models


class MLP(nn.Module):
    """The course notes' 784-40-20-10 network with ReLU."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 40)
        self.fc2 = nn.Linear(40, 20)
        self.fc3 = nn.Linear(20, 10)

    def forward(self, x):
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class SmallConvNet(nn.Module):
    """SimpleConvNet's structure, shrunk: conv 8x5x5, relu, maxpool 2,
    flatten by view (Shape->Gather->Unsqueeze->Concat->Reshape in ONNX),
    dense 32, relu, dense 10. The full-size one (30 filters, dense 100)
    would be ~1.8 MB, mostly its 4320x100 fc."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5)
        self.fc1 = nn.Linear(8 * 12 * 12, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = x.view(x.size(0), -1)
        x = F.relu(self.fc1(x))
        return self.fc2(x)


class SimpleConvNet(SmallConvNet):
    """The course notes' SimpleConvNet at full size: conv 30x5x5, relu,
    maxpool 2, flatten by view, dense 100, relu, dense 10 (examples/
    simple_convnet.nn). About 1.8 MB as ONNX, most of it the 4320x100 fc."""

    def __init__(self):
        nn.Module.__init__(self)
        self.conv1 = nn.Conv2d(1, 30, 5)
        self.fc1 = nn.Linear(30 * 12 * 12, 100)
        self.fc2 = nn.Linear(100, 10)


def conv3x3(cin, cout, stride=1):
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = conv3x3(c, c)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = conv3x3(c, c)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + x)


class ResNetSmall(nn.Module):
    """stem conv3x3 1->16 + BN + ReLU, one basic block (16), a stride-2
    conv3x3 16->32 + BN + ReLU, global average pool, flatten, dense 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = conv3x3(1, 16)
        self.bn1 = nn.BatchNorm2d(16)
        self.block = BasicBlock(16)
        self.conv2 = conv3x3(16, 32, stride=2)
        self.bn2 = nn.BatchNorm2d(32)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.block(x)
        x = F.relu(self.bn2(self.conv2(x)))
        x = torch.flatten(self.pool(x), 1)
        return self.fc(x)


class MLPOps(nn.Module):
    """More of the ops PyTorch models put in ONNX graphs, on [N, 16]:
    LeakyReLU, Sigmoid, Tanh, cat, slicing, unsqueeze/transpose/squeeze,
    Dropout (gone in eval), add/sub/mul/div with broadcast constants,
    log_softmax and softmax. Output: probabilities [N, 8]."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 24)
        self.fc2 = nn.Linear(72, 8)
        self.act = nn.LeakyReLU(0.1)
        self.drop = nn.Dropout(0.5)
        g = torch.Generator().manual_seed(7)
        # constants broadcast along the batch ([8] and [1, 8]); buffers, so
        # the export keeps them as initializers
        self.register_buffer("offset", torch.randn(8, generator=g))
        self.register_buffer("scale", torch.rand(1, 8, generator=g) + 0.5)

    def forward(self, x):
        h = self.fc1(x)                                   # [N, 24]
        a = self.act(h)
        b = torch.sigmoid(h) * 2.0 - 1.0
        c = torch.tanh(h) / 2.0
        h = torch.cat([a, b, c], dim=1)                   # [N, 72]
        h = self.drop(h)
        s = h[:, 2:10]                                    # [N, 8]
        s = s.unsqueeze(1).transpose(1, 2).squeeze(2)     # [N, 1, 8] -> [N, 8, 1] -> [N, 8]
        s = s + self.offset
        z = F.log_softmax(self.fc2(h), dim=1)             # [N, 8]
        z = (z + s) * self.scale / 1.5 - 0.25
        return torch.softmax(z, dim=1)


# ---------------------------------------------------------------- export


def export(name, model, x, out_name, **kw):
    model.eval()
    with torch.no_grad():
        y = model(torch.from_numpy(x))
    path = os.path.join(OUT, name + ".onnx")
    torch.onnx.export(
        model,
        (torch.from_numpy(x),),
        path,
        export_params=True,
        opset_version=OPSET,
        do_constant_folding=True,
        input_names=["x"],
        output_names=[out_name],
        dynamic_axes={"x": {0: "N"}, out_name: {0: "N"}},
        **kw,
    )
    np.save(os.path.join(OUT, name + ".input.npy"), x.astype(np.float32))
    np.save(os.path.join(OUT, name + ".output.npy"), y.numpy().astype(np.float32))
    return path


def images(rng):
    return rng.rand(BATCH, 1, 28, 28).astype(np.float32)


def warm_batchnorm(model, seed):
    """~20 training-mode forward passes on random data so the running
    means and variances are not their initial 0 and 1."""
    g = torch.Generator().manual_seed(seed)
    model.train()
    with torch.no_grad():
        for _ in range(20):
            model(torch.rand(16, 1, 28, 28, generator=g) * 2.0 + 0.5)
    model.eval()


def perturb_batchnorm(bns, seed):
    """Random gammas and betas for the given BatchNorm layers, so the scale
    and shift are exercised too. The others keep their initial 1 and 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(torch.rand(bn.num_features, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(bn.num_features, generator=g) * 0.2)


# ---------------------------------------------------------------- reading back

# Just enough of protobuf's wire format to list a model's op types:
# ModelProto.graph = 7, GraphProto.node = 1, NodeProto.op_type = 4,
# ModelProto.opset_import = 8 (OperatorSetIdProto.domain = 1, version = 2).


def _varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return v, i


def _fields(buf):
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(buf, i)
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        elif wt == 2:
            n, i = _varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError("unexpected wire type %d" % wt)
        yield num, v


def op_types(path):
    """(op type counts in graph order, opset imports) of an .onnx file."""
    with open(path, "rb") as f:
        model = f.read()
    ops = collections.OrderedDict()
    opsets = []
    for num, v in _fields(model):
        if num == 8:
            d = dict(_fields(v))
            opsets.append((bytes(d.get(1, b"")).decode(), d.get(2)))
        if num != 7:
            continue
        for gnum, node in _fields(v):
            if gnum != 1:
                continue
            for nnum, nv in _fields(node):
                if nnum == 4:
                    t = bytes(nv).decode()
                    ops[t] = ops.get(t, 0) + 1
    return ops, opsets


def check_with_onnx(path):
    try:
        import onnx
    except ImportError:
        return "onnx module not installed, not checked"
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    return "onnx %s checker ok (full_check)" % onnx.__version__


# ---------------------------------------------------------------- main


def main():
    os.makedirs(OUT, exist_ok=True)
    made = []

    torch.manual_seed(1)
    rng = np.random.RandomState(1)
    made.append(export("mlp", MLP(), rng.rand(BATCH, 784).astype(np.float32), "logits"))

    torch.manual_seed(2)
    rng = np.random.RandomState(2)
    made.append(export("small_convnet", SmallConvNet(), images(rng), "logits"))

    torch.manual_seed(6)
    rng = np.random.RandomState(6)
    made.append(export("simple_convnet", SimpleConvNet(), images(rng), "logits"))

    torch.manual_seed(3)
    rng = np.random.RandomState(3)
    net = ResNetSmall()
    # bn1 and block.bn2 stay at gamma 1, beta 0 as in a fresh model: the
    # export then shares one initializer between them (it deduplicates equal
    # initializers of the same shape) and writes the other's as an Identity
    # node, as it does for real untrained models.
    perturb_batchnorm([net.block.bn1, net.bn2], 33)
    warm_batchnorm(net, 3)
    x = images(rng)
    # torch.onnx.export's default (training=EVAL) folds every Conv+BatchNorm
    # pair into one Conv; TrainingMode.PRESERVE on a model in eval mode
    # exports the same inference graph without that fold, so
    # BatchNormalization (with the warmed running stats) stays in the graph.
    # torch 1.13 warns about constant folding for any PRESERVE export, even
    # of a model in eval mode as here (where nothing is mutated): muted.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
        made.append(export("resnet_small", net, x, "logits", training=torch.onnx.TrainingMode.PRESERVE))
    # the default: the same model and batch, BN folded into the convs' weights and biases
    made.append(export("resnet_small_fused", net, x, "logits"))

    torch.manual_seed(4)
    rng = np.random.RandomState(4)
    made.append(export("mlp_ops", MLPOps(), rng.randn(BATCH, 16).astype(np.float32), "probs"))

    print("torch", torch.__version__, "opset", OPSET)
    for path in made:
        ops, opsets = op_types(path)
        print("%s: %d bytes; opset %s; %s" % (os.path.basename(path), os.path.getsize(path), opsets,
                                             check_with_onnx(path)))
        print("  " + ", ".join("%s%s" % (t, " x%d" % n if n > 1 else "") for t, n in ops.items()))


if __name__ == "__main__":
    main()
