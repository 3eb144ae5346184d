#!/usr/bin/env python3
# Reference outputs and gradients for tests/test_seq_reference.cpp: pad,
# conv1d (and conv2d's pad = "same"), groupnorm, lstm and gru, computed with
# PyTorch 1.13 in float64 on the models in tests/reference/seq_models/*.nn.
#
# For every case this writes tests/reference/data/seq_<case>/:
#   <param>.npy        every param by its nnc name (x, c1.W, lstm1.W_ih, ...),
#                      float32 values; the tensors the ops read are params, so
#                      their gradients are checked like the weights'
#   <input>.npy        every input (the random weights r of loss = Σ y·r)
#   out_<output>.npy   every output of the model, float64
#   loss.npy           the loss, a float64 scalar
#   grad_<param>.npy   d loss / d param for every param, float64
#
# Layouts are torch's: conv1d weights [F, C/groups, K]; lstm/gru params are
# torch.nn.LSTM/GRU's weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0 as
# W_ih, W_hh, b_ih, b_hh, copied into the torch modules unchanged.
#
# Regenerate with (CI has no torch; the outputs are committed):
#   /usr/bin/python3 tests/reference/gen_seq_refs.py
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


class Case:
    def __init__(self, name, seed):
        self.name = "seq_" + name
        self.rng = np.random.RandomState(seed)
        self.arrays = {}
        self.trainable = {}
        self.outputs = {}
        self.loss = 0

    def param(self, name, shape, scale=1.0, offset=0.0):
        a = (offset + scale * self.rng.randn(*shape)).astype(np.float32)
        self.arrays[name] = a
        t = torch.from_numpy(a.astype(np.float64)).requires_grad_(True)
        self.trainable[name] = t
        return t

    def output(self, name, y, r_name):
        """Records output y and adds sum(y * r) to the loss, r drawn here."""
        r = self.rng.randn(*y.shape).astype(np.float32)
        self.arrays[r_name] = r
        self.outputs[name] = y
        self.loss = self.loss + (y * torch.from_numpy(r.astype(np.float64))).sum()

    def save(self):
        self.loss.backward()
        out = os.path.join(DATA, self.name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for name, a in self.arrays.items():
            np.save(os.path.join(out, name + ".npy"), a)
        for name, y in self.outputs.items():
            np.save(os.path.join(out, "out_" + name + ".npy"), y.detach().numpy().astype(np.float64))
        np.save(os.path.join(out, "loss.npy"), np.array(self.loss.item(), dtype=np.float64))
        for name, t in self.trainable.items():
            np.save(os.path.join(out, "grad_" + name + ".npy"), t.grad.numpy().astype(np.float64))
        print(f"{self.name}: loss {self.loss.item():.10g}, {len(self.trainable)} grads")


def pad_constant():
    c = Case("pad_constant", 21)
    x3 = c.param("x3", (2, 3, 5))
    x4 = c.param("x4", (2, 2, 4, 5))
    c.output("y1", F.pad(x3, [2, 1]), "r1")
    c.output("y2", F.pad(x4, [1, 2, 0, 3], value=0.5), "r2")
    c.output("y3", F.pad(x4, [0, 1, 1, 1, 0, 1], mode="constant", value=-1.0), "r3")
    c.save()


def pad_reflect():
    c = Case("pad_reflect", 22)
    x3 = c.param("x3", (2, 3, 5))
    x4 = c.param("x4", (2, 2, 4, 5))
    c.output("y1", F.pad(x3, [4, 0], mode="reflect"), "r1")
    c.output("y2", F.pad(x4, [1, 2, 3, 0], mode="reflect"), "r2")
    c.save()


def pad_replicate():
    c = Case("pad_replicate", 23)
    x3 = c.param("x3", (2, 3, 5))
    x4 = c.param("x4", (2, 2, 4, 5))
    c.output("y1", F.pad(x3, [1, 7], mode="replicate"), "r1")
    c.output("y2", F.pad(x4, [2, 1, 0, 5], mode="replicate"), "r2")
    c.save()


def conv1d():
    c = Case("conv1d", 24)
    x = c.param("x", (2, 4, 9))
    x2 = c.param("x2", (2, 2, 5, 6))
    Wp = c.param("Wp", (3, 4, 2), 0.4)
    bp = c.param("bp", (3,), 0.1)

    def layer(name, f, cin, k, bias=True):
        W = c.param(name + ".W", (f, cin, k), 0.4)
        b = c.param(name + ".b", (f,), 0.1) if bias else None
        return W, b

    W1, b1 = layer("c1", 6, 4, 3)
    W2, b2 = layer("c2", 4, 2, 3)
    W3, b3 = layer("c3", 4, 4, 4)
    W4, _ = layer("c4", 4, 4, 5, bias=False)
    W6 = c.param("c6.W", (3, 2, 2, 3), 0.4)
    b6 = c.param("c6.b", (3,), 0.1)
    c.output("y1", F.conv1d(x, W1, b1, stride=2, padding=1), "r1")
    c.output("y2", F.conv1d(x, W2, b2, groups=2, padding="same"), "r2")
    c.output("y3", F.conv1d(x, W3, b3, padding="same"), "r3")
    c.output("y4", F.conv1d(x, W4, None, padding="same"), "r4")
    c.output("y5", F.conv1d(x, Wp, bp, stride=2, padding=0), "r5")
    c.output("y6", F.conv2d(x2, W6, b6, padding="same"), "r6")
    c.save()


def groupnorm():
    c = Case("groupnorm", 25)
    x4 = c.param("x4", (3, 6, 4, 5), 2.0, 0.5)
    x3 = c.param("x3", (2, 4, 7))
    x2 = c.param("x2", (4, 6))

    def affine(name, ch):
        return c.param(name + ".gamma", (ch,), 0.2, 1.0), c.param(name + ".beta", (ch,), 0.1)

    g1, b1 = affine("gn1", 6)
    g2, b2 = affine("gn2", 4)
    g3, b3 = affine("gn3", 6)
    g4, b4 = affine("gn4", 6)
    c.output("y1", F.group_norm(x4, 3, g1, b1, eps=1e-5), "r1")
    c.output("y2", F.group_norm(x3, 4, g2, b2, eps=0.01), "r2")
    c.output("y3", F.group_norm(x2, 2, g3, b3, eps=1e-5), "r3")
    c.output("y4", F.group_norm(x4, 1, g4, b4, eps=1e-5), "r4")
    c.save()


def recurrent(kind, sequences, seed):
    name = kind if sequences else kind + "_last"
    c = Case(name, seed)
    units, features, gates = 6, 4, 4 if kind == "lstm" else 3
    x = c.param("x", (3, 5, features))
    k = 1 / np.sqrt(units)
    p = kind + "1"
    module = (torch.nn.LSTM if kind == "lstm" else torch.nn.GRU)(features, units, batch_first=True)
    for nnc, tname, shape in [("W_ih", "weight_ih_l0", (gates * units, features)),
                              ("W_hh", "weight_hh_l0", (gates * units, units)),
                              ("b_ih", "bias_ih_l0", (gates * units,)),
                              ("b_hh", "bias_hh_l0", (gates * units,))]:
        a = c.rng.uniform(-k, k, shape).astype(np.float32)
        t = getattr(module, tname)
        with torch.no_grad():
            t.copy_(torch.from_numpy(a.astype(np.float64)))
        c.arrays[p + "." + nnc] = a
        c.trainable[p + "." + nnc] = t  # torch's own parameter: its .grad is the reference
    y, _ = module(x)
    c.output("y", y if sequences else y[:, -1, :], "r")
    c.save()


def main():
    pad_constant()
    pad_reflect()
    pad_replicate()
    conv1d()
    groupnorm()
    recurrent("lstm", True, 26)
    recurrent("lstm", False, 27)
    recurrent("gru", True, 28)
    recurrent("gru", False, 29)


if __name__ == "__main__":
    main()
