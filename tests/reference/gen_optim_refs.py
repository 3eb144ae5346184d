#!/usr/bin/env python3
# Reference params for tests/test_train_step.cpp ('[train]'): a 3x2 linear
# model with softmax cross-entropy on fixed data, trained 3 steps by
# torch.optim in float64. Writes tests/reference/optim/: x, t, W0, b0 (the
# data and start values, float32-exact) and <case>_W.npy, <case>_b.npy (the
# params after 3 steps, float64). The cases must match kOptimCases in the test.
# Regenerate with an interpreter that has torch 1.13 and numpy:
#   /usr/bin/python3 tests/reference/gen_optim_refs.py
import os

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim")

x = np.array([[1.0, -0.5, 0.25], [0.5, 2.0, -1.0], [-1.5, 0.75, 0.5], [0.25, -0.25, 1.5]], dtype=np.float32)
t = np.array([0, 1, 1, 0], dtype=np.int32)
W0 = np.array([[0.5, -0.25], [0.125, 0.75], [-0.5, 0.375]], dtype=np.float32)
b0 = np.array([0.25, -0.125], dtype=np.float32)
STEPS = 3

# name: (optimizer factory, scheduler factory or None)
CASES = {
    "sgd": (lambda p: torch.optim.SGD(p, lr=0.1), None),
    "momentum": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8), None),
    "nesterov": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8, nesterov=True), None),
    "adagrad": (lambda p: torch.optim.Adagrad(p, lr=0.1, eps=1e-7), None),
    "rmsprop": (lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9, eps=1e-7), None),
    "adam": (lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99), eps=1e-8), None),
    "adam_defaults": (lambda p: torch.optim.Adam(p), None),
    "adam_step": (lambda p: torch.optim.Adam(p, lr=0.01),
                  lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5)),
    "sgd_cosine": (lambda p: torch.optim.SGD(p, lr=0.1),
                   lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=4)),
}


def run(make_opt, make_sched):
    W = torch.tensor(W0.astype(np.float64), requires_grad=True)
    b = torch.tensor(b0.astype(np.float64), requires_grad=True)
    X, T = torch.tensor(x.astype(np.float64)), torch.tensor(t.astype(np.int64))
    opt = make_opt([W, b])
    sched = make_sched(opt) if make_sched else None
    for _ in range(STEPS):
        opt.zero_grad()
        F.cross_entropy(X @ W + b, T).backward()
        opt.step()
        if sched:
            sched.step()
    return W.detach().numpy(), b.detach().numpy()


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, a in {"x": x, "t": t, "W0": W0, "b0": b0}.items():
        np.save(os.path.join(OUT, name + ".npy"), a)
    for name, (make_opt, make_sched) in CASES.items():
        W, b = run(make_opt, make_sched)
        np.save(os.path.join(OUT, name + "_W.npy"), W)
        np.save(os.path.join(OUT, name + "_b.npy"), b)
        print(name, W.reshape(-1), b)


if __name__ == "__main__":
    main()
