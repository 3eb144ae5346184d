// The GEMM for CPUs with AVX2 and FMA but not AVX-512: a 6×16 register tile
// (12 ymm accumulators, two B vectors, one broadcast of A).
#include <immintrin.h>

#include <cstdint>
#include <utility>

#include "runtime/gemm_kernel.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma")

namespace nnc::gemm {
namespace {

struct V {
  using T = __m256;
  using Mask = __m256i;
  static constexpr int W = 8;
  static Mask mask(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static T zero() { return _mm256_setzero_ps(); }
  static T load(const float* p) { return _mm256_loadu_ps(p); }
  static T loadm(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void store(float* p, T v) { _mm256_storeu_ps(p, v); }
  static void storem(float* p, Mask m, T v) { _mm256_maskstore_ps(p, m, v); }
  static T bcast(float x) { return _mm256_set1_ps(x); }
  static T fma(T a, T b, T c) { return _mm256_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm256_add_ps(a, b); }
};

struct Cfg {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t MC = 144, NC = 2048;
};

#include "runtime/gemm_tiles.h"

}  // namespace

Isa avx2Isa() { return {"avx2", Cfg::MR, int(NR), &block}; }

}  // namespace nnc::gemm

#pragma GCC pop_options
