// The register tiles of the direct convolution (runtime/conv_direct.cpp),
// written once over the V of gemm_tiles.h and included right after it by
// gemm_avx512.cpp, gemm_avx2.cpp and gemm_generic.cpp (inside their
// anonymous namespace; no standard-library calls, as there).
//
// A tile is R output pixels of one row by NV vectors of filters: each step k
// of the patch broadcasts R input values (x at the pixel's window start plus
// off[k]) against NV vectors of packed weights. Vectorizing over filters
// rather than pixels needs no junk columns, no phase planes for stride 2 and
// no tails in the pixel direction: any row width is R-tiled exactly, and a
// 7-wide row still fills 28 accumulators (7 pixels × 64 filters). The cost
// is a W×W transpose per tile on the way to NCHW, small beside K·R·NV FMAs.

// The vector registers a tile may fill: R·NV accumulators, NV weight
// vectors and one broadcast (R·NV + NV + 1 ≤ kDirRegs, or GCC spills an
// accumulator into the inner loop: 7×4 on AVX-512 did), the widest filter
// block and the longest pixel run. Two vectors of filters at most: 14×2
// tiles (and 2 rows × 7 on 7-wide maps) beat 6×4 ones forward, whose
// transposes per pixel cost more, and the weight gradient's 12×2 beat its
// 6×4 (measured: 74 vs 70 % and 62 vs 46 % of the peak on 64→64 @ 14²).
constexpr int kDirRegs = V::W == 16 ? 32 : 16;
constexpr int kDirNvMax = 2;
constexpr int kDirRMax = V::W == 16 ? 14 : 12;
// Rows narrower than this may be tiled two at a time (RW below).
constexpr int kDirRwMax = 7;
// The weight gradient's tile also keeps R row pointers and its NV dy vectors
// live: past 24 accumulators GCC spills a dy vector into every FMA's operand.
constexpr int kDirGradAcc = V::W == 16 ? 24 : 10;

constexpr bool dirFits(int r, int nv) { return r <= kDirRMax && r * nv + nv + 1 <= kDirRegs; }

// A finished tile, R pixels (or patch rows) by NV vectors of filters, with
// bias and relu, transposed W rows at a time to filters by pixels:
// y[f·ldf + r] for f < nf, r < R.
template <int R, int NV>
void dirStore(typename V::T (&acc)[R][NV], int nf, const float* bias, bool relu, float* y, int64_t ldf) {
  using T = typename V::T;
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int nfv = nf - v * V::W < V::W ? nf - v * V::W : V::W;
    if (nfv <= 0) break;
    if (bias) {
      const T b = V::loadm(bias + v * V::W, V::mask(nfv));
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r][v] = V::add(acc[r][v], b);
    }
    if (relu)
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) acc[r][v] = V::relu(acc[r][v]);
    // Pixels by filters to filters by pixels, W pixels at a time.
#pragma GCC unroll 4
    for (int r0 = 0; r0 < R; r0 += V::W) {
      T blk[V::W];
#pragma GCC unroll 16
      for (int t = 0; t < V::W; ++t) blk[t] = r0 + t < R ? acc[r0 + t < R ? r0 + t : 0][v] : V::zero();
      V::transpose(blk);
      const int nr = R - r0 < V::W ? R - r0 : V::W;
      const typename V::Mask m = V::mask(nr);
      float* yv = y + v * V::W * ldf + r0;
      for (int i = 0; i < nfv; ++i) V::storem(yv + i * ldf, m, blk[i]);
    }
  }
}

// A finished tile stored as it is held, pixel r's NV vectors of filters at
// y + r·ldp (DirectRows::pixelMajor): for a consumer that reads filters in
// vectors (Winograd's output transform), the transposes are wasted work.
template <int R, int NV>
void dirStorePixels(typename V::T (&acc)[R][NV], int nf, const float* bias, bool relu, float* y, int64_t ldp) {
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int nfv = nf - v * V::W < V::W ? nf - v * V::W : V::W;
    const typename V::T b = bias && nfv > 0 ? V::loadm(bias + v * V::W, V::mask(nfv)) : V::zero();
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      typename V::T o = bias ? V::add(acc[r][v], b) : acc[r][v];
      if (relu) o = V::relu(o);
      V::store(y + r * ldp + v * V::W, o);
    }
  }
}

