// The blocked GEMM, written once over a vector abstraction and instantiated
// per instruction set (gemm_avx512.cpp, gemm_avx2.cpp, gemm_generic.cpp).
// Each includes this after its `#pragma GCC target`, inside an anonymous
// namespace, so nothing compiled here can leak into code that runs on a CPU
// without the instruction set: no standard-library function is called below.
//
// The including file defines, before the include:
//   V   — W lanes of float: T, Mask, mask(n) (first n lanes on), zero,
//         load, loadm (masked lanes read as 0 and never touch memory),
//         store, storem, bcast, fma(a, b, c) = a·b + c, add, mul, relu
//         (x > 0 ? x : 0), transpose(T[W]) (a W×W block in registers), and
//         kLaneMasks: whether it also has range(a, b) (the mask of lanes
//         [a, b)) and loadInto(acc, p, m) (acc with the lanes of m loaded
//         from p, the others untouched and never read).
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
//
// Two extensions for convolutions (gemm_kernel.h): B may be the patch
// matrix of an image (implicit im2col: packB gathers the windows straight
// from the image, so no column matrix exists), and an epilogue (bias,
// activation) runs on each tile column once its last K slice is stored.

// The bias and relu of the epilogue, applied by a tile to its registers
// before they are stored: rowBias[r] per tile row (bias kind 2), colBias[n]
// per tile column (kind 1), either null.
struct TileEpilogue {
  const float* rowBias;
  const float* colBias;
  bool relu;
};

// The register tile: C[0:MR', 0:nw] (+)= A·B over kc, with A(r, k) at
// a[r·sa + k] (ROWA) or a[k·sa + r], B(k, j) at b[k·sb + j]; the last of the
// NV vectors is loaded and stored under `last` so that no lane beyond the
// tile's width touches memory. With ep, the finished sums get its bias and
// relu on their way out.
template <int R, int NV, bool ROWA>
void tile(int64_t kc, const float* a, int64_t sa, const float* b, int64_t sb, float* c, int64_t ldc,
          typename V::Mask last, bool add, float alpha, const TileEpilogue* ep) {
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
  if (alpha != 1.0f) {
    const T al = V::bcast(alpha);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::mul(al, acc[r][v]);
  }
  if (add) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const float* cr = c + r * ldc;
#pragma GCC unroll 4
      for (int v = 0; v + 1 < NV; ++v) acc[r][v] = V::add(V::load(cr + v * V::W), acc[r][v]);
      acc[r][NV - 1] = V::add(V::loadm(cr + (NV - 1) * V::W, last), acc[r][NV - 1]);
    }
  }
  if (ep) {
    if (ep->colBias) {
      T cb[NV];
#pragma GCC unroll 4
      for (int v = 0; v + 1 < NV; ++v) cb[v] = V::load(ep->colBias + v * V::W);
      cb[NV - 1] = V::loadm(ep->colBias + (NV - 1) * V::W, last);
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = V::add(acc[r][v], cb[v]);
    }
    if (ep->rowBias)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const T rb = V::bcast(ep->rowBias[r]);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = V::add(acc[r][v], rb);
      }
    if (ep->relu)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[r][v] = V::relu(acc[r][v]);
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    float* cr = c + r * ldc;
#pragma GCC unroll 4
    for (int v = 0; v + 1 < NV; ++v) V::store(cr + v * V::W, acc[r][v]);
    V::storem(cr + (NV - 1) * V::W, last, acc[r][NV - 1]);
  }
}

using TileFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, typename V::Mask, bool,
                        float, const TileEpilogue*);

// tiles[rowA][nv - 1][rows - 1]: one specialization per edge height, so the
// M edge costs only the rows it has.
template <int NV, bool ROWA, int... I>
constexpr void fillTiles(TileFn* row, std::integer_sequence<int, I...>) {
  ((row[I] = &tile<I + 1, NV, ROWA>), ...);
}
struct TileTable {
  TileFn fn[2][Cfg::NV][Cfg::MR];
  template <int NV>
  constexpr void fill() {
    fillTiles<NV, false>(fn[0][NV - 1], std::make_integer_sequence<int, Cfg::MR>{});
    fillTiles<NV, true>(fn[1][NV - 1], std::make_integer_sequence<int, Cfg::MR>{});
    if constexpr (NV < Cfg::NV) fill<NV + 1>();
  }
  // After fill: Clang wants a member template defined before a constexpr
  // constructor calls it.
  constexpr TileTable() : fn{} { fill<1>(); }
};
constexpr TileTable kTiles;

constexpr int64_t NR = Cfg::NV * V::W;

inline int64_t lesser(int64_t x, int64_t y) { return x < y ? x : y; }

