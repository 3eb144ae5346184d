#!/usr/bin/env python3
# Reference losses and gradients for tests/test_torch_reference.cpp, computed
# with PyTorch in float64 on the models in tests/reference/models/*.nn.
#
# For every case this writes tests/reference/data/<case>/:
#   <param>.npy        every param of the model, by its nnc name (W1, conv1.W,
#                      bn1.running_mean, ...), float32 values
#   <input>.npy        every input (float32) and label (int32 class ids or
#                      float32 targets), by name
#   loss.npy           the loss, a float64 scalar
#   grad_<param>.npy   d loss / d param for every trainable param, float64
#
# Params and inputs are drawn with a fixed seed and rounded to float32 before
# PyTorch sees them, so the values nnc reads are exactly the ones the
# references were computed from (in both its f64 and f32 modes).
#
# Layouts follow nnc: a dense weight is [in, out] (x @ W + b, the transpose of
# torch.nn.Linear's weight); conv2d weights are [F, C, KH, KW] as in torch.
#
# Regenerate with (CI has no torch; the outputs are committed):
#   /usr/bin/python3 tests/reference/gen_torch_refs.py
import os
import shutil

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


class Case:
    """Collects the arrays of one case and the torch tensors built from them."""

    def __init__(self, name, seed):
        self.name = name
        self.rng = np.random.RandomState(seed)
        self.arrays = {}  # name -> numpy array as saved
        self.trainable = {}  # name -> torch leaf with requires_grad

    def _f32(self, a):
        return np.asarray(a, dtype=np.float64).astype(np.float32)

    def param(self, name, a, trainable=True):
        a = self._f32(a)
        self.arrays[name] = a
        t = torch.from_numpy(a.astype(np.float64))
        if trainable:
            t.requires_grad_(True)
            self.trainable[name] = t
        return t

    def dense(self, prefix, fan_in, units, bias_std=0.1):
        W = self.param(prefix + ".W", self.rng.randn(fan_in, units) * np.sqrt(2.0 / fan_in))
        b = self.param(prefix + ".b", self.rng.randn(units) * bias_std)
        return W, b

    def conv(self, prefix, filters, channels, k, bias_std=0.1):
        fan_in = channels * k * k
        W = self.param(prefix + ".W", self.rng.randn(filters, channels, k, k) * np.sqrt(2.0 / fan_in))
        b = self.param(prefix + ".b", self.rng.randn(filters) * bias_std)
        return W, b

    def batchnorm(self, prefix, channels):
        gamma = self.param(prefix + ".gamma", 1.0 + 0.2 * self.rng.randn(channels))
        beta = self.param(prefix + ".beta", 0.1 * self.rng.randn(channels))
        # Running statistics are params too (not trained); training mode ignores them.
        rm = self.param(prefix + ".running_mean", 0.1 * self.rng.randn(channels), trainable=False)
        rv = self.param(prefix + ".running_var", self.rng.uniform(0.5, 1.5, channels), trainable=False)
        return gamma, beta, rm.clone(), rv.clone()

    def input(self, name, a):
        a = self._f32(a)
        self.arrays[name] = a
        return torch.from_numpy(a.astype(np.float64))

    def class_labels(self, name, n, classes):
        a = self.rng.randint(0, classes, size=n).astype(np.int32)
        self.arrays[name] = a
        return torch.from_numpy(a.astype(np.int64))

    def save(self, loss):
        loss.backward()
        out = os.path.join(DATA, self.name)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for name, a in self.arrays.items():
            np.save(os.path.join(out, name + ".npy"), a)
        np.save(os.path.join(out, "loss.npy"), np.array(loss.item(), dtype=np.float64))
        for name, t in self.trainable.items():
            np.save(os.path.join(out, "grad_" + name + ".npy"), t.grad.numpy().astype(np.float64))
        print(f"{self.name}: loss {loss.item():.10g}, {len(self.trainable)} grads")


def bn(x, gamma, beta, rm, rv):
    # Batch statistics, biased variance for normalization, eps 1e-5 (nnc's batchnorm in training mode).
    return F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5)