// One tile's filters: nf of them (at most NV vectors) from column v0·W of
// the panel, whose rows are ldw floats apart; bias at their first or null.
struct DirBlock {
  const float* wp;
  int64_t ldw;
  int nf;
  const float* bias;
};

// RW 0: R pixels of one row. RW > 0: two whole rows of RW pixels each
// (R = 2·RW), so that 7-wide maps still fill the registers; their outputs
// (and the running sums) are contiguous all the same, since the rows are
// whole. The second row's own pointer spares a lea per broadcast (they made
// the 14×2 loop issue-bound). CS: off[k] = off[0] + k·cs (Winograd's
// products, 1×1 convolutions), a pointer step per k instead of a table load.
// pf: the next tile's input from this one's. Its pixels at the same k are
// prefetched, and far's lines (the next image) into L2: a 1×1
// convolution's k steps a whole plane, so each step's broadcasts met a line
// not yet in L1 and the FMAs waited on it. Other one-row tiles prefetch only
// far, where nonzero (DirectRows::ahead: what the caller copies or writes
// next). Not in two-row tiles: 7-wide images sit in L1 already, and there
// the prefetches only cost issue slots.
template <int R, int NV, int SW, int RW, bool CS>
void dirTile(const DirectRows& a, const DirBlock& b, const float* in, float* y, int64_t k0, int64_t k1, float* part,
             int64_t pf, uintptr_t far) {
  using T = typename V::T;
  T acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = k0 == 0 ? V::zero() : V::load(part + (r * NV + v) * V::W);
  const int64_t ldw = b.ldw, rowStep = RW > 0 ? a.rowStep : 0;
  const int64_t cs = CS && a.K > 1 ? a.off[1] - a.off[0] : 0;
  const float* wp = b.wp + k0 * ldw;
  const float* pc = in + a.off[0] + k0 * cs;
  constexpr int H = RW > 0 ? RW : R;  // broadcasts from the first row
  for (int64_t k = k0; k < k1; ++k, wp += ldw) {
    const float* p = CS ? pc : in + a.off[k];
    const float* p2 = p + rowStep;
    if (CS) pc += cs;
    if (CS && RW == 0) {
      __builtin_prefetch(reinterpret_cast<const void*>(far + uintptr_t(k - k0) * 64), 0, 2);
      __builtin_prefetch(p + pf);
      __builtin_prefetch(p + pf + (H - 1) * SW);
    } else if (RW == 0 && far) {
      __builtin_prefetch(reinterpret_cast<const void*>(far + uintptr_t(k - k0) * 64), 0, 2);
    }
    T wv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) wv[v] = V::load(wp + v * V::W);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const T xr = V::bcast(r < H ? p[r * SW] : p2[(r - H) * SW]);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(xr, wv[v], acc[r][v]);
    }
  }
  if (k1 == a.K)
    return a.pixelMajor ? dirStorePixels<R, NV>(acc, b.nf, b.bias, a.relu, y, a.ldf)
                        : dirStore<R, NV>(acc, b.nf, b.bias, a.relu, y, a.ldf);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) V::store(part + (r * NV + v) * V::W, acc[r][v]);
}

using DirTileFn = void (*)(const DirectRows&, const DirBlock&, const float*, float*, int64_t, int64_t, float*,
                           int64_t, uintptr_t);

// kDirTiles.fn[CS][SW − 1][NV − 1][R − 1] (one row) and .two[CS][SW −
// 1][NV − 1][RW − 1] (two rows of RW), null where the registers do not hold
// them.
struct DirTileTable {
  DirTileFn fn[2][2][kDirNvMax][kDirRMax];
  DirTileFn two[2][2][kDirNvMax][kDirRwMax];
  template <int SW, int NV, int R>
  constexpr void put() {
    if constexpr (dirFits(R, NV)) {
      fn[0][SW - 1][NV - 1][R - 1] = &dirTile<R, NV, SW, 0, false>;
      fn[1][SW - 1][NV - 1][R - 1] = &dirTile<R, NV, SW, 0, true>;
    }
    if constexpr (R <= kDirRwMax && dirFits(2 * R, NV)) {
      two[0][SW - 1][NV - 1][R - 1] = &dirTile<2 * R, NV, SW, R, false>;
      two[1][SW - 1][NV - 1][R - 1] = &dirTile<2 * R, NV, SW, R, true>;
    }
    if constexpr (R < kDirRMax) put<SW, NV, R + 1>();
    else if constexpr (NV < kDirNvMax) put<SW, NV + 1, 1>();
    else if constexpr (SW < 2) put<SW + 1, 1, 1>();
  }
  constexpr DirTileTable() : fn{}, two{} { put<1, 1, 1>(); }
};
constexpr DirTileTable kDirTiles;

