// The blocked GEMM, written once over a vector abstraction and instantiated
// per instruction set (gemm_avx512.cpp, gemm_avx2.cpp, gemm_generic.cpp).
// Each includes this after its `#pragma GCC target`, inside an anonymous
// namespace, so nothing compiled here can leak into code that runs on a CPU
// without the instruction set: no standard-library function is called below.
//
// The including file defines, before the include:
//   V   — W lanes of float: T, Mask, mask(n) (first n lanes on), zero,
//         load, loadm (masked lanes read as 0 and never touch memory),
//         store, storem, bcast, fma(a, b, c) = a·b + c, add, and
//         transpose(T[W]) (a W×W block in registers).
//   Cfg — MR (tile rows), NV (vectors per tile row, NR = NV·W), MC, NC.
//
// Structure (Goto/BLIS): for each NC-wide column block and KC-deep slice,
// B is packed into NR-wide micro-panels (k-major, zero-padded), then for
// each MC-row block A into MR-row micro-panels (k-major); the register tile
// MR×NR accumulates one micro-panel pair in registers and adds into C.
// Either packing is skipped where it costs more than it saves: an operand
// reused by few tiles is read in place, and then the tile takes A's or B's
// strides directly (a transposed A is then read column-wise, k-major, which
// is the packed layout with stride lda).

// The register tile: C[0:MR', 0:nw] (+)= A·B over kc, with A(r, k) at
// a[r·sa + k] (ROWA) or a[k·sa + r], B(k, j) at b[k·sb + j]; the last of the
// NV vectors is loaded and stored under `last` so that no lane beyond the
// tile's width touches memory.
template <int R, int NV, bool ROWA>
void tile(int64_t kc, const float* a, int64_t sa, const float* b, int64_t sb, float* c, int64_t ldc,
          typename V::Mask last, bool add) {
  using T = typename V::T;
  T acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V::zero();
  for (int64_t k = 0; k < kc; ++k) {
    T bv[NV];
#pragma GCC unroll 4
    for (int v = 0; v + 1 < NV; ++v) bv[v] = V::load(b + v * V::W);
    bv[NV - 1] = V::loadm(b + (NV - 1) * V::W, last);
    b += sb;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const T ar = V::bcast(ROWA ? a[r * sa + k] : a[k * sa + r]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(ar, bv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v + 1 < NV; ++v)
      V::store(cr + v * V::W, add ? V::add(V::load(cr + v * V::W), acc[r][v]) : acc[r][v]);
    float* cl = cr + (NV - 1) * V::W;
    V::storem(cl, last, add ? V::add(V::loadm(cl, last), acc[r][NV - 1]) : acc[r][NV - 1]);
  }
}

using TileFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, typename V::Mask, bool);

// tiles[rowA][nv - 1][rows - 1]: one specialization per edge height, so the
// M edge costs only the rows it has.
template <int NV, bool ROWA, int... I>
constexpr void fillTiles(TileFn* row, std::integer_sequence<int, I...>) {
  ((row[I] = &tile<I + 1, NV, ROWA>), ...);
}
struct TileTable {
  TileFn fn[2][Cfg::NV][Cfg::MR];
  constexpr TileTable() : fn{} { fill<1>(); }
  template <int NV>
  constexpr void fill() {
    fillTiles<NV, false>(fn[0][NV - 1], std::make_integer_sequence<int, Cfg::MR>{});
    fillTiles<NV, true>(fn[1][NV - 1], std::make_integer_sequence<int, Cfg::MR>{});
    if constexpr (NV < Cfg::NV) fill<NV + 1>();
  }
};
constexpr TileTable kTiles;

constexpr int64_t NR = Cfg::NV * V::W;

inline int64_t lesser(int64_t x, int64_t y) { return x < y ? x : y; }

// B[pc:pc+kc, j0:j0+nc] into NR-wide k-major micro-panels, zero-padded.
void packB(const Args& g, int64_t pc, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  for (int64_t jp = 0; jp < nc; jp += NR, dst += kc * NR) {
    const int64_t w = lesser(NR, nc - jp);
    if (!g.transB) {
      const float* src = g.B + pc * g.ldb + j0 + jp;
      for (int64_t k = 0; k < kc; ++k, src += g.ldb)
        for (int v = 0; v < Cfg::NV; ++v) {
          const int64_t lanes = w - v * V::W;
          V::store(dst + k * NR + v * V::W,
                   lanes <= 0 ? V::zero() : V::loadm(src + v * V::W, V::mask(lanes < V::W ? int(lanes) : V::W)));
        }
    } else {
      // Column j of op(B) is row j of B, contiguous in k: W×W blocks are
      // loaded row-wise and transposed in registers.
      for (int64_t jh = 0; jh < NR; jh += V::W)
        for (int64_t k0 = 0; k0 < kc; k0 += V::W) {
          const int kw = int(lesser(V::W, kc - k0));
          typename V::T rows[V::W];
          for (int j = 0; j < V::W; ++j)
            rows[j] = jp + jh + j < nc && jh + j < w
                          ? V::loadm(g.B + (j0 + jp + jh + j) * g.ldb + pc + k0, V::mask(kw))
                          : V::zero();
          V::transpose(rows);
          for (int k = 0; k < kw; ++k) V::store(dst + (k0 + k) * NR + jh, rows[k]);
        }
    }
  }
}

