// Implicit-im2col convolutions (runtime/conv.h) against the explicit path
// the lowering used before them: an im2col buffer [N·OH·OW, C·KH·KW], one
// nnc_sgemm per group, and a permute to NCHW with the bias (forward), or
// dy permuted to rows and one transposed GEMM per group (weight gradient),
// or a GEMM into the whole column matrix and col2im (input gradient).
// Shapes: 0, simple_convnet's convolution (batch 100, 1×28×28, 30 filters
// 5×5); 1, a ResNet-style 3×3 layer (batch 64, 64×56×56, 64 filters, pad
// 1); 2, its stride-2 downsampling to 128 channels. The arguments are the
// shape and the thread count. The explicit path's buffers are allocated
// before the timing; the *_gemm_only variants time its GEMM alone (im2col
// and permutes done once outside the loop), the bound a faster im2col
// could reach.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <random>
#include <vector>

#include "runtime/conv.h"
#include "runtime/gemm.h"
#include "runtime/parallel.h"

namespace {

const nnc::ConvGeom kShapes[] = {
    {100, 1, 28, 28, 30, 5, 5, 1, 1, 0, 0, 1},
    {64, 64, 56, 56, 64, 3, 3, 1, 1, 1, 1, 1},
    {64, 64, 56, 56, 128, 3, 3, 2, 2, 1, 1, 1},
};

struct Data {
  nnc::ConvGeom g;
  std::vector<float> x, w, b, y, dy, dw, dx, col, rows;
  explicit Data(const nnc::ConvGeom& geom) : g(geom) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    auto fill = [&](std::vector<float>& v, int64_t n) {
      v.resize(size_t(n));
      for (float& e : v) e = u(rng);
    };
    const int64_t s = g.oh() * g.ow();
    fill(x, g.n * g.c * g.h * g.w);
    fill(w, g.f * g.patchSize());
    fill(b, g.f);
    fill(dy, g.n * g.f * s);
    y.resize(dy.size());
    dw.resize(w.size());
    dx.resize(x.size());
  }
  int64_t s() const { return g.oh() * g.ow(); }
  int64_t cols() const { return g.c * g.kh * g.kw; }
  int64_t rowsP() const { return g.n * s(); }

  // col[(n·S + p)·cols + (c·KH + i)·KW + j] = x[n, c, window], 0 on padding,
  // as the lowering's im2col loop nest writes it (n, oy, ox, c, i, j).
  void im2col() {
    col.resize(size_t(rowsP() * cols()));
    float* dst = col.data();
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t oy = 0; oy < g.oh(); ++oy)
        for (int64_t ox = 0; ox < g.ow(); ++ox)
          for (int64_t c = 0; c < g.c; ++c) {
            const float* plane = x.data() + (n * g.c + c) * g.h * g.w;
            for (int64_t i = 0; i < g.kh; ++i) {
              const int64_t r = oy * g.sh + i - g.ph;
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t q = ox * g.sw + j - g.pw;
                *dst++ = r >= 0 && r < g.h && q >= 0 && q < g.w ? plane[r * g.w + q] : 0.0f;
              }
            }
          }
  }
  void explicitForward(bool gemmOnly = false) {
    if (!gemmOnly) im2col();
    rows.resize(size_t(rowsP() * g.f));
    nnc::sgemm(false, true, rowsP(), g.f, cols(), col.data(), cols(), w.data(), cols(), rows.data(), g.f, false);
    if (gemmOnly) return;
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t f = 0; f < g.f; ++f)
        for (int64_t p = 0; p < s(); ++p)
          y[size_t((n * g.f + f) * s() + p)] = rows[size_t((n * s() + p) * g.f + f)] + b[size_t(f)];
  }
  void explicitGradWeight(bool gemmOnly = false) {
    if (gemmOnly) {
      nnc::sgemm(true, false, g.f, cols(), rowsP(), rows.data(), g.f, col.data(), cols(), dw.data(), cols(), false);
      return;
    }
    im2col();
    rows.resize(size_t(rowsP() * g.f));
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t f = 0; f < g.f; ++f)
        for (int64_t p = 0; p < s(); ++p)
          rows[size_t((n * s() + p) * g.f + f)] = dy[size_t((n * g.f + f) * s() + p)];
    nnc::sgemm(true, false, g.f, cols(), rowsP(), rows.data(), g.f, col.data(), cols(), dw.data(), cols(), false);
  }
  void explicitInputGrad(bool gemmOnly = false) {
    if (gemmOnly) {
      nnc::sgemm(false, false, rowsP(), cols(), g.f, rows.data(), g.f, w.data(), cols(), col.data(), cols(), false);
      return;
    }
    rows.resize(size_t(rowsP() * g.f));
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t f = 0; f < g.f; ++f)
        for (int64_t p = 0; p < s(); ++p)
          rows[size_t((n * s() + p) * g.f + f)] = dy[size_t((n * g.f + f) * s() + p)];
    col.resize(size_t(rowsP() * cols()));
    nnc::sgemm(false, false, rowsP(), cols(), g.f, rows.data(), g.f, w.data(), cols(), col.data(), cols(), false);
    std::fill(dx.begin(), dx.end(), 0.0f);
    const float* src = col.data();
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t oy = 0; oy < g.oh(); ++oy)
        for (int64_t ox = 0; ox < g.ow(); ++ox)
          for (int64_t c = 0; c < g.c; ++c) {
            float* plane = dx.data() + (n * g.c + c) * g.h * g.w;
            for (int64_t i = 0; i < g.kh; ++i) {
              const int64_t r = oy * g.sh + i - g.ph;
              for (int64_t j = 0; j < g.kw; ++j, ++src) {
                const int64_t q = ox * g.sw + j - g.pw;
                if (r >= 0 && r < g.h && q >= 0 && q < g.w) plane[r * g.w + q] += *src;
              }
            }
          }
  }
};