// The longest run of one row a tile of nv vectors holds.
constexpr int64_t dirRunMax(int nv) {
  int64_t r = kDirRMax;
  while (r > 1 && !dirFits(int(r), nv)) --r;
  return r;
}

// A model of a tile's cost in half cycles: two FMAs a cycle, about four
// more operations a step k (the weight loads, the offset, the loop), and
// the transposes of the store.
constexpr int64_t dirTileCost(int64_t K, int64_t r, int nv) {
  return K * (r * nv + 4) + 96 * nv * ((r + V::W - 1) / V::W) + 60;
}

// One row's tiles of nv vectors: runs as even as the registers allow (a
// 28-wide row: two of 14; a 9-wide: 9).
struct DirRun {
  int64_t len;
  bool two;  // two whole rows per tile
};
constexpr DirRun dirRun(int64_t OW, int64_t OH, int nv) {
  const int64_t rmax = dirRunMax(nv), runs = (OW + rmax - 1) / rmax;
  return {(OW + runs - 1) / runs, OH >= 2 && OW <= kDirRwMax && dirFits(int(2 * OW), nv)};
}
constexpr int64_t dirBlockCost(int64_t K, int64_t OW, int64_t OH, int nv) {
  const DirRun run = dirRun(OW, OH, nv);
  if (run.two) return OH / 2 * dirTileCost(K, 2 * OW, nv) + OH % 2 * dirTileCost(K, OW, nv);
  const int64_t full = OW / run.len, rest = OW % run.len;
  return OH * (full * dirTileCost(K, run.len, nv) + (rest ? dirTileCost(K, rest, nv) : 0));
}

