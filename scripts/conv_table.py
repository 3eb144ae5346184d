#!/usr/bin/python3
"""The conv-layer table of issue 19 as markdown, from bench/bench_conv.cpp.

  /usr/bin/python3 scripts/conv_table.py [--bench build/bench/bench_conv]
      [--json FILE] [--save FILE] [-- extra benchmark flags]

Runs bench_conv with --benchmark_format=json (or reads FILE given by --json,
e.g. one written by --save or by --benchmark_out) and prints: the FMA peak
and triad bandwidths measured in that run, then one row per shape ×
direction × algorithm × threads with ms per call, GFLOP/s (2 · the direct
method's multiply-adds), % of the FMA peak (threads × the 1-thread peak) and,
for the depthwise shapes, % of the DRAM triad bandwidth at that thread count.
The fastest algorithm of each shape, direction and thread count is in bold.

--cpu-time judges the rows by the process's CPU time instead of the wall
clock (for a shared machine, where the wall clock counts the time other
processes held the cores): ms is CPU time ÷ threads, GFLOP/s per that, and
% of peak against the peak_fma/T:1 row's GFLOP/s per CPU-second, % of
bandwidth against the triad_dram row's bytes per CPU-second of its threads.
A thread pool that spins while it waits counts its spinning as CPU time, so
2-thread imbalance still shows.
Standard library only.
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Shape names in bench_conv.cpp, in table order, and how the table writes them.
SHAPES = {
    "3x3_32-32_28": "3×3 p1 32→32 @28²",
    "3x3_64-64_14": "3×3 p1 64→64 @14²",
    "3x3_128-128_7": "3×3 p1 128→128 @7²",
    "3x3_1-32_28": "3×3 p1 1→32 @28²",
    "3x3s2_32-64_28": "3×3 s2 p1 32→64 @28²→14²",
    "1x1_64-128_7": "1×1 64→128 @7²",
    "1x1_128-64_14": "1×1 128→64 @14²",
    "dw3x3_64_14": "dw 3×3 p1 64 ch @14²",
    "dw3x3s2_64_14": "dw 3×3 s2 p1 64 ch @14²→7²",
    "5x5_1-30_28_n100": "5×5 1→30 @28² (N=100)",
}
DIRS = {"forward": "forward", "input_grad": "input grad", "weight_grad": "weight grad"}


def to_ms(b, key="real_time"):
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
    return b[key] * scale


def load(args):
    if args.json:
        with open(args.json) as f:
            return json.load(f)
    cmd = [args.bench, "--benchmark_format=json"] + args.extra
    print(f"running {' '.join(cmd)}", file=sys.stderr, flush=True)
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"{args.bench} failed (exit {p.returncode})")
    data = json.loads(p.stdout)
    if args.save:
        with open(args.save, "w") as f:
            f.write(p.stdout)
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", default=os.path.join(ROOT, "build", "bench", "bench_conv"))
    ap.add_argument("--json", help="read this JSON instead of running the benchmark")
    ap.add_argument("--save", help="also write the benchmark's JSON here")
    ap.add_argument("--cpu-time", action="store_true", help="judge rows by process CPU time (shared machines)")
    ap.add_argument("extra", nargs="*", help="flags passed to the benchmark (after --)")
    args = ap.parse_args()
    data = load(args)

    limits, rows = {}, []
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        name = b["name"]
        if name.startswith(("peak_fma", "triad_", "tile_l1")):
            kind, arg = name.split("/")[:2]
            limits[(kind, int(arg.split(":")[-1]))] = b
            continue
        if not name.startswith("conv/"):
            continue
        _, shape, direction, algo, threads = name.split("/")[:5]
        rows.append({"shape": shape, "dir": direction, "algo": algo, "threads": int(threads.rstrip("T")),
                     "ms": to_ms(b), "gflops": b["GFLOP/s"], "pct_peak": b.get("pct_peak"),
                     "pct_bw": b.get("pct_bw"), "gbs": b.get("GB/s"), "peak": b.get("peak_GFLOP/s"),
                     "dram": b.get("dram_GB/s"), "cpu_ms": to_ms(b, "cpu_time")})

    ctx = data.get("context", {})
    print(f"Conv-layer table, `bench/bench_conv` ({ctx.get('date', '?')}, {ctx.get('num_cpus', '?')} CPUs "
          f"at {ctx.get('mhz_per_cpu', '?')} MHz, load average {ctx.get('load_avg', '?')}).")
    print()
    for t in (1, 2):
        p = limits.get(("peak_fma", t))
        dram, l2 = limits.get(("triad_dram", t)), limits.get(("triad_l2", t))
        parts = []
        if p:
            parts.append(f"FMA peak {p['GFLOP/s']:.1f} GFLOP/s ({p.get('label', '?')})")
        if dram:
            parts.append(f"DRAM triad {dram['GB/s']:.1f} GB/s")
        if l2:
            parts.append(f"L2 triad {l2['GB/s']:.1f} GB/s")
        if parts:
            print(f"- {t} thread{'s' if t > 1 else ''}: " + ", ".join(parts))
    tile = limits.get(("tile_l1", 1))
    if tile and "GFLOP/s" in tile:
        print(f"- the direct kernel's register tile alone over L1-resident operands ({tile.get('label', '?')}; "
              f"loads, broadcasts and FMAs, nothing else): {tile['GFLOP/s']:.1f} GFLOP/s, "
              f"{tile.get('pct_peak', 0):.0f} % of the 1-thread FMA peak: the ceiling of such a kernel here")
    bars = {}
    for r in rows:
        bars.setdefault(r["threads"], [r["peak"], None])
        if r["dram"] is not None:
            bars[r["threads"]][1] = r["dram"]
    for t, (peak, dram) in sorted(bars.items()):
        if peak is not None:
            print(f"- bar for the {t}-thread rows: {peak:.1f} GFLOP/s ({t} × the 1-thread FMA peak measured "
                  "when the first conv row finished)" + (f", DRAM triad {dram:.1f} GB/s" if dram else ""))
    print("- % of peak is against threads × the 1-thread FMA peak; % of bandwidth (depthwise rows) against "
          "the DRAM triad at that thread count, bytes = input + weights + output once.")
    print()

    if args.cpu_time:
        p1 = limits.get(("peak_fma", 1))
        if p1 is None:
            sys.exit("--cpu-time needs the peak_fma/T:1 row in the same run")
        peak_cpu = p1["GFLOP/s"] * to_ms(p1) / to_ms(p1, "cpu_time")  # GFLOP per CPU-second
        print(f"- --cpu-time: rows judged by process CPU time; FMA peak {peak_cpu:.1f} GFLOP per CPU-second "
              "(peak_fma/T:1); ms = CPU time ÷ threads")
        for t in (1, 2):
            tr = limits.get(("triad_dram", t))
            if tr is not None:
                print(f"- --cpu-time: DRAM triad on {t} thread{'s' if t > 1 else ''} "
                      f"{tr['GB/s'] * to_ms(tr) / (to_ms(tr, 'cpu_time') / t):.1f} GB/s (bytes ÷ CPU time per thread: as if its threads had their cores to themselves)")
        print()
        for r in rows:
            wall = r["ms"]
            r["ms"] = r["cpu_ms"] / r["threads"]
            r["gflops"] = r["gflops"] * wall / r["ms"]
            r["pct_peak"] = 100.0 * r["gflops"] / (r["threads"] * peak_cpu)
            tr = limits.get(("triad_dram", r["threads"]))
            if r["gbs"] is not None and tr is not None:
                # the triad's bytes per second of its threads' CPU time, likewise
                dram_cpu = tr["GB/s"] * to_ms(tr) / (to_ms(tr, "cpu_time") / r["threads"])
                r["gbs"] = r["gbs"] * wall / r["ms"]
                r["pct_bw"] = 100.0 * r["gbs"] / dram_cpu

    best = {}
    for r in rows:
        k = (r["shape"], r["dir"], r["threads"])
        if k not in best or r["ms"] < best[k]:
            best[k] = r["ms"]
    order = list(SHAPES)
    rows.sort(key=lambda r: (order.index(r["shape"]) if r["shape"] in order else len(order), r["shape"],
                             list(DIRS).index(r["dir"]) if r["dir"] in DIRS else 9, r["threads"], r["ms"]))
    print("| shape | direction | algo | threads | ms | GFLOP/s | % of peak | % of bandwidth |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        mark = best[(r["shape"], r["dir"], r["threads"])] == r["ms"]
        algo = f"**{r['algo']}**" if mark else r["algo"]
        bw = f"{r['pct_bw']:.0f} % ({r['gbs']:.1f} GB/s)" if r["pct_bw"] is not None else ""
        peak = f"{r['pct_peak']:.0f} %" if r["pct_peak"] is not None else ""
        print(f"| {SHAPES.get(r['shape'], r['shape'])} | {DIRS.get(r['dir'], r['dir'])} | {algo} | {r['threads']} | "
              f"{r['ms']:.3f} | {r['gflops']:.1f} | {peak} | {bw} |")


if __name__ == "__main__":
    main()