def mlp(name, act, seed):
    c = Case(name, seed)
    batch = 4
    x = c.input("x", c.rng.uniform(0, 1, (batch, 784)))
    t = c.class_labels("t", batch, 10)
    W1 = c.param("W1", c.rng.randn(784, 40) * np.sqrt(2 / 784))
    b1 = c.param("b1", c.rng.randn(40) * 0.1)
    W2 = c.param("W2", c.rng.randn(40, 20) * np.sqrt(2 / 40))
    b2 = c.param("b2", c.rng.randn(20) * 0.1)
    W3 = c.param("W3", c.rng.randn(20, 10) * np.sqrt(2 / 20))
    b3 = c.param("b3", c.rng.randn(10) * 0.1)
    h1 = act(x @ W1 + b1)
    h2 = act(h1 @ W2 + b2)
    logits = h2 @ W3 + b3
    c.save(F.cross_entropy(logits, t))


def convnet():
    c = Case("convnet", 3)
    batch = 4
    x = c.input("x", c.rng.uniform(0, 1, (batch, 1, 28, 28)))
    t = c.class_labels("t", batch, 10)
    cW, cb = c.conv("conv1", 8, 1, 5)
    W1, b1 = c.dense("fc1", 8 * 12 * 12, 50)
    W2, b2 = c.dense("fc2", 50, 10)
    h = F.relu(F.conv2d(x, cW, cb, stride=1, padding=0))
    p = F.max_pool2d(h, kernel_size=2, stride=2)
    h = F.relu(p.reshape(batch, -1) @ W1 + b1)
    logits = h @ W2 + b2
    c.save(F.cross_entropy(logits, t))


def binary(name, logits_loss, seed):
    c = Case(name, seed)
    batch = 8
    x = c.input("x", c.rng.randn(batch, 6))
    t = c.input("t", c.rng.randint(0, 2, (batch, 1)))
    W1, b1 = c.dense("fc1", 6, 16)
    W2, b2 = c.dense("fc2", 16, 1)
    if logits_loss:
        z = F.relu(x @ W1 + b1) @ W2 + b2
        loss = F.binary_cross_entropy_with_logits(z, t)
    else:
        p = torch.sigmoid(torch.tanh(x @ W1 + b1) @ W2 + b2)
        loss = F.binary_cross_entropy(p, t)
    c.save(loss)


def regression():
    c = Case("regression_mse", 6)
    batch = 8
    x = c.input("x", c.rng.randn(batch, 5))
    t = c.input("t", c.rng.randn(batch, 3))
    W1, b1 = c.dense("fc1", 5, 12)
    W2, b2 = c.dense("fc2", 12, 3)
    y = torch.tanh(x @ W1 + b1) @ W2 + b2
    c.save(F.mse_loss(y, t))


def batchnorm_dense():
    c = Case("batchnorm_dense", 7)
    batch = 8
    x = c.input("x", c.rng.randn(batch, 10))
    t = c.class_labels("t", batch, 5)
    W1, b1 = c.dense("fc1", 10, 16)
    bn1 = c.batchnorm("bn1", 16)
    W2, b2 = c.dense("fc2", 16, 5)
    h = F.relu(bn(x @ W1 + b1, *bn1))
    c.save(F.cross_entropy(h @ W2 + b2, t))


def batchnorm_conv():
    c = Case("batchnorm_conv", 8)
    batch = 4
    x = c.input("x", c.rng.randn(batch, 3, 6, 6))
    t = c.class_labels("t", batch, 5)
    cW, cb = c.conv("conv1", 4, 3, 3)
    bn1 = c.batchnorm("bn1", 4)
    W1, b1 = c.dense("fc1", 4 * 6 * 6, 12)
    bn2 = c.batchnorm("bn2", 12)
    W2, b2 = c.dense("fc2", 12, 5)
    h = F.relu(bn(F.conv2d(x, cW, cb, stride=1, padding=1), *bn1))
    h = F.relu(bn(h.reshape(batch, -1) @ W1 + b1, *bn2))
    c.save(F.cross_entropy(h @ W2 + b2, t))


def conv_stride_avgpool():
    c = Case("conv_stride_avgpool", 9)
    batch = 4
    x = c.input("x", c.rng.randn(batch, 2, 9, 9))
    t = c.class_labels("t", batch, 10)
    cW, cb = c.conv("conv1", 4, 2, 3)
    W1, b1 = c.dense("fc1", 4 * 3 * 3, 10)
    h = F.relu(F.conv2d(x, cW, cb, stride=2, padding=1))  # [4, 4, 5, 5]
    p = F.avg_pool2d(h, kernel_size=3, stride=2, padding=1, count_include_pad=True)  # [4, 4, 3, 3]
    c.save(F.cross_entropy(p.reshape(batch, -1) @ W1 + b1, t))