// n floats at d: zeros, a copy of s, or s at a stride.
inline void zeros(float* d, int64_t n) {
  int64_t t = 0;
  for (; t + V::W <= n; t += V::W) V::store(d + t, V::zero());
  if (t < n) V::storem(d + t, V::mask(int(n - t)), V::zero());
}
inline void copy(float* d, const float* s, int64_t n) {
  int64_t t = 0;
  for (; t + V::W <= n; t += V::W) V::store(d + t, V::load(s + t));
  if (t < n) {
    const typename V::Mask m = V::mask(int(n - t));
    V::storem(d + t, m, V::loadm(s + t, m));
  }
}
inline void strided(float* d, const float* s, int64_t stride, int64_t n) {
  for (int64_t t = 0; t < n; ++t) d[t] = s[t * stride];
}

// out[t] = P(k, p0 + t) for t < count (Patches in gemm_kernel.h), with k
// given as (channel c, kernel row i, kernel column j) and p0 as the output
// position (oy, ox). Windows of one output row read one image row: a
// contiguous run when SW = 1, between the zeros of the left and right
// padding; rows of windows in the top or bottom padding are zeros.
void patchRow(const Patches& s, int64_t c, int64_t i, int64_t j, int64_t oy, int64_t ox, int64_t count, float* out) {
  const float* plane = s.x + c * s.H * s.W;
  // Windows ox' in [oxLo, oxEnd) read column ox'·SW + j − PW inside the image.
  const int64_t left = s.PW - j, right = s.W - 1 + s.PW - j;
  const int64_t oxLo = left <= 0 ? 0 : (left + s.SW - 1) / s.SW;
  const int64_t oxEnd = right < 0 ? 0 : lesser(s.OW, right / s.SW + 1);
  for (int64_t t = 0; t < count; ++oy, ox = 0) {
    const int64_t seg = lesser(count - t, s.OW - ox), end = ox + seg;
    float* o = out + t;  // o[ox' − ox] for the windows ox' in [ox, end)
    const int64_t iy = oy * s.SH + i - s.PH;
    if (iy < 0 || iy >= s.H) {
      zeros(o, seg);
    } else {
      const int64_t lo = oxLo < ox ? ox : oxLo > end ? end : oxLo;
      const int64_t hi = oxEnd < lo ? lo : oxEnd > end ? end : oxEnd;
      zeros(o, lo - ox);
      if (hi > lo) {
        const float* src = plane + (iy * s.W + lo * s.SW - left);
        if (s.SW == 1)
          copy(o + (lo - ox), src, hi - lo);
        else
          strided(o + (lo - ox), src, s.SW, hi - lo);
      }
      zeros(o + (hi - ox), end - hi);
    }
    t += seg;
  }
}

// Output positions [p0, p0 + n) read, for SW = 1, as pieces: runs of
// windows within one output row, cut at vector boundaries. Lane u in
// [lo, hi) of vector v reads x[base + off + u], base = c·H·W + (i − PH)·W
// + (j − PW) for row k = (c, i, j) of P; the window of lane lo is (oy, ox).
// An interior piece reads inside the image for every (i, j); an edge piece
// is clipped to the image per row. Built once per micro-panel (or chunk of
// positions) and replayed for each of its k rows.
constexpr int64_t kRunLanes = NR > 4 * V::W ? NR : 4 * V::W;
constexpr int kMaxVectors = int(kRunLanes / V::W);
struct Pieces {
  struct Piece {
    int64_t off, oy, ox;
    int lo, hi;
    bool edge;
    typename V::Mask mask;
  };
  int start[kMaxVectors + 1];  // vector v's pieces: p[start[v] .. start[v + 1])
  Piece p[kRunLanes + kMaxVectors + 1];
};

template <typename VV>
void fillPieces(const Patches& s, int64_t p0, int64_t n, int nvec, Pieces& P) {
  int64_t oy = p0 / s.OW, ox = p0 - oy * s.OW, lane = 0;
  int count = 0;
  for (int v = 0; v < nvec; ++v) {
    P.start[v] = count;
    const int64_t v1 = (v + 1) * VV::W;
    while (lane < n && lane < v1) {
      const int64_t len = lesser(lesser(n - lane, s.OW - ox), v1 - lane);
      typename Pieces::Piece& q = P.p[count++];
      q.lo = int(lane - v * VV::W);
      q.hi = int(q.lo + len);
      q.oy = oy;
      q.ox = ox;
      q.off = oy * s.SH * s.W + ox - q.lo;
      const int64_t top = oy * s.SH - s.PH;
      q.edge = top < 0 || top + s.KH > s.H || ox < s.PW || ox + len - 1 - s.PW + s.KW > s.W;
      q.mask = VV::range(q.lo, q.hi);
      lane += len;
      ox += len;
      if (ox == s.OW) ox = 0, ++oy;
    }
  }
  P.start[nvec] = count;
}

