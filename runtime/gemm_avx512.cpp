// The GEMM for CPUs with AVX-512 (a 512-bit FMA; two per cycle on Zen 5).
// The register tile is 14×32: 28 zmm accumulators, two B vectors and a
// broadcast of A fill the 32 registers, and each k step issues 28 FMAs
// against 16 loads. 14×16 tiles take N edges of at most 16 columns.
#include <immintrin.h>

#include <cstdint>
#include <utility>

#include "runtime/gemm_kernel.h"

// The instruction set of every function below, as in gemm_avx2.cpp: GCC
// through `#pragma GCC target`, Clang (which ignores that pragma) through
// `#pragma clang attribute`; no per-file -m flags.
#ifdef __clang__
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,avx512bw,fma")
#endif
// GCC 12's shuffle intrinsics pass _mm512_undefined_ps(), a self-initialized
// variable that -Wmaybe-uninitialized flags once inlined.
#ifndef __clang__
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace nnc::gemm {
namespace {

struct V {
  using T = __m512;
  using Mask = __mmask16;
  static constexpr int W = 16;
  static Mask mask(int n) { return Mask((1u << n) - 1u); }
  static T zero() { return _mm512_setzero_ps(); }
  static T load(const float* p) { return _mm512_loadu_ps(p); }
  static T loadm(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, T v) { _mm512_storeu_ps(p, v); }
  static void storem(float* p, Mask m, T v) { _mm512_mask_storeu_ps(p, m, v); }
  static T bcast(float x) { return _mm512_set1_ps(x); }
  static T fma(T a, T b, T c) { return _mm512_fmadd_ps(a, b, c); }
  static T add(T a, T b) { return _mm512_add_ps(a, b); }
  static T mul(T a, T b) { return _mm512_mul_ps(a, b); }
  // max returns its second operand when either is NaN: max(0, x) keeps a NaN
  // x, as relu's reference (reluOf in runtime/activation.h).
  static T relu(T a) { return _mm512_max_ps(_mm512_setzero_ps(), a); }
  // Lane masks for packing image patches (gemm_tiles.h, packRuns).
  static constexpr bool kLaneMasks = true;
  static Mask range(int a, int b) { return Mask(((1u << b) - 1u) & ~((1u << a) - 1u)); }  // lanes [a, b)
  static T loadInto(T acc, const float* p, Mask m) { return _mm512_mask_loadu_ps(acc, m, p); }
  static void transpose(T r[16]) {
    T t[16];
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
      const __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
      const __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
      r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
      r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
      r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
      r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (int i = 0; i < 4; ++i) {
      t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
      t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
      t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
      t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < 8; ++i) {
      r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
      r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
  }
};

struct Cfg {
  static constexpr int MR = 14, NV = 2;
  // A block MC×KC (168×256 floats, 168 KB) stays in the 1 MB L2; a B
  // micro-panel KC×32 (32 KB) in the 48 KB L1.
  static constexpr int64_t MC = 168, NC = 2048;
};

#include "runtime/gemm_tiles.h"
#include "runtime/conv_direct_tiles.h"
#include "runtime/conv_depthwise_tiles.h"

}  // namespace

Isa avx512Isa() {
  return {"avx512", Cfg::MR, int(NR), &block, &scatterPatches, &directConv, &directConvGrad, V::W,
          &dirRows, kDirNvMax, &dirGradRows, &dirTranspose, &dirInterleave,
          &depthwiseRowsTile, &depthwiseGradTile, &depthwisePadTile};
}

}  // namespace nnc::gemm

#ifdef __clang__
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
