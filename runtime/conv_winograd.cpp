// Winograd F(4×4, 3×3) with Lavin & Gray's matrices (interpolation points
// 0, ±1, ±2, ∞). Each 4×4 output tile of one image and filter is
// Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A over the 6×6 input tile d, so per
// transform-domain position p (36 of them) the channel sum is one product
// M[p] [F, T] = U[p] [F, C] · V[p] [C, T] over a chunk of T tiles: 36
// products of C multiply-adds per output where the direct method needs 9·C
// per pixel (4× fewer multiplications), plus the transforms.
//
// The products are the direct convolution's register tiles (gemm::DirectRows
// and, for the weight gradient, gemm::DirectGradRows): V[p] read in place as
// a 1×T image of C channels, the filters packed once per call into the
// tile's panels, so nothing is packed per product. A chunk (whole tile rows,
// consecutive in the batch: small maps put several images in one) is
// transformed into V, multiplied and transformed back while its ~0.5 MB of
// operands are in L2. The input transforms read the map in place, the
// padding as masked-off elements of the windows' rows (a padded copy per
// chunk cost as much as it saved), work on 16 tiles at once, lane l = tile
// t0 + l, and store contiguous in T (rows 64-byte aligned, positions kept
// off 4 KB multiples so a tile's 36 stores do not share an L1 set). The products store M pixel-major, [p][tile][filter], as
// their register tiles hold it (DirectRows::pixelMajor): transposing each
// tile into [filter][tile] cost about a third of the forward's time (C
// products per output are few beside the 16×16 transposes). The output
// transform then works on 16 filters of one tile at once and transposes
// once, on the way to NCHW. The weight gradient's transform of dy, the
// same way round, works on 16 filters of one tile at once, read straight
// from dy (masked at the map's edges), and stores Z [p][tile][filter] as
// its products read it (a padded copy of dy and a transpose of Z per
// position cost a fifth of its time). Their loops are compiled per
// instruction set (the wino*Avx512 / Avx2 / Generic functions below),
// chosen like the GEMM's by nnc::sgemmIsa(): AVX-512 loads each window row
// whole and transposes in registers, the generic and AVX2 paths gather.
//
// Error against the double reference (max |error| / max |reference|,
// operands uniform in [-1, 1], 4 images; AVX-512, the other paths within
// 8.2e-6): forward 4.7e-6 / 4.7e-6 / 6.8e-6, input gradient 4.3e-6 /
// 7.2e-6 / 7.5e-6, weight gradient 3.6e-6 / 2.4e-6 / 2.0e-6 on 32→32 @28²,
// 64→64 @14², 128→128 @7², where the GEMM's is 1.4e-7 – 5.9e-7: the
// transforms' coefficients (5 and 4 in Bᵀ, 8 in Aᵀ) amplify the float
// rounding 10–30×. Within conv_test_util.h's tolerance on every shape the
// tests try (tests/test_conv_winograd.cpp bounds it).
#include "runtime/conv_winograd.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/activation.h"
#include "runtime/gemm.h"
#include "runtime/gemm_kernel.h"
#include "runtime/parallel.h"

#if defined(__x86_64__) && !defined(NNC_WINO_NO_TARGETS)
#include <immintrin.h>
#endif

