#!/usr/bin/python3
"""Reference values for the activation and reduction ops of issue 21
(tests/test_ops_activations.cpp): PyTorch 1.13's forward values and autograd
gradients, in float64, of gelu, silu, elu, selu, softplus, clip, relu6, prelu,
erf, min, var, std and logsumexp.

Each case is one file data/activations/<case>.npz holding the operands (`x`,
and `slope` for prelu; float32 values stored as float64), the result `y`, an
upstream gradient `dy` and the gradients `grad_x` (`grad_slope`) of
sum(y * dy). The C++ test lists the same case names with the op and its
attributes. Deterministic: rerun with

    /usr/bin/python3 tests/reference/gen_activation_refs.py
"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "activations")
rng = np.random.default_rng(21)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def randn(*shape, scale=1.0):
    return f32(scale * rng.standard_normal(shape))


def save(name, fn, **operands):
    ts = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in operands.items()}
    y = fn(**ts)
    dy = randn(*y.shape)
    y.backward(torch.tensor(dy))
    arrays = {k: v for k, v in operands.items()}
    arrays["y"] = y.detach().numpy()
    arrays["dy"] = dy
    for k, t in ts.items():
        arrays["grad_" + k] = t.grad.numpy()
    np.savez(os.path.join(OUT, name + ".npz"), **arrays)


F = torch.nn.functional

# Grids around 0 (the kinks: exactly 0 included), moderate values, and large
# |x| where exp overflows or erf saturates.
around0 = f32([-1e-3, -1e-6, 0.0, 1e-6, 1e-3])
wide = f32(np.concatenate([np.linspace(-6, 6, 25), [-30.0, -12.0, 12.0, 30.0], around0]))  # 34 values


def unary_cases():
    save("erf", lambda x: torch.erf(x), x=wide.reshape(2, 17))
    save("erf_random", lambda x: torch.erf(x), x=randn(3, 4, 5))
    save("gelu", lambda x: F.gelu(x), x=wide.reshape(17, 2))
    save("gelu_random", lambda x: F.gelu(x), x=randn(2, 3, 7, scale=2))
    save("gelu_tanh", lambda x: F.gelu(x, approximate="tanh"), x=wide)
    save("silu", lambda x: F.silu(x), x=wide.reshape(2, 1, 17))
    save("elu", lambda x: F.elu(x), x=wide.reshape(34, 1))
    save("elu_alpha", lambda x: F.elu(x, alpha=0.5), x=randn(4, 5, scale=2))
    save("selu", lambda x: F.selu(x), x=wide)
    save("softplus", lambda x: F.softplus(x), x=f32(np.concatenate([wide, [-100.0, 19.9, 20.1, 100.0]])))
    # beta·x around the threshold 5: x around 2.5
    save("softplus_beta", lambda x: F.softplus(x, beta=2, threshold=5),
         x=f32([[-3, -1, 0, 1, 2.4, 2.49], [2.51, 2.6, 3, 10, -20, 0.25]]))
    clipx = f32([-2, -0.5, -0.4999, -0.1, 0, 0.7, 1.4999, 1.5, 1.6, 40])
    save("clip", lambda x: torch.clamp(x, min=-0.5, max=1.5), x=clipx.reshape(2, 5))
    save("clip_min", lambda x: torch.clamp(x, min=0.25), x=randn(3, 4))
    save("clip_max", lambda x: torch.clamp(x, max=-0.25), x=randn(7))
    save("relu6", lambda x: F.relu6(x), x=f32([-3, -1e-3, 0, 1e-3, 2, 5.999, 6, 6.001, 9, 100]))


def prelu(x, slope):
    return torch.where(x > 0, x, slope * x)


def prelu_cases():
    # as torch.nn.PReLU(3) on [N, C, H, W]: a [C, 1, 1] slope
    save("prelu_channels", prelu, x=randn(2, 3, 4, 5), slope=f32([[[0.25]], [[-0.1]], [[0.5]]]))
    save("prelu_vector", prelu, x=f32(np.concatenate([randn(11), [0.0]])).reshape(4, 3), slope=randn(3))
    save("prelu_scalar", prelu, x=randn(4, 3), slope=f32(0.2))
    save("prelu_outer", prelu, x=randn(2, 1, 4), slope=randn(3, 1))  # both broadcast


def reductions():
    x = randn(3, 4, 5)
    ties = f32(np.round(2 * rng.standard_normal((3, 4, 5))))  # small integers: many ties
    for name, fn in [
        ("min_all", lambda x: torch.amin(x)),
        ("min_axis1", lambda x: torch.amin(x, dim=1)),
        ("min_axes02_keep", lambda x: torch.amin(x, dim=(0, 2), keepdim=True)),
    ]:
        save(name, fn, x=x)
    save("min_ties", lambda x: torch.amin(x, dim=2), x=ties)
    save("min_ties_all", lambda x: torch.amin(x), x=ties)
    for op in ("var", "std"):
        f = getattr(torch, op)
        save(op + "_all", lambda x: f(x), x=x)
        save(op + "_axis1_keep", lambda x: f(x, dim=1, keepdim=True), x=x)
        save(op + "_axes02", lambda x: f(x, dim=(0, 2)), x=x)
        save(op + "_axis2_c0", lambda x: f(x, dim=2, correction=0), x=x)
        save(op + "_axis0_c2", lambda x: f(x, dim=0, correction=2), x=x)
        save(op + "_offset", lambda x: f(x, dim=1), x=f32(x + 100))  # a large mean: two passes, no cancellation
    big = f32([[1000, 999, -2, 998], [-1000, -1001, -1002, -999], [0.5, -0.5, 3, 80]])
    save("logsumexp_all", lambda x: torch.logsumexp(x, dim=(0, 1, 2)), x=x)
    save("logsumexp_axis1", lambda x: torch.logsumexp(x, dim=1), x=x)
    save("logsumexp_axes02_keep", lambda x: torch.logsumexp(x, dim=(0, 2), keepdim=True), x=x)
    save("logsumexp_large", lambda x: torch.logsumexp(x, dim=1), x=big)
    save("logsumexp_large_axis0", lambda x: torch.logsumexp(x, dim=0, keepdim=True), x=big)


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_default_dtype(torch.float64)
    unary_cases()
    prelu_cases()
    reductions()


if __name__ == "__main__":
    main()
