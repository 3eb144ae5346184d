"""The character transformer of examples/transformer/char_transformer.nn in
PyTorch, layer for layer and initialized the same way, for the timing in
bench/torch_reference.py and the training comparison in
examples/transformer/torch_char_transformer.py.

nnc's layers and their PyTorch counterparts:
  embedding(x, vocab, d, init = normal(0.02))  nn.Embedding, N(0, 0.02)
  param pos = normal(0.02)                     a [context, d] parameter, N(0, 0.02)
  transformer_block(h, heads)                  Block: pre-norm, h + attn(ln1(h)), then
                                               + fc2(gelu(fc1(ln2(h)))), ff = 4d
  multihead_attention                          one [d, 3d] q/k/v Linear, causal softmax
                                               over each head of d/heads, an out Linear
  affine layers inside the block               nn.Linear's default init (uniform ±1/sqrt(in))
  dense(h, vocab)                              he(): N(0, 2/d) weights, zero bias
  softmax_cross_entropy(logits, t)             F.cross_entropy over every position
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    def __init__(self, d, heads, causal=True, fused=False):
        super().__init__()
        self.heads, self.causal, self.fused = heads, causal, fused
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)
        q, k, v = (z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        if self.causal:
            s = s.masked_fill(torch.triu(torch.ones(t, t, dtype=torch.bool, device=x.device), 1), float("-inf"))
        o = F.softmax(s, dim=-1) @ v
        return self.out(o.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d, heads, ff=None):
        super().__init__()
        ff = ff or 4 * d
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d, heads)
        self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)

    def forward(self, h):
        h = h + self.attn(self.ln1(h))
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))


class CharTransformer(nn.Module):
    def __init__(self, vocab=256, context=128, d=128, heads=4, layers=4):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        nn.init.normal_(self.tok.weight, 0.0, 0.02)
        self.pos = nn.Parameter(torch.randn(context, d) * 0.02)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        with torch.no_grad():
            self.head.weight.normal_(0.0, math.sqrt(2.0 / d))
            self.head.bias.zero_()

    def forward(self, x):
        h = self.tok(x) + self.pos
        for blk in self.blocks:
            h = blk(h)
        return self.head(self.ln_f(h))


def loss_fn(logits, t):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), t.reshape(-1))


def adamw_cosine(model, lr, weight_decay, warmup, total):
    """AdamW with nnc's `warmup = N` + `cosine(total = T)`, HuggingFace's
    get_cosine_schedule_with_warmup: lr·s/N for steps s < N (s from 0),
    then lr·½(1 + cos(π·(s − N)/(T − N)))."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)

    def factor(step):
        if step < warmup:
            return step / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)