namespace nnc {

namespace {

constexpr int kWinoLanes = 16;  // tiles a transform works on at once

// G (6×3) of F(4, 3).
constexpr double kWinoG[6][3] = {{1.0 / 4, 0, 0},
                                 {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                 {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                 {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                 {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                 {0, 0, 1}};

// The input transform works on n tiles of a chunk, 16 at a time (lane l =
// tile t0 + l), read straight from the unpadded map: tile t's window row i
// starts at src + off[t] + i·ld (outside the map where the padding is),
// and its element j is inside it where bit j of mask[i·ldm + t] is set
// (zero elsewhere, and never read). off and mask hold n entries rounded up
// to 16, the extra ones masked off. The results are stored contiguous in
// t: out + p·ldo + t for transform-domain position p.
struct WinoIn {  // V = Bᵀ d B of 6×6 windows, rows ld apart
  const float* src;
  const int32_t* off;
  const uint8_t* mask;
  int64_t ldm, ld, n;
  float* out;
  int64_t ldo;
};

// src + off as integers: a window's first row and column may lie before the
// map (in the padding, never read), and so before its array.
inline const float* winoAt(const float* src, int64_t off) {
  return reinterpret_cast<const float*>(reinterpret_cast<uintptr_t>(src) + uintptr_t(off) * sizeof(float));
}

// Y = Aᵀ M A + bias, relu when act says so, for n tiles and nf ≤ 16
// filters at once (lane l = filter f0 + l): M[p] of tile t at m + p·ldm +
// t·ldt + l, as the products' register tiles store it (pixel-major, 16
// lanes readable); filter l's 4×4 outputs of tile t at y + l·ldf + offY[t]
// (rows w apart), the first rows[t] rows and cols[t] columns of them (the
// image's edge cuts the rest); bias [nf] or null; z, laid out as y, added
// before the activation (a residual connection's other branch) or null.
// pool2: the tile's four 2×2 windows' maxima instead (then bias and act, as
// conv2d's pooling), 2×2 outputs at y + l·ldf + offY[t], rows w apart, the
// first rows[t] × cols[t] of them.
struct WinoOut {
  const float* m;
  int64_t ldm, ldt, n;
  int nf;
  bool pool2;
  float* y;
  const float* z;
  int64_t ldf;
  const int64_t* offY;
  const uint8_t* rows;
  const uint8_t* cols;
  int64_t w;
  const float* bias;
  int act;
};

// The weight gradient's transform of dy: Z = A dy Aᵀ of tile t's 4×4
// window for 16 filters at once (lane l = filter f0 + l), read straight
// from dy (filters fs apart, rows w apart, window at dy + off[t], its first
// rows[t] rows and cols[t] columns inside the map, zeros past them) and
// stored as the products read it, filters contiguous: out + p·ldo + t·ldt +
// f, zeros for F ≤ f < ldt. No padded copy of dy and no transpose of Z.
struct WinoGrad {
  const float* dy;
  int64_t F, fs, w;
  const int64_t* off;
  const uint8_t* rows;
  const uint8_t* cols;
  int64_t n;
  float* out;
  int64_t ldo, ldt;
};

// Bᵀ on 6 values (a column or row of the tile).
#define NNC_WINO_BT(d, o)                              \
  do {                                                 \
    o[0] = 4 * d[0] - 5 * d[2] + d[4];                 \
    o[1] = -4 * d[1] - 4 * d[2] + d[3] + d[4];         \
    o[2] = 4 * d[1] - 4 * d[2] - d[3] + d[4];          \
    o[3] = -2 * d[1] - d[2] + 2 * d[3] + d[4];         \
    o[4] = 2 * d[1] - d[2] - 2 * d[3] + d[4];          \
    o[5] = 4 * d[1] - 5 * d[3] + d[5];                 \
  } while (0)

// The rows × cols windows of tiles t0 .. t0 + 15: raw[i·cols + j][l] =
// src[off[t0 + l] + i·ld + j]. Scalar here; the instruction sets with
// gathers have their own (below).
template <int rows, int cols>
void winoGatherScalar(const WinoIn& a, int64_t t0, float (*raw)[kWinoLanes]) {
  for (int l = 0; l < kWinoLanes; ++l)
    for (int i = 0; i < rows; ++i) {
      const int m = a.mask[i * a.ldm + t0 + l];
      for (int j = 0; j < cols; ++j)
        raw[i * cols + j][l] = m >> j & 1 ? winoAt(a.src, a.off[t0 + l] + i * a.ld)[j] : 0.0f;
    }
}

// The separable transform X·d·Xᵀ (X 6×K, X::apply mapping K values to 6)
// of the 16 gathered K×K windows, n of them stored at out[p·ldo + t0 + l]:
// the input's Bᵀ d B and the weight gradient's A dy Aᵀ.
template <int K, typename X>
__attribute__((always_inline)) inline void winoSeparable(const WinoIn& a, int64_t t0, const float (*raw)[kWinoLanes]) {
  constexpr int L = kWinoLanes;
  const int64_t n = std::min<int64_t>(L, a.n - t0);
  float t[6][K][L];  // [i][j]: X applied down each column j
  for (int j = 0; j < K; ++j)
    for (int l = 0; l < L; ++l) {
      float d[K], o[6];
      for (int i = 0; i < K; ++i) d[i] = raw[i * K + j][l];
      X::apply(d, o);
      for (int i = 0; i < 6; ++i) t[i][j][l] = o[i];
    }
  float v[36][L];
  for (int i = 0; i < 6; ++i)
    for (int l = 0; l < L; ++l) {
      float d[K], o[6];
      for (int j = 0; j < K; ++j) d[j] = t[i][j][l];
      X::apply(d, o);
      for (int j = 0; j < 6; ++j) v[i * 6 + j][l] = o[j];
    }
  if (n == L)
    for (int p = 0; p < 36; ++p) std::memcpy(a.out + p * a.ldo + t0, v[p], sizeof(float) * L);
  else
    for (int p = 0; p < 36; ++p)
      for (int64_t l = 0; l < n; ++l) a.out[p * a.ldo + t0 + l] = v[p][l];
}

struct WinoBt {
  __attribute__((always_inline)) static void apply(const float* d, float* o) { NNC_WINO_BT(d, o); }
};

// V = Bᵀ d B of the 16 gathered windows, n of them stored.
__attribute__((always_inline)) inline void winoInTransform(const WinoIn& a, int64_t t0, const float (*raw)[kWinoLanes]) {
  winoSeparable<6, WinoBt>(a, t0, raw);
}

// Aᵀ (4×6) on 6 values.
#define NNC_WINO_AT(m, o)                                   \
  do {                                                      \
    o[0] = m[0] + m[1] + m[2] + m[3] + m[4];                \
    o[1] = m[1] - m[2] + 2 * m[3] - 2 * m[4];               \
    o[2] = m[1] + m[2] + 4 * m[3] + 4 * m[4];               \
    o[3] = m[1] - m[2] + 8 * m[3] - 8 * m[4] + m[5];        \
  } while (0)

// Tile t's 16 finished outputs r[4i + j] of the nf filters to their
// places, element by element (AVX-512 has winoOutAvx512 of its own).
inline void winoStoreScalar(const WinoOut& a, int64_t t, const float (*r)[kWinoLanes]) {
  const int rows = a.rows[t], cols = a.cols[t];
  const bool relu = a.act == kActRelu;
  for (int l = 0; l < a.nf; ++l) {
    const int64_t at = l * a.ldf + a.offY[t];
    float* y = a.y + at;
    if (a.z) {
      const float* z = a.z + at;
      for (int i = 0; i < rows; ++i)
        for (int j = 0; j < cols; ++j) {
          const float v = r[i * 4 + j][l] + z[i * a.w + j];
          y[i * a.w + j] = relu ? reluOf(v) : v;
        }
    } else if (rows == 4 && cols == 4) {
      for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j) y[i * a.w + j] = r[i * 4 + j][l];
    } else {
      for (int i = 0; i < rows; ++i)
        for (int j = 0; j < cols; ++j) y[i * a.w + j] = r[i * 4 + j][l];
    }
  }
}

__attribute__((always_inline)) inline void winoOutBody(const WinoOut& a) {
  constexpr int L = kWinoLanes;
  float bias[L];
  for (int l = 0; l < L; ++l) bias[l] = a.bias && l < a.nf ? a.bias[l] : 0.0f;
  for (int64_t tile = 0; tile < a.n; ++tile) {
    const float* mt = a.m + tile * a.ldt;
    float t[4][6][L];  // [i][j]: Aᵀ down each column j
    for (int j = 0; j < 6; ++j)
      for (int l = 0; l < L; ++l) {
        float m[6], o[4];
        for (int i = 0; i < 6; ++i) m[i] = mt[(i * 6 + j) * a.ldm + l];
        NNC_WINO_AT(m, o);
        for (int i = 0; i < 4; ++i) t[i][j][l] = o[i];
      }
    alignas(64) float r[16][L];  // [4i + j]: output row i, column j of filter l
    for (int i = 0; i < 4; ++i)
      for (int l = 0; l < L; ++l) {
        float m[6], o[4];
        for (int j = 0; j < 6; ++j) m[j] = t[i][j][l];
        NNC_WINO_AT(m, o);
        for (int j = 0; j < 4; ++j) r[i * 4 + j][l] = a.pool2 ? o[j] : o[j] + bias[l];
      }
    if (a.pool2) {
      float p[4][L];  // [2i + j]: window (i, j)'s maximum, then bias and act
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
          for (int l = 0; l < L; ++l) {
            const float* q = &r[8 * i + 2 * j][l];
            const float v = maxOrNaN(maxOrNaN(q[0], q[L]), maxOrNaN(q[4 * L], q[5 * L])) + bias[l];
            p[2 * i + j][l] = a.act == kActRelu ? reluOf(v) : v;
          }
      float* y = a.y + a.offY[tile];
      for (int l = 0; l < a.nf; ++l)
        for (int i = 0; i < a.rows[tile]; ++i)
          for (int j = 0; j < a.cols[tile]; ++j) y[l * a.ldf + i * a.w + j] = p[2 * i + j][l];
      continue;
    }
    if (a.act == kActRelu && !a.z)
      for (int k = 0; k < 16; ++k)
        for (int l = 0; l < L; ++l) r[k][l] = reluOf(r[k][l]);
    winoStoreScalar(a, tile, r);
  }
}

// A (6×4) on 4 values: the adjoint of Aᵀ.
#define NNC_WINO_A(d, o)                                 \
  do {                                                   \
    o[0] = d[0];                                         \
    o[1] = d[0] + d[1] + d[2] + d[3];                    \
    o[2] = d[0] - d[1] + d[2] - d[3];                    \
    o[3] = d[0] + 2 * d[1] + 4 * d[2] + 8 * d[3];        \
    o[4] = d[0] - 2 * d[1] + 4 * d[2] - 8 * d[3];        \
    o[5] = d[3];                                         \
  } while (0)

struct WinoA {
  __attribute__((always_inline)) static void apply(const float* d, float* o) { NNC_WINO_A(d, o); }
};

__attribute__((always_inline)) inline void winoGradBody(const WinoGrad& a) {
  for (int64_t t = 0; t < a.n; ++t)
    for (int64_t f0 = 0; f0 < a.ldt; f0 += kWinoLanes) {
      alignas(64) float raw[16][kWinoLanes];
      for (int l = 0; l < kWinoLanes; ++l) {
        const bool in = f0 + l < a.F;
        const float* s = a.dy + a.off[t] + (in ? f0 + l : 0) * a.fs;
        for (int i = 0; i < 4; ++i)
          for (int j = 0; j < 4; ++j) raw[i * 4 + j][l] = in && i < a.rows[t] && j < a.cols[t] ? s[i * a.w + j] : 0.0f;
      }
      winoSeparable<4, WinoA>(WinoIn{nullptr, nullptr, nullptr, 0, 0, a.ldt, a.out + t * a.ldt, a.ldo}, f0, raw);
    }
}

// U[p][o][i] = (G g Gᵀ)[p] of filter o's I 3×3 windows g = w[o][i] (wT
// false) or w[i][o] turned 180° (wT true: the input gradient's), stored at
// out + p·ldo + i: 64 inputs at a time side by side, so the loops run along
// i and vectorize.
struct WinoFilterRow {
  const float* w;
  int64_t O, I, o;
  bool wT;
  float* out;
  int64_t ldo;
};

__attribute__((always_inline)) inline void winoFilterBody(const WinoFilterRow& a) {
  constexpr int B = 64;
  float G[6][3];
  for (int p = 0; p < 6; ++p)
    for (int b = 0; b < 3; ++b) G[p][b] = float(kWinoG[p][b]);
  for (int64_t i0 = 0; i0 < a.I; i0 += B) {
    const int n = int(std::min<int64_t>(B, a.I - i0));
    float g[9][B], t[18][B];
    for (int k = 0; k < 9; ++k)
      for (int l = 0; l < n; ++l) {
        const int64_t i = i0 + l;
        g[k][l] = a.wT ? a.w[(i * a.O + a.o) * 9 + 8 - k] : a.w[(a.o * a.I + i) * 9 + k];
      }
    for (int p = 0; p < 6; ++p)
      for (int b = 0; b < 3; ++b)
        for (int l = 0; l < n; ++l) t[p * 3 + b][l] = G[p][0] * g[b][l] + G[p][1] * g[3 + b][l] + G[p][2] * g[6 + b][l];
    for (int p = 0; p < 6; ++p)
      for (int r = 0; r < 6; ++r) {
        float* o = a.out + (p * 6 + r) * a.ldo + i0;
        for (int l = 0; l < n; ++l) o[l] = t[p * 3][l] * G[r][0] + t[p * 3 + 1][l] * G[r][1] + t[p * 3 + 2][l] * G[r][2];
      }
  }
}

// The transforms per instruction set: the same loops, vectorized for the
// target each wrapper names (GCC and Clang inline the bodies into it), and
// AVX-512's own (below).
struct WinoKernels {
  void (*in)(const WinoIn&);
  void (*out)(const WinoOut&);
  void (*grad)(const WinoGrad&);
  void (*filter)(const WinoFilterRow&);
};

// Each wrapper: the windows gathered, then the transform loops inlined and
// vectorized for the wrapper's target.
#define NNC_WINO_KERNELS(NAME, ATTR, GATHER)                                             \
  ATTR void winoIn##NAME(const WinoIn& a) {                                               \
    for (int64_t t0 = 0; t0 < a.n; t0 += kWinoLanes) {                                    \
      alignas(64) float raw[36][kWinoLanes];                                              \
      GATHER<6, 6>(a, t0, raw);                                                           \
      winoInTransform(a, t0, raw);                                                        \
    }                                                                                     \
  }                                                                                       \
  ATTR void winoGrad##NAME(const WinoGrad& a) { winoGradBody(a); }                          \
  ATTR void winoOut##NAME(const WinoOut& a) { winoOutBody(a); }                           \
  ATTR void winoFilter##NAME(const WinoFilterRow& a) { winoFilterBody(a); }

NNC_WINO_KERNELS(Generic, , winoGatherScalar)

#if defined(__x86_64__) && !defined(NNC_WINO_NO_TARGETS)
#define NNC_WINO_AVX512 "avx512f,avx512vl,avx512dq,avx512bw,fma"
// GCC 12's shuffle intrinsics pass _mm512_undefined_ps(), a self-initialized
// variable that -Wmaybe-uninitialized flags once inlined (as in gemm_avx512.cpp).
#ifndef __clang__
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
// The windows' rows loaded whole and transposed in registers (a gather per
// element costs several times more): row r of the 16 windows at base[l] + r
// under mask m[l], lane l of d[j] its element j. A 6-wide row is loaded as
// 8 floats (the last 2 masked off), tiles l and l + 8 in
// the halves of a zmm, then 8×8 transposes within the halves; a 4-wide one
// as 4 floats, tiles 4s + q in 128-bit lane s of vector q, then 4×4
// transposes within the lanes.
__attribute__((target(NNC_WINO_AVX512))) inline void winoRow6x512(const float* const* base, int64_t r,
                                                                  const uint8_t* m, __m512* d) {
  __m512 z[8], t[8], q[8];
  for (int l = 0; l < 8; ++l)
    z[l] = _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_maskz_loadu_ps(m[l], winoAt(base[l], r))),
                              _mm256_maskz_loadu_ps(m[l + 8], winoAt(base[l + 8], r)), 1);
  for (int k = 0; k < 8; k += 2) {
    t[k] = _mm512_unpacklo_ps(z[k], z[k + 1]);
    t[k + 1] = _mm512_unpackhi_ps(z[k], z[k + 1]);
  }
  for (int k = 0; k < 8; k += 4) {
    q[k] = _mm512_shuffle_ps(t[k], t[k + 2], 0x44);
    q[k + 1] = _mm512_shuffle_ps(t[k], t[k + 2], 0xee);
    q[k + 2] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0x44);
    q[k + 3] = _mm512_shuffle_ps(t[k + 1], t[k + 3], 0xee);
  }
  // q[j] and q[j + 4] hold elements j (128-bit lanes 0, 2) and j + 4
  // (lanes 1, 3) of tiles 0–3 / 8–11 and 4–7 / 12–15.
  const __m512i lo = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
  const __m512i hi = _mm512_setr_epi32(4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
  for (int j = 0; j < 4; ++j) d[j] = _mm512_permutex2var_ps(q[j], lo, q[j + 4]);
  for (int j = 0; j < 2; ++j) d[4 + j] = _mm512_permutex2var_ps(q[j], hi, q[j + 4]);
}

__attribute__((target(NNC_WINO_AVX512))) inline void winoRow4x512(const float* const* base, int64_t r,
                                                                  const __mmask8* m, __m512* d) {
  __m512 v[4];
  for (int k = 0; k < 4; ++k) {
    __m512 x = _mm512_castps128_ps512(_mm_maskz_loadu_ps(m[k], base[k] + r));
    x = _mm512_insertf32x4(x, _mm_maskz_loadu_ps(m[4 + k], base[4 + k] + r), 1);
    x = _mm512_insertf32x4(x, _mm_maskz_loadu_ps(m[8 + k], base[8 + k] + r), 2);
    v[k] = _mm512_insertf32x4(x, _mm_maskz_loadu_ps(m[12 + k], base[12 + k] + r), 3);
  }
  const __m512 t0 = _mm512_unpacklo_ps(v[0], v[1]), t1 = _mm512_unpackhi_ps(v[0], v[1]);
  const __m512 t2 = _mm512_unpacklo_ps(v[2], v[3]), t3 = _mm512_unpackhi_ps(v[2], v[3]);
  d[0] = _mm512_shuffle_ps(t0, t2, 0x44);
  d[1] = _mm512_shuffle_ps(t0, t2, 0xee);
  d[2] = _mm512_shuffle_ps(t1, t3, 0x44);
  d[3] = _mm512_shuffle_ps(t1, t3, 0xee);
}

// Bᵀ (6 values) and A (4 values to 6) on vectors, common terms shared.
struct WinoBt512 {
  static constexpr int K = 6;
  __attribute__((target(NNC_WINO_AVX512))) static void apply(const __m512* d, __m512* o) {
    const __m512 four = _mm512_set1_ps(4), five = _mm512_set1_ps(5), two = _mm512_set1_ps(2);
    const __m512 d12 = _mm512_add_ps(d[1], d[2]), d34 = _mm512_add_ps(d[3], d[4]);
    const __m512 m12 = _mm512_sub_ps(d[1], d[2]), m43 = _mm512_sub_ps(d[4], d[3]);
    const __m512 m31 = _mm512_sub_ps(d[3], d[1]), m42 = _mm512_sub_ps(d[4], d[2]);
    o[0] = _mm512_fmadd_ps(four, d[0], _mm512_fnmadd_ps(five, d[2], d[4]));
    o[1] = _mm512_fnmadd_ps(four, d12, d34);
    o[2] = _mm512_fmadd_ps(four, m12, m43);
    o[3] = _mm512_fmadd_ps(two, m31, m42);
    o[4] = _mm512_fnmadd_ps(two, m31, m42);
    o[5] = _mm512_fmadd_ps(four, d[1], _mm512_fnmadd_ps(five, d[3], d[5]));
  }
};
struct WinoA512 {
  static constexpr int K = 4;
  __attribute__((target(NNC_WINO_AVX512))) static void apply(const __m512* d, __m512* o) {
    const __m512 s02 = _mm512_add_ps(d[0], d[2]), s13 = _mm512_add_ps(d[1], d[3]);
    const __m512 e = _mm512_fmadd_ps(_mm512_set1_ps(4), d[2], d[0]);
    const __m512 f = _mm512_fmadd_ps(_mm512_set1_ps(8), d[3], _mm512_add_ps(d[1], d[1]));
    o[0] = d[0];
    o[1] = _mm512_add_ps(s02, s13);
    o[2] = _mm512_sub_ps(s02, s13);
    o[3] = _mm512_add_ps(e, f);
    o[4] = _mm512_sub_ps(e, f);
    o[5] = d[3];
  }
};

// X d Xᵀ of 16 windows (lane l: window l, d[i][j] their element i, j): X
// down each column, then along each row, position p stored at out + p·ldo
// under m.
template <typename X>
__attribute__((target(NNC_WINO_AVX512), always_inline)) inline void winoXdX512(const __m512 (*d)[X::K], float* out,
                                                                               int64_t ldo, __mmask16 m) {
  constexpr int K = X::K;
  __m512 t[6][K];  // t[i][j]: X down column j
  for (int j = 0; j < K; ++j) {
    __m512 c[K], o[6];
    for (int i = 0; i < K; ++i) c[i] = d[i][j];
    X::apply(c, o);
    for (int i = 0; i < 6; ++i) t[i][j] = o[i];
  }
  for (int i = 0; i < 6; ++i) {
    __m512 o[6];
    X::apply(t[i], o);
    for (int b = 0; b < 6; ++b) _mm512_mask_storeu_ps(out + (i * 6 + b) * ldo, m, o[b]);
  }
}

// V = Bᵀ d B of 16 tiles at a time, their rows loaded straight from the
// map under their masks, stored to out[p·ldo + t] (masked past n).
__attribute__((target(NNC_WINO_AVX512))) void winoInAvx512(const WinoIn& a) {
  for (int64_t t0 = 0; t0 < a.n; t0 += kWinoLanes) {
    const int64_t n = std::min<int64_t>(kWinoLanes, a.n - t0);
    const float* base[kWinoLanes];
    for (int l = 0; l < kWinoLanes; ++l) base[l] = winoAt(a.src, a.off[t0 + l]);
    __m512 d[6][6];
    for (int i = 0; i < 6; ++i) winoRow6x512(base, i * a.ld, a.mask + i * a.ldm + t0, d[i]);
    winoXdX512<WinoBt512>(d, a.out + t0, a.ldo, __mmask16((1u << n) - 1u));
  }
}

// Z = A dy Aᵀ of one tile for 16 filters at a time, the rows past the map
// (and the filters past F) under an empty mask, the columns past it under
// the tile's.
__attribute__((target(NNC_WINO_AVX512))) void winoGradAvx512(const WinoGrad& a) {
  for (int64_t t = 0; t < a.n; ++t) {
    const __mmask8 cm = __mmask8((1u << a.cols[t]) - 1u);
    for (int64_t f0 = 0; f0 < a.ldt; f0 += kWinoLanes) {
      const float* base[kWinoLanes];
      __mmask8 lm[kWinoLanes], none[kWinoLanes] = {};
      for (int l = 0; l < kWinoLanes; ++l) {
        const bool in = f0 + l < a.F;
        base[l] = a.dy + a.off[t] + (in ? f0 + l : 0) * a.fs;
        lm[l] = in ? cm : 0;
      }
      __m512 d[4][4];
      for (int i = 0; i < 4; ++i) winoRow4x512(base, i < a.rows[t] ? i * a.w : 0, i < a.rows[t] ? lm : none, d[i]);
      winoXdX512<WinoA512>(d, a.out + t * a.ldt + f0, a.ldo, __mmask16(0xffff));
    }
  }
}
// Two 8-lane gathers per window element, under the window's masks.
template <int rows, int cols>
__attribute__((target("avx2,fma"))) void winoGather256(const WinoIn& a, int64_t t0, float (*raw)[kWinoLanes]) {
  const __m256i off[2] = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.off + t0)),
                          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a.off + t0 + 8))};
  for (int i = 0; i < rows; ++i)
    for (int h = 0; h < 2; ++h) {
      const uint8_t* mp = a.mask + i * a.ldm + t0 + 8 * h;
      const __m256i m = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mp)));
      for (int j = 0; j < cols; ++j) {
        const __m256i bit = _mm256_set1_epi32(1 << j);
        const __m256 in = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(m, bit), bit));
        const __m256i k = _mm256_add_epi32(off[h], _mm256_set1_epi32(int(i * a.ld + j)));
        _mm256_store_ps(raw[i * cols + j] + 8 * h, _mm256_mask_i32gather_ps(_mm256_setzero_ps(), a.src, k, in, 4));
      }
    }
}
// Aᵀ (6 values to 4) on vectors, common terms shared.
__attribute__((target(NNC_WINO_AVX512))) inline void winoAt512(const __m512* m, __m512* o) {
  const __m512 s12 = _mm512_add_ps(m[1], m[2]), d12 = _mm512_sub_ps(m[1], m[2]);
  const __m512 s34 = _mm512_add_ps(m[3], m[4]), d34 = _mm512_sub_ps(m[3], m[4]);
  o[0] = _mm512_add_ps(_mm512_add_ps(m[0], s12), s34);
  o[1] = _mm512_fmadd_ps(_mm512_set1_ps(2), d34, d12);
  o[2] = _mm512_fmadd_ps(_mm512_set1_ps(4), s34, s12);
  o[3] = _mm512_add_ps(_mm512_fmadd_ps(_mm512_set1_ps(8), d34, d12), m[5]);
}

