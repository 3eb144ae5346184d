// The portable GEMM: the same blocking over 4-lane GCC vectors (SSE on any
// x86-64, NEON elsewhere), masks emulated lane by lane.
#include <cstdint>
#include <utility>

#include "runtime/gemm_kernel.h"

namespace nnc::gemm {
namespace {

struct V {
  using T = float __attribute__((vector_size(16)));
  using Mask = int;  // lanes on, from the first
  static constexpr int W = 4;
  static Mask mask(int n) { return n; }
  static T zero() { return T{}; }
  static T load(const float* p) {
    T v;
    __builtin_memcpy(&v, p, sizeof v);
    return v;
  }
  // A full mask is the common case: one load, not a lane-by-lane copy the
  // compiler cannot turn back into a vector load.
  static T loadm(const float* p, Mask m) {
    if (m == W) return load(p);
    T v{};
    for (int i = 0; i < m; ++i) v[i] = p[i];
    return v;
  }
  static void store(float* p, T v) { __builtin_memcpy(p, &v, sizeof v); }
  static void storem(float* p, Mask m, T v) {
    if (m == W) return store(p, v);
    for (int i = 0; i < m; ++i) p[i] = v[i];
  }
  static T bcast(float x) { return T{x, x, x, x}; }
  // Written as two roundings, as a target without FMA computes it; the
  // result differs from the vector kernels' in the last bit only.
  static T fma(T a, T b, T c) { return a * b + c; }
  static T add(T a, T b) { return a + b; }
  static T mul(T a, T b) { return a * b; }
  static T relu(T a) {
    T r;
    for (int i = 0; i < 4; ++i) r[i] = reluOf(a[i]);  // NaN stays NaN
    return r;
  }
  // Masks are lane counts here: image patches are packed run by run
  // (gemm_tiles.h, patchRow).
  static constexpr bool kLaneMasks = false;
  static void transpose(T r[4]) {
    const T a = r[0], b = r[1], c = r[2], d = r[3];
    for (int i = 0; i < 4; ++i) r[i] = T{a[i], b[i], c[i], d[i]};
  }
};

struct Cfg {
  static constexpr int MR = 4, NV = 2;
  static constexpr int64_t MC = 128, NC = 2048;
};

#include "runtime/gemm_tiles.h"
#include "runtime/conv_direct_tiles.h"
#include "runtime/conv_depthwise_tiles.h"

}  // namespace

Isa genericIsa() {
  return {"generic", Cfg::MR, int(NR), &block, &scatterPatches, &directConv, &directConvGrad, V::W,
          &dirRows, kDirNvMax, &dirGradRows, &dirTranspose, &dirInterleave,
          &depthwiseRowsTile, &depthwiseGradTile, &depthwisePadTile};
}

}  // namespace nnc::gemm