// Rows of P, k = (c, i, j) each, as fillRows takes them: x offset
// c·H·W + (i − PH)·W + (j − PW), and i − PH, j − PW for clipping.
constexpr int kRowChunk = 64;
struct RowTab {
  int64_t n;
  int64_t base[kRowChunk], di[kRowChunk], dj[kRowChunk], ij[kRowChunk];  // ij = i·KW + j
};
// Rows k0 .. k0 + n − 1 (n <= kRowChunk) of P.
inline void fillRowTab(const Patches& s, int64_t k0, int64_t n, RowTab& t) {
  const int64_t kk = s.KH * s.KW;
  int64_t c = k0 / kk, i = (k0 - c * kk) / s.KW, j = k0 - c * kk - i * s.KW;
  t.n = n;
  for (int64_t r = 0; r < n; ++r) {
    t.di[r] = i - s.PH;
    t.dj[r] = j - s.PW;
    t.base[r] = c * s.H * s.W + t.di[r] * s.W + t.dj[r];
    t.ij[r] = i * s.KW + j;
    if (++j == s.KW) {
      j = 0;
      if (++i == s.KH) i = 0, ++c;
    }
  }
}

// The lanes of piece q inside the image for the kernel position with
// i − PH = di, j − PW = dj: lane lo + u reads image row oy·SH + di, column
// ox + u + dj.
template <typename VV>
inline typename VV::Mask clipped(const Patches& s, const typename Pieces::Piece& q, int64_t di, int64_t dj) {
  const int64_t iy = q.oy * s.SH + di;
  const int64_t a = q.ox + dj < 0 ? -dj : q.ox, b = lesser(q.ox + (q.hi - q.lo), s.W - dj);
  if (iy < 0 || iy >= s.H || a >= b) return VV::range(0, 0);
  return VV::range(int(q.lo + a - q.ox), int(q.lo + b - q.ox));
}

constexpr int64_t kMaskTable = 64;  // kernels up to 8×8 get clipped masks by table

// out[r·pitch + lane] = P(row r of t, position of lane) for nvec vectors of
// lanes (SW = 1), vector by vector, each the merge of its pieces' masked
// loads (masked lanes never touch memory, so the address may lie outside
// x; lanes no piece covers are 0): one loop over the rows per vector, the
// common shapes (one or two interior pieces) without per-row decisions;
// edge pieces are clipped row by row.
template <typename VV>
void fillRows(const Patches& s, const Pieces& P, int nvec, const RowTab& t, float* out, int64_t pitch) {
  using T = typename VV::T;
  for (int vv = 0; vv < nvec; ++vv) {
    float* o = out + vv * VV::W;
    const int e0 = P.start[vv], e1 = P.start[vv + 1];
    bool edge = false;
    for (int e = e0; e < e1; ++e) edge = edge || P.p[e].edge;
    if (e1 == e0) {
      for (int64_t r = 0; r < t.n; ++r) VV::store(o + r * pitch, VV::zero());
    } else if (!edge && e1 - e0 == 1) {
      const typename Pieces::Piece& q = P.p[e0];
      const float* src = s.x + q.off;
      if (q.lo == 0 && q.hi == VV::W)
        for (int64_t r = 0; r < t.n; ++r) VV::store(o + r * pitch, VV::load(src + t.base[r]));
      else
        for (int64_t r = 0; r < t.n; ++r) VV::store(o + r * pitch, VV::loadm(src + t.base[r], q.mask));
    } else if (!edge && e1 - e0 == 2) {
      const typename Pieces::Piece &q = P.p[e0], &u = P.p[e0 + 1];
      const float *src = s.x + q.off, *src2 = s.x + u.off;
      for (int64_t r = 0; r < t.n; ++r)
        VV::store(o + r * pitch, VV::loadInto(VV::loadm(src + t.base[r], q.mask), src2 + t.base[r], u.mask));
    } else if (e1 - e0 <= 2 && s.KH * s.KW <= kMaskTable && t.n >= s.KH * s.KW / 2) {
      // Edge pieces: their clipped masks per kernel position (i, j),
      // computed once for the rows of every channel.
      typename VV::Mask masks[2][kMaskTable];
      const int np = e1 - e0;
      for (int e = 0; e < np; ++e) {
        const typename Pieces::Piece& q = P.p[e0 + e];
        for (int64_t i = 0; i < s.KH; ++i)
          for (int64_t j = 0; j < s.KW; ++j) masks[e][i * s.KW + j] = clipped<VV>(s, q, i - s.PH, j - s.PW);
      }
      const float *src = s.x + P.p[e0].off, *src2 = s.x + P.p[e0 + np - 1].off;
      if (np == 1)
        for (int64_t r = 0; r < t.n; ++r) VV::store(o + r * pitch, VV::loadm(src + t.base[r], masks[0][t.ij[r]]));
      else
        for (int64_t r = 0; r < t.n; ++r)
          VV::store(o + r * pitch, VV::loadInto(VV::loadm(src + t.base[r], masks[0][t.ij[r]]), src2 + t.base[r],
                                                masks[1][t.ij[r]]));
    } else {
      for (int64_t r = 0; r < t.n; ++r) {
        T acc = VV::zero();
        for (int e = e0; e < e1; ++e) {
          const typename Pieces::Piece& q = P.p[e];
          if (!q.edge) {
            acc = VV::loadInto(acc, s.x + (q.off + t.base[r]), q.mask);
            continue;
          }
          acc = VV::loadInto(acc, s.x + (q.off + t.base[r]), clipped<VV>(s, q, t.di[r], t.dj[r]));
        }
        VV::store(o + r * pitch, acc);
      }
    }
  }
}

