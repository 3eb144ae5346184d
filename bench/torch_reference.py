#!/usr/bin/python3
"""PyTorch (eager, CPU) reference timings for the workloads nnc benchmarks.

Run:  /usr/bin/python3 bench/torch_reference.py [--threads N] [--json]
      (shared machine: add --quiet-wait 45 --retries 2; see --help)

Without --threads it runs every workload with 1 and then 2 threads
(torch.set_num_threads). Debian's torch calls sgemm through OpenBLAS-pthreads,
whose own pool ignores torch's setting and fights the OpenMP pool, so OpenBLAS
is set to 1 thread (--blas-threads to change). Nothing in
CI runs this; it needs torch (Debian's python3-torch 1.13 is what it was
written against) and nothing else. By default glibc malloc is told not to hand
memory back to the OS (see tune_malloc; --stock-malloc turns that off).

Workloads (batch 100 unless noted), matching examples/*.nn:
  char_transformer examples/transformer/char_transformer.nn (issue 21), batch 32
                   windows of 128: train step AdamW + clipping (eager), inference
                   TorchScript frozen; --only char_transformer
  vgg, mobile_resnet  examples/cnn/*.nn (issue 19), batch 64: train step with
                   Adam lr 1e-3 (eager), inference TorchScript frozen
                   (+ optimize_for_inference); --only NAME runs just these
  mnist_mlp        784-40-20-10, relu, He init, softmax CE (mean), SGD lr 0.1
  simple_convnet   conv(1->30, 5x5, s1, p0, bias) - relu - maxpool 2x2/2 -
                   flatten - dense 4320->100 - relu - dense 100->10 - CE
                   train step with SGD lr 0.1 and with Adam lr 1e-3;
                   inference (softmax probs) eager under no_grad and TorchScript
                   frozen (+ optimize_for_inference when available)
  micro            conv fwd+bwd (a) N100 C1 28x28 F30 5x5, no input grad
                                (b) N64 C=F=64 56x56 3x3 pad 1, with input grad
                   F.cross_entropy fwd+bwd on logits 100x10 and 1024x1000
A train step is zero_grad + forward + loss + backward + optimizer.step.
Each workload: warm-up, then individual iterations timed with
time.perf_counter; median and min are reported in ms per step, plus how busy
the rest of the machine was meanwhile (rows measured under load are suspect).
"""

import argparse
import ctypes
import json
import math
import os
import platform
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

SEED = 42


# ---------------------------------------------------------------- models ----

def he_(t, fan_in):
    """he(): normal, std sqrt(2 / fan_in) (as nnc's he())."""
    with torch.no_grad():
        t.normal_(0.0, math.sqrt(2.0 / fan_in))
    return t


class MnistMlp(nn.Module):
    """examples/mnist_mlp.nn: relu(x@W1+b1) -> relu(.@W2+b2) -> .@W3+b3."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 40)
        self.fc2 = nn.Linear(40, 20)
        self.fc3 = nn.Linear(20, 10)
        for fc in (self.fc1, self.fc2, self.fc3):
            he_(fc.weight, fc.in_features)
            nn.init.zeros_(fc.bias)

    def forward(self, x):
        h1 = F.relu(self.fc1(x))
        h2 = F.relu(self.fc2(h1))
        return self.fc3(h2)


class SimpleConvNet(nn.Module):
    """examples/simple_convnet.nn (433,890 parameters)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 30, kernel_size=5, stride=1, padding=0, bias=True)
        self.fc1 = nn.Linear(30 * 12 * 12, 100)
        self.fc2 = nn.Linear(100, 10)
        he_(self.conv1.weight, 1 * 5 * 5)
        nn.init.zeros_(self.conv1.bias)
        for fc in (self.fc1, self.fc2):
            he_(fc.weight, fc.in_features)
            nn.init.zeros_(fc.bias)

    def forward(self, x):
        c = F.relu(self.conv1(x))                      # [N, 30, 24, 24]
        p = F.max_pool2d(c, kernel_size=2, stride=2)   # [N, 30, 12, 12]
        h = F.relu(self.fc1(torch.flatten(p, 1)))      # [N, 100]
        return self.fc2(h)                             # [N, 10]