// r[k] (lane l: element k of row l) to r[l] (lane k), in 4 rounds of 16
// shuffles: pairs of floats, of doubles, then 128-bit lanes twice.
__attribute__((target(NNC_WINO_AVX512))) inline void winoTranspose16(__m512* r) {
  __m512 t[16], u[16];
  for (int k = 0; k < 16; k += 2) {
    t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
    t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
  }
  // u[4g + c], 128-bit lane s: rows 4g .. 4g + 3 at column 4s + c.
  for (int k = 0; k < 16; k += 4)
    for (int h = 0; h < 2; ++h) {
      const __m512d a = _mm512_castps_pd(t[k + h]), b = _mm512_castps_pd(t[k + h + 2]);
      u[k + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
      u[k + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
    }
  for (int c = 0; c < 4; ++c) {
    const __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88), v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    const __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
    r[4 + c] = _mm512_shuffle_f32x4(v1, w1, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
  }
}

// maxOrNaN (runtime/activation.h) on vectors: maxps(b, a) gives a where
// either is NaN, then b where b is.
__attribute__((target(NNC_WINO_AVX512))) inline __m512 maxNaN(__m512 a, __m512 b) {
  return _mm512_mask_mov_ps(_mm512_max_ps(b, a), _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), b);
}

// Y = Aᵀ M A (+ bias, relu) of one tile for 16 filters at a time in
// registers (lane l: filter l, M's 36 vectors loaded whole from the
// products' pixel-major tiles), then one 16×16 transpose: filter l's 4×4
// outputs in one vector, stored as rows of 4 pixels, masked at the image's
// edges.
__attribute__((target(NNC_WINO_AVX512))) void winoOutAvx512(const WinoOut& a) {
  const __m512 bias = a.bias ? _mm512_maskz_loadu_ps(__mmask16((1u << a.nf) - 1u), a.bias) : _mm512_setzero_ps();
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t tile = 0; tile < a.n; ++tile) {
    const float* mt = a.m + tile * a.ldt;
    __m512 t[4][6];  // [i][j]: Aᵀ down column j
    for (int j = 0; j < 6; ++j) {
      __m512 c[6], o[4];
      for (int i = 0; i < 6; ++i) c[i] = _mm512_loadu_ps(mt + (i * 6 + j) * a.ldm);
      winoAt512(c, o);
      for (int i = 0; i < 4; ++i) t[i][j] = o[i];
    }
    __m512 r[16];  // [4i + j]: output row i, column j
    const bool reluNow = a.act == kActRelu && !a.z;  // with z: after the sum
    for (int i = 0; i < 4; ++i) {
      winoAt512(t[i], r + 4 * i);
      if (a.pool2) continue;
      for (int j = 0; j < 4; ++j) {
        r[4 * i + j] = _mm512_add_ps(r[4 * i + j], bias);
        if (reluNow) r[4 * i + j] = _mm512_max_ps(zero, r[4 * i + j]);
      }
    }
    if (a.pool2) {
      alignas(64) float p[4][kWinoLanes];  // [2i + j]: window (i, j), lane l: filter l
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) {
          const int q = 8 * i + 2 * j;
          __m512 v = _mm512_add_ps(maxNaN(maxNaN(r[q], r[q + 1]), maxNaN(r[q + 4], r[q + 5])), bias);
          if (a.act == kActRelu) v = _mm512_max_ps(zero, v);
          _mm512_store_ps(p[2 * i + j], v);
        }
      float* y = a.y + a.offY[tile];
      const int nr = a.rows[tile], nc = a.cols[tile];
      for (int l = 0; l < a.nf; ++l)
        for (int i = 0; i < nr; ++i)
          for (int j = 0; j < nc; ++j) y[l * a.ldf + i * a.w + j] = p[2 * i + j][l];
      continue;
    }
    winoTranspose16(r);
    alignas(64) float out[16][kWinoLanes];  // [filter][4i + j]
    for (int l = 0; l < 16; ++l) _mm512_store_ps(out[l], r[l]);
    const int nr = a.rows[tile];
    const __mmask8 m = __mmask8((1u << a.cols[tile]) - 1u);
    float* y = a.y + a.offY[tile];
    if (a.z) {
      const float* z = a.z + a.offY[tile];
      const bool relu = a.act == kActRelu;
      for (int l = 0; l < a.nf; ++l)
        for (int i = 0; i < nr; ++i) {
          const int64_t at = l * a.ldf + i * a.w;
          __m128 v = _mm_add_ps(_mm_load_ps(out[l] + 4 * i), _mm_maskz_loadu_ps(m, z + at));
          if (relu) v = _mm_max_ps(_mm_setzero_ps(), v);
          _mm_mask_storeu_ps(y + at, m, v);
        }
      continue;
    }
    for (int l = 0; l < a.nf; ++l)
      for (int i = 0; i < nr; ++i) _mm_mask_storeu_ps(y + l * a.ldf + i * a.w, m, _mm_load_ps(out[l] + 4 * i));
  }
}
__attribute__((target(NNC_WINO_AVX512))) void winoFilterAvx512(const WinoFilterRow& a) { winoFilterBody(a); }