// op(B) from the image for SW = 1, piece by piece.
template <typename VV>
void packRuns(const Patches& s, int64_t pc, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  Pieces P;
  RowTab t;
  if (!s.transposed) {
    for (int64_t jp = 0; jp < nc; jp += NR, dst += kc * NR) {
      fillPieces<VV>(s, j0 + jp, lesser(NR, nc - jp), Cfg::NV, P);
      for (int64_t k0 = 0; k0 < kc; k0 += kRowChunk) {
        fillRowTab(s, pc + k0, lesser(kRowChunk, kc - k0), t);
        fillRows<VV>(s, P, Cfg::NV, t, dst + k0 * NR, NR);
      }
    }
    return;
  }
  // Pᵀ: the micro-panel's columns as rows of P over T positions, then
  // transposed W×W in registers.
  constexpr int64_t T = 4 * VV::W;
  float rows[NR * T];
  for (int64_t jp = 0; jp < nc; jp += NR, dst += kc * NR) {
    const int64_t w = lesser(NR, nc - jp);
    fillRowTab(s, j0 + jp, w, t);
    for (int64_t l = w; l < NR; ++l) zeros(rows + l * T, T);
    for (int64_t t0 = 0; t0 < kc; t0 += T) {
      const int64_t tt = lesser(T, kc - t0);
      fillPieces<VV>(s, pc + t0, tt, int(T / VV::W), P);
      fillRows<VV>(s, P, int(T / VV::W), t, rows, T);
      for (int64_t lh = 0; lh < NR; lh += VV::W)
        for (int64_t tb = 0; tb < tt; tb += VV::W) {
          typename VV::T blk[VV::W];
          for (int q = 0; q < VV::W; ++q) blk[q] = VV::load(rows + (lh + q) * T + tb);
          VV::transpose(blk);
          const int64_t kw = lesser(VV::W, tt - tb);
          for (int64_t q = 0; q < kw; ++q) VV::store(dst + (t0 + tb + q) * NR + lh, blk[q]);
        }
    }
  }
}

// The patch matrix's part of packB: op(B)[pc:pc+kc, j0:j0+nc] from the
// image: piece by piece with masked vector loads for SW = 1 where the
// instruction set has lane masks, else run by run (gathers for SW > 1
// measured slower than the scalar strided copy on Zen 4).
template <typename VV = V>
void packPatches(const Patches& s, int64_t pc, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  if constexpr (VV::kLaneMasks) {
    if (s.SW == 1) {
      packRuns<VV>(s, pc, kc, j0, nc, dst);
      return;
    }
  }
  const int64_t kk = s.KH * s.KW;
  if (!s.transposed) {
    // op(B) = P: each packed row is a run of output positions of one k.
    for (int64_t jp = 0; jp < nc; jp += NR, dst += kc * NR) {
      const int64_t w = lesser(NR, nc - jp), oy = (j0 + jp) / s.OW, ox = (j0 + jp) - oy * s.OW;
      int64_t c = pc / kk, i = (pc - c * kk) / s.KW, j = pc - c * kk - i * s.KW;
      for (int64_t k = 0; k < kc; ++k) {
        float* d = dst + k * NR;
        patchRow(s, c, i, j, oy, ox, w, d);
        if (w < NR) zeros(d + w, NR - w);
        if (++j == s.KW) {
          j = 0;
          if (++i == s.KH) i = 0, ++c;
        }
      }
    }
    return;
  }
  // op(B) = Pᵀ: the micro-panel's columns (k) are gathered as rows of P
  // over up to T output positions, then transposed W×W in registers.
  constexpr int64_t T = 4 * V::W;
  float rows[NR * T];
  for (int64_t jp = 0; jp < nc; jp += NR, dst += kc * NR) {
    const int64_t w = lesser(NR, nc - jp);
    for (int64_t t0 = 0; t0 < kc; t0 += T) {
      const int64_t tt = lesser(T, kc - t0), oy = (pc + t0) / s.OW, ox = (pc + t0) - oy * s.OW;
      const int64_t k0 = j0 + jp;
      int64_t c = k0 / kk, i = (k0 - c * kk) / s.KW, j = k0 - c * kk - i * s.KW;
      for (int64_t l = 0; l < w; ++l) {
        patchRow(s, c, i, j, oy, ox, tt, rows + l * T);
        if (++j == s.KW) {
          j = 0;
          if (++i == s.KH) i = 0, ++c;
        }
      }
      for (int64_t l = w; l < NR; ++l) zeros(rows + l * T, tt);
      for (int64_t lh = 0; lh < NR; lh += V::W)
        for (int64_t tb = 0; tb < tt; tb += V::W) {
          const int kw = int(lesser(V::W, tt - tb));
          typename V::T blk[V::W];
          for (int r = 0; r < V::W; ++r) blk[r] = V::loadm(rows + (lh + r) * T + tb, V::mask(kw));
          V::transpose(blk);
          for (int q = 0; q < kw; ++q) V::store(dst + (t0 + tb + q) * NR + lh, blk[q]);
        }
    }
  }
}

