#!/usr/bin/python3
"""PyTorch (eager, CPU) trained the way `nnc run` trains the examples, for the
accuracy and the wall time per epoch side by side (docs/performance.md).

Run:  /usr/bin/python3 bench/torch_train.py [--threads 2] [--model mnist_mlp|simple_convnet]

Fashion-MNIST from the IDX files nnc reads (/usr/share/datasets/fashion-mnist),
pixels / 255, batch 100, a fresh shuffle per epoch, Adam lr 1e-3 (torch.optim
defaults otherwise), He-normal weights and zero biases as the .nn files say:
mnist_mlp 5 epochs, simple_convnet 3 epochs. An epoch's time covers the train
steps only (as nnc run's does): batching from a tensor already in memory,
zero_grad, forward, loss, backward, step. Test accuracy after each epoch.
Needs torch only (Debian's python3-torch 1.13); nothing in CI runs it.
"""

import argparse
import gzip
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_reference import MnistMlp, SimpleConvNet, tune_malloc, set_threads  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(DATA, name + ".gz")) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return torch.frombuffer(bytearray(raw[4 + 4 * dims:]), dtype=torch.uint8).reshape(shape)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", action="append", choices=["mnist_mlp", "simple_convnet"])
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    tune_malloc()
    set_threads(args.threads)
    xtr = idx("train-images-idx3-ubyte").float().div_(255)
    ytr = idx("train-labels-idx1-ubyte").long()
    xte = idx("t10k-images-idx3-ubyte").float().div_(255)
    yte = idx("t10k-labels-idx1-ubyte").long()
    for name in args.model or ["mnist_mlp", "simple_convnet"]:
        torch.manual_seed(args.seed)
        conv = name == "simple_convnet"
        net = SimpleConvNet() if conv else MnistMlp()
        epochs = 3 if conv else 5
        shape = (-1, 1, 28, 28) if conv else (-1, 784)
        xs, xt = xtr.reshape(shape), xte.reshape(shape)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for epoch in range(1, epochs + 1):
            order = torch.randperm(xs.shape[0])
            t0 = time.perf_counter()
            loss_sum = 0.0
            for s in range(0, xs.shape[0] - 99, 100):
                i = order[s:s + 100]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(xs[i]), ytr[i])
                loss.backward()
                opt.step()
                loss_sum += loss.item()
            secs = time.perf_counter() - t0
            with torch.no_grad():
                right = sum((net(xt[s:s + 100]).argmax(1) == yte[s:s + 100]).sum().item()
                            for s in range(0, xt.shape[0], 100))
            print(f"{name} epoch {epoch}: train loss {loss_sum / (xs.shape[0] // 100):.4f}, "
                  f"test accuracy {right / xt.shape[0]:.4f}, {secs:.2f} s ({args.threads} threads)", flush=True)


if __name__ == "__main__":
    main()