NNC_WINO_KERNELS(Avx2, __attribute__((target("avx2,fma"))), winoGather256)
#ifndef __clang__
#pragma GCC diagnostic pop
#endif
#endif
#undef NNC_WINO_KERNELS

// The GEMM's instruction set (setSgemmIsa) picks the transforms' too.
WinoKernels winoKernels() {
#if defined(__x86_64__) && !defined(NNC_WINO_NO_TARGETS)
  const char* isa = sgemmIsa();
  if (std::strcmp(isa, "avx512") == 0) return {&winoInAvx512, &winoOutAvx512, &winoGradAvx512, &winoFilterAvx512};
  if (std::strcmp(isa, "avx2") == 0) return {&winoInAvx2, &winoOutAvx2, &winoGradAvx2, &winoFilterAvx2};
#endif
  return {&winoInGeneric, &winoOutGeneric, &winoGradGeneric, &winoFilterGeneric};
}

// The tile grid of g and the chunks it is cut into: units are tile rows
// (image b, tile row ty), `per` consecutive ones a chunk, T <= per·tw tiles.
// A function of the shapes only. The chunk's transformed operands
// (36·(C + F)·T floats) are kept near 0.5 MB, well inside L2 beside the
// filters (smaller chunks measured faster than 1.5 MB ones: 64→64 @14²
// forward 4.6 → 3.8 ms), but with at least C·F / (C + F) tiles, so that
// the filter panels every chunk reads again (36·C·F floats) are no larger
// than the operands (128→128 @7²: 64 tiles, not 32).
struct WinoPlan {
  int64_t th, tw, units, per, chunks, T, ld;
};