// B[pc:pc+kc, j0:j0+nc] into NR-wide k-major micro-panels, zero-padded.
void packB(const Args& g, int64_t pc, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  if (g.patch) {
    packPatches<>(*g.patch, pc, kc, j0, nc, dst);
    return;
  }
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

// img[c, iy, ix] += col[t] for the windows p0 + t (t < count) of P's row
// k = (c, i, j), (oy, ox) the window of p0: patchRow in reverse, run by run.
void addRow(const Patches& s, float* img, int64_t c, int64_t i, int64_t j, int64_t oy, int64_t ox, int64_t count,
            const float* col) {
  float* plane = img + c * s.H * s.W;
  const int64_t left = s.PW - j, right = s.W - 1 + s.PW - j;
  const int64_t oxLo = left <= 0 ? 0 : (left + s.SW - 1) / s.SW;
  const int64_t oxEnd = right < 0 ? 0 : lesser(s.OW, right / s.SW + 1);
  for (int64_t t = 0; t < count; ++oy, ox = 0) {
    const int64_t seg = lesser(count - t, s.OW - ox), end = ox + seg;
    const int64_t iy = oy * s.SH + i - s.PH;
    const int64_t lo = oxLo < ox ? ox : oxLo > end ? end : oxLo;
    const int64_t hi = oxEnd < lo ? lo : oxEnd > end ? end : oxEnd;
    if (iy >= 0 && iy < s.H && hi > lo) {
      float* d = plane + (iy * s.W + lo * s.SW - left);
      const float* src = col + t + (lo - ox);
      const int64_t n = hi - lo;
      if (s.SW == 1) {
        int64_t u = 0;
        for (; u + V::W <= n; u += V::W) V::store(d + u, V::add(V::load(d + u), V::load(src + u)));
        if (u < n) {
          const typename V::Mask m = V::mask(int(n - u));
          V::storem(d + u, m, V::add(V::loadm(d + u, m), V::loadm(src + u, m)));
        }
      } else {
        for (int64_t u = 0; u < n; ++u) d[u * s.SW] += src[u];
      }
    }
    t += seg;
  }
}

void scatterPatches(const Patches& s, float* img, const float* col, int64_t ldcol, int64_t p0, int64_t count) {
  const int64_t oy = p0 / s.OW, ox = p0 - oy * s.OW;
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t i = 0; i < s.KH; ++i)
      for (int64_t j = 0; j < s.KW; ++j, col += ldcol) addRow(s, img, c, i, j, oy, ox, count, col);
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
  // Patches are always packed; when one MC block holds all the rows, each
  // micro-panel is packed right before its tiles use it, so it is still in
  // L1 (the image rows it came from are read once per (k slice, column)).
  // One micro-panel of B stored with its rows (nearly) adjacent is already
  // the packed layout, up to the row stride: read in place.
  const bool onePanelB = !g.patch && !g.transB && nw <= NR && g.ldb <= 2 * NR;
  const bool doPackB = g.patch || g.transB || (mw > 2 * Cfg::MR && !onePanelB);
  const bool doPackA = nw > 16 * NR;
  const bool panelB = g.patch && mw <= Cfg::MC;
  const int64_t ncMax = lesser(Cfg::NC, nw);
  float* Bp = doPackB ? scratch(1, size_t(g.kc * (panelB ? NR : (ncMax + NR - 1) / NR * NR))) : nullptr;
  float* Ap = doPackA ? scratch(0, size_t(g.kc * Cfg::MC)) : nullptr;
  for (int64_t jc = n0; jc < n1; jc += Cfg::NC) {
    const int64_t nc = lesser(Cfg::NC, n1 - jc);
    for (int64_t pc = 0; pc < g.K; pc += g.kc) {
      const int64_t kc = lesser(g.kc, g.K - pc);
      const bool add = pc > 0 || g.accumulate;
      // The epilogue after the last K slice: bias and relu by the tiles,
      // sigmoid and tanh after them.
      const bool finish = pc + kc >= g.K && g.hasEpilogue(), finishInTile = finish && g.act <= 1;
      if (doPackB && !panelB) packB(g, pc, kc, jc, nc, Bp);
      for (int64_t ic = m0; ic < m1; ic += Cfg::MC) {
        const int64_t mc = lesser(Cfg::MC, m1 - ic);
        if (doPackA) packA(g, ic, mc, pc, kc, Ap);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t w = lesser(NR, nc - jr);
          const int nv = int((w + V::W - 1) / V::W);
          const typename V::Mask last = V::mask(int(w - (nv - 1) * V::W));
          if (panelB) packB(g, pc, kc, jc + jr, w, Bp);
          const float* b = panelB    ? Bp
                           : doPackB ? Bp + (jr / NR) * kc * NR
                                     : g.B + pc * g.ldb + jc + jr;
          const int64_t sb = doPackB ? NR : g.ldb;
          float* c = g.C + ic * g.ldc + jc + jr;
          TileEpilogue ep{nullptr, finishInTile && g.biasKind == 1 ? g.bias + jc + jr : nullptr, g.act == kActRelu};
          for (int64_t ir = 0; ir < mc; ir += Cfg::MR) {
            const int h = int(lesser(Cfg::MR, mc - ir));
            const bool rowA = !doPackA && !g.transA;
            const float* a = doPackA    ? Ap + (ir / Cfg::MR) * kc * Cfg::MR
                             : g.transA ? g.A + pc * g.lda + ic + ir
                                        : g.A + (ic + ir) * g.lda + pc;
            const int64_t sa = doPackA ? Cfg::MR : g.lda;
            if (finishInTile && g.biasKind == 2) ep.rowBias = g.bias + ic + ir;
            kTiles.fn[rowA][nv - 1][h - 1](kc, a, sa, b, sb, c + ir * g.ldc, g.ldc, last, add, g.alpha,
                                           finishInTile ? &ep : nullptr);
          }
          // Sigmoid and tanh (libm) once C[ic:ic+mc, this micro-panel] is
          // complete, while it is in L1.
          if (finish && !finishInTile) epilogue(g, ic, ic + mc, jc + jr, jc + jr + w);
        }
      }
    }
  }
}

