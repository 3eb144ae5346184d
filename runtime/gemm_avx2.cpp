// The GEMM for CPUs with AVX2 and FMA but not AVX-512: a 6×16 register tile
// (12 ymm accumulators, two B vectors, one broadcast of A).
#include <immintrin.h>

#include <cstdint>
#include <utility>

#include "runtime/gemm_kernel.h"

// The instruction set of every function below, inlined intrinsics
// included. GCC: `#pragma GCC target`. Clang ignores that pragma (the
// intrinsics then fail to inline: "requires target feature 'avx2'") and
// takes the same attribute through `#pragma clang attribute` instead. Either
// way only these functions get AVX2: no per-file -mavx2, which would also
// compile the standard-library templates this file instantiates with AVX2,
// and the linker may keep those copies for the whole program. (emit-cpp
// copies only `struct V` to the include below and picks the ISA by the
// compiler's target macros: nothing here reaches the emitted runtime.)
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

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
  static T mul(T a, T b) { return _mm256_mul_ps(a, b); }
  // max returns its second operand when either is NaN: max(0, x) keeps a NaN
  // x, as relu's reference (reluOf in runtime/activation.h).
  static T relu(T a) { return _mm256_max_ps(_mm256_setzero_ps(), a); }
  // Lane masks for packing image patches (gemm_tiles.h, packRuns).
  static constexpr bool kLaneMasks = true;
  static Mask range(int a, int b) { return _mm256_andnot_si256(mask(a), mask(b)); }  // lanes [a, b)
  static T loadInto(T acc, const float* p, Mask m) {
    return _mm256_blendv_ps(acc, _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
  }
  static void transpose(T r[8]) {
    T t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
      u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
      u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
      u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
      u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; ++i) {
      r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
      r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
  }
};

struct Cfg {
  static constexpr int MR = 6, NV = 2;
  static constexpr int64_t MC = 144, NC = 2048;
};

#include "runtime/gemm_tiles.h"
#include "runtime/conv_direct_tiles.h"
#include "runtime/conv_depthwise_tiles.h"

}  // namespace

Isa avx2Isa() {
  return {"avx2", Cfg::MR, int(NR), &block, &scatterPatches, &directConv, &directConvGrad, V::W,
          &dirRows, kDirNvMax, &dirGradRows, &dirTranspose, &dirInterleave,
          &depthwiseRowsTile, &depthwiseGradTile, &depthwisePadTile};
}

}  // namespace nnc::gemm

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