def weight_decay(name, kind, lam, seed):
    # nnc's addWeightDecay(graph, kind, lam): the penalty over params of rank >= 2 only.
    c = Case(name, seed)
    batch = 8
    x = c.input("x", c.rng.randn(batch, 12))
    t = c.class_labels("t", batch, 4)
    W1, b1 = c.dense("fc1", 12, 16)
    W2, b2 = c.dense("fc2", 16, 4)
    loss = F.cross_entropy(F.relu(x @ W1 + b1) @ W2 + b2, t)
    weights = [W1, W2]
    if kind == "l2":
        penalty = sum(0.5 * torch.sum(W * W) for W in weights)
    else:
        penalty = sum(torch.sum(torch.abs(W)) for W in weights)
    c.save(loss + lam * penalty)


def transformer_tiny():
    # Attention through torch's own F.multi_head_attention_forward (the
    # function behind torch.nn.MultiheadAttention), with nnc's [D, 3D] q/k/v
    # projection transposed into its in_proj_weight, so nnc's head split,
    # scaling and causal mask are checked against torch's, not a copy.
    c = Case("transformer_tiny", 12)
    batch, T, vocab, d, heads, ff = 2, 5, 7, 8, 2, 16
    ids = c.rng.randint(0, vocab, size=(batch, T)).astype(np.int32)
    c.arrays["x"] = ids
    t = c.rng.randint(0, vocab, size=(batch, T)).astype(np.int32)
    c.arrays["t"] = t
    table = c.param("emb.table", c.rng.randn(vocab, d))
    pos = c.param("pos", 0.1 * c.rng.randn(T, d))

    def ln(prefix, n):
        return (c.param(prefix + ".gamma", 1.0 + 0.2 * c.rng.randn(n)), c.param(prefix + ".beta", 0.1 * c.rng.randn(n)))

    def lin(prefix, i, o):
        return (c.param(prefix + ".W", c.rng.randn(i, o) / np.sqrt(i)), c.param(prefix + ".b", 0.1 * c.rng.randn(o)))

    g1, be1 = ln("b0.ln1", d)
    Wqkv, bqkv = lin("b0.attn.qkv", d, 3 * d)
    Wo, bo = lin("b0.attn.out", d, d)
    g2, be2 = ln("b0.ln2", d)
    W1, b1 = lin("b0.fc1", d, ff)
    W2, b2 = lin("b0.fc2", ff, d)
    gf, bf = ln("lnf", d)
    Wh, bh = lin("head", d, vocab)

    h = table[torch.from_numpy(ids.astype(np.int64))] + pos
    a_in = F.layer_norm(h, (d,), g1, be1, eps=1e-5).transpose(0, 1)  # [T, batch, d]
    mask = torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
    att, _ = F.multi_head_attention_forward(a_in, a_in, a_in, d, heads, Wqkv.t(), bqkv, None, None, False, 0.0,
                                            Wo.t(), bo, training=True, need_weights=False, attn_mask=mask)
    h = h + att.transpose(0, 1)
    f = torch.tanh(F.layer_norm(h, (d,), g2, be2, eps=1e-5) @ W1 + b1) @ W2 + b2
    h = h + f
    logits = F.layer_norm(h, (d,), gf, bf, eps=1e-5) @ Wh + bh
    c.save(F.cross_entropy(logits.reshape(-1, vocab), torch.from_numpy(t.astype(np.int64)).reshape(-1)))


def main():
    mlp("mlp_sigmoid", torch.sigmoid, 1)
    mlp("mlp_relu", F.relu, 2)
    convnet()
    binary("binary_bce", False, 4)
    binary("binary_bce_logits", True, 5)
    regression()
    batchnorm_dense()
    batchnorm_conv()
    conv_stride_avgpool()
    weight_decay("weight_decay_l2", "l2", 0.05, 10)
    weight_decay("weight_decay_l1", "l1", 0.05, 11)
    transformer_tiny()


if __name__ == "__main__":
    main()