// ---- Direct convolution (gemm_kernel.h, Direct) ----

// Filters per register tile: with two or three vectors each, 16 or 24
// accumulators of 32 zmm registers; 4 filters with 16 ymm or xmm ones.
constexpr int kDirectRows = V::W >= 16 ? 8 : 4;
// The most vectors of positions one call flattens (a 128×128 output plane).
constexpr int64_t kMaxPlaneVectors = 1024;

// One vector of output positions of a flattened plane (row after row of OW
// windows): lanes [0, first) from the image at a, lanes [first, n) at b (the
// next row's first windows; b is shifted so that lane l reads b + l).
template <typename VV>
struct PlaneVector {
  int64_t a, b;
  typename VV::Mask mA, mB, all;
  bool whole;  // all W lanes, from one row: at a
};

// The vectors of `count` positions from row oy0 on (OW >= W: a vector
// spans at most two rows), without a division per vector.
template <typename VV>
void planeVectors(int64_t OW, int64_t W, int64_t oy0, int64_t count, PlaneVector<VV>* pos) {
  for (int64_t v = 0, oy = oy0, ox = 0; v * VV::W < count; ++v) {
    const int64_t n = lesser(VV::W, count - v * VV::W), first = lesser(n, OW - ox);
    pos[v].a = oy * W + ox;
    pos[v].b = n > first ? (oy + 1) * W - first : pos[v].a;
    pos[v].mA = VV::range(0, int(first));
    pos[v].mB = VV::range(int(first), int(n));
    pos[v].all = VV::range(0, int(n));
    pos[v].whole = n == VV::W && first == n;
    ox += VV::W;
    if (ox >= OW) ox -= OW, ++oy;
  }
}

// The image offset of each tap k = (c·KH + i)·KW + j (conv.cpp admits K <= 64).
void tapOffsets(int64_t C, int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t* tap) {
  for (int64_t c = 0, k = 0; c < C; ++c)
    for (int64_t i = 0; i < KH; ++i)
      for (int64_t j = 0; j < KW; ++j) tap[k++] = (c * H + i) * W + j;
}

