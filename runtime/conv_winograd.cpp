// Winograd F(4×4, 3×3) with Lavin & Gray's matrices (interpolation points
// 0, ±1, ±2, ∞). Each 4×4 output tile of one image and filter is
// Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A over the 6×6 input tile d, so per
// transform-domain position p (36 of them) the channel sum is one GEMM
// M[p] [F, T] = U[p] [F, C] · V[p] [C, T] over a chunk of T tiles: 36 GEMMs
// of C multiply-adds per output where the direct method needs 9·C per pixel
// (4× fewer multiplications), plus the transforms.
//
// Layout: the tiles of a chunk are whole tile rows (an image's row of tw
// tiles, the unit below), consecutive in the batch, so small maps put
// several images into one GEMM. The transforms run over 16 tiles of a row at
// once, lane l = tile q0 + l: the rows of the image are first split into
// their 4 phases (x mod 4), so tile column j of 16 tiles is one contiguous
// run (phase j mod 4 from q0 + j/4), and the results are stored contiguous
// in T. Their loops are compiled per instruction set (below, the *Row
// functions), chosen like the GEMM's by nnc::sgemmIsa().
//
// Error (measured against the double reference, benchmark shapes, random
// operands in [-1, 1]): see tests/test_conv_winograd.cpp and the report; the
// transforms' coefficients (up to 8 in Aᵀ and 5 in Bᵀ) amplify the float
// rounding of the GEMM's sums about 10–100× over the direct method's.
#include "runtime/conv_winograd.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "runtime/activation.h"
#include "runtime/gemm.h"
#include "runtime/parallel.h"

