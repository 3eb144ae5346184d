// The GEMM driver: trivial shapes, the instruction set, the depth of a cache
// block, how C is split among threads, and the per-thread packing buffers.
// The blocked loops and register tiles live in gemm_tiles.h.
#include "runtime/gemm.h"

#include <algorithm>
#include <atomic>
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

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
           int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m) std::fill(C + m * ldc, C + m * ldc + N, 0.0f);
    return;
  }
  const gemm::Isa& isa = currentIsa();
  const gemm::Args g{transA, transB, accumulate, M, N, K, A, lda, B, ldb, C, ldc, depthBlock(K)};

  // Each thread takes a band of whole register tiles, of rows or of columns,
  // whichever leaves the busiest thread the fewest tiles. The split changes
  // only who computes an element, never the order of its sums.
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const int64_t threads = std::clamp<int64_t>(int64_t(flops / kMinFlopsPerThread), 1, threadCount());
  const int64_t tm = (M + isa.mr - 1) / isa.mr, tn = (N + isa.nr - 1) / isa.nr;
  const bool byRows = (tm + threads - 1) / threads * tn <= tm * ((tn + threads - 1) / threads);
  const int64_t tiles = byRows ? tm : tn, unit = byRows ? isa.mr : isa.nr, extent = byRows ? M : N;
  const int64_t parts = std::min(threads, tiles);
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

}  // namespace nnc

extern "C" void nnc_sgemm(const float* A, const float* B, float* C, int64_t M, int64_t N, int64_t K, int64_t lda,
                          int64_t ldb, int64_t ldc, int64_t transA, int64_t transB, int64_t accumulate) {
  nnc::sgemm(transA != 0, transB != 0, M, N, K, A, lda, B, ldb, C, ldc, accumulate != 0);
}