// A register tile of the direct convolution: filters [f0, f0 + rows) by
// NVEC vectors of output positions, position `at` of d's rows on, stored
// under the masks m. load(k, v) is vector v of the image at tap k. The taps
// run outermost, each image vector loaded once for all the tile's filters;
// rows beyond `rows` repeat the last filter's weights and are not stored.
// Each sum runs over k in order, then the bias, as the GEMM's tiles do.
template <int NVEC, typename VV, typename Load>
void directTile(const Direct& d, int64_t f0, int rows, int64_t at, const typename VV::Mask* m, const Load& load) {
  using T = typename VV::T;
  const int64_t K = d.C * d.KH * d.KW;
  const float* w[kDirectRows];
#pragma GCC unroll 8
  for (int r = 0; r < kDirectRows; ++r) w[r] = d.w + (f0 + (r < rows ? r : rows - 1)) * K;
  T acc[kDirectRows][NVEC];
#pragma GCC unroll 8
  for (int r = 0; r < kDirectRows; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NVEC; ++v) acc[r][v] = VV::zero();
  for (int64_t k = 0; k < K; ++k) {
    T xv[NVEC];
#pragma GCC unroll 4
    for (int v = 0; v < NVEC; ++v) xv[v] = load(k, v);
#pragma GCC unroll 8
    for (int r = 0; r < kDirectRows; ++r) {
      const T wr = VV::bcast(w[r][k]);
#pragma GCC unroll 4
      for (int v = 0; v < NVEC; ++v) acc[r][v] = VV::fma(wr, xv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kDirectRows; ++r) {
    if (r >= rows) break;  // every index into acc a constant, or GCC keeps acc in memory
    const T b = VV::bcast(d.bias ? d.bias[f0 + r] : 0.0f);
    float* out = d.y + (f0 + r) * d.ldf + at;
#pragma GCC unroll 4
    for (int v = 0; v < NVEC; ++v) {
      T x = VV::add(acc[r][v], b);
      if (d.act == kActRelu) x = VV::relu(x);
      VV::storem(out + v * VV::W, m[v], x);
    }
  }
}

// Over the rows flattened: tiles of 3 vectors of positions, each vector
// from at most two image rows (a masked load from each), so that no lane
// is wasted on a row's ragged end and the stores are whole vectors of y's
// rows. Needs lane masks and rows at least a vector wide.
template <typename VV = V>
bool directFlat(const Direct& d, const int64_t* tap) {
  if constexpr (VV::kLaneMasks) {
    const int64_t OW = d.W - d.KW + 1, count = OW * (d.oy1 - d.oy0), nvec = (count + VV::W - 1) / VV::W;
    if (OW < VV::W || nvec > kMaxPlaneVectors) return false;
    PlaneVector<VV> pos[kMaxPlaneVectors];
    planeVectors<VV>(OW, d.W, d.oy0, count, pos);
    for (int64_t f = 0; f < d.F; f += kDirectRows)
      for (int64_t v0 = 0; v0 < nvec; v0 += 3) {
        // Vectors past the last position load and store nothing.
        const int n = int(lesser(3, nvec - v0));
        const float* a[3];
        const float* b[3];
        typename VV::Mask mA[3], mB[3], m[3];
        for (int v = 0; v < 3; ++v) {
          const PlaneVector<VV>& q = pos[v0 + (v < n ? v : n - 1)];
          a[v] = d.x + q.a;
          b[v] = d.x + q.b;
          mA[v] = v < n ? q.mA : VV::range(0, 0);
          mB[v] = v < n ? q.mB : VV::range(0, 0);
          m[v] = v < n ? q.all : VV::range(0, 0);
        }
        directTile<3, VV>(d, f, int(lesser(kDirectRows, d.F - f)), v0 * VV::W, m, [&](int64_t k, int v) {
          return VV::loadInto(VV::loadm(a[v] + tap[k], mA[v]), b[v] + tap[k], mB[v]);
        });
      }
    return true;
  }
  return false;
}

void directConv(const Direct& d) {
  int64_t tap[64];
  tapOffsets(d.C, d.H, d.W, d.KH, d.KW, tap);
  if (directFlat(d, tap)) return;
  // Row by row, two vectors per tile.
  const int64_t OW = d.W - d.KW + 1;
  for (int64_t f = 0; f < d.F; f += kDirectRows) {
    const int rows = int(lesser(kDirectRows, d.F - f));
    for (int64_t oy = d.oy0; oy < d.oy1; ++oy)
      for (int64_t ox = 0; ox < OW; ox += 2 * V::W) {
        const int64_t left = OW - ox;
        const typename V::Mask m[2] = {V::mask(int(lesser(V::W, left))),
                                       V::mask(int(left > V::W ? lesser(V::W, left - V::W) : 0))};
        const float* src = d.x + oy * d.W + ox;
        auto load = [&](int64_t k, int v) { return V::loadm(src + tap[k] + v * V::W, m[v]); };
        if (left > V::W)
          directTile<2, V>(d, f, rows, (oy - d.oy0) * OW + ox, m, load);
        else
          directTile<1, V>(d, f, rows, (oy - d.oy0) * OW + ox, m, load);
      }
  }
}

// ---- The direct convolution's weight gradient (gemm_kernel.h, DirectGrad) ----

// Filters by taps per register tile: 4×5 = 20 accumulators of 32 zmm
// registers (2×5 of 16 ymm), each position vector's dy loaded once per
// filter and its image vector once per tap.
constexpr int kGradRows = V::W >= 16 ? 4 : 2, kGradTaps = 5;

template <typename VV>
void directGradTile(const DirectGrad& d, const int64_t* tap, const PlaneVector<VV>* pos, int64_t nvec, int64_t f0,
                    int rows, int64_t k0, int taps) {
  using T = typename VV::T;
  const int64_t K = d.C * d.KH * d.KW, plane = (d.H - d.KH + 1) * (d.W - d.KW + 1);
  // Tiles past the last filter or tap repeat it and are not stored.
  int64_t tk[kGradTaps], fr[kGradRows];
#pragma GCC unroll 8
  for (int t = 0; t < kGradTaps; ++t) tk[t] = tap[k0 + (t < taps ? t : taps - 1)];
#pragma GCC unroll 8
  for (int r = 0; r < kGradRows; ++r) fr[r] = (f0 + (r < rows ? r : rows - 1)) * plane;
  T acc[kGradRows][kGradTaps];
#pragma GCC unroll 8
  for (int r = 0; r < kGradRows; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < kGradTaps; ++t) acc[r][t] = VV::zero();
  for (int64_t b = 0; b < d.n; ++b) {
    const float* img = d.x + b * d.C * d.H * d.W;
    const float* dyb = d.dy + b * d.F * plane;
    for (int64_t v = 0; v < nvec; ++v) {
      const PlaneVector<VV>& p = pos[v];
      T g[kGradRows];
      // Most vectors lie within one image row and are whole: plain loads
      // (masked ones measured slower on Zen 5).
      if (p.whole) {
#pragma GCC unroll 8
        for (int r = 0; r < kGradRows; ++r) g[r] = VV::load(dyb + fr[r] + v * VV::W);
#pragma GCC unroll 8
        for (int t = 0; t < kGradTaps; ++t) {
          const T xv = VV::load(img + p.a + tk[t]);
#pragma GCC unroll 8
          for (int r = 0; r < kGradRows; ++r) acc[r][t] = VV::fma(g[r], xv, acc[r][t]);
        }
      } else {
#pragma GCC unroll 8
        for (int r = 0; r < kGradRows; ++r) g[r] = VV::loadm(dyb + fr[r] + v * VV::W, p.all);
#pragma GCC unroll 8
        for (int t = 0; t < kGradTaps; ++t) {
          const T xv = VV::loadInto(VV::loadm(img + p.a + tk[t], p.mA), img + p.b + tk[t], p.mB);
#pragma GCC unroll 8
          for (int r = 0; r < kGradRows; ++r) acc[r][t] = VV::fma(g[r], xv, acc[r][t]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kGradRows; ++r) {
    if (r >= rows) break;
#pragma GCC unroll 8
    for (int t = 0; t < kGradTaps; ++t) {
      if (t >= taps) break;
      float* out = d.part + ((f0 + r) * K + k0 + t) * VV::W;
      VV::store(out, VV::add(VV::load(out), acc[r][t]));
    }
  }
}

template <typename VV = V>
bool directConvGradOf(const DirectGrad& d) {
  if constexpr (VV::kLaneMasks) {
    const int64_t OH = d.H - d.KH + 1, OW = d.W - d.KW + 1, K = d.C * d.KH * d.KW, plane = OH * OW;
    const int64_t nvec = (plane + VV::W - 1) / VV::W;
    if (OW < VV::W || K > 64 || nvec > kMaxPlaneVectors) return false;
    int64_t tap[64];
    tapOffsets(d.C, d.H, d.W, d.KH, d.KW, tap);
    PlaneVector<VV> pos[kMaxPlaneVectors];
    planeVectors<VV>(OW, d.W, 0, plane, pos);
    // Tap blocks of equal size (25 = 5·5), at most kGradTaps each.
    const int64_t blocks = (K + kGradTaps - 1) / kGradTaps, per = (K + blocks - 1) / blocks;
    for (int64_t f0 = 0; f0 < d.F; f0 += kGradRows)
      for (int64_t k0 = 0; k0 < K; k0 += per)
        directGradTile<VV>(d, tap, pos, nvec, f0, int(lesser(kGradRows, d.F - f0)), k0, int(lesser(per, K - k0)));
    return true;
  }
  return false;
}

bool directConvGrad(const DirectGrad& d) { return directConvGradOf<>(d); }