// A[i0:i0+mc, pc:pc+kc] into MR-row k-major micro-panels (stride MR; the
// rows of a short last panel beyond mc are never read).
void packA(const Args& g, int64_t i0, int64_t mc, int64_t pc, int64_t kc, float* dst) {
  for (int64_t ip = 0; ip < mc; ip += Cfg::MR, dst += kc * Cfg::MR) {
    const int64_t h = lesser(Cfg::MR, mc - ip);
    if (g.transA) {
      const float* src = g.A + pc * g.lda + i0 + ip;
      for (int64_t k = 0; k < kc; ++k, src += g.lda)
        for (int64_t r = 0; r < h; r += V::W) {
          const typename V::Mask m = V::mask(h - r < V::W ? int(h - r) : V::W);
          V::storem(dst + k * Cfg::MR + r, m, V::loadm(src + r, m));
        }
    } else {
      for (int64_t r = 0; r < h; ++r) {
        const float* src = g.A + (i0 + ip + r) * g.lda + pc;
        for (int64_t k = 0; k < kc; ++k) dst[k * Cfg::MR + r] = src[k];
      }
    }
  }
}

void block(const Args& g, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  const int64_t mw = m1 - m0, nw = n1 - n0;
  // B is reused by every MR-row tile, A by every NR-column tile: pack each
  // only when enough tiles share it. A transposed B must be packed (the tile
  // reads B rows as vectors). Reading A in place (MR strided rows, or a
  // transposed A's k-major rows) measured as fast as packed A on Zen 5 up
  // to lda 8192, so A is packed only for wide N, where the cost is spread
  // thin and strided rows risk TLB and cache-set pressure on other CPUs.
  const bool doPackB = g.transB || mw > 2 * Cfg::MR;
  const bool doPackA = nw > 16 * NR;
  const int64_t ncMax = lesser(Cfg::NC, nw);
  float* Bp = doPackB ? scratch(1, size_t(g.kc * ((ncMax + NR - 1) / NR) * NR)) : nullptr;
  float* Ap = doPackA ? scratch(0, size_t(g.kc * Cfg::MC)) : nullptr;
  for (int64_t jc = n0; jc < n1; jc += Cfg::NC) {
    const int64_t nc = lesser(Cfg::NC, n1 - jc);
    for (int64_t pc = 0; pc < g.K; pc += g.kc) {
      const int64_t kc = lesser(g.kc, g.K - pc);
      const bool add = pc > 0 || g.accumulate;
      if (doPackB) packB(g, pc, kc, jc, nc, Bp);
      for (int64_t ic = m0; ic < m1; ic += Cfg::MC) {
        const int64_t mc = lesser(Cfg::MC, m1 - ic);
        if (doPackA) packA(g, ic, mc, pc, kc, Ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t w = lesser(NR, nc - jr);
          const int nv = int((w + V::W - 1) / V::W);
          const typename V::Mask last = V::mask(int(w - (nv - 1) * V::W));
          const float* b = doPackB ? Bp + (jr / NR) * kc * NR : g.B + pc * g.ldb + jc + jr;
          const int64_t sb = doPackB ? NR : g.ldb;
          float* c = g.C + ic * g.ldc + jc + jr;
          for (int64_t ir = 0; ir < mc; ir += Cfg::MR) {
            const int h = int(lesser(Cfg::MR, mc - ir));
            const bool rowA = !doPackA && !g.transA;
            const float* a = doPackA    ? Ap + (ir / Cfg::MR) * kc * Cfg::MR
                             : g.transA ? g.A + pc * g.lda + ic + ir
                                        : g.A + (ic + ir) * g.lda + pc;
            const int64_t sa = doPackA ? Cfg::MR : g.lda;
            kTiles.fn[rowA][nv - 1][h - 1](kc, a, sa, b, sb, c + ir * g.ldc, g.ldc, last, add);
          }
        }
      }
    }
  }
}
