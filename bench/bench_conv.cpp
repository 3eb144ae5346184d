// The conv-layer table of issue 19: every shape × direction (forward, input
// gradient = convTranspose2d, weight gradient) × algorithm × thread count,
// with the limits the rows are judged against measured in the same run.
//
//   peak_fma/<t>T      a register-only FMA loop at the widest vector width
//                      the CPU has (AVX-512, else AVX2+FMA, else scalar) on t
//                      threads; its GFLOP/s is the FMA peak. Each conv row's
//                      pct_peak divides by t × the 1-thread peak (the same
//                      loop, best of 5, measured once when the first conv row
//                      finishes), so the 2-thread rows are judged against two
//                      whole cores.
//   triad_dram/<t>T,   STREAM's triad a = b + s·c over 3 × 64 MiB (far
//   triad_l2/<t>T      beyond any L2 or L3 here) and 3 × 64 KiB per thread
//                      (L2-resident); bytes = 3 arrays × 4 B per element,
//                      write-allocate traffic not counted, as STREAM does.
//                      The depthwise rows' pct_bw divides their bytes
//                      (input + weights + output, each read or written once)
//                      by the DRAM triad on t threads (best of 5, measured
//                      once when the first depthwise row finishes).
//   tile_l1/T:1        the direct kernel's register tile (14 pixels × 2
//                      filter vectors on AVX-512, 6 × 2 on AVX2) over
//                      operands that stay in L1, nothing around it: the
//                      ceiling of a broadcast-based kernel on this core.
//   conv/<shape>/<dir>/<algo>/<t>T
//                      GFLOP/s = 2 · ConvGeom::macs() (the direct method's
//                      count, also for Winograd, whose "effective" rate may
//                      then exceed the peak) per second.
//
// The peak and conv rows also record the process's CPU time (all threads):
// on a shared machine, where the wall clock includes the time other
// processes held our cores, scripts/conv_table.py --cpu-time judges each row
// by the work per CPU-second against the peak loop's per CPU-second.
//
// Only the algorithms convAlgoFits accepts for a shape and direction are
// registered, so rows appear as the Direct, Winograd and Depthwise kernels
// land. scripts/conv_table.py turns the JSON output into the markdown table.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/fma_peak.h"
#include "runtime/conv.h"
#include "runtime/parallel.h"