class Vgg(nn.Module):
    """examples/cnn/vgg.nn: two stages of two 3x3 pad-1 convs (32 ch @28², 64 ch
    @14²), each closed by a 2x2 max-pool, dense 3136->128 - relu - dense 128->10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.conv4 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        c = F.relu(self.conv2(F.relu(self.conv1(x))))    # [N, 32, 28, 28]
        p = F.max_pool2d(c, kernel_size=2, stride=2)     # [N, 32, 14, 14]
        c = F.relu(self.conv4(F.relu(self.conv3(p))))    # [N, 64, 14, 14]
        p = F.max_pool2d(c, kernel_size=2, stride=2)     # [N, 64, 7, 7]
        h = F.relu(self.fc1(torch.flatten(p, 1)))
        return self.fc2(h)


class ConvBn(nn.Module):
    """conv2d (with bias, as nnc's layer call) followed by batchnorm (eps 1e-5, momentum 0.1)."""

    def __init__(self, c, f, k, stride=1, pad=0, groups=1):
        super().__init__()
        self.conv = nn.Conv2d(c, f, k, stride=stride, padding=pad, groups=groups)
        self.bn = nn.BatchNorm2d(f, eps=1e-5, momentum=0.1)

    def forward(self, x):
        return self.bn(self.conv(x))


class MobileResnet(nn.Module):
    """examples/cnn/mobile_resnet.nn: 3x3 stem 1->32 @28², stride-2 3x3 32->64,
    a residual block of two 3x3 64->64 @14², depthwise 3x3 stride 2 @14²->7²,
    1x1 64->128 @7², every conv batchnormed; global average pool, dense 128->10."""

    def __init__(self):
        super().__init__()
        self.stem = ConvBn(1, 32, 3, 1, 1)
        self.down = ConvBn(32, 64, 3, 2, 1)
        self.r1 = ConvBn(64, 64, 3, 1, 1)
        self.r2 = ConvBn(64, 64, 3, 1, 1)
        self.dw = ConvBn(64, 64, 3, 2, 1, groups=64)
        self.pw = ConvBn(64, 128, 1)
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        s = F.relu(self.stem(x))
        d = F.relu(self.down(s))
        r = self.r2(F.relu(self.r1(d)))
        b = F.relu(d + r)
        p = F.relu(self.pw(F.relu(self.dw(b))))
        return self.fc(p.mean((2, 3)))


class Probs(nn.Module):
    """Inference graph: output probs = softmax(logits)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return F.softmax(self.net(x), dim=1)


# -------------------------------------------------------------- timing -----

def time_fn(fn, budget_s, min_iters=5, max_iters=5000, warmup_s=None, min_warmup=3):
    """Warm up, then time single calls. Returns list of seconds per call."""
    if warmup_s is None:
        warmup_s = min(1.0, 0.25 * budget_s)
    t_end = time.perf_counter() + warmup_s
    n = 0
    while n < min_warmup or time.perf_counter() < t_end:
        fn()
        n += 1
    # estimate per-call cost from one more call to size the run
    t0 = time.perf_counter()
    fn()
    est = max(time.perf_counter() - t0, 1e-7)
    iters = int(min(max_iters, max(min_iters, budget_s / est)))
    samples = []
    pc = time.perf_counter
    for _ in range(iters):
        t0 = pc()
        fn()
        samples.append(pc() - t0)
    return samples


def cpu_ticks():
    """(busy seconds of the whole machine, own process CPU seconds), or None."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    t = os.times()
    return (sum(v[:8]) - idle) / hz, t.user + t.system


def other_load(before, after, wall):
    """Average number of CPUs kept busy by *other* processes during a run."""
    if before is None or after is None or wall <= 0:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / wall)


def summarize(name, samples, batch):
    med = statistics.median(samples)
    mn = min(samples)
    return {
        "workload": name,
        "iters": len(samples),
        "median_ms": med * 1e3,
        "min_ms": mn * 1e3,
        "samples_per_s_median": batch / med,
        "samples_per_s_best": batch / mn,
        "batch": batch,
    }


