#!/usr/bin/python3
"""The whole-model table of issue 19 (docs/performance.md), from one run.

  /usr/bin/python3 scripts/model_table.py [--nnc build/nnc] [--min-time S]
      [--save FILE] [--json FILE]

Runs `nnc bench MODEL --threads T --min-time S --json` for vgg,
mobile_resnet and simple_convnet at T = 1 and 2, then
`bench/torch_reference.py --threads 1 --json` (PyTorch 1.13 eager for the
train step, TorchScript frozen + optimize_for_inference for inference;
Debian's python3-torch), one after the other, and prints one markdown row
per model and program: nnc fused and unfused medians on 1 thread, their
ratio, PyTorch's median, PyTorch ÷ nnc, nnc on 2 threads, 1T ÷ 2T and the
2-thread compile time, then each issue-19 target met or not. --save keeps
the raw results (JSON) and --json reprints a saved run. Standard library
only; nothing in CI runs it (torch is not a dependency).
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = [("vgg", "examples/cnn/vgg.nn"), ("mobile_resnet", "examples/cnn/mobile_resnet.nn"),
          ("simple_convnet", "examples/simple_convnet.nn")]
# PyTorch's rows for each model's train step and inference.
TORCH = {
    ("vgg", "train_step"): "vgg train step (Adam)",
    ("vgg", "infer"): "vgg infer (TorchScript frozen+opt)",
    ("mobile_resnet", "train_step"): "mobile_resnet train step (Adam)",
    ("mobile_resnet", "infer"): "mobile_resnet infer (TorchScript frozen+opt)",
    ("simple_convnet", "train_step"): "simple_convnet train step (Adam)",
    ("simple_convnet", "infer"): "simple_convnet infer (TorchScript frozen+opt)",
}


def run_json(cmd):
    print(f"running {' '.join(cmd)}", file=sys.stderr, flush=True)
    p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} exited with {p.returncode}")
    return json.loads(p.stdout)


def measure(args):
    out = {"start": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "loadavg": os.getloadavg(),
           "nnc": {}, "torch": None}
    for name, path in MODELS:
        for t in (1, 2):
            out["nnc"][f"{name}/{t}"] = run_json(
                [args.nnc, "bench", path, "--threads", str(t), "--min-time", str(args.min_time), "--json"])
    out["torch"] = run_json(["/usr/bin/python3", "bench/torch_reference.py", "--threads", "1", "--json",
                             "--scale", str(args.torch_scale)])
    out["end"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return out


def row(bench, program, variant):
    for r in bench["results"]:
        if r["program"] == program and r["variant"] == variant:
            return r
    sys.exit(f"no {program}/{variant} row in nnc bench's output")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nnc", default="build/nnc")
    ap.add_argument("--min-time", type=float, default=1.0)
    ap.add_argument("--torch-scale", type=float, default=1.0, help="torch_reference.py's --scale")
    ap.add_argument("--save", help="write the raw results here")
    ap.add_argument("--json", help="print a saved run instead of measuring")
    args = ap.parse_args()
    if args.json:
        with open(args.json) as f:
            data = json.load(f)
    else:
        data = measure(args)
        if args.save:
            with open(args.save, "w") as f:
                json.dump(data, f, indent=1)
    torch = {(r["workload"], r["threads"]): r for r in data["torch"]["results"]}

    print(f"One run, {data['start']} to {data['end']} (load average at the start "
          f"{', '.join(f'{x:.2f}' for x in data['loadavg'])}); PyTorch {data['torch']['meta']['torch']}, "
          f"{data['torch']['meta']['cpu']}.")
    print()
    print("| model | program | nnc fused 1T | nnc unfused 1T | fused ÷ unfused | PyTorch 1T | PyTorch ÷ nnc "
          "| nnc 2T | 1T ÷ 2T | compile ms (2T) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    verdicts = []
    for name, _ in MODELS:
        b1, b2 = data["nnc"][f"{name}/1"], data["nnc"][f"{name}/2"]
        for program, label in (("train_step", "train step"), ("infer", "inference")):
            f1, u1, f2 = row(b1, program, "fused"), row(b1, program, "unfused"), row(b2, program, "fused")
            tr = torch.get((TORCH[(name, program)], 1))
            vs = tr["median_ms"] / f1["median_ms"] if tr else float("nan")
            print(f"| {name} | {label} | {f1['median_ms']:.2f} | {u1['median_ms']:.2f} | "
                  f"{u1['median_ms'] / f1['median_ms']:.2f}× | {tr['median_ms'] if tr else float('nan'):.2f} | "
                  f"**{vs:.2f}×** | {f2['median_ms']:.2f} | {f1['median_ms'] / f2['median_ms']:.2f}× | "
                  f"{f2['compile_ms']:.0f} |")
            if name != "simple_convnet":
                want = 2.0 if program == "train_step" else 1.5
                verdicts.append(f"{name} {label} ≥ {want}× PyTorch: {vs:.2f}× "
                                f"({'met' if vs >= want else 'not met'})")
                s = f1["median_ms"] / f2["median_ms"]
                verdicts.append(f"{name} {label} 2 threads ≥ 1.8× one: {s:.2f}× ({'met' if s >= 1.8 else 'not met'})")
            elif program == "train_step":
                verdicts.append(f"simple_convnet train step ≥ 4.5× PyTorch: {vs:.2f}× "
                                f"({'met' if vs >= 4.5 else 'not met'})")
                s = u1["median_ms"] / f1["median_ms"]
                verdicts.append(f"simple_convnet fused ≥ 2× unfused: {s:.2f}× ({'met' if s >= 2 else 'not met'})")
            c = f2["compile_ms"]
            if program == "train_step":
                verdicts.append(f"{name} train step compiles in ≤ 500 ms on 2 threads: {c:.0f} ms "
                                f"({'met' if c <= 500 else 'not met'})")
    print()
    for v in verdicts:
        print(f"- {v}")


if __name__ == "__main__":
    main()