namespace {

using namespace nnc::bench;

// Runs fn(thread index) on `threads` threads at once (thread 0 the caller).
template <class Fn>
void onThreads(int threads, Fn fn) {
  std::vector<std::thread> others;
  for (int t = 1; t < threads; ++t) others.emplace_back(fn, t);
  fn(0);
  for (auto& th : others) th.join();
}

void BM_peak_fma(benchmark::State& state) {
  const int threads = int(state.range(0));
  const FmaIsa isa = fmaIsa();
  const int64_t iters = 4'000'000;
  for (auto _ : state)
    onThreads(threads, [&](int) { benchmark::DoNotOptimize(isa.loop(iters)); });
  state.SetLabel(isa.name);
  state.counters["GFLOP/s"] =
      benchmark::Counter(fmaFlops(iters) * threads * double(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_peak_fma)
    ->Name("peak_fma")
    ->Arg(1)
    ->Arg(2)
    ->ArgName("T")
    ->MeasureProcessCPUTime()
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// ------------------------------------------------ register tile in L1 ----

// The ceiling of a broadcast-based kernel on this core: the direct
// kernel's register tile (R pixels × 2 filter vectors: per step 2 vector
// loads, R broadcasts, 2·R FMAs) over operands that stay in L1, with
// nothing else around it (no stores, transposes, cache misses). A conv
// row's % of peak is judged against the FMA peak; this row says how much of
// that a loop with loads can reach at all here.
constexpr int64_t kTileK = 64;

#ifdef NNC_BENCH_X86
__attribute__((target("avx512f"))) float tileLoop512(const float* x, const float* w, int64_t reps) {
  constexpr int R = 14;
  __m512 acc[R][2];
  for (auto& r : acc) r[0] = r[1] = _mm512_setzero_ps();
  for (int64_t rep = 0; rep < reps; ++rep) {
    for (int64_t k = 0; k < kTileK; ++k) {
      const __m512 w0 = _mm512_loadu_ps(w + k * 32), w1 = _mm512_loadu_ps(w + k * 32 + 16);
#pragma GCC unroll 14
      for (int r = 0; r < R; ++r) {
        const __m512 b = _mm512_set1_ps(x[k * 16 + r]);
        acc[r][0] = _mm512_fmadd_ps(b, w0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(b, w1, acc[r][1]);
      }
    }
    benchmark::ClobberMemory();
  }
  for (int r = 1; r < R; ++r) acc[0][0] = _mm512_add_ps(acc[0][0], _mm512_add_ps(acc[r][0], acc[r][1]));
  float out[16];
  _mm512_storeu_ps(out, acc[0][0]);
  return out[0];
}

__attribute__((target("avx2,fma"))) float tileLoop256(const float* x, const float* w, int64_t reps) {
  constexpr int R = 6;
  __m256 acc[R][2];
  for (auto& r : acc) r[0] = r[1] = _mm256_setzero_ps();
  for (int64_t rep = 0; rep < reps; ++rep) {
    for (int64_t k = 0; k < kTileK; ++k) {
      const __m256 w0 = _mm256_loadu_ps(w + k * 32), w1 = _mm256_loadu_ps(w + k * 32 + 8);
#pragma GCC unroll 6
      for (int r = 0; r < R; ++r) {
        const __m256 b = _mm256_set1_ps(x[k * 16 + r]);
        acc[r][0] = _mm256_fmadd_ps(b, w0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(b, w1, acc[r][1]);
      }
    }
    benchmark::ClobberMemory();
  }
  for (int r = 1; r < R; ++r) acc[0][0] = _mm256_add_ps(acc[0][0], _mm256_add_ps(acc[r][0], acc[r][1]));
  float out[8];
  _mm256_storeu_ps(out, acc[0][0]);
  return out[0];
}
#endif

void BM_tile_l1(benchmark::State& state) {
#ifdef NNC_BENCH_X86
  const FmaIsa isa = fmaIsa();
  std::vector<float> x(size_t(kTileK * 16), 1e-3f), w(size_t(kTileK * 32), 1e-3f);
  const int64_t reps = 100'000;
  const bool wide = isa.lanes == 16;
  if (isa.lanes < 8) {
    state.SkipWithError("no vector FMA");
    return;
  }
  for (auto _ : state)
    benchmark::DoNotOptimize(wide ? tileLoop512(x.data(), w.data(), reps) : tileLoop256(x.data(), w.data(), reps));
  const double flops = 2.0 * kTileK * (wide ? 14 : 6) * 2 * isa.lanes * double(reps);
  state.SetLabel(wide ? "avx512 14x2" : "avx2 6x2");
  state.counters["GFLOP/s"] = benchmark::Counter(flops * double(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
  state.counters["pct_peak"] =
      benchmark::Counter(flops * double(state.iterations()) / peakPerCore() * 100.0, benchmark::Counter::kIsRate);
#else
  state.SkipWithError("x86 only");
#endif
}
BENCHMARK(BM_tile_l1)->Name("tile_l1")->Arg(1)->ArgName("T")->MeasureProcessCPUTime()->UseRealTime()->Unit(
    benchmark::kMillisecond);

// ----------------------------------------------------------- bandwidth ----

struct Triad {
  int64_t elems;  // per array per thread
  std::vector<std::unique_ptr<float[]>> a, b, c;
  Triad(int threads, int64_t perThread) : elems(perThread) {
    for (int t = 0; t < threads; ++t) {
      a.emplace_back(new float[size_t(elems)]);
      b.emplace_back(new float[size_t(elems)]);
      c.emplace_back(new float[size_t(elems)]);
      std::fill_n(a.back().get(), elems, 0.0f);
      std::fill_n(b.back().get(), elems, 1.0f);
      std::fill_n(c.back().get(), elems, 2.0f);
    }
  }
  void run(int threads) {
    onThreads(threads, [&](int t) {
      float* __restrict x = a[size_t(t)].get();
      const float* __restrict y = b[size_t(t)].get();
      const float* __restrict z = c[size_t(t)].get();
      for (int64_t i = 0; i < elems; ++i) x[i] = y[i] + 3.0f * z[i];
      benchmark::ClobberMemory();
    });
  }
  double bytes(int threads) const { return 3.0 * 4.0 * double(elems) * threads; }
};

constexpr int64_t kDramElems = 16 << 20;  // 64 MiB per array (all threads together)
constexpr int64_t kL2Elems = 16 << 10;    // 64 KiB per array per thread

// The DRAM triad's bytes/s on t threads, measured once per t (best of 5).
double dramBandwidth(int threads) {
  static double bw[3] = {0, 0, 0};
  if (bw[threads] == 0) {
    Triad tr(threads, kDramElems / threads);
    tr.run(threads);
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = Clock::now();
      tr.run(threads);
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      bw[threads] = std::max(bw[threads], tr.bytes(threads) / s);
    }
  }
  return bw[threads];
}

void BM_triad(benchmark::State& state, bool dram) {
  const int threads = int(state.range(0));
  Triad tr(threads, dram ? kDramElems / threads : kL2Elems);
  tr.run(threads);
  for (auto _ : state) tr.run(threads);
  state.counters["GB/s"] =
      benchmark::Counter(tr.bytes(threads) * double(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
}
BENCHMARK_CAPTURE(BM_triad, dram, true)
    ->Name("triad_dram")
    ->Arg(1)
    ->Arg(2)
    ->ArgName("T")
    ->MeasureProcessCPUTime()
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_triad, l2, false)
    ->Name("triad_l2")
    ->Arg(1)
    ->Arg(2)
    ->ArgName("T")
    ->MeasureProcessCPUTime()
    ->UseRealTime();

// -------------------------------------------------------- convolutions ----

struct Shape {
  const char* name;
  nnc::ConvGeom g;  // {n, c, h, w, f, kh, kw, sh, sw, ph, pw, groups}
};

const Shape kShapes[] = {
    {"3x3_32-32_28", {64, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1}},
    {"3x3_64-64_14", {64, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1}},
    {"3x3_128-128_7", {64, 128, 7, 7, 128, 3, 3, 1, 1, 1, 1, 1}},
    {"3x3_1-32_28", {64, 1, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1}},
    {"3x3s2_32-64_28", {64, 32, 28, 28, 64, 3, 3, 2, 2, 1, 1, 1}},
    {"1x1_64-128_7", {64, 64, 7, 7, 128, 1, 1, 1, 1, 0, 0, 1}},
    {"1x1_128-64_14", {64, 128, 14, 14, 64, 1, 1, 1, 1, 0, 0, 1}},
    {"dw3x3_64_14", {64, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 64}},
    {"dw3x3s2_64_14", {64, 64, 14, 14, 64, 3, 3, 2, 2, 1, 1, 64}},
    {"5x5_1-30_28_n100", {100, 1, 28, 28, 30, 5, 5, 1, 1, 0, 0, 1}},
};

const nnc::ConvDir kDirs[] = {nnc::ConvDir::Forward, nnc::ConvDir::InputGrad, nnc::ConvDir::WeightGrad};
const char* dirName(nnc::ConvDir d) {
  return d == nnc::ConvDir::Forward ? "forward" : d == nnc::ConvDir::InputGrad ? "input_grad" : "weight_grad";
}
const nnc::ConvAlgo kAlgos[] = {nnc::ConvAlgo::Gemm, nnc::ConvAlgo::Direct, nnc::ConvAlgo::Winograd,
                                nnc::ConvAlgo::Depthwise};

struct Tensors {
  std::vector<float> x, w, b, y, dy, dw, db, dx;
  explicit Tensors(const nnc::ConvGeom& g) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto fill = [&](std::vector<float>& v, int64_t n) {
      v.resize(size_t(n));
      for (float& e : v) e = u(rng);
    };
    fill(x, g.n * g.c * g.h * g.w);
    fill(w, g.f * g.patchSize());
    fill(b, g.f);
    fill(dy, g.n * g.f * g.oh() * g.ow());
    y.assign(dy.size(), 0.0f);
    dw.assign(w.size(), 0.0f);
    db.assign(b.size(), 0.0f);
    dx.assign(x.size(), 0.0f);
  }
};

void BM_conv(benchmark::State& state, nnc::ConvGeom g, nnc::ConvDir dir, nnc::ConvAlgo algo, int threads) {
  Tensors t(g);
  nnc::setThreadCount(threads);
  for (auto _ : state) {
    switch (dir) {
      case nnc::ConvDir::Forward:
        nnc::conv2d(g, t.x.data(), t.w.data(), t.b.data(), t.y.data(), nnc::kActNone, 0, algo);
        benchmark::DoNotOptimize(t.y.data());
        break;
      case nnc::ConvDir::InputGrad:
        nnc::convTranspose2d(g, t.dy.data(), t.w.data(), nullptr, t.dx.data(), algo);
        benchmark::DoNotOptimize(t.dx.data());
        break;
      case nnc::ConvDir::WeightGrad:
        // db as a train step asks for it: the bias gradient is part of this kernel.
        nnc::conv2dGradWeight(g, t.x.data(), t.dy.data(), t.dw.data(), t.db.data(), algo);
        benchmark::DoNotOptimize(t.dw.data());
        break;
    }
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * g.macs(), iters = double(state.iterations());
  state.counters["GFLOP/s"] = benchmark::Counter(flops * iters * 1e-9, benchmark::Counter::kIsRate);
  // kIsRate divides by the time, so flops / (threads · peak) per iteration gives the fraction.
  state.counters["pct_peak"] =
      benchmark::Counter(100.0 * flops * iters / (threads * peakPerCore()), benchmark::Counter::kIsRate);
  // The limits the percentages divide by, so every row carries its own bar.
  state.counters["peak_GFLOP/s"] = threads * peakPerCore() * 1e-9;
  if (g.groups > 1 && g.groups == g.c) {
    // Each direction touches two activations and the weights once: forward x, w → y;
    // input gradient dy, w → dx; weight gradient x, dy → dw.
    const double act = 4.0 * double(g.n * g.c * g.h * g.w), out = 4.0 * double(g.n * g.f * g.oh() * g.ow()),
                 wts = 4.0 * double(g.f * g.patchSize());
    const double bytes = act + out + wts;
    state.counters["GB/s"] = benchmark::Counter(bytes * iters * 1e-9, benchmark::Counter::kIsRate);
    state.counters["pct_bw"] =
        benchmark::Counter(100.0 * bytes * iters / dramBandwidth(threads), benchmark::Counter::kIsRate);
    state.counters["dram_GB/s"] = dramBandwidth(threads) * 1e-9;
  }
  state.SetLabel(nnc::convAlgoName(algo));
}

// Registered before main runs (benchmark_main's), so the list follows
// convAlgoFits of the runtime this program was linked with.
const bool kRegistered = [] {
  for (const Shape& s : kShapes)
    for (nnc::ConvDir d : kDirs)
      for (nnc::ConvAlgo a : kAlgos) {
        if (!nnc::convAlgoFits(a, s.g, d)) continue;
        for (int threads : {1, 2}) {
          const std::string name = std::string("conv/") + s.name + "/" + dirName(d) + "/" + nnc::convAlgoName(a) +
                                   "/" + std::to_string(threads) + "T";
          benchmark::RegisterBenchmark(name.c_str(), BM_conv, s.g, d, a, threads)
              ->Unit(benchmark::kMillisecond)
              ->MeasureProcessCPUTime()
              ->UseRealTime()
              ->MinTime(0.2);
        }
      }
  return true;
}();

}  // namespace