// Every row of one image's output for one filter block. The block's nv
// vectors go in sub-blocks of nvs (the last one narrower), nvs the cheapest
// by dirBlockCost: 64 filters on a 14-wide row as two passes of 14×2 rather
// than tiles of 5×4, whose stores cost more. K is swept in slices of a.kc
// so that a slice of the weight panel stays in L1 across all the image's
// tiles, the running sums waiting in a.part between slices (each tile's at
// its first pixel·nv·W plus its first vector·its pixels·W); each sum still
// runs over k in order, and the choice is the shapes' alone.
void dirRows(const DirectRows& a) {
  const int nv = (a.nf + V::W - 1) / V::W;
  int nvs = nv;
  int64_t best = -1;
  for (int s = nv; s >= 1; --s) {
    const int blocks = nv / s;
    int64_t c = blocks * dirBlockCost(a.K, a.OW, a.OH, s);
    if (nv % s) c += dirBlockCost(a.K, a.OW, a.OH, nv % s);
    if (best < 0 || c < best) best = c, nvs = s;
  }
  const int64_t ldw = int64_t(nv) * V::W;
  // Constant-stride tiles (with their prefetches) for images only: on
  // Winograd's 1×T products, whose inputs were just written to L2, they did
  // not pay.
  bool cs = a.OH > 1;
  for (int64_t k = 2; k < a.K && cs; ++k) cs = a.off[k] - a.off[k - 1] == a.off[1] - a.off[0];
  // The lines past this input (the next image, unpadded) into L2, one per
  // step k of the first pass: it is read later by planes, as K strided streams
  // the hardware prefetchers do not follow.
  // As integers: past the input is past its array (a prefetch never faults).
  // Other tiles: a.ahead's lines, once over (0: none).
  const uintptr_t in0 = reinterpret_cast<uintptr_t>(a.in), span = uintptr_t(a.off[a.K - 1] + a.OH * a.rowStep) * 4;
  const uintptr_t ah0 = reinterpret_cast<uintptr_t>(a.ahead), ahEnd = ah0 + uintptr_t(a.aheadFloats) * 4;
  uintptr_t far = in0 + span, ah = ah0;
  auto farNext = [&](int64_t n) {
    if (!cs) {
      const uintptr_t f = a.ahead && ah < ahEnd ? ah : 0;
      ah += uintptr_t(n) * 64;
      return f;
    }
    const uintptr_t f = far < in0 + 2 * span ? far : in0;
    far += uintptr_t(n) * 64;
    return f;
  };
  for (int64_t k0 = 0; k0 < a.K; k0 += a.kc) {
    const int64_t k1 = a.K - k0 < a.kc ? a.K : k0 + a.kc;
    for (int v0 = 0; v0 < nv; v0 += nvs) {
      const int w = nv - v0 < nvs ? nv - v0 : nvs;
      const DirBlock b{a.wp + v0 * V::W, ldw, a.nf - v0 * V::W < w * V::W ? a.nf - v0 * V::W : w * V::W,
                       a.bias ? a.bias + v0 * V::W : nullptr};
      // Pixel p of the block at yb + p·yp.
      float* yb = a.pixelMajor ? a.y + v0 * V::W : a.y + v0 * V::W * a.ldf;
      const int64_t yp = a.pixelMajor ? a.ldf : 1;
      const DirRun run = dirRun(a.OW, a.OH, w);
      // The next tile's input from this one's, the block's last pointing back at its first.
      auto next = [&](int64_t oy, int64_t ox, const float* in) {
        if (run.two && oy + 1 < a.OH) oy += 2, ox = 0;
        else if ((ox += run.len) >= a.OW) ++oy, ox = 0;
        return (oy < a.OH ? a.in + oy * a.rowStep + ox * a.SW : a.in) - in;
      };
      for (int64_t oy = 0; oy < a.OH;) {
        const int64_t pos = oy * a.OW;
        float* part = a.part + pos * ldw;
        if (run.two && oy + 1 < a.OH) {
          const float* in = a.in + oy * a.rowStep;
          kDirTiles.two[cs][a.SW - 1][w - 1][a.OW - 1](a, b, in, yb + pos * yp, k0, k1, part + v0 * 2 * a.OW * V::W,
                                                       next(oy, 0, in), farNext(k1 - k0));
          oy += 2;
          continue;
        }
        for (int64_t ox = 0; ox < a.OW; ox += run.len) {
          const int64_t r = a.OW - ox < run.len ? a.OW - ox : run.len;
          const float* in = a.in + oy * a.rowStep + ox * a.SW;
          kDirTiles.fn[cs][a.SW - 1][w - 1][r - 1](a, b, in, yb + (pos + ox) * yp, k0, k1, part + ox * ldw + v0 * r * V::W,
                                                   next(oy, ox, in), farNext(k1 - k0));
        }
        ++oy;
      }
    }
  }
}

// The weight gradient's tile: R patch rows k by NV vectors of filters, summed
// over every position of every image of the chunk in order (images, rows,
// columns), starting from the running sums in part (or 0) and ending in part
// or, transposed, in dw.
template <int R, int NV, int SW>
void dirGradTile(const DirectGradRows& a, const int32_t* off, float* part, float* dw) {
  using T = typename V::T;
  T acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = a.first ? V::zero() : V::load(part + (r * NV + v) * V::W);
  const int64_t P = a.OH * a.OW;
  for (int64_t n = 0; n < a.nimg; ++n)
    for (int64_t oy = 0; oy < a.OH; ++oy) {
      const float* row = a.in + n * a.imgStride + oy * a.rowStep;
      const float* q[R];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) q[r] = row + off[r];
      const float* d = a.dyT + (n * P + oy * a.OW) * a.ldT;
      for (int64_t ox = 0; ox < a.OW; ++ox, d += a.ldT) {
        T dv[NV];
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) dv[v] = V::load(d + v * V::W);
#pragma GCC unroll 16
        for (int r = 0; r < R; ++r) {
          const T xr = V::bcast(q[r][ox * SW]);
#pragma GCC unroll 4
          for (int v = 0; v < NV; ++v) acc[r][v] = V::fma(xr, dv[v], acc[r][v]);
        }
      }
    }
  if (dw) return dirStore<R, NV>(acc, a.nf, nullptr, false, dw, a.K);
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) V::store(part + (r * NV + v) * V::W, acc[r][v]);
}