enum class Kind { Forward, GradWeight, InputGrad };

// mode 0: implicit; 1: explicit; 2: only the explicit path's GEMM (its
// im2col and permutes done once, outside the timing).
void run(benchmark::State& state, Kind kind, int mode) {
  Data d(kShapes[state.range(0)]);
  nnc::setThreadCount(int(state.range(1)));
  const bool implicit = mode == 0, gemmOnly = mode == 2;
  if (!implicit) {  // the explicit path's buffers, allocated and touched outside the timing
    d.im2col();
    d.rows.resize(size_t(d.rowsP() * d.g.f));
  }
  for (auto _ : state) {
    switch (kind) {
      case Kind::Forward:
        if (implicit)
          nnc::conv2d(d.g, d.x.data(), d.w.data(), d.b.data(), d.y.data(), nnc::kActNone);
        else
          d.explicitForward(gemmOnly);
        benchmark::DoNotOptimize(d.y.data());
        break;
      case Kind::GradWeight:
        if (implicit)
          nnc::conv2dGradWeight(d.g, d.x.data(), d.dy.data(), d.dw.data());
        else
          d.explicitGradWeight(gemmOnly);
        benchmark::DoNotOptimize(d.dw.data());
        break;
      case Kind::InputGrad:
        if (implicit)
          nnc::convTranspose2d(d.g, d.dy.data(), d.w.data(), nullptr, d.dx.data());
        else
          d.explicitInputGrad(gemmOnly);
        benchmark::DoNotOptimize(d.dx.data());
        break;
    }
  }
  const double flops = 2.0 * double(d.g.n * d.g.f * d.s()) * double(d.g.patchSize());
  state.counters["GFLOP/s"] = benchmark::Counter(flops * double(state.iterations()) * 1e-9, benchmark::Counter::kIsRate);
}

void args(benchmark::internal::Benchmark* b) {
  for (int shape : {0, 1, 2})
    for (int threads : {1, 2}) b->Args({shape, threads});
  b->Unit(benchmark::kMillisecond)->UseRealTime();
}

BENCHMARK_CAPTURE(run, forward_implicit, Kind::Forward, 0)->Apply(args);
BENCHMARK_CAPTURE(run, forward_explicit, Kind::Forward, 1)->Apply(args);
BENCHMARK_CAPTURE(run, forward_explicit_gemm_only, Kind::Forward, 2)->Apply(args);
BENCHMARK_CAPTURE(run, grad_weight_implicit, Kind::GradWeight, 0)->Apply(args);
BENCHMARK_CAPTURE(run, grad_weight_explicit, Kind::GradWeight, 1)->Apply(args);
BENCHMARK_CAPTURE(run, grad_weight_explicit_gemm_only, Kind::GradWeight, 2)->Apply(args);
BENCHMARK_CAPTURE(run, input_grad_implicit, Kind::InputGrad, 0)->Apply(args);
BENCHMARK_CAPTURE(run, input_grad_explicit, Kind::InputGrad, 1)->Apply(args);
BENCHMARK_CAPTURE(run, input_grad_explicit_gemm_only, Kind::InputGrad, 2)->Apply(args);

}  // namespace
