#!/usr/bin/python3
"""Run `nnc onnx-test` over ONNX's own test data (Debian's libonnx-testdata)
and write the results into docs/onnx.md, between the markers
<!-- conformance:begin --> and <!-- conformance:end --> of its section
"## Conformance" (created, with the file, if absent).

    /usr/bin/python3 scripts/onnx_conformance.py [--nnc build/nnc] [--jobs 2]

Only the standard library: it runs where the build runs.
"""
import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/libonnx-testdata/data"
FOLDERS = ["node", "pytorch-converted", "pytorch-operator", "simple", "real"]
OUTCOMES = ["pass", "fail", "unsupported", "skipped"]
BEGIN, END = "<!-- conformance:begin -->", "<!-- conformance:end -->"


def run_folder(nnc, folder, jobs, timeout):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [nnc, "onnx-test", os.path.join(DATA, folder), "--json", f.name, "--jobs", str(jobs),
               "--timeout", str(timeout)]
        # Exit status 1 means some test failed: that is a result, not an error.
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode not in (0, 1) or os.path.getsize(f.name) == 0:
            sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
        with open(f.name) as j:
            return json.load(j)["tests"]


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def one_line(m):
    # As nnc onnx-test prints it: the lines joined, a caret line left out.
    parts = [l.strip() for l in m.split("\n") if l.strip(" ^~")]
    line = ""
    for p in parts:
        line += ("" if not line else " " if line.endswith(":") else "; ") + p
    line = line.replace("|", "\\|").replace("`", "'")
    return line if len(line) <= 200 else line[:197] + "..."


def report(results, command):
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip() or "?"
    lines = [f"Regenerated on {date} at {rev} by `{command}` (rtol 1e-4, atol 1e-5; integer and bool",
             "outputs exactly). A test passes when every output of every data set matches; unsupported:",
             "the importer refused the model; skipped: no model in the package or inputs over 50M elements.",
             "A model counts once under each op type its nodes use.", ""]
    per_folder = []
    for folder in FOLDERS:
        rs = [r for r in results if r["folder"] == folder]
        if rs:
            per_folder.append([folder, len(rs)] + [sum(r["outcome"] == o for r in rs) for o in OUTCOMES])
    per_folder.append(["**all**", len(results)] + [sum(r["outcome"] == o for r in results) for o in OUTCOMES])
    lines += [table(["folder", "tests"] + OUTCOMES, per_folder), ""]
    ops = {}
    for r in results:
        for op in r["ops"]:
            ops.setdefault(op, dict.fromkeys(OUTCOMES, 0))[r["outcome"]] += 1
    lines += [table(["op"] + OUTCOMES, [[op] + [n[o] for o in OUTCOMES] for op, n in sorted(ops.items())]), ""]
    failed = [r for r in results if r["outcome"] == "fail"]
    if failed:
        lines += ["Failing tests:", ""] + [f"- `{r['name']}`: {one_line(r['message'])}" for r in failed] + [""]
    return "\n".join(lines)


def write_doc(path, body):
    text = open(path).read() if os.path.exists(path) else "# ONNX\n"
    block = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text and END in text:
        a, rest = text.split(BEGIN, 1)
        text = a + block + rest.split(END, 1)[1]
    elif "## Conformance" in text:
        a, rest = text.split("## Conformance", 1)
        head, sep, tail = rest.partition("\n## ")
        text = a + "## Conformance" + head.rstrip() + "\n\n" + block + "\n" + (sep + tail if sep else "")
    else:
        text = text.rstrip() + "\n\n## Conformance\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nnc", default=os.path.join(ROOT, "build", "nnc"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "onnx.md"))
    a = ap.parse_args()
    if not os.path.isdir(DATA):
        sys.exit(f"no ONNX test data at {DATA}: install Debian's libonnx-testdata")
    results = []
    for folder in FOLDERS:
        if os.path.isdir(os.path.join(DATA, folder)):
            results += run_folder(a.nnc, folder, a.jobs, a.timeout)
            print(f"{folder}: {sum(r['folder'] == folder for r in results)} tests", file=sys.stderr)
    write_doc(a.doc, report(results, "/usr/bin/python3 scripts/onnx_conformance.py"))
    counts = ", ".join(f"{sum(r['outcome'] == o for r in results)} {o}" for o in OUTCOMES)
    print(f"{len(results)} tests: {counts}; written to {os.path.relpath(a.doc, ROOT)}")


if __name__ == "__main__":
    main()