namespace nnc {

namespace {

constexpr int kWinoLanes = 16;  // tiles a transform works on at once

// G (6×3) of F(4, 3), in double: the filter transforms are computed in
// double and rounded once.
constexpr double kWinoG[6][3] = {{1.0 / 4, 0, 0},
                                 {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                 {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                 {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                 {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                 {0, 0, 1}};

// One tile row of one channel, its 6 input rows split into phases:
// src[(i·4 + r)·ld + q] = image row i, column 4q + r (0 outside the image).
struct WinoIn {
  const float* src;
  int64_t ld;
  int64_t tiles;  // tw
  float* out;     // V[p] at out + p·ldo, tile q at + q
  int64_t ldo;
};

// One tile row of one filter: M[p] at m + p·ldm (tile q at + q) to output
// rows y + i·w (i < rows, columns < cols), + bias, relu when act says so.
struct WinoOut {
  const float* m;
  int64_t ldm;
  int64_t tiles;
  float* y;
  int64_t w, rows, cols;
  float bias;
  int act;
};

// The weight gradient's transform of one tile row of dy: src as WinoIn's
// with 4 rows, to dZ[p] = (A dy Aᵀ)[p] at out + p·ldo.
struct WinoGrad {
  const float* src;
  int64_t ld;
  int64_t tiles;
  float* out;
  int64_t ldo;
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

__attribute__((always_inline)) inline void winoInBody(const WinoIn& a) {
  constexpr int L = kWinoLanes;
  for (int64_t q0 = 0; q0 < a.tiles; q0 += L) {
    const int64_t n = std::min<int64_t>(L, a.tiles - q0);
    float t[6][6][L];  // [i][j]: Bᵀ applied down each column j
    for (int j = 0; j < 6; ++j) {
      const float* s = a.src + (j % 4) * a.ld + q0 + j / 4;
      for (int l = 0; l < L; ++l) {
        float d[6], o[6];
        for (int i = 0; i < 6; ++i) d[i] = s[i * 4 * a.ld + l];
        NNC_WINO_BT(d, o);
        for (int i = 0; i < 6; ++i) t[i][j][l] = o[i];
      }
    }
    float v[36][L];
    for (int i = 0; i < 6; ++i)
      for (int l = 0; l < L; ++l) {
        float d[6], o[6];
        for (int j = 0; j < 6; ++j) d[j] = t[i][j][l];
        NNC_WINO_BT(d, o);
        for (int j = 0; j < 6; ++j) v[i * 6 + j][l] = o[j];
      }
    if (n == L)
      for (int p = 0; p < 36; ++p) std::memcpy(a.out + p * a.ldo + q0, v[p], sizeof(float) * L);
    else
      for (int p = 0; p < 36; ++p) std::memcpy(a.out + p * a.ldo + q0, v[p], sizeof(float) * size_t(n));
  }
}

// Aᵀ (4×6) on 6 values.
#define NNC_WINO_AT(m, o)                                   \
  do {                                                      \
    o[0] = m[0] + m[1] + m[2] + m[3] + m[4];                \
    o[1] = m[1] - m[2] + 2 * m[3] - 2 * m[4];               \
    o[2] = m[1] + m[2] + 4 * m[3] + 4 * m[4];               \
    o[3] = m[1] - m[2] + 8 * m[3] - 8 * m[4] + m[5];        \
  } while (0)

__attribute__((always_inline)) inline void winoOutBody(const WinoOut& a) {
  constexpr int L = kWinoLanes;
  for (int64_t q0 = 0; q0 < a.tiles; q0 += L) {
    const int64_t n = std::min<int64_t>(L, a.tiles - q0);
    float t[4][6][L];  // [i][j]: Aᵀ down each column j
    for (int j = 0; j < 6; ++j)
      for (int l = 0; l < L; ++l) {
        float m[6], o[4];
        for (int i = 0; i < 6; ++i) m[i] = a.m[(i * 6 + j) * a.ldm + q0 + l];
        NNC_WINO_AT(m, o);
        for (int i = 0; i < 4; ++i) t[i][j][l] = o[i];
      }
    float r[4][4][L];  // [i][j]: output row i, column 4(q0 + l) + j
    for (int i = 0; i < 4; ++i)
      for (int l = 0; l < L; ++l) {
        float m[6], o[4];
        for (int j = 0; j < 6; ++j) m[j] = t[i][j][l];
        NNC_WINO_AT(m, o);
        for (int j = 0; j < 4; ++j) {
          const float v = o[j] + a.bias;
          r[i][j][l] = a.act == kActRelu ? reluOf(v) : v;
        }
      }
    const int64_t x0 = 4 * q0;
    for (int64_t i = 0; i < std::min<int64_t>(4, a.rows); ++i) {
      float* row = a.y + i * a.w + x0;
      if (x0 + 4 * L <= a.cols && n == L) {
        for (int l = 0; l < L; ++l)
          for (int j = 0; j < 4; ++j) row[4 * l + j] = r[i][j][l];
      } else {
        for (int64_t l = 0; l < n; ++l)
          for (int j = 0; j < 4; ++j)
            if (x0 + 4 * l + j < a.cols) row[4 * l + j] = r[i][j][l];
      }
    }
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

__attribute__((always_inline)) inline void winoGradBody(const WinoGrad& a) {
  constexpr int L = kWinoLanes;
  for (int64_t q0 = 0; q0 < a.tiles; q0 += L) {
    const int64_t n = std::min<int64_t>(L, a.tiles - q0);
    float t[6][4][L];  // [i][j]: A down each column j
    for (int j = 0; j < 4; ++j) {
      const float* s = a.src + j * a.ld + q0;
      for (int l = 0; l < L; ++l) {
        float d[4], o[6];
        for (int i = 0; i < 4; ++i) d[i] = s[i * 4 * a.ld + l];
        NNC_WINO_A(d, o);
        for (int i = 0; i < 6; ++i) t[i][j][l] = o[i];
      }
    }
    float z[36][L];
    for (int i = 0; i < 6; ++i)
      for (int l = 0; l < L; ++l) {
        float d[4], o[6];
        for (int j = 0; j < 4; ++j) d[j] = t[i][j][l];
        NNC_WINO_A(d, o);
        for (int j = 0; j < 6; ++j) z[i * 6 + j][l] = o[j];
      }
    for (int p = 0; p < 36; ++p) std::memcpy(a.out + p * a.ldo + q0, z[p], sizeof(float) * size_t(n));
  }
}

// The transforms per instruction set: the same loops, vectorized for the
// target each wrapper names (GCC and Clang inline the bodies into it).
struct WinoKernels {
  void (*in)(const WinoIn&);
  void (*out)(const WinoOut&);
  void (*grad)(const WinoGrad&);
};

void winoInGeneric(const WinoIn& a) { winoInBody(a); }
void winoOutGeneric(const WinoOut& a) { winoOutBody(a); }
void winoGradGeneric(const WinoGrad& a) { winoGradBody(a); }

#if defined(__x86_64__) && !defined(NNC_WINO_NO_TARGETS)
#define NNC_WINO_TARGET(NAME, TARGET)                                                  \
  __attribute__((target(TARGET))) void winoIn##NAME(const WinoIn& a) { winoInBody(a); }    \
  __attribute__((target(TARGET))) void winoOut##NAME(const WinoOut& a) { winoOutBody(a); } \
  __attribute__((target(TARGET))) void winoGrad##NAME(const WinoGrad& a) { winoGradBody(a); }
NNC_WINO_TARGET(Avx512, "avx512f,avx512vl,avx512dq,avx512bw,fma")
NNC_WINO_TARGET(Avx2, "avx2,fma")
#undef NNC_WINO_TARGET
#endif

// The GEMM's instruction set (setSgemmIsa) picks the transforms' too.
WinoKernels winoKernels() {
#if defined(__x86_64__) && !defined(NNC_WINO_NO_TARGETS)
  const char* isa = sgemmIsa();
  if (std::strcmp(isa, "avx512") == 0) return {&winoInAvx512, &winoOutAvx512, &winoGradAvx512};
  if (std::strcmp(isa, "avx2") == 0) return {&winoInAvx2, &winoOutAvx2, &winoGradAvx2};
#endif
  return {&winoInGeneric, &winoOutGeneric, &winoGradGeneric};
}

// The tile grid of g and the chunks it is cut into: units are tile rows
// (image b, tile row ty), `per` consecutive ones a chunk, T = per·tw tiles.
// A function of the shapes only. The chunk's transformed operands
// (36·(C + F)·T floats) are kept near 1.5 MB so they stay in L2 between the
// transforms and the GEMMs, but at least ~64 tiles so the GEMMs have
// columns enough.
struct WinoPlan {
  int64_t th, tw, units, per, chunks, T, Q;
};

WinoPlan winoPlan(const ConvGeom& g, int64_t cin, int64_t cout) {
  WinoPlan p;
  p.th = (g.oh() + 3) / 4;
  p.tw = (g.ow() + 3) / 4;
  p.units = g.n * p.th;
  const int64_t budget = int64_t(3) << 19;  // bytes
  const int64_t tiles = std::max<int64_t>(64, budget / (36 * 4 * (cin + cout)));
  p.per = std::clamp<int64_t>(tiles / p.tw, 1, std::max<int64_t>(p.units, 1));
  p.chunks = (p.units + p.per - 1) / p.per;
  p.T = p.per * p.tw;
  p.Q = (p.tw + kWinoLanes - 1) / kWinoLanes * kWinoLanes + 1;
  return p;
}

// A buffer of this thread, reused across calls; `pad` floats past n stay
// readable (the transforms' last lanes read them and drop the results).
float* winoBuffer(std::vector<float>& buf, size_t n) {
  if (buf.size() < n + kWinoLanes) buf.resize(n + kWinoLanes);
  return buf.data();
}

// rows image rows starting at y0 (of an h × w channel x), padding pw on the
// left, split into phases: dst[(i·4 + r)·Q + q] = x[y0 + i][4q + r − pw] or 0.
void winoSplitRows(const float* x, int64_t h, int64_t w, int64_t y0, int rows, int64_t pw, int64_t Q, float* dst) {
  for (int i = 0; i < rows; ++i) {
    const int64_t y = y0 + i;
    float* d = dst + i * 4 * Q;
    if (y < 0 || y >= h) {
      std::fill(d, d + 4 * Q, 0.0f);
      continue;
    }
    const float* row = x + y * w;
    for (int r = 0; r < 4; ++r) {
      float* dr = d + r * Q;
      for (int64_t q = 0; q < Q; ++q) {
        const int64_t c = 4 * q + r - pw;
        dr[q] = c >= 0 && c < w ? row[c] : 0.0f;
      }
    }
  }
}

// U[p][o][i] = (G g Gᵀ)[p] of the filter g = w[o][i] (wT false) or of
// w[i][o] turned 180° (wT true: the input gradient's filters), O×I of them.
void winoFilters(const float* w, int64_t O, int64_t I, bool wT, float* U) {
  parallelFor(O, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t i = 0; i < I; ++i) {
        double g[3][3];
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) g[a][b] = wT ? w[((i * O + o) * 3 + 2 - a) * 3 + 2 - b] : w[((o * I + i) * 3 + a) * 3 + b];
        double t[6][3];
        for (int p = 0; p < 6; ++p)
          for (int b = 0; b < 3; ++b) t[p][b] = kWinoG[p][0] * g[0][b] + kWinoG[p][1] * g[1][b] + kWinoG[p][2] * g[2][b];
        for (int p = 0; p < 6; ++p)
          for (int r = 0; r < 6; ++r)
            U[((p * 6 + r) * O + o) * I + i] =
                float(t[p][0] * kWinoG[r][0] + t[p][1] * kWinoG[r][1] + t[p][2] * kWinoG[r][2]);
      }
  });
}

// The forward core on g (3×3, stride 1) with transformed filters U
// [36][F][C]: y = act(bias + conv).
void winoForward(const ConvGeom& g, const float* x, const float* U, const float* bias, float* y, int act) {
  const int64_t C = g.c, F = g.f, oh = g.oh(), ow = g.ow();
  const WinoPlan pl = winoPlan(g, C, F);
  const WinoKernels k = winoKernels();
  parallelFor(pl.chunks, 1, [&](int64_t c0, int64_t c1) {
    thread_local std::vector<float> vbuf, mbuf, sbuf;
    float* V = winoBuffer(vbuf, size_t(36 * C * pl.T));
    float* M = winoBuffer(mbuf, size_t(36 * F * pl.T));
    float* S = winoBuffer(sbuf, size_t(24 * pl.Q));
    for (int64_t ch = c0; ch < c1; ++ch) {
      const int64_t u0 = ch * pl.per, u1 = std::min(pl.units, u0 + pl.per), T = (u1 - u0) * pl.tw;
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t b = u / pl.th, ty = u % pl.th;
        for (int64_t c = 0; c < C; ++c) {
          winoSplitRows(x + (b * C + c) * g.h * g.w, g.h, g.w, 4 * ty - g.ph, 6, g.pw, pl.Q, S);
          k.in(WinoIn{S, pl.Q, pl.tw, V + c * T + (u - u0) * pl.tw, C * T});
        }
      }
      for (int p = 0; p < 36; ++p)
        sgemm(false, false, F, T, C, U + p * F * C, C, V + p * C * T, T, M + p * F * T, T, false);
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t b = u / pl.th, ty = u % pl.th;
        for (int64_t f = 0; f < F; ++f)
          k.out(WinoOut{M + f * T + (u - u0) * pl.tw, F * T, pl.tw, y + ((b * F + f) * oh + 4 * ty) * ow, ow,
                        std::min<int64_t>(4, oh - 4 * ty), ow, bias ? bias[f] : 0.0f, act});
      }
    }
  });
}

}  // namespace

bool winogradFits(const ConvGeom& g, ConvDir, int act) {
  return g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.groups == 1 && g.ph >= 0 && g.ph <= 2 &&
         g.pw >= 0 && g.pw <= 2 && g.oh() > 0 && g.ow() > 0 && g.n > 0 && g.c > 0 && g.f > 0 &&
         (act == kActNone || act == kActRelu);
}

void winogradConv2d(const ConvGeom& g, const float* x, const float* w, const float* bias, float* y, int act) {
  std::vector<float> U(size_t(36 * g.f * g.c));
  winoFilters(w, g.f, g.c, false, U.data());
  winoForward(g, x, U.data(), bias, y, act);
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
  std::vector<float> U(size_t(36 * g.f * g.c));
  winoFilters(w, g.c, g.f, true, U.data());
  winoForward(t, dy, U.data(), bias, dx, kActNone);
}

void winogradConvWeightGrad(const ConvGeom& g, const float* x, const float* dy, float* dw, float* db) {
  const int64_t C = g.c, F = g.f, oh = g.oh(), ow = g.ow();
  const WinoPlan pl = winoPlan(g, C, F);
  const WinoKernels k = winoKernels();
  std::vector<float> dU(size_t(36 * F * C)), V(size_t(36 * C * pl.T) + kWinoLanes), Z(size_t(36 * F * pl.T) + kWinoLanes);
  // Chunks in order, each summed into dU by the 36 GEMMs (K = its tiles):
  // the order of every sum is fixed by the shapes.
  for (int64_t ch = 0; ch < pl.chunks; ++ch) {
    const int64_t u0 = ch * pl.per, u1 = std::min(pl.units, u0 + pl.per), T = (u1 - u0) * pl.tw;
    parallelFor((u1 - u0) * C, 1, [&](int64_t i0, int64_t i1) {
      thread_local std::vector<float> sbuf;
      float* S = winoBuffer(sbuf, size_t(24 * pl.Q));
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t u = u0 + i / C, c = i % C, b = u / pl.th, ty = u % pl.th;
        winoSplitRows(x + (b * C + c) * g.h * g.w, g.h, g.w, 4 * ty - g.ph, 6, g.pw, pl.Q, S);
        k.in(WinoIn{S, pl.Q, pl.tw, V.data() + c * T + (u - u0) * pl.tw, C * T});
      }
    });
    parallelFor((u1 - u0) * F, 1, [&](int64_t i0, int64_t i1) {
      thread_local std::vector<float> sbuf;
      float* S = winoBuffer(sbuf, size_t(16 * pl.Q));
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t u = u0 + i / F, f = i % F, b = u / pl.th, ty = u % pl.th;
        // dy rows 4ty .. 4ty + 3, unpadded (0 past the edge).
        winoSplitRows(dy + (b * F + f) * oh * ow, oh, ow, 4 * ty, 4, 0, pl.Q, S);
        k.grad(WinoGrad{S, pl.Q, pl.tw, Z.data() + f * T + (u - u0) * pl.tw, F * T});
      }
    });
    parallelFor(36, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        sgemm(false, true, F, C, T, Z.data() + p * F * T, T, V.data() + p * C * T, T, dU.data() + p * F * C, C, ch > 0);
    });
  }
  // dw = Gᵀ dU G, in double.
  parallelFor(F, 1, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f)
      for (int64_t c = 0; c < C; ++c) {
        double t[3][6];
        for (int a = 0; a < 3; ++a)
          for (int r = 0; r < 6; ++r) {
            double s = 0;
            for (int p = 0; p < 6; ++p) s += kWinoG[p][a] * dU[size_t(((p * 6 + r) * F + f) * C + c)];
            t[a][r] = s;
          }
        for (int a = 0; a < 3; ++a)
          for (int b = 0; b < 3; ++b) {
            double s = 0;
            for (int r = 0; r < 6; ++r) s += t[a][r] * kWinoG[r][b];
            dw[((f * C + c) * 3 + a) * 3 + b] = float(s);
          }
      }
  });
  if (!db) return;
  parallelFor(F, 1, [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      float sum = 0.0f;
      for (int64_t b = 0; b < g.n; ++b) {
        const float* r = dy + (b * F + f) * oh * ow;
        for (int64_t p = 0; p < oh * ow; ++p) sum += r[p];
      }
      db[f] = sum;
    }
  });
}

}  // namespace nnc
