#!/usr/bin/python3
"""Writes the small synthetic datasets the examples train on (committed, so
nothing needs Python to run them). Deterministic: run it again and the files
are byte-identical.

  regression.csv       y = sin(3·x1)·x2 + 0.5·x3² − 0.3·x4 + noise(0.05): 2000 rows
  spiral.csv           three interleaved spiral arms (CS231n's), 3 × 400 points
  binary_addition/     a + b for a, b < 128, bits least significant first:
                       x [N, 8, 2] (the bits of a and b), y [N, 8] (the bits of
                       the sum); 4000 training sums and 2000 held-out ones

Usage: /usr/bin/python3 examples/data/make_data.py  (needs numpy)
"""
import os

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def regression(rng):
    x = rng.uniform(-1, 1, size=(2000, 4))
    y = np.sin(3 * x[:, 0]) * x[:, 1] + 0.5 * x[:, 2] ** 2 - 0.3 * x[:, 3] + rng.normal(0, 0.05, 2000)
    with open(os.path.join(HERE, "regression.csv"), "w") as f:
        f.write("x1,x2,x3,x4,y\n")
        for row, t in zip(x, y):
            f.write(",".join(f"{v:.6f}" for v in row) + f",{t:.6f}\n")


def spiral(rng):
    per, classes = 400, 3
    with open(os.path.join(HERE, "spiral.csv"), "w") as f:
        f.write("x,y,label\n")
        for c in range(classes):
            r = np.linspace(0.0, 1, per)
            t = np.linspace(c * 4, (c + 1) * 4, per) + rng.normal(0, 0.2, per)
            for a, b in zip(r * np.sin(t), r * np.cos(t)):
                f.write(f"{a:.6f},{b:.6f},{c}\n")


def binary_addition(rng):
    bits = 8
    pairs = np.array([(a, b) for a in range(128) for b in range(128)])
    rng.shuffle(pairs)

    def encode(p):
        x = np.zeros((len(p), bits, 2), np.uint8)
        y = np.zeros((len(p), bits), np.float32)
        for i, (a, b) in enumerate(p):
            s = a + b
            for k in range(bits):  # least significant bit first: the carry flows forward in time
                x[i, k] = ((a >> k) & 1, (b >> k) & 1)
                y[i, k] = (s >> k) & 1
        return x, y

    out = os.path.join(HERE, "binary_addition")
    os.makedirs(out, exist_ok=True)
    for split, p in (("train", pairs[:4000]), ("test", pairs[4000:6000])):
        x, y = encode(p)
        np.save(os.path.join(out, f"x_{split}.npy"), x)
        np.save(os.path.join(out, f"y_{split}.npy"), y)


if __name__ == "__main__":
    regression(np.random.default_rng(1))
    spiral(np.random.default_rng(2))
    binary_addition(np.random.default_rng(3))
