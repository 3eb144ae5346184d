#!/bin/bash
# Issue 22's figures in one run, back to back (docs/distributed.md): the
# simple_convnet run on 2 ranks × 1 thread against 1 process × 2 threads
# (accuracy, curves side by side, samples/s), the parameter difference
# after one epoch on the same global batches, the all-reduce wait with and
# without overlap over a sweep of bucket sizes, and the numbers the scaling
# model starts from. Needs a release build in build/ (with MPI) and
# Debian's fashion-mnist; not run by CI. Figures go to $1 (default
# /tmp/distributed-figures).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-/tmp/distributed-figures}
mkdir -p "$out"
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2 --mca pml ob1 --mca btl self,vader
     --mca btl_vader_single_copy_mechanism none)
model=examples/simple_convnet.nn
date -u; uptime; grep -m1 'model name' /proc/cpuinfo

echo "== 1 process x 2 threads, the train block's 3 epochs"
build/nnc run $model --threads 2 --quiet --plot "$out/one.svg" --save "$out/one" --overwrite | tee "$out/one.txt"
echo "== 2 ranks x 1 thread"
"${mpi[@]}" build/nnc run $model --threads 1 --quiet --plot "$out/two.svg" --save "$out/two" --overwrite |
  tee "$out/two.txt"

echo "== throughput in turns: one epoch of 1 process x 2 threads, then one of 2 ranks x 1 thread, three times"
for turn in 1 2 3; do
  echo "turn $turn, 1 process x 2 threads: $(build/nnc run $model --threads 2 --quiet --epochs 1 --test-limit 100 |
    grep -o '[0-9]* samples/s')"
  echo "turn $turn, 2 ranks x 1 thread: $("${mpi[@]}" build/nnc run $model --threads 1 --quiet --epochs 1 \
    --test-limit 100 | grep -o '[0-9]* samples/s.*step)')"
done

echo "== the largest parameter difference after 1, 10, 100, 300 and 600 steps (one epoch), the same global batches"
for it in 1 10 100 300 600; do
  build/nnc run $model --threads 2 --quiet --iterations $it --test-limit 100 --save "$out/one_$it" --overwrite >/dev/null
  "${mpi[@]}" build/nnc run $model --threads 1 --quiet --iterations $it --test-limit 100 --save "$out/two_$it" \
    --overwrite >/dev/null
  echo "$it steps: $(build/tests/nnc_mpi_compare_runs "$out/two_$it" "$out/one_$it" close 1e-2 1e-4 || true)"
done

echo "== the all-reduce wait, 2 ranks x 1 thread, one epoch, by bucket size, with and without overlap (two rounds)"
for round in 1 2; do
for mb in 25 1 0.5 0.1; do
  for overlap in on off; do
    flags=()
    [ $overlap = off ] && flags=(--no-fuse=overlap-allreduce)
    line=$("${mpi[@]}" build/nnc run $model --threads 1 --quiet --epochs 1 --test-limit 100 \
           --bucket-mb $mb "${flags[@]}" | grep -E '^(data-parallel|epoch 1:)' | tr '\n' ' ')
    echo "round $round, bucket-mb $mb, overlap $overlap: $(grep -o 'in [0-9]* bucket[s]*' <<<"$line"), \
$(grep -o '[0-9]* samples/s' <<<"$line"), $(grep -o 'waiting on the all-reduce.*step)' <<<"$line")"
  done
done
done

echo "== compute per sample, 1 thread (the scaling model's input)"
build/nnc bench $model --threads 1 --min-time 1 | grep -E 'train|infer'
build/nnc bench examples/transformer/char_transformer.nn --threads 1 --set vocab=114 --min-time 1 | grep -E 'train|infer'

# The two runs' curves side by side in one SVG.
/usr/bin/python3 - "$out/one.svg" "$out/two.svg" "$out/curves.svg" <<'PY'
import re, sys
parts = [open(p).read() for p in sys.argv[1:3]]
sizes = [tuple(float(v) for v in re.search(r'<svg[^>]*width="([\d.]+)"[^>]*height="([\d.]+)"', s).groups()) for s in parts]
titles = ["1 process x 2 threads", "mpirun -np 2, 1 thread each"]
w, h = sum(s[0] for s in sizes), max(s[1] for s in sizes) + 24
body, x = "", 0
for s, (sw, sh), t in zip(parts, sizes, titles):
    inner = re.sub(r'^.*?<svg[^>]*>', '', s, count=1, flags=re.S).rsplit('</svg>', 1)[0]
    body += f'<text x="{x + sw / 2}" y="16" text-anchor="middle" font-family="sans-serif" font-size="14">{t}</text>\n'
    body += f'<svg x="{x}" y="24" width="{sw}" height="{sh}">{inner}</svg>\n'
    x += sw
open(sys.argv[3], "w").write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">\n{body}</svg>\n')
PY
echo "curves: $out/curves.svg"
date -u; uptime
