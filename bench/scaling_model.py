#!/usr/bin/env python3
"""The scaling model of docs/distributed.md: data-parallel efficiency on many
machines, on paper, from measured numbers.

  scaling_model.py NAME PARAMS US_PER_SAMPLE GLOBAL_BATCH [NAME PARAMS US GB ...]

PARAMS: the model's trained parameters (the gradient is 4 bytes each);
US_PER_SAMPLE: a train step's time per sample on one node (measured:
nnc bench --threads 1, train_step fused median / batch); GLOBAL_BATCH: the
model's batch. One node is one process as measured.

Ring all-reduce of S bytes over N nodes (Patarasuk & Yuan; what Open MPI's
coll/tuned uses for large messages): each node sends and receives
2(N-1)/N * S bytes in 2(N-1) messages, so
    T_ar = 2(N-1)/N * S / B + 2(N-1) * a
with B the link's usable bandwidth and a the per-message latency. A step
computes T_c = (GLOBAL_BATCH / N) * US_PER_SAMPLE; without overlap it takes
T_c + T_ar; with the backward overlapping the sums (the backward is about
2/3 of a step, and the last bucket cannot overlap), T_c + max(T_ar - 2/3 T_c,
T_ar / n_buckets) -- taken here as T_c + max(T_ar - 2/3 T_c, 0).
Efficiency = T_c / step time, against a perfect N-fold speed-up.
"""
import sys

LINKS = {  # usable bandwidth (bytes/s), per-message latency (s)
    "10 GbE": (1.1e9, 30e-6),    # TCP over 10 GbE: ~9 Gbit/s of payload, tens of µs per message
    "100 GbE": (11e9, 5e-6),     # RoCE/verbs over 100 GbE: ~90 Gbit/s, a few µs
}
NODES = (4, 16, 64)


def allreduce(bytes_, n, link):
    bw, lat = LINKS[link]
    return 2 * (n - 1) / n * bytes_ / bw + 2 * (n - 1) * lat


def main(argv):
    if len(argv) < 4 or len(argv) % 4:
        sys.exit(__doc__)
    for i in range(0, len(argv), 4):
        name, params, us, batch = argv[i], int(argv[i + 1]), float(argv[i + 2]) * 1e-6, int(argv[i + 3])
        s = 4 * params
        print(f"{name}: {params:,} params, {s / 2**20:.2f} MiB of gradients per step, {us * 1e6:.1f} µs per sample, "
              f"global batch {batch}")
        print(f"  {'link':8} {'nodes':>5} {'T_c ms':>8} {'T_ar ms':>8} {'eff.':>6} {'overlap':>8} "
              f"{'rows/node for 90%':>18} {'global batch':>13}")
        for link in LINKS:
            for n in NODES:
                tc = batch / n * us
                tar = allreduce(s, n, link)
                plain = tc / (tc + tar)
                over = tc / (tc + max(tar - 2 / 3 * tc, 0))
                rows = 9 * tar / us  # T_c >= 9 T_ar without overlap
                print(f"  {link:8} {n:5} {tc * 1e3:8.2f} {tar * 1e3:8.2f} {plain:6.0%} {over:8.0%} {rows:18.0f} "
                      f"{rows * n:13.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
