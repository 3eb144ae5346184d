// The GEMM driver: trivial shapes, the instruction set, the depth of a cache
// block, how C is split among threads, and the per-thread packing buffers.
// The blocked loops and register tiles live in gemm_tiles.h.
#include "runtime/gemm.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <new>
#include <string_view>

#include "runtime/gemm_kernel.h"
#include "runtime/parallel.h"

namespace nnc {

namespace gemm {

namespace {

struct Scratch {
  float* p[2] = {nullptr, nullptr};
  size_t cap[2] = {0, 0};
  ~Scratch() {
    for (float* q : p)
      if (q) ::operator delete(q, std::align_val_t(64));
  }
};
thread_local Scratch tls;

}  // namespace

float* scratch(int slot, size_t floats) {
  if (tls.cap[slot] < floats) {
    if (tls.p[slot]) ::operator delete(tls.p[slot], std::align_val_t(64));
    tls.p[slot] = static_cast<float*>(::operator new(floats * sizeof(float), std::align_val_t(64)));
    tls.cap[slot] = floats;
  }
  return tls.p[slot];
}

}  // namespace gemm

namespace {

bool supported(const gemm::Isa& isa) {
  __builtin_cpu_init();  // needed if the first GEMM runs before libgcc's constructor
  const std::string_view n = isa.name;
  if (n == "avx512")
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
  if (n == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return true;
}

// Built on first use rather than at static initialization, so that a GEMM
// called from another file's static initializer still finds its kernels.
const gemm::Isa* isas() {
  static const gemm::Isa table[] = {gemm::avx512Isa(), gemm::avx2Isa(), gemm::genericIsa()};
  return table;
}
constexpr int kIsaCount = 3;

std::atomic<const gemm::Isa*> chosen{nullptr};

const gemm::Isa& currentIsa() {
  const gemm::Isa* isa = chosen.load();
  if (!isa) {
    isa = &isas()[kIsaCount - 1];
    for (int i = 0; i < kIsaCount; ++i)
      if (supported(isas()[i])) {
        isa = &isas()[i];
        break;
      }
    chosen.store(isa);
  }
  return *isa;
}

// K is cut into equal slices of at most ~256: a 14×32 tile's B micro-panel
// (256·32 floats) then fits L1 beside its A stream.
int64_t depthBlock(int64_t K) {
  constexpr int64_t kMax = 256;
  if (K <= kMax + kMax / 4) return K;
  const int64_t slices = (K + kMax - 1) / kMax;
  return (K + slices - 1) / slices;
}

// Below this many flops per thread, waking a worker costs more than it saves.
constexpr double kMinFlopsPerThread = 4e6;

}  // namespace

const char* sgemmIsa() { return currentIsa().name; }

bool setSgemmIsa(const char* name) {
  for (int i = 0; i < kIsaCount; ++i)
    if (std::strcmp(isas()[i].name, name) == 0 && supported(isas()[i])) {
      chosen.store(&isas()[i]);
      return true;
    }
  return false;
}

namespace gemm {

namespace {

// gelu over a row, built for the widest vectors the CPU has: its rational
// erf is most of the epilogue's arithmetic.
NNC_WIDEST_VECTORS void geluRow(float* __restrict c, int64_t n) {
  for (int64_t j = 0; j < n; ++j) c[j] = geluOf(c[j]);
}

// One row's epilogue: c[n] = act(c[n] + bias), bias per column (BK 1), one
// value for the row (BK 2) or none. Plain loops the compiler vectorizes
// (bias, relu; gelu in geluRow); sigmoid, tanh and silu go through libm.
template <int BK, Activation ACT>
void epilogueRow(float* c, int64_t n, const float* colBias, float rowBias) {
  for (int64_t j = 0; j < n; ++j) {
    float v = c[j];
    if constexpr (BK == 1) v += colBias[j];
    if constexpr (BK == 2) v += rowBias;
    if constexpr (ACT == kActRelu) v = reluOf(v);  // NaN stays NaN, as relu's reference
    if constexpr (ACT == kActSigmoid) v = 1.0f / (1.0f + std::exp(-v));
    if constexpr (ACT == kActTanh) v = std::tanh(v);
    if constexpr (ACT == kActGeluTanh)
      v = 0.5f * v *
          (1.0f + std::tanh(static_cast<float>(kGeluC) * (v + static_cast<float>(kGeluK) * v * v * v)));
    if constexpr (ACT == kActSilu) v = v / (1.0f + std::exp(-v));
    c[j] = v;
  }
  if constexpr (ACT == kActGelu) geluRow(c, n);
}

template <int BK>
void epilogueRows(const Args& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  for (int64_t m = m0; m < m1; ++m) {
    float* c = g.C + m * g.ldc + n0;
    const float* colBias = BK == 1 ? g.bias + n0 : nullptr;
    const float rowBias = BK == 2 ? g.bias[m] : 0.0f;
    switch (g.act) {
      case kActNone: epilogueRow<BK, kActNone>(c, n1 - n0, colBias, rowBias); break;
      case kActRelu: epilogueRow<BK, kActRelu>(c, n1 - n0, colBias, rowBias); break;
      case kActSigmoid: epilogueRow<BK, kActSigmoid>(c, n1 - n0, colBias, rowBias); break;
      case kActTanh: epilogueRow<BK, kActTanh>(c, n1 - n0, colBias, rowBias); break;
      case kActGelu: epilogueRow<BK, kActGelu>(c, n1 - n0, colBias, rowBias); break;
      case kActGeluTanh: epilogueRow<BK, kActGeluTanh>(c, n1 - n0, colBias, rowBias); break;
      default: epilogueRow<BK, kActSilu>(c, n1 - n0, colBias, rowBias); break;
    }
  }
}

}  // namespace

void epilogue(const Args& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (!g.hasEpilogue()) return;
  switch (g.biasKind) {
    case 1: epilogueRows<1>(g, m0, m1, n0, n1); break;
    case 2: epilogueRows<2>(g, m0, m1, n0, n1); break;
    default: epilogueRows<0>(g, m0, m1, n0, n1); break;
  }
}

void addPatches(const Patches& geometry, float* img, const float* col, int64_t ldcol, int64_t p0, int64_t count) {
  currentIsa().addPatches(geometry, img, col, ldcol, p0, count);
}

void direct(const Direct& d) { currentIsa().direct(d); }
bool directGrad(const DirectGrad& d) { return currentIsa().directGrad(d); }
int lanes() { return currentIsa().lanes; }
void directRows(const DirectRows& a) { currentIsa().directRows(a); }
int directNvMax() { return currentIsa().directNvMax; }
void directGradRows(const DirectGradRows& a) { currentIsa().directGradRows(a); }
void transposeRows(const float* src, int64_t rows, int64_t padRows, int64_t cols, int64_t lds, float* dst,
                   int64_t ldd) {
  currentIsa().transposeRows(src, rows, padRows, cols, lds, dst, ldd);
}
void interleaveRows(const float* ev, int64_t lde, const float* od, int64_t ldo, float* dst, int64_t ldd, int64_t w,
                    int64_t rows) {
  currentIsa().interleaveRows(ev, lde, od, ldo, dst, ldd, w, rows);
}
void depthwiseRows(const DepthwiseRows& d) { currentIsa().depthwiseRows(d); }
void depthwiseGrad(const DepthwiseGrad& d) { currentIsa().depthwiseGrad(d); }
void depthwisePad(const DepthwisePad& d) { currentIsa().depthwisePad(d); }

void run(Args g) {
  const int64_t M = g.M, N = g.N, K = g.K;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!g.accumulate)
      for (int64_t m = 0; m < M; ++m) std::fill(g.C + m * g.ldc, g.C + m * g.ldc + N, 0.0f);
    epilogue(g, 0, M, 0, N);
    return;
  }
  const Isa& isa = currentIsa();
  g.kc = depthBlock(K);