WinoPlan winoPlan(const ConvGeom& g, int64_t cin, int64_t cout) {
  const int64_t budget = int64_t(1) << 19;  // bytes
  WinoPlan p;
  p.th = (g.oh() + 3) / 4;
  p.tw = (g.ow() + 3) / 4;
  p.units = g.n * p.th;
  const int64_t tiles = std::max<int64_t>({16, budget / (36 * 4 * (cin + cout)), cin * cout / (cin + cout)});
  p.per = std::clamp<int64_t>(tiles / p.tw, 1, std::max<int64_t>(p.units, 1));
  p.chunks = (p.units + p.per - 1) / p.per;
  p.T = p.per * p.tw;
  p.ld = (p.T + 15) / 16 * 16;
  return p;
}

// A buffer of this thread, reused across calls, with 16 floats past n
// readable (the transforms' last lanes read them and drop the results).
// The distance between positions p of a [36][rows][ld] array: rows·ld,
// plus one cache line where that is an even number of lines. The
// transforms touch all 36 positions of a tile at once, and at a distance of
// 4 KB multiples (rows·ld often is one) they all fall in one L1 set.
int64_t winoPosStride(int64_t rows, int64_t ld) {
  const int64_t s = rows * ld;
  return s / 16 % 2 == 0 ? s + 16 : s;
}

