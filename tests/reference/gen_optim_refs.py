#!/usr/bin/env python3
# Reference params for tests/test_train_step.cpp ('[train]'): a 3x2 linear
# model with softmax cross-entropy on fixed data, trained 3 steps by
# torch.optim in float64. Writes tests/reference/optim/: x, t, W0, b0 (the
# data and start values, float32-exact) and <case>_W.npy, <case>_b.npy (the
# params after 3 steps, float64). The cases must match kOptimCases in the test.
# TRAIN_CASES (kTrainCases) add AdamW, gradient clipping (clip_grad_norm_
# between backward and step) and schedules with warmup, over 6 steps;
# SCHEDULES (kScheduleCases) write sched_<case>.npy, the learning rate of
# each of the first 12 steps as torch's scheduler gives it.
# Regenerate with an interpreter that has torch 1.13 and numpy:
#   /usr/bin/python3 tests/reference/gen_optim_refs.py
import math
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


def warmup_then(n, after):
    """HuggingFace's form: lr·s/n for s < n, then after(s − n) (a factor)."""
    return lambda s: s / max(1, n) if s < n else after(s - n)


def hf_cosine(n, total):
    """transformers.get_cosine_schedule_with_warmup(num_cycles=0.5)'s lambda."""
    return warmup_then(n, lambda s: max(0.0, 0.5 * (1.0 + math.cos(math.pi * s / max(1, total - n)))))


def lambda_lr(f):
    return lambda o: torch.optim.lr_scheduler.LambdaLR(o, f)


TRAIN_STEPS = 6
# name: (optimizer factory, scheduler factory or None, clip_grad_norm max_norm or None)
TRAIN_CASES = {
    "adamw": (lambda p: torch.optim.AdamW(p, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1), None, None),
    "adamw_defaults": (lambda p: torch.optim.AdamW(p), None, None),
    "sgd_clipped": (lambda p: torch.optim.SGD(p, lr=0.5), None, 0.05),
    "sgd_not_clipped": (lambda p: torch.optim.SGD(p, lr=0.5), None, 10.0),
    "adam_clipped": (lambda p: torch.optim.Adam(p, lr=0.01), None, 0.05),
    "momentum_clipped": (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8), None, 0.05),
    "adamw_warmup_cosine_clipped": (lambda p: torch.optim.AdamW(p, lr=0.02, weight_decay=0.05),
                                    lambda_lr(hf_cosine(2, 5)), 0.1),
    "sgd_exponential": (lambda p: torch.optim.SGD(p, lr=0.5),
                        lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.7), None),
    "sgd_cosine_min_lr": (lambda p: torch.optim.SGD(p, lr=0.5),
                          lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=6, eta_min=0.1), None),
}

SCHEDULE_STEPS = 12
# name: scheduler factory, on SGD(lr = 0.1)
SCHEDULES = {
    "exponential": lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9),
    "exponential_every3": lambda_lr(lambda s: 0.9 ** (s // 3)),
    "cosine_min_lr": lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=8, eta_min=0.01),
    "warmup4_cosine10": lambda_lr(hf_cosine(4, 10)),
    "warmup3_constant": lambda_lr(warmup_then(3, lambda s: 1.0)),
    "warmup2_step": lambda_lr(warmup_then(2, lambda s: 0.5 ** (s // 3))),
    "warmup3_exponential": lambda_lr(warmup_then(3, lambda s: 0.8 ** s)),
}


def run(make_opt, make_sched, steps=STEPS, clip=None):
    W = torch.tensor(W0.astype(np.float64), requires_grad=True)
    b = torch.tensor(b0.astype(np.float64), requires_grad=True)
    X, T = torch.tensor(x.astype(np.float64)), torch.tensor(t.astype(np.int64))
    opt = make_opt([W, b])
    sched = make_sched(opt) if make_sched else None
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(X @ W + b, T).backward()
        if clip is not None:
            norm = torch.nn.utils.clip_grad_norm_([W, b], clip)
            print("  grad norm", float(norm), "clipped" if norm > clip else "not clipped")
        opt.step()
        if sched:
            sched.step()
    return W.detach().numpy(), b.detach().numpy()


def lrs(make_sched):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    sched = make_sched(opt)
    out = []
    for _ in range(SCHEDULE_STEPS):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(out, dtype=np.float64)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, a in {"x": x, "t": t, "W0": W0, "b0": b0}.items():
        np.save(os.path.join(OUT, name + ".npy"), a)
    for name, (make_opt, make_sched) in CASES.items():
        W, b = run(make_opt, make_sched)
        np.save(os.path.join(OUT, name + "_W.npy"), W)
        np.save(os.path.join(OUT, name + "_b.npy"), b)
        print(name, W.reshape(-1), b)
    for name, (make_opt, make_sched, clip) in TRAIN_CASES.items():
        print(name)
        W, b = run(make_opt, make_sched, TRAIN_STEPS, clip)
        np.save(os.path.join(OUT, name + "_W.npy"), W)
        np.save(os.path.join(OUT, name + "_b.npy"), b)
        print(" ", W.reshape(-1), b)
    for name, make_sched in SCHEDULES.items():
        a = lrs(make_sched)
        np.save(os.path.join(OUT, "sched_" + name + ".npy"), a)
        print(name, a)


if __name__ == "__main__":
    main()
