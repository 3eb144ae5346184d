#!/usr/bin/python3
"""examples/transformer/char_transformer.nn trained in PyTorch with the same
settings, for the comparison in examples/README.md. Not run by CI.

  /usr/bin/python3 examples/transformer/torch_char_transformer.py [--iterations N] [--threads T]

The data are nnc's text("/usr/share/games/fortunes", context = 128,
unit = "byte") exactly (io/text_dataset.cpp): the folder's regular files
(symbolic links left out) sorted by name and concatenated, files holding a
NUL byte skipped; ids index the sorted set of bytes that occur; the first
floor(0.9·N) ids are training, the rest test; samples are non-overlapping
windows of 128 ids with next-byte labels, training windows shuffled each
epoch, batch 32 (whole batches), every test window scored. The model and
its initialization are bench/torch_transformer.py's; AdamW (lr 1e-3,
weight decay 0.01), 100 warmup steps then cosine over the run, gradient
norm clipped at 1, as the .nn file's train block. Prints the test loss in
bits per character at each log point, like `nnc run`.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
from torch_transformer import CharTransformer, adamw_cosine, loss_fn  # noqa: E402


def read_corpus(path):
    files = sorted(os.path.join(path, f) for f in os.listdir(path))
    data = b""
    for f in files:
        if os.path.islink(f) or not os.path.isfile(f):
            continue
        b = open(f, "rb").read()
        if b"\0" in b:
            continue
        data += b
    raw = np.frombuffer(data, dtype=np.uint8)
    vocab = np.unique(raw)
    ids = np.searchsorted(vocab, raw).astype(np.int64)
    return ids, len(vocab)


def windows(ids, begin, end, context):
    n = (end - begin - 1) // context
    x = np.stack([ids[begin + k * context: begin + (k + 1) * context] for k in range(n)])
    y = np.stack([ids[begin + k * context + 1: begin + (k + 1) * context + 1] for k in range(n)])
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/usr/share/games/fortunes")
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=100)
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    context, batch = 128, 32
    ids, vocab = read_corpus(a.data)
    train_tokens = int(math.floor(len(ids) * 0.9))
    xtr, ytr = windows(ids, 0, train_tokens, context)
    xte, yte = windows(ids, train_tokens, len(ids), context)
    print(f"{len(ids)} bytes ({train_tokens} train), vocabulary {vocab}, {len(xtr)} train / {len(xte)} test windows")
    model = CharTransformer(vocab=vocab, context=context)
    opt, sched = adamw_cosine(model, 1e-3, 0.01, 100, a.iterations)

    def test_bpc():
        model.eval()
        total, n = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(xte), 256):
                lg = model(xte[i:i + 256])
                total += loss_fn(lg, yte[i:i + 256]).item() * lg.shape[0]
                n += lg.shape[0]
        model.train()
        return total / n / math.log(2)

    step, start = 0, time.time()
    g = torch.Generator().manual_seed(a.seed)
    while step < a.iterations:
        perm = torch.randperm(len(xtr), generator=g)
        for b in range(0, len(perm) - batch + 1, batch):
            idx = perm[b:b + batch]
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            step += 1
            if step % a.log_every == 0 or step == a.iterations:
                print(f"step {step}: train loss {loss.item() / math.log(2):.4f} bits/char, "
                      f"test {test_bpc():.4f} bits/char, {time.time() - start:.0f} s", flush=True)
            if step == a.iterations:
                break
    print(f"final test loss {test_bpc():.4f} bits/char after {step} steps, {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