float* winoBuffer(std::vector<float>& buf, size_t n) {
  if (buf.size() < n + 2 * kWinoLanes) buf.resize(n + 2 * kWinoLanes);
  // 64-byte aligned: the vectors' data is only 16-byte aligned.
  const uintptr_t at = reinterpret_cast<uintptr_t>(buf.data());
  return buf.data() + (64 - at % 64) % 64 / sizeof(float);
}

// The 6×6 windows of units u0 .. u1 − 1 of x [n, ch, h, w] padded py,
// px (as WinoIn reads them): tile t's at off[t] from the chunk's first
// image, mask[i·ldm + t] the columns of its row i inside the map; both
// rounded up to 16 tiles (ldm), the extra ones masked off. Returns the
// tile count.
int64_t winoWindows(const WinoPlan& pl, int64_t u0, int64_t u1, int64_t ch, int64_t h, int64_t w, int64_t py,
                    int64_t px, std::vector<int32_t>& off, std::vector<uint8_t>& mask, int64_t& ldm) {
  const int64_t T = (u1 - u0) * pl.tw, b0 = u0 / pl.th;
  ldm = (T + kWinoLanes - 1) / kWinoLanes * kWinoLanes;
  off.assign(size_t(ldm), 0);
  mask.assign(size_t(6 * ldm), 0);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t u = u0 + t / pl.tw, y0 = 4 * (u % pl.th) - py, x0 = 4 * (t % pl.tw) - px;
    off[size_t(t)] = int32_t((u / pl.th - b0) * ch * h * w + y0 * w + x0);
    int cm = 0;
    for (int j = 0; j < 6; ++j) cm |= (x0 + j >= 0 && x0 + j < w) << j;
    for (int i = 0; i < 6; ++i) mask[size_t(i * ldm + t)] = uint8_t(y0 + i >= 0 && y0 + i < h ? cm : 0);
  }
  return T;
}

// Where the 4×4 output tiles of units u0 .. u1 − 1 lie in an [n, F, oh,
// ow] map: tile t at off[t], its first rows[t] × cols[t] pixels inside.
void winoTiles(const WinoPlan& pl, int64_t u0, int64_t u1, int64_t F, int64_t oh, int64_t ow,
               std::vector<int64_t>& off, std::vector<uint8_t>& rows, std::vector<uint8_t>& cols) {
  const int64_t T = (u1 - u0) * pl.tw;
  off.resize(size_t(T));
  rows.resize(size_t(T));
  cols.resize(size_t(T));
  for (int64_t t = 0; t < T; ++t) {
    const int64_t u = u0 + t / pl.tw, y0 = 4 * (u % pl.th), x0 = 4 * (t % pl.tw);
    off[size_t(t)] = (u / pl.th) * F * oh * ow + y0 * ow + x0;
    rows[size_t(t)] = uint8_t(std::min<int64_t>(4, oh - y0));
    cols[size_t(t)] = uint8_t(std::min<int64_t>(4, ow - x0));
  }
}

// The transformed filters as the direct convolution's weight panels
// (gemm::DirectRows), one set per transform-domain position p: panel p
// holds O·I of U[p][o][i] = (G g Gᵀ)[p] of g = w[o][i] (wT false) or of
// w[i][o] turned 180° (wT true: the input gradient's filters), in blocks of
// blockF filters [block][I][width] (width: the block's filters rounded up to
// lanes, zero past them), block b at b·blockF·I. Packed once per call, so the
// 36 transform-domain products read their filters with no packing of their own.
struct WinoPanels {
  int64_t lanes, blockF, blocks, stride;  // stride: floats per position
  float* U;
};

// Block b of O filters: its first filter, count and padded width.
struct WinoBlock {
  int64_t f0, nf, width;
};
WinoBlock winoBlock(int64_t O, int64_t blockF, int64_t lanes, int64_t b) {
  const int64_t f0 = b * blockF, nf = std::min(blockF, O - f0);
  return {f0, nf, (nf + lanes - 1) / lanes * lanes};
}

void winoFilters(const float* w, int64_t O, int64_t I, bool wT, const WinoPanels& pk) {
  // First U[p][o][i] in the instruction set's vectors (winoFilterBody),
  // then each block of filters transposed into its panel (transposeRows:
  // 16×16 blocks through registers, zero past the last filter).
  thread_local std::vector<float> uBuf;
  const int64_t sU = winoPosStride(O, I);
  float* Ut = winoBuffer(uBuf, size_t(36 * sU));
  const WinoKernels k = winoKernels();
  parallelFor(O, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) k.filter(WinoFilterRow{w, O, I, o, wT, Ut + o * I, sU});
  });
  parallelFor(36 * pk.blocks, 1, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t p = j / pk.blocks;
      const WinoBlock bk = winoBlock(O, pk.blockF, pk.lanes, j % pk.blocks);
      gemm::transposeRows(Ut + p * sU + bk.f0 * I, bk.nf, bk.width, I, I, pk.U + p * pk.stride + bk.f0 * I,
                          bk.width);
    }
  });
}