using DirGradFn = void (*)(const DirectGradRows&, const int32_t*, float*, float*);

struct DirGradTable {
  DirGradFn fn[2][kDirNvMax][kDirRMax];
  template <int SW, int NV, int R>
  constexpr void put() {
    if constexpr (R * NV <= kDirGradAcc) fn[SW - 1][NV - 1][R - 1] = &dirGradTile<R, NV, SW>;
    if constexpr (R < kDirRMax) put<SW, NV, R + 1>();
    else if constexpr (NV < kDirNvMax) put<SW, NV + 1, 1>();
    else if constexpr (SW < 2) put<SW + 1, 1, 1>();
  }
  constexpr DirGradTable() : fn{} { put<1, 1, 1>(); }
};
constexpr DirGradTable kDirGradTiles;

// The nk patch rows of a in runs as even as the accumulators allow.
void dirGradRows(const DirectGradRows& a) {
  const int nv = (a.nf + V::W - 1) / V::W;
  const int64_t rmax = kDirGradAcc / nv < kDirRMax ? kDirGradAcc / nv : kDirRMax;
  const int64_t runs = (a.nk + rmax - 1) / rmax, len = (a.nk + runs - 1) / runs;
  for (int64_t k = 0; k < a.nk; k += len) {
    const int64_t r = a.nk - k < len ? a.nk - k : len;
    kDirGradTiles.fn[a.SW - 1][nv - 1][r - 1](a, a.off + k, a.part + k * nv * V::W, a.dw ? a.dw + k : nullptr);
  }
}

// dst[c·ldd + r] = src[r·lds + c] for r < rows, c < cols, and 0 for rows ≤ r
// < padRows (a multiple of W): W×W blocks through registers.
void dirTranspose(const float* src, int64_t rows, int64_t padRows, int64_t cols, int64_t lds, float* dst,
                  int64_t ldd) {
  using T = typename V::T;
  for (int64_t r0 = 0; r0 < padRows; r0 += V::W)
    for (int64_t c0 = 0; c0 < cols; c0 += V::W) {
      const int nc = cols - c0 < V::W ? int(cols - c0) : V::W;
      const typename V::Mask m = V::mask(nc);
      T blk[V::W];
#pragma GCC unroll 16
      for (int t = 0; t < V::W; ++t) blk[t] = r0 + t < rows ? V::loadm(src + (r0 + t) * lds + c0, m) : V::zero();
      V::transpose(blk);
      for (int t = 0; t < nc; ++t) V::store(dst + (c0 + t) * ldd + r0, blk[t]);
    }
}

// Lanes 0, W, 1, W + 1, … of a then b, from lane H·W/2 of each (HI 0 or 1).
template <int HI, size_t... I>
typename V::T dirZip(typename V::T a, typename V::T b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, int(I % 2 ? V::W : 0) + int(HI * V::W / 2 + I / 2)...);
}

// dst[r·ldd + 2m] = ev[r·lde + m], dst[r·ldd + 2m + 1] = od[r·ldo + m] for
// r < rows and columns < w: the input gradient's two column phases into
// one row of dx, W·2 columns a step (masked: nothing read or written past
// a row).
void dirInterleave(const float* ev, int64_t lde, const float* od, int64_t ldo, float* dst, int64_t ldd, int64_t w,
                   int64_t rows) {
  constexpr int W = V::W;
  using M = typename V::Mask;
  const int64_t ne = (w + 1) / 2, no = w / 2;
  // Columns outer: the masks are the same on every row.
  for (int64_t m = 0; m < ne; m += W) {
    const M me = V::mask(int(lesser(W, ne - m))), mo = V::mask(int(no > m ? lesser(W, no - m) : 0));
    const int64_t left = w - 2 * m;
    const M lo = V::mask(int(lesser(W, left))), hi = V::mask(int(left > W ? lesser(W, left - W) : 0));
    for (int64_t r = 0; r < rows; ++r) {
      const typename V::T a = V::loadm(ev + r * lde + m, me), b = V::loadm(od + r * ldo + m, mo);
      float* d = dst + r * ldd + 2 * m;
      V::storem(d, lo, dirZip<0>(a, b, std::make_index_sequence<W>{}));
      if (left > W) V::storem(d + W, hi, dirZip<1>(a, b, std::make_index_sequence<W>{}));
    }
  }
}
