// nnc's sgemm against OpenBLAS's cblas_sgemm on square sizes and on the
// shapes the example models produce (dense layers forward and backward,
// im2col convolution), at 1 and 2 threads. The two libraries run the same
// case back to back so that a noisy machine slows both alike; at the end a
// table gives each case's GFLOP/s side by side (best repetition of each) and
// the ratio nnc / OpenBLAS, and nnc's share of the FMA peak (bench/fma_peak.h,
// measured in the same run: t threads are judged against t × the 1-thread
// peak). Without OpenBLAS (NNC_HAVE_OPENBLAS undefined) only nnc runs.
//
// Batched cases (batch > 1) are char_transformer's batched matmuls, the
// products of attention spelt out (expand-attention, --no-fuse=attention):
// 32 windows × 4 heads, 128 positions, 32 dims per head. They run as the
// lowering runs a batched matmul (compiler/ops/matmul_ops.cpp): one sgemm per
// batch entry, the entries split over the threads; OpenBLAS the same way.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "bench/fma_peak.h"
#include "runtime/gemm.h"
#include "runtime/parallel.h"

#ifdef NNC_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

struct Shape {
  const char* name;
  bool transA, transB;
  int64_t M, N, K;
  int64_t batch = 1;
};

const Shape kShapes[] = {
    {"square 64", false, false, 64, 64, 64},
    {"square 128", false, false, 128, 128, 128},
    {"square 256", false, false, 256, 256, 256},
    {"square 512", false, false, 512, 512, 512},
    {"square 1024", false, false, 1024, 1024, 1024},
    // mnist_mlp's first layer, batch 100: x·W, dW = xᵀ·dy, dx = dy·Wᵀ.
    {"100x784 . 784x40", false, false, 100, 40, 784},
    {"(784x100)T . 100x40", true, false, 784, 40, 100},
    {"100x40 . (784x40)T", false, true, 100, 784, 40},
    // simple_convnet's dense layer on 4320 features, and its backward.
    {"100x4320 . 4320x100", false, false, 100, 100, 4320},
    {"(4320x100)T . 100x100", true, false, 4320, 100, 100},
    {"100x100 . (4320x100)T", false, true, 100, 4320, 100},
    // simple_convnet's 5×5 convolution as im2col, 30 filters, batch 100,
    // and its backward: dW = colsᵀ·dy, dcols = dy·Wᵀ.
    {"57600x25 . 25x30", false, false, 57600, 30, 25},
    {"(57600x25)T . 57600x30", true, false, 25, 30, 57600},
    {"57600x30 . (25x30)T", false, true, 57600, 25, 30},
    // char_transformer (batch 32 × context 128 = 4096 rows, d 128): the qkv,
    // MLP and head projections forward, and fc2's backward.
    {"4096x128 . 128x384", false, false, 4096, 384, 128},
    {"4096x128 . 128x512", false, false, 4096, 512, 128},
    {"4096x512 . 512x128", false, false, 4096, 128, 512},
    {"4096x128 . 128x256", false, false, 4096, 256, 128},
    {"(4096x128)T . 4096x512", true, false, 128, 512, 4096},
    {"4096x128 . (512x128)T", false, true, 4096, 512, 128},
    // Its attention spelt out, 128 (window, head) pairs: scores q·kᵀ, then
    // probs·v; backward dP = dy·vᵀ, dq = dS·k, dk = dSᵀ·q (dv = Pᵀ·dy alike).
    {"128 x 128x32 . (128x32)T", false, true, 128, 128, 32, 128},
    {"128 x 128x128 . 128x32", false, false, 128, 32, 128, 128},
    {"128 x (128x128)T . 128x32", true, false, 128, 32, 128, 128},
};

struct Operands {
  std::vector<float> A, B, C;
  int64_t lda, ldb, ldc;
  explicit Operands(const Shape& s)
      : A(size_t(s.batch * s.M * s.K)), B(size_t(s.batch * s.K * s.N)), C(size_t(s.batch * s.M * s.N)),
        lda(s.transA ? s.M : s.K), ldb(s.transB ? s.K : s.N), ldc(s.N) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (float& x : A) x = u(rng);
    for (float& x : B) x = u(rng);
  }
};

void setFlops(benchmark::State& state, const Shape& s) {
  const double gflop = 2.0 * double(s.batch) * double(s.M) * double(s.N) * double(s.K) * 1e-9;
  state.counters["GFLOP/s"] = benchmark::Counter(gflop, benchmark::Counter::kIsIterationInvariantRate);
}