// The panels of O×I filters in this thread's buffer, reused across calls.
// Blocks of at most two vectors of filters: the tile then holds 13 or 14
// tiles of them, and its transposing store (dirStore, 16 rows at a time)
// fills its rows twice as well as a 7-tile one of four vectors (measured
// faster on 64→64 @14² and 128→128 @7² both).
WinoPanels winoPanelBuffer(int64_t O, int64_t I) {
  thread_local std::vector<float> buf;
  WinoPanels pk;
  pk.lanes = gemm::lanes();
  pk.blockF = pk.lanes * std::min(2, gemm::directNvMax());
  pk.blocks = (O + pk.blockF - 1) / pk.blockF;
  pk.stride = (O + pk.lanes - 1) / pk.lanes * pk.lanes * I;
  if (buf.size() < size_t(36 * pk.stride)) buf.resize(size_t(36 * pk.stride));
  pk.U = buf.data();
  return pk;
}

// K slices of the products: about 16 KB of a panel (L1 beside the rows of V
// it meets), as conv_direct.cpp's forward; a function of the shapes only.
int64_t winoKc(int64_t K, int64_t blockF) {
  const int64_t kmax = std::max<int64_t>(16, 4096 / blockF), slices = (K + kmax - 1) / kmax;
  return (K + slices - 1) / slices;
}

// The forward core on g (3×3, stride 1) with the filter panels pk:
// y = act(bias + conv). Per position p, M[p] [F, T] = U[p] · V[p] is the
// direct convolution's register tile over a 1×T "image" of C channels T
// apart (off[c] = c·T): V is read in place by broadcasts, and U's panel
// once per tile.
void winoForward(const ConvGeom& g, const float* x, const WinoPanels& pk, const float* bias, const float* z, float* y,
                 int act, bool pool2 = false) {
  const int64_t C = g.c, F = g.f, oh = g.oh(), ow = g.ow(), ph = oh / 2, pw = ow / 2;
  const WinoPlan pl = winoPlan(g, C, F);
  const WinoKernels k = winoKernels();
  const int64_t kc = winoKc(C, pk.blockF);
  parallelFor(pl.chunks, 1, [&](int64_t c0, int64_t c1) {
    thread_local std::vector<float> vbuf, mbuf, partBuf;
    thread_local std::vector<int32_t> off, offC;
    thread_local std::vector<int64_t> offY;
    thread_local std::vector<uint8_t> mask, rows, cols;
    const int64_t ld = pl.ld;
    // M [36][T][Fp], pixel-major as the products' tiles hold it.
    const int64_t Fp = (F + kWinoLanes - 1) / kWinoLanes * kWinoLanes;
    const int64_t sV = winoPosStride(C, ld), sM = winoPosStride(pl.T, Fp);
    float* V = winoBuffer(vbuf, size_t(36 * sV));
    float* M = winoBuffer(mbuf, size_t(36 * sM));
    float* part = winoBuffer(partBuf, size_t(pl.T * pk.blockF));
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t u0 = ch * pl.per, u1 = std::min(pl.units, u0 + pl.per);
      int64_t ldm;
      const int64_t T = winoWindows(pl, u0, u1, C, g.h, g.w, g.ph, g.pw, off, mask, ldm);
      const float* xc = x + u0 / pl.th * C * g.h * g.w;
      offC.resize(size_t(C));
      for (int64_t c = 0; c < C; ++c) offC[size_t(c)] = int32_t(c * ld);
      winoTiles(pl, u0, u1, F, oh, ow, offY, rows, cols);
      if (pool2)  // the tile's whole 2×2 windows in y [n, F, oh/2, ow/2]
        for (int64_t t = 0; t < T; ++t) {
          const int64_t u = u0 + t / pl.tw, y0 = 4 * (u % pl.th), x0 = 4 * (t % pl.tw);
          offY[size_t(t)] = (u / pl.th) * F * ph * pw + y0 / 2 * pw + x0 / 2;
          rows[size_t(t)] = uint8_t(std::clamp<int64_t>(ph - y0 / 2, 0, 2));
          cols[size_t(t)] = uint8_t(std::clamp<int64_t>(pw - x0 / 2, 0, 2));
        }
      for (int64_t c = 0; c < C; ++c)
        k.in(WinoIn{xc + c * g.h * g.w, off.data(), mask.data(), ldm, g.w, T, V + c * ld, sV});
      for (int p = 0; p < 36; ++p)
        for (int64_t b = 0; b < pk.blocks; ++b) {
          const WinoBlock bk = winoBlock(F, pk.blockF, pk.lanes, b);
          gemm::directRows(gemm::DirectRows{V + p * sV, offC.data(), C, pk.U + p * pk.stride + bk.f0 * C,
                                            nullptr, false, int(bk.nf), M + p * sM + bk.f0, Fp, 1, T, 0, 1, kc,
                                            part, true});
        }
      for (int64_t f0 = 0; f0 < F; f0 += kWinoLanes)
        k.out(WinoOut{M + f0, sM, Fp, T, int(std::min<int64_t>(kWinoLanes, F - f0)), pool2,
                      y + f0 * (pool2 ? ph * pw : oh * ow), z ? z + f0 * oh * ow : nullptr,
                      pool2 ? ph * pw : oh * ow, offY.data(), rows.data(), cols.data(), pool2 ? pw : ow,
                      bias ? bias + f0 : nullptr, act});
    }
  });
}

}  // namespace

bool winogradFits(const ConvGeom& g, ConvDir, int act) {
  if (!(g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.groups == 1 && g.ph >= 0 && g.ph <= 2 && g.pw >= 0 &&
        g.pw <= 2 && g.oh() > 0 && g.ow() > 0 && g.n > 0 && g.c > 0 && g.f > 0 &&
        (act == kActNone || act == kActRelu)))
    return false;
  // The windows' offsets from a chunk's first image are 32-bit (bounded
  // here by its images padded).
  const WinoPlan pl = winoPlan(g, g.c, g.f);
  const double padded = double(pl.per / pl.th + 2) * double(std::max(g.c, g.f)) * double(4 * pl.th + 6) *
                        double(4 * pl.tw + 6);
  return padded < double(int64_t(1) << 31);
}

void winogradConv2d(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act) {
  const WinoPanels pk = winoPanelBuffer(g.f, g.c);
  winoFilters(w, g.f, g.c, false, pk);
  winoForward(g, x, pk, bias, nullptr, y, act);
}

void winogradConv2dPool2(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act) {
  const WinoPanels pk = winoPanelBuffer(g.f, g.c);
  winoFilters(w, g.f, g.c, false, pk);
  winoForward(g, x, pk, bias, nullptr, y, act, true);
}

void winogradConv2dResidual(const ConvGeom& g, const float* x, const float* w, const float* bias, const float* z,
                            float* y, int act) {
  const WinoPanels pk = winoPanelBuffer(g.f, g.c);
  winoFilters(w, g.f, g.c, false, pk);
  winoForward(g, x, pk, bias, z, y, act);
}

void winogradConvInputGrad(const ConvGeom& g, const float* dy, const float* w, const float* bias, float* dx) {
  // The forward of dy with the filters turned 180° and transposed, padded
  // 2 − p: its output is exactly h × w.
  ConvGeom t = g;
  t.c = g.f;
  t.f = g.c;
  t.h = g.oh();
  t.w = g.ow();
  t.ph = 2 - g.ph;
  t.pw = 2 - g.pw;
  const WinoPanels pk = winoPanelBuffer(g.c, g.f);
  winoFilters(w, g.c, g.f, true, pk);
  winoForward(t, dy, pk, bias, nullptr, dx, kActNone);
}