# ----------------------------------------------------------- workloads -----

def make_batch(n, shape, classes=10):
    g = torch.Generator().manual_seed(SEED)
    x = torch.rand((n,) + tuple(shape), generator=g)
    t = torch.randint(0, classes, (n,), generator=g, dtype=torch.long)
    return x, t


def train_step_fn(model, opt, x, t):
    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), t)  # mean over the batch
        loss.backward()
        opt.step()
    return step


def _openblas():
    """Debian's torch calls sgemm through libblas (OpenBLAS-pthread here), whose
    own thread pool ignores torch.set_num_threads: set it explicitly."""
    for name in ("libopenblas.so.0", "libopenblas.so"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_set_num_threads
            return lib
        except (OSError, AttributeError):
            continue
    return None


def set_threads(n, blas_threads=1):
    torch.set_num_threads(n)
    lib = _openblas()
    if lib is not None:
        lib.openblas_set_num_threads(blas_threads if blas_threads > 0 else n)
        return lib.openblas_get_num_threads()
    return None


def blas_info():
    lib = _openblas()
    if lib is None:
        return "unknown (no libopenblas loaded)"
    lib.openblas_get_config.restype = ctypes.c_char_p
    return lib.openblas_get_config().decode()


def tune_malloc():
    """Keep freed memory in the process: every fault-in is very costly in a VM
    whose freed pages go back to the host (here: ~40% of the time in the kernel,
    a simple_convnet step 10 ms -> 65 ms, depending on glibc's heap history).
    glibc only: no mmap for big blocks, never trim the heap. nnc preallocates
    its buffers, so this is the like-for-like setting. Returns True if applied."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4
        ok = libc.mallopt(M_MMAP_MAX, 0) == 1
        ok &= libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1) == 1
        ok &= libc.mallopt(M_TOP_PAD, 64 << 20) == 1
        return bool(ok)
    except (OSError, AttributeError):
        return False


QUIET_OK = 0.2  # a row measured with more CPUs busy elsewhere than this is suspect


def wait_quiet(max_s, need=3):
    """Wait (up to max_s) until other processes use < 0.1 CPU for `need` 1-s samples."""
    t0 = time.perf_counter()
    ok = 0
    while time.perf_counter() - t0 < max_s:
        a, w = cpu_ticks(), time.perf_counter()
        time.sleep(1.0)
        ol = other_load(a, cpu_ticks(), time.perf_counter() - w)
        if ol is None:
            break
        ok = ok + 1 if ol < 0.1 else 0
        if ok >= need:
            break
    return time.perf_counter() - t0


def bench_all(threads, scale, log, quiet_wait=0.0, retries=0, blas_threads=1, only=None):
    ob = set_threads(threads, blas_threads)
    log(f"threads: torch {torch.get_num_threads()}, openblas {ob}")
    results = []

    def measure(name, fn, batch, budget, **kw):
        c0, w0 = cpu_ticks(), time.perf_counter()
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        s = time_fn(fn, budget * scale, **kw)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        r = summarize(name, s, batch)
        r["threads"] = threads
        ol = other_load(c0, cpu_ticks(), time.perf_counter() - w0)
        r["other_cpus_busy"] = None if ol is None else round(ol, 2)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        r["sys_cpu_fraction"] = round((ru1.ru_stime - ru0.ru_stime) / max(1e-9, cpu), 3)
        r["minor_faults"] = ru1.ru_minflt - ru0.ru_minflt
        la = load_avg()
        r["loadavg_1min_after"] = None if la is None else round(la[0], 2)
        return r

    def run(name, fn, batch, budget, **kw):
        best = None
        for attempt in range(1 + retries):
            waited = wait_quiet(quiet_wait) if quiet_wait > 0 else 0.0
            log(f"  [{threads}T] {name} ..." + (f" (attempt {attempt + 1}, waited {waited:.0f} s for quiet)"
                                                 if quiet_wait > 0 else ""))
            r = measure(name, fn, batch, budget, **kw)
            r["attempts"] = attempt + 1
            log(f"      median {r['median_ms']:.4f} ms  min {r['min_ms']:.4f} ms  ({r['iters']} iters, "
                f"other processes busy {r['other_cpus_busy']} cpus, loadavg {r['loadavg_1min_after']}, "
                f"sys {r['sys_cpu_fraction']:.0%}, {r['minor_faults']} page faults)")
            ol = r["other_cpus_busy"]
            if best is None or (ol is not None and ol < best["other_cpus_busy"]):
                best = r
            if ol is None or ol <= QUIET_OK:
                break
        results.append(best)

    B = 100
    # --only picks the issue-19 models (section 4) alone.
    if not only:
        # 1. mnist_mlp train step (SGD lr 0.1)
        torch.manual_seed(SEED)
        mlp = MnistMlp()
        x, t = make_batch(B, (784,))
        run("mnist_mlp train step (SGD)",
            train_step_fn(mlp, torch.optim.SGD(mlp.parameters(), lr=0.1), x, t), B, 4.0)
        # mnist_mlp inference (probs), eager no_grad -- nnc also benches this
        mlp_probs = Probs(mlp).eval()

        def mlp_infer():
            with torch.no_grad():
                mlp_probs(x)
        run("mnist_mlp infer (eager, no_grad)", mlp_infer, B, 2.0)

        # 2. simple_convnet train step, SGD and Adam
        xc, tc = make_batch(B, (1, 28, 28))
        torch.manual_seed(SEED)
        net = SimpleConvNet()
        run("simple_convnet train step (SGD)",
            train_step_fn(net, torch.optim.SGD(net.parameters(), lr=0.1), xc, tc), B, 6.0)
        torch.manual_seed(SEED)
        net = SimpleConvNet()
        run("simple_convnet train step (Adam)",
            train_step_fn(net, torch.optim.Adam(net.parameters(), lr=1e-3), xc, tc), B, 6.0)

        # 3. simple_convnet inference: eager no_grad, TorchScript frozen
        torch.manual_seed(SEED)
        probs = Probs(SimpleConvNet()).eval()

        def infer_eager():
            with torch.no_grad():
                probs(xc)
        run("simple_convnet infer (eager, no_grad)", infer_eager, B, 3.0)

        scripted = torch.jit.freeze(torch.jit.script(probs))
        label = "simple_convnet infer (TorchScript frozen)"
        if hasattr(torch.jit, "optimize_for_inference"):
            scripted = torch.jit.optimize_for_inference(scripted)
            label = "simple_convnet infer (TorchScript frozen+opt)"
        with torch.no_grad():
            ref = probs(xc)
            got = scripted(xc)
            got = scripted(xc)
        if not torch.allclose(ref, got, atol=1e-4, rtol=1e-3):
            log(f"  WARNING: TorchScript output differs from eager (max abs {(ref - got).abs().max():.3g})")

        def infer_jit():
            with torch.no_grad():
                scripted(xc)
        run(label, infer_jit, B, 3.0, min_warmup=10)

    # 4. the issue-19 CNNs at batch 64 (Adam lr 1e-3): train step eager,
    # inference (probs) TorchScript frozen, as simple_convnet's
    for mname, cls in (("vgg", Vgg), ("mobile_resnet", MobileResnet)):
        if only and mname not in only:
            continue
        xm, tm = make_batch(64, (1, 28, 28))
        torch.manual_seed(SEED)
        net = cls()
        run(f"{mname} train step (Adam)",
            train_step_fn(net, torch.optim.Adam(net.parameters(), lr=1e-3), xm, tm), 64, 6.0)
        torch.manual_seed(SEED)
        pm = Probs(cls()).eval()  # eval: batchnorm uses its running statistics, as nnc's inference
        sm = torch.jit.freeze(torch.jit.script(pm))
        label = f"{mname} infer (TorchScript frozen)"
        if hasattr(torch.jit, "optimize_for_inference"):
            sm = torch.jit.optimize_for_inference(sm)
            label = f"{mname} infer (TorchScript frozen+opt)"
        with torch.no_grad():
            ref, got = pm(xm), sm(xm)
            got = sm(xm)
        if not torch.allclose(ref, got, atol=1e-4, rtol=1e-3):
            log(f"  WARNING: TorchScript output differs from eager (max abs {(ref - got).abs().max():.3g})")

        def infer_m(sm=sm, xm=xm):
            with torch.no_grad():
                sm(xm)
        run(label, infer_m, 64, 3.0, min_warmup=10)
    # 5. issue 21's character transformer (examples/transformer/char_transformer.nn,
    # bench/torch_transformer.py): batch 32 windows of 128 bytes; train step
    # AdamW with the gradient norm clipped at 1 (eager); inference, the
    # logits of one batch, TorchScript frozen
    if not only or "char_transformer" in only:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from torch_transformer import CharTransformer, loss_fn
        g = torch.Generator().manual_seed(SEED)
        # vocab 114: the distinct bytes of Debian's fortunes, which nnc run
        # sets from the data; compare with nnc bench --set vocab=114.
        xt = torch.randint(0, 114, (32, 128), generator=g)
        tt = torch.randint(0, 114, (32, 128), generator=g)
        torch.manual_seed(SEED)
        lm = CharTransformer(vocab=114)
        opt = torch.optim.AdamW(lm.parameters(), lr=1e-3, weight_decay=0.01)

        def lm_step():
            opt.zero_grad()
            loss = loss_fn(lm(xt), tt)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
            opt.step()
        run("char_transformer train step (AdamW)", lm_step, 32, 8.0)
        lm.eval()
        sm = torch.jit.freeze(torch.jit.script(lm))
        label = "char_transformer infer (TorchScript frozen)"
        if hasattr(torch.jit, "optimize_for_inference"):
            sm = torch.jit.optimize_for_inference(sm)
            label = "char_transformer infer (TorchScript frozen+opt)"

        def lm_infer():
            with torch.no_grad():
                sm(xt)
        run(label, lm_infer, 32, 4.0, min_warmup=5)
    if only:
        return results

    # 6. microbenchmarks
    g = torch.Generator().manual_seed(SEED)
    # (a) simple_convnet's conv, no input grad
    xa = torch.rand(100, 1, 28, 28, generator=g)
    wa = (torch.randn(30, 1, 5, 5, generator=g) * math.sqrt(2 / 25)).requires_grad_()
    ba = torch.zeros(30, requires_grad=True)
    gya = torch.randn(100, 30, 24, 24, generator=g)

    def conv_a():
        wa.grad = None
        ba.grad = None
        y = F.conv2d(xa, wa, ba)
        y.backward(gya)
    run("conv fwd+bwd N100 C1 28x28 F30 5x5 (dW,db)", conv_a, 100, 3.0)

    # (b) 64x64x56x56 3x3 pad 1, with input grad
    xb = torch.rand(64, 64, 56, 56, generator=g).requires_grad_()
    wb = (torch.randn(64, 64, 3, 3, generator=g) * math.sqrt(2 / 576)).requires_grad_()
    bb = torch.zeros(64, requires_grad=True)
    gyb = torch.randn(64, 64, 56, 56, generator=g)

    def conv_b():
        xb.grad = None
        wb.grad = None
        bb.grad = None
        y = F.conv2d(xb, wb, bb, padding=1)
        y.backward(gyb)
    run("conv fwd+bwd N64 C64 56x56 F64 3x3 p1 (dX,dW,db)", conv_b, 64, 6.0,
        min_iters=5, min_warmup=2, warmup_s=0.0)

    # softmax cross-entropy fwd+bwd on logits
    for n, k, budget in ((100, 10, 2.0), (1024, 1000, 3.0)):
        lg = torch.randn(n, k, generator=g).requires_grad_()
        lt = torch.randint(0, k, (n,), generator=g, dtype=torch.long)

        def ce(lg=lg, lt=lt):
            lg.grad = None
            F.cross_entropy(lg, lt).backward()
        run(f"softmax CE fwd+bwd {n}x{k}", ce, n, budget)

    return results


# ---------------------------------------------------------------- main -----

def load_avg():
    try:
        return os.getloadavg()
    except OSError:
        return None


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, action="append",
                    help="intra-op thread count (repeatable); default: 1 and 2")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    ap.add_argument("--blas-threads", type=int, default=1, metavar="N",
                    help="OpenBLAS threads (default 1; 0 = same as --threads). OpenBLAS-pthreads' "
                         "spinning pool fights torch's OpenMP pool: with 2 of each on 2 cores a "
                         "simple_convnet step took 14 ms instead of 8 ms")
    ap.add_argument("--stock-malloc", action="store_true",
                    help="leave glibc malloc as is (default: no mmap, no heap trim; see tune_malloc)")
    ap.add_argument("--quiet-wait", type=float, default=0.0, metavar="S",
                    help="before each workload wait up to S seconds for other processes to go idle "
                         "(shared machines; default 0 = don't wait)")
    ap.add_argument("--retries", type=int, default=0,
                    help="re-measure a workload up to this many times while other processes were "
                         f"busy (> {QUIET_OK} CPUs) during it; keeps the quietest attempt")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="multiply every time budget (default 1.0: about 40 s per thread count)")
    ap.add_argument("--only", action="append", choices=["vgg", "mobile_resnet", "char_transformer"],
                    help="run only this model (repeatable): its train step and inference")
    args = ap.parse_args()
    threads = args.threads or [1, 2]

    malloc_tuned = False if args.stock_malloc else tune_malloc()
    torch.set_num_interop_threads(1)
    torch.set_grad_enabled(True)
    def log(msg):  # progress goes to stderr so --json stdout stays clean
        print(msg, file=sys.stderr, flush=True)

    meta = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "blas": blas_info(),
        "malloc_tuned": malloc_tuned,
        "blas_threads": args.blas_threads,
        "loadavg_start": load_avg(),
    }
    t0 = time.time()
    results = []
    for n in threads:
        results += bench_all(n, args.scale, log, args.quiet_wait, args.retries, args.blas_threads, args.only)
    meta["loadavg_end"] = load_avg()
    meta["wall_s"] = round(time.time() - t0, 1)

    if args.json:
        print(json.dumps({"meta": meta, "results": results}, indent=2))
        return

    print(f"# PyTorch {meta['torch']} eager CPU reference  cpu: {meta['cpu']} ({meta['cpus']} cpus)")
    print(f"# blas: {meta['blas']} ({meta['blas_threads'] or 'same as torch'} thread(s)); convs use oneDNN (mkldnn={meta['mkldnn']}); "
          f"malloc tuned (no mmap/trim): {meta['malloc_tuned']}")
    print(f"# loadavg start {meta['loadavg_start']}  end {meta['loadavg_end']}  wall {meta['wall_s']} s")
    names = []
    for r in results:
        if r["workload"] not in names:
            names.append(r["workload"])
    by = {(r["workload"], r["threads"]): r for r in results}
    w = max(len(n) for n in names)
    hdr = f"{'workload':<{w}}"
    for n in threads:
        hdr += f" | {str(n) + 'T median ms':>13} {'min ms':>9} {'samples/s':>10} {'other':>5}"
    print(hdr)
    print("-" * len(hdr))
    for name in names:
        line = f"{name:<{w}}"
        for n in threads:
            r = by.get((name, n))
            if r is None:
                line += f" | {'-':>13} {'-':>9} {'-':>10} {'-':>5}"
            else:
                ol = r["other_cpus_busy"]
                line += (f" | {r['median_ms']:>13.4f} {r['min_ms']:>9.4f} "
                         f"{r['samples_per_s_median']:>10.0f} {'?' if ol is None else f'{ol:.2f}':>5}")
        print(line)
    print("# samples/s from the median; 'other' = CPUs kept busy by other processes while")
    print(f"# that row ran (/proc/stat minus this process); rows with other > {QUIET_OK} are suspect.")
    print("# /proc/stat may not see load from outside this container: check the loadavg too.")


if __name__ == "__main__":
    main()