// C_i = op(A_i)·op(B_i) for each batch entry i, the entries split over the
// threads (one entry: the whole product, threaded inside).
template <class Gemm>
void batched(const Shape& s, Operands& o, Gemm gemm) {
  const int64_t sa = s.M * s.K, sb = s.K * s.N, sc = s.M * s.N;
  if (s.batch == 1) return gemm(o.A.data(), o.B.data(), o.C.data());
  nnc::parallelFor(s.batch, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) gemm(o.A.data() + i * sa, o.B.data() + i * sb, o.C.data() + i * sc);
  });
}

void BM_nnc(benchmark::State& state, Shape s, int threads) {
  nnc::setThreadCount(threads);
  Operands o(s);
  for (auto _ : state) {
    batched(s, o, [&](const float* a, const float* b, float* c) {
      nnc::sgemm(s.transA, s.transB, s.M, s.N, s.K, a, o.lda, b, o.ldb, c, o.ldc, false);
    });
    benchmark::ClobberMemory();
  }
  setFlops(state, s);
}

#ifdef NNC_HAVE_OPENBLAS
void BM_openblas(benchmark::State& state, Shape s, int threads) {
  openblas_set_num_threads(s.batch == 1 ? threads : 1);
  nnc::setThreadCount(threads);
  Operands o(s);
  for (auto _ : state) {
    batched(s, o, [&](const float* a, const float* b, float* c) {
      cblas_sgemm(CblasRowMajor, s.transA ? CblasTrans : CblasNoTrans, s.transB ? CblasTrans : CblasNoTrans, int(s.M),
                  int(s.N), int(s.K), 1.0f, a, int(o.lda), b, int(o.ldb), 0.0f, c, int(o.ldc));
    });
    benchmark::ClobberMemory();
  }
  setFlops(state, s);
}
#endif

std::string caseName(const Shape& s, int threads) { return std::string(s.name) + " /" + std::to_string(threads); }

// All 1-thread cases come first: nnc's pool then grows from 1 to 2 threads
// once, before its first parallel job, rather than being resized between
// jobs (each resize respawns the pool's workers).
void registerAll() {
  for (int threads : {1, 2})
    for (const Shape& s : kShapes) {
      benchmark::RegisterBenchmark(("nnc: " + caseName(s, threads)).c_str(), BM_nnc, s, threads)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
#ifdef NNC_HAVE_OPENBLAS
      benchmark::RegisterBenchmark(("openblas: " + caseName(s, threads)).c_str(), BM_openblas, s, threads)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
#endif
    }
}

// Prints what the console reporter prints, keeping each case's best GFLOP/s
// per library for the closing table.
class TableReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred || r.run_type != Run::RT_Iteration) continue;
      const std::string name = r.benchmark_name();
      const size_t colon = name.find(": ");
      const auto it = r.counters.find("GFLOP/s");
      if (colon == std::string::npos || it == r.counters.end()) continue;
      std::string key = name.substr(colon + 2);
      key = key.substr(0, key.find("/real_time"));
      double& best = (name.compare(0, colon, "nnc") == 0 ? nnc_ : blas_)[key];
      best = std::max(best, double(it->second));
      if (std::find(order_.begin(), order_.end(), key) == order_.end()) order_.push_back(key);
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    const double peak = nnc::bench::peakPerCore() * 1e-9;
    std::printf("\nFMA peak (%s, 1 thread, best of 5, this run): %.1f GFLOP/s\n", nnc::bench::fmaIsa().name, peak);
    std::printf("\n| shape | threads | nnc GFLOP/s | %% of peak | OpenBLAS GFLOP/s | ratio |\n|---|---|---|---|---|---|\n");
    for (const std::string& key : order_) {
      const size_t slash = key.rfind(" /");
      const double n = nnc_[key], b = blas_.count(key) ? blas_[key] : 0.0;
      const int threads = std::stoi(key.substr(slash + 2));
      std::printf("| %s | %d | %.1f | %.0f %% | ", key.substr(0, slash).c_str(), threads, n, 100 * n / (peak * threads));
      if (b > 0)
        std::printf("%.1f | %.2f |\n", b, n / b);
      else
        std::printf("- | - |\n");
    }
    std::printf("\nnnc kernels: %s\n", nnc::sgemmIsa());
  }

 private:
  std::map<std::string, double> nnc_, blas_;
  std::vector<std::string> order_;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  registerAll();
  TableReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  return 0;
}