void winogradConvWeightGrad(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db) {
  const int64_t C = g.c, F = g.f, oh = g.oh(), ow = g.ow();
  const WinoPlan pl = winoPlan(g, C, F);
  const WinoKernels k = winoKernels();
  // The chunks are cut into `groups` runs (a function of the shapes, never
  // of the thread count), each summed in chunk order by its thread, in the
  // direct convolution's weight-gradient tile (gemm::DirectGradRows: C rows
  // of V[p] against Z[p] transposed), into the run's own running sums,
  // which stay tile-native ([36][filter block][C][width]); no barrier inside
  // a run, the threads share the runs. The runs are then added in run order
  // and turned into dw = Gᵀ dU G in one pass that reads the sums where
  // they are, a vector of filters at a time.
  const int64_t groups = std::min<int64_t>(pl.chunks, 4);
  // Blocks of two vectors of filters, as the forward's (measured faster on
  // 128→128 @7² than four).
  const int64_t lanes = gemm::lanes(), blockF = lanes * std::min(2, gemm::directNvMax());
  const int64_t blocks = (F + blockF - 1) / blockF, fpad = (F + lanes - 1) / lanes * lanes;
  const int64_t sS = winoPosStride(fpad, C), size = 36 * sS;  // one run's sums, positions sS apart
  thread_local std::vector<float> partBuf;
  float* parts = winoBuffer(partBuf, size_t(groups * size));
  // db[f] = Σ dy[:, f], each run's share summed from Z[1][1] (A's row 1 is
  // all ones: the window's sum), tile by tile while Z is in L1: summing dy
  // again after the products read it back from L3.
  thread_local std::vector<float> dbBuf;
  float* dbParts = winoBuffer(dbBuf, size_t(groups * fpad));
  parallelFor(groups, 1, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> vbuf, zbuf;
    thread_local std::vector<int32_t> offX, offC;
    thread_local std::vector<int64_t> offD;
    thread_local std::vector<uint8_t> mask, rows, cols;
    const int64_t ld = pl.ld;
    // Z [36][T][fpad], filters contiguous as the products read it.
    const int64_t sV = winoPosStride(C, ld), sZ = winoPosStride(pl.T, fpad);
    float* V = winoBuffer(vbuf, size_t(36 * sV));
    float* Z = winoBuffer(zbuf, size_t(36 * sZ));
    for (int64_t r = r0; r < r1; ++r) {
      float* sums = parts + r * size;
      const int64_t first = r * pl.chunks / groups, last = (r + 1) * pl.chunks / groups;
      for (int64_t ch = first; ch < last; ++ch) {
        const int64_t u0 = ch * pl.per, u1 = std::min(pl.units, u0 + pl.per);
        int64_t ldm;
        const int64_t T = winoWindows(pl, u0, u1, C, g.h, g.w, g.ph, g.pw, offX, mask, ldm);
        const float* xc = x + u0 / pl.th * C * g.h * g.w;
        winoTiles(pl, u0, u1, F, oh, ow, offD, rows, cols);
        offC.resize(size_t(C));
        for (int64_t c = 0; c < C; ++c) offC[size_t(c)] = int32_t(c * ld);
        for (int64_t c = 0; c < C; ++c)
          k.in(WinoIn{xc + c * g.h * g.w, offX.data(), mask.data(), ldm, g.w, T, V + c * ld, sV});
        k.grad(WinoGrad{dy, F, oh * ow, ow, offD.data(), rows.data(), cols.data(), T, Z, sZ, fpad});
        float* dbs = dbParts + r * fpad;
        if (ch == first) std::fill(dbs, dbs + fpad, 0.0f);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t f = 0; f < fpad; ++f) dbs[f] += Z[7 * sZ + t * fpad + f];
        for (int p = 0; p < 36; ++p)
          for (int64_t b = 0; b < blocks; ++b) {
            const WinoBlock bk = winoBlock(F, blockF, lanes, b);
            gemm::directGradRows(gemm::DirectGradRows{V + p * sV, 0, offC.data(), C, Z + p * sZ + bk.f0, fpad,
                                                      int(bk.nf), 1, 1, T, 0, 1, sums + p * sS + bk.f0 * C,
                                                      ch == first, nullptr, C});
          }
      }
    }
  });
  // dU = Σ_r (run r's sums), r in order, into run 0's, streaming; then
  // dw[f][c] = Gᵀ dU G for one input c and filter block at a time, the
  // block's filters side by side.
  if (groups > 1)
    parallelFor(36 * fpad * C, 4096, [&](int64_t i0, int64_t i1) {
      // i counts the 36 positions' fpad·C sums, which lie sS apart.
      const int64_t per = fpad * C;
      for (int64_t i = i0; i < i1;) {
        const int64_t p = i / per, e = std::min(i1, (p + 1) * per);
        float* __restrict d = parts + p * sS - p * per;
        for (int64_t r = 1; r < groups; ++r) {
          const float* __restrict src = d + r * size;
          for (int64_t j = i; j < e; ++j) d[j] += src[j];
        }
        i = e;
      }
    });
  float G[6][3];
  for (int p = 0; p < 6; ++p)
    for (int b = 0; b < 3; ++b) G[p][b] = float(kWinoG[p][b]);
  parallelFor(blocks * C, 1, [&](int64_t j0, int64_t j1) {
    constexpr int Wmax = 64;  // blockF <= 64 (two vectors of at most 16 lanes)
    for (int64_t j = j0; j < j1; ++j) {
      const WinoBlock bk = winoBlock(F, blockF, lanes, j / C);
      const int64_t c = j % C, L = bk.width;
      float u[36][Wmax], t[3][6][Wmax], o[9][Wmax];
      for (int p = 0; p < 36; ++p) {
        const float* src = parts + p * sS + bk.f0 * C + c * L;
        for (int64_t l = 0; l < L; ++l) u[p][l] = src[l];
      }
      for (int a = 0; a < 3; ++a)
        for (int r = 0; r < 6; ++r) {
          for (int64_t l = 0; l < L; ++l) t[a][r][l] = 0.0f;
          for (int p = 0; p < 6; ++p)
            for (int64_t l = 0; l < L; ++l) t[a][r][l] += G[p][a] * u[p * 6 + r][l];
        }
      for (int a = 0; a < 3; ++a)
        for (int b = 0; b < 3; ++b) {
          for (int64_t l = 0; l < L; ++l) o[a * 3 + b][l] = 0.0f;
          for (int r = 0; r < 6; ++r)
            for (int64_t l = 0; l < L; ++l) o[a * 3 + b][l] += t[a][r][l] * G[r][b];
        }
      for (int64_t l = 0; l < bk.nf; ++l)
        for (int q = 0; q < 9; ++q) dw[((bk.f0 + l) * C + c) * 9 + q] = o[q][l];
    }
  });
  if (db)
    for (int64_t f = 0; f < F; ++f) {
      float sum = 0.0f;
      for (int64_t r = 0; r < groups; ++r) sum += dbParts[r * fpad + f];
      db[f] = sum;
    }
}

}  // namespace nnc
