#!/usr/bin/env python3
# Reference values for tests/test_ops_loss.cpp, computed in float64 with
# PyTorch (and numpy for the course notes' formulas, which PyTorch lacks).
# Regenerate with `python3 tests/reference/gen_loss_refs.py` (an interpreter
# with torch and numpy, e.g. /usr/bin/python3) and paste the
# printed literals into the test; CI has no torch.
import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)


def show(name, t):
    a = np.asarray(t, dtype=np.float64).reshape(-1)
    print(f"{name}: {{" + ", ".join(f"{v:.10g}" for v in a) + "}")


X = torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0], [-1.5, 2.5, 2.5, -0.25]])
show("softmax X axis=-1", F.softmax(X, dim=-1))
show("softmax X axis=0", F.softmax(X, dim=0))
show("log_softmax X axis=-1", F.log_softmax(X, dim=-1))
show("log_softmax X axis=0", F.log_softmax(X, dim=0))
show("softmax [0.3,2.9,4.0]", F.softmax(torch.tensor([0.3, 2.9, 4.0]), dim=0))
show("softmax [1000,1001,1002]", F.softmax(torch.tensor([1000.0, 1001.0, 1002.0]), dim=0))
show("log_softmax [1000,1001,1002]", F.log_softmax(torch.tensor([1000.0, 1001.0, 1002.0]), dim=0))

labels = torch.tensor([3, 1, 2])
show("softmax_cross_entropy X labels", F.cross_entropy(X, labels))
P = torch.tensor([[0.1, 0.2, 0.3, 0.4], [1.0, 0.0, 0.0, 0.0], [0.0, 0.5, 0.5, 0.0]])
show("softmax_cross_entropy X probs", F.cross_entropy(X, P))
show("softmax_cross_entropy X[0] label 0", F.cross_entropy(X[0:1], torch.tensor([0])))

# Course notes' cross_entropy_error on probabilities: -sum(t*log(p+1e-7))/N.
Pr = np.array([[0.1, 0.7, 0.2], [0.25, 0.25, 0.5]])
lab = np.array([1, 2])
show("cross_entropy Pr labels", -np.sum(np.log(Pr[np.arange(2), lab] + 1e-7)) / 2)
Tp = np.array([[0.0, 1.0, 0.0], [0.2, 0.3, 0.5]])
show("cross_entropy Pr probs", -np.sum(Tp * np.log(Pr + 1e-7)) / 2)
y = np.array([0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0])
show("cross_entropy notes t=2", -np.log(y[2] + 1e-7))
show("cross_entropy notes t=7", -np.log(y[7] + 1e-7))
show("sse notes t=2", 0.5 * np.sum((y - np.eye(10)[2]) ** 2))

A = torch.tensor([[0.5, -1.0, 2.0], [3.0, 0.25, -0.75]])
B = torch.tensor([[1.0, 1.0, 1.0], [2.0, -0.5, 0.0]])
show("mse A B", F.mse_loss(A, B))
show("sse A B", 0.5 * torch.sum((A - B) ** 2))

p = torch.tensor([0.9, 0.2, 0.6, 0.01])
t = torch.tensor([1.0, 0.0, 0.3, 1.0])
show("bce p t", F.binary_cross_entropy(p, t))
show("bce clamp", F.binary_cross_entropy(torch.tensor([0.0, 1.0, 0.0, 1.0]), torch.tensor([1.0, 0.0, 0.0, 1.0])))
z = torch.tensor([[2.0, -3.0], [0.0, 40.0], [-40.0, 0.7]])
tz = torch.tensor([[1.0, 0.0], [0.5, 1.0], [1.0, 0.0]])
show("bce_with_logits z tz", F.binary_cross_entropy_with_logits(z, tz))

show("l1 A", torch.sum(torch.abs(A)))
show("l2 A", 0.5 * torch.sum(A ** 2))

show("one_hot [[2,0],[1,3]] depth 4", F.one_hot(torch.tensor([[2, 0], [1, 3]]), 4))
Xt = torch.tensor([[1.0, 5.0, 5.0, 2.0], [7.0, 7.0, 0.0, 7.0], [-1.0, -3.0, -0.5, -0.5]])
show("argmax Xt axis=-1", torch.argmax(Xt, dim=-1))
show("argmax Xt axis=0", torch.argmax(Xt, dim=0))

# Course notes' accuracy: fraction of rows whose argmax(y) equals the label.
Y = np.array([[0.1, 0.8, 0.1], [0.3, 0.1, 0.6], [0.2, 0.5, 0.3], [0.9, 0.05, 0.05]])
yl = np.array([1, 2, 0, 0])
show("accuracy Y labels", np.sum(np.argmax(Y, axis=1) == yl) / 4)

# nll, huber, kl_div, label smoothing and any-rank classification (issue 21).
LP = F.log_softmax(X, dim=-1)
show("nll log_softmax(X) labels", F.nll_loss(LP, labels))
show("nll X labels (raw scores)", F.nll_loss(X, labels))
show("huber A B", F.huber_loss(A, B))
show("huber A B delta=0.5", F.huber_loss(A, B, delta=0.5))
show("huber A B delta=3", F.huber_loss(A, B, delta=3.0))
show("kl_div log_softmax(X) P", F.kl_div(LP, P, reduction="batchmean"))
show("kl_div X P (raw)", F.kl_div(X, P, reduction="batchmean"))
show("softmax_cross_entropy X labels smoothing=0.1", F.cross_entropy(X, labels, label_smoothing=0.1))
show("softmax_cross_entropy X probs smoothing=0.2", F.cross_entropy(X, P, label_smoothing=0.2))
show("softmax_cross_entropy X labels smoothing=1", F.cross_entropy(X, labels, label_smoothing=1.0))
# Rank 3, a language model's [batch, T, V] with labels [batch, T], averaged
# over all batch·T positions as torch does after reshaping to [N·T, V].
Z3 = torch.tensor([[[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]], [[-2.0, 1.0, 0.25], [0.0, 3.0, 1.0]]])
T3 = torch.tensor([[2, 0], [1, 1]])
show("softmax_cross_entropy Z3 T3", F.cross_entropy(Z3.reshape(-1, 3), T3.reshape(-1)))
show("softmax_cross_entropy Z3 T3 smoothing=0.1", F.cross_entropy(Z3.reshape(-1, 3), T3.reshape(-1), label_smoothing=0.1))
show("softmax_cross_entropy_grad Z3 T3 smoothing=0.1",
     torch.autograd.functional.jacobian(
         lambda z: F.cross_entropy(z.reshape(-1, 3), T3.reshape(-1), label_smoothing=0.1), Z3))
show("nll log_softmax(Z3) T3", F.nll_loss(F.log_softmax(Z3, -1).reshape(-1, 3), T3.reshape(-1)))
show("accuracy Z3 T3", (Z3.argmax(-1) == T3).double().mean())