  // Each thread takes a band of whole register tiles, of rows or of columns,
  // whichever leaves the busiest thread the fewest tiles. The split changes
  // only who computes an element, never the order of its sums (nor its
  // epilogue, which is elementwise).
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int64_t threads =
      g.serial ? 1 : std::clamp<int64_t>(int64_t(flops / kMinFlopsPerThread), 1, threadCount());
  const int64_t tm = (M + isa.mr - 1) / isa.mr, tn = (N + isa.nr - 1) / isa.nr;
  const bool byRows = (tm + threads - 1) / threads * tn <= tm * ((tn + threads - 1) / threads);
  const int64_t tiles = byRows ? tm : tn, unit = byRows ? isa.mr : isa.nr, extent = byRows ? M : N;
  const int64_t parts = std::min(threads, tiles);
  if (parts <= 1) {
    isa.block(g, 0, M, 0, N);
    return;
  }
  parallelFor(parts, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t lo = std::min(extent, tiles * p / parts * unit);
      const int64_t hi = std::min(extent, tiles * (p + 1) / parts * unit);
      if (lo >= hi) continue;
      if (byRows)
        isa.block(g, lo, hi, 0, N);
      else
        isa.block(g, 0, M, lo, hi);
    }
  });
}

}  // namespace gemm

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  gemm::run(gemm::Args{transA, transB, accumulate, M, N, K, A, lda, B, ldb, C, ldc, 0});
}

void sgemmEpilogue(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float* C, int64_t ldc, const float* bias, int biasKind, int act) {
  gemm::Args g{transA, transB, false, M, N, K, A, lda, B, ldb, C, ldc, 0};
  g.bias = biasKind != 0 ? bias : nullptr;
  g.biasKind = biasKind;
  g.act = act;
  gemm::run(g);
}

void sgemmUpdate(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                 const float* B, int64_t ldb, const float* W, float lr, float* out) {
  if (out != W)
    for (int64_t m = 0; m < M; ++m) std::copy(W + m * N, W + (m + 1) * N, out + m * N);
  gemm::Args g{transA, transB, true, M, N, K, A, lda, B, ldb, out, N, 0};
  g.alpha = -lr;
  gemm::run(g);
}

}  // namespace nnc

extern "C" void nnc_sgemm_update(const float* A, const float* B, const float* W, const float* lr, float* out,
                                 int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb, int64_t transA,
                                 int64_t transB) {
  nnc::sgemmUpdate(transA != 0, transB != 0, M, N, K, A, lda, B, ldb, W, lr[0], out);
}

extern "C" void nnc_sgemm(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K, int64_t lda,
                          int64_t ldb, int64_t ldc, int64_t transA, int64_t transB, int64_t accumulate) {
  nnc::sgemm(transA != 0, transB != 0, M, N, K, A, lda, B, ldb, C, ldc, accumulate != 0);
}

extern "C" void nnc_sgemm_ep(const float* A, const float* B, float* C, const float* bias, int64_t M, int64_t N,
                             int64_t K, int64_t lda, int64_t ldb, int64_t ldc, int64_t transA, int64_t transB,
                             int64_t bias_kind, int64_t act) {
  nnc::sgemmEpilogue(transA != 0, transB != 0, M, N, K, A, lda, B, ldb, C, ldc, bias, int(bias_kind), int(act));
}
