#!/bin/bash
# Issue 21's performance figures in one run, back to back (docs/performance.md,
# "The character transformer against PyTorch, one run"): nnc bench and
# PyTorch on char_transformer at 1 thread, the fused attention alone, the
# GEMM on the transformer's shapes with the FMA peak, the residual add's cost.
# Needs a release build in build/ and Debian's python3-torch; not run by CI.
set -euo pipefail
cd "$(dirname "$0")/.."
date -u; uptime
build/nnc bench examples/transformer/char_transformer.nn --threads 1 --set vocab=114
/usr/bin/python3 bench/torch_reference.py --only char_transformer --threads 1
build/nnc bench bench/models/causal_attention.nn --threads 1
build/bench/bench_gemm --benchmark_filter='(4096|128 x).* /1' --benchmark_min_time=0.5 2>&1 | sed -n '/FMA peak/,$p'
for f in residual_layernorm layernorm; do echo "== $f"; build/nnc bench bench/models/$f.nn --threads 1 | grep infer; done
date -u; uptime
