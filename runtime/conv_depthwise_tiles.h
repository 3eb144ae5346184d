// The depthwise convolution's row kernels (gemm_kernel.h, DepthwiseRows and
// DepthwiseGrad), written over the vector abstraction V of gemm_tiles.h and
// included right after it by each instruction set's file, inside the same
// anonymous namespace (so the same rule holds: no standard-library calls).
//
// The plane is memory-bound work: a handful of products per element loaded.
// What the kernels avoid is everything else: the taps' weights and offsets
// sit in registers for the whole plane (their count a template argument for
// the common ones: 3×3 = 9, a stride-2 3×3's phases 4, 2 and 1, 5×5 = 25),
// rows are read from the caller's padded copy with no edge tests, and only
// the last vector of a row is masked.

// One vector of outputs at src + x of each of R rows (MASKED: the rows'
// last, under m), the tap count NT a template argument (0: d.taps at run
// time). R rows at once: a row's sum is a chain of dependent FMAs, and a
// plane's rows are often a single vector wide. No lambdas: GCC compiles
// those without the instruction set of the pragma around them.
template <int NT, int R, bool MASKED>
void depthwiseSum(const DepthwiseRows& d, const typename V::T* wv, const int64_t* off, const float* src,
                  typename V::T bias, typename V::Mask m, float* out) {
  using T = typename V::T;
  T acc[R];
#pragma GCC unroll 4
  for (int k = 0; k < R; ++k) acc[k] = bias;
  if constexpr (NT > 0) {
#pragma GCC unroll 25
    for (int t = 0; t < NT; ++t)
#pragma GCC unroll 4
      for (int k = 0; k < R; ++k) {
        const float* p = src + k * d.lds + off[t];
        acc[k] = V::fma(wv[t], MASKED ? V::loadm(p, m) : V::load(p), acc[k]);
      }
  } else {
    for (int64_t t = 0; t < d.taps; ++t) {
      const T wt = V::bcast(d.w[t]);
#pragma GCC unroll 4
      for (int k = 0; k < R; ++k) {
        const float* p = src + k * d.lds + d.off[t];
        acc[k] = V::fma(wt, MASKED ? V::loadm(p, m) : V::load(p), acc[k]);
      }
    }
  }
#pragma GCC unroll 4
  for (int k = 0; k < R; ++k) {
    const T v = d.act == kActRelu ? V::relu(acc[k]) : acc[k];
    if (MASKED)
      V::storem(out + k * d.ldo, m, v);
    else
      V::store(out + k * d.ldo, v);
  }
}

template <int NT, int R>
void depthwiseRowBlock(const DepthwiseRows& d, const typename V::T* wv, const int64_t* off, int64_t r,
                       typename V::T bias, int64_t whole, typename V::Mask tail) {
  const float* src = d.src + r * d.lds;
  float* out = d.out + r * d.ldo;
  int64_t x = 0;
  for (; x < whole; x += V::W) depthwiseSum<NT, R, false>(d, wv, off, src + x, bias, tail, out + x);
  if (x < d.count) depthwiseSum<NT, R, true>(d, wv, off, src + x, bias, tail, out + x);
}

// The tap counts with kernels of their own; others take the loop with a
// run-time count.
template <int NT>
void depthwiseRowsOf(const DepthwiseRows& d) {
  using T = typename V::T;
  constexpr int kRegs = NT > 0 ? NT : 1;
  T wv[kRegs];
  int64_t off[kRegs];
#pragma GCC unroll 25
  for (int t = 0; t < NT; ++t) {
    wv[t] = V::bcast(d.w[t]);
    off[t] = d.off[t];
  }
  const T bias = V::bcast(d.bias);
  const int64_t whole = d.count / V::W * V::W;
  const typename V::Mask tail = V::mask(int(d.count - whole));
  int64_t r = 0;
  for (; r + 4 <= d.rows; r += 4) depthwiseRowBlock<NT, 4>(d, wv, off, r, bias, whole, tail);
  for (; r < d.rows; ++r) depthwiseRowBlock<NT, 1>(d, wv, off, r, bias, whole, tail);
}

void depthwiseRowsTile(const DepthwiseRows& d) {
  switch (d.taps) {
    case 1: return depthwiseRowsOf<1>(d);
    case 2: return depthwiseRowsOf<2>(d);
    case 4: return depthwiseRowsOf<4>(d);
    case 9: return depthwiseRowsOf<9>(d);
    case 25: return depthwiseRowsOf<25>(d);
    default: return depthwiseRowsOf<0>(d);
  }
}

// Taps [t0, t0 + NT) of the weight gradient, their NT accumulators (and
// db's with DB) in registers over all rows: 25 + 3 of 32 zmm registers,
// at most 9 + 3 of 16 ymm or xmm ones (kDepthwiseGradTaps).
template <int NT, bool DB>
void depthwiseGradOf(const DepthwiseGrad& d, int64_t t0) {
  using T = typename V::T;
  T acc[NT], db = DB ? V::load(d.acc + d.taps * V::W) : V::zero();
  int64_t off[NT];
#pragma GCC unroll 25
  for (int t = 0; t < NT; ++t) {
    acc[t] = V::load(d.acc + (t0 + t) * V::W);
    off[t] = d.off[t0 + t];
  }
  const int64_t whole = d.count / V::W * V::W;
  const typename V::Mask tail = V::mask(int(d.count - whole));
  for (int64_t r = 0; r < d.rows; ++r) {
    const float* src = d.src + r * d.lds;
    const float* dy = d.dy + r * d.lddy;
    int64_t x = 0;
    for (; x < whole; x += V::W) {
      const T g = V::load(dy + x);
      if constexpr (DB) db = V::add(db, g);
#pragma GCC unroll 25
      for (int t = 0; t < NT; ++t) acc[t] = V::fma(g, V::load(src + off[t] + x), acc[t]);
    }
    // The image under the masked-off lanes is not read: a NaN there would
    // survive a product with dy's zero.
    if (x < d.count) {
      const T g = V::loadm(dy + x, tail);
      if constexpr (DB) db = V::add(db, g);
#pragma GCC unroll 25
      for (int t = 0; t < NT; ++t) acc[t] = V::fma(g, V::loadm(src + off[t] + x, tail), acc[t]);
    }
  }
#pragma GCC unroll 25
  for (int t = 0; t < NT; ++t) V::store(d.acc + (t0 + t) * V::W, acc[t]);
  if constexpr (DB) V::store(d.acc + d.taps * V::W, db);
}

constexpr int kDepthwiseGradTaps = V::W >= 16 ? 25 : 9;

template <bool DB>
void depthwiseGradGroup(const DepthwiseGrad& d, int64_t t0, int64_t n) {
  if (kDepthwiseGradTaps >= 25 && n >= 25) return depthwiseGradOf<kDepthwiseGradTaps, DB>(d, t0);
  if (n >= 9) return depthwiseGradOf<9, DB>(d, t0);
  if (n >= 4) return depthwiseGradOf<4, DB>(d, t0);
  if (n >= 2) return depthwiseGradOf<2, DB>(d, t0);
  return depthwiseGradOf<1, DB>(d, t0);
}

// The taps in groups (each over all rows, in tap order), db with the
// first; taps >= 1 (a window has at least one).
void depthwiseGradTile(const DepthwiseGrad& d) {
  const int64_t big = kDepthwiseGradTaps;
  for (int64_t t0 = 0; t0 < d.taps;) {
    const int64_t left = d.taps - t0;
    const int64_t n = left >= big ? big : left >= 9 ? 9 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
    if (t0 == 0 && d.db)
      depthwiseGradGroup<true>(d, t0, n);
    else
      depthwiseGradGroup<false>(d, t0, n);
    t0 += n;
  }
}

// Lanes 0, 2, 4, … (ODD: 1, 3, 5, …) of the 2·W lanes of a then b: one
// permute of two registers where the instruction set has it.
template <bool ODD, size_t... I>
typename V::T depthwiseHalf(typename V::T a, typename V::T b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, int(2 * I + (ODD ? 1 : 0))...);
}

// Stride 2: both phases of a padded row from one pass over the image row,
// 2·W pixels a step (masked past the row's end: the zeros that puts into
// the buffer land on its padding, which holds zeros anyway).
void depthwisePadPairs(const DepthwisePad& d, const float* src, float* dst) {
  constexpr int W = V::W;
  float* odd = dst + d.len;
  int64_t u = 0;
  for (; u < d.len && 2 * u < d.pw; ++u)  // the left padding's column pairs, partly pixels
    for (int r = 0; r < 2; ++r) {
      const int64_t x = 2 * u + r - d.pw;
      if (x >= 0 && x < d.w) (r ? odd : dst)[u] = src[x];
    }
  for (; u < d.len; u += W) {
    const int64_t x = 2 * u - d.pw;
    if (x >= d.w) break;
    const int64_t left = d.w - x;
    const typename V::T a = V::loadm(src + x, V::mask(int(lesser(W, left))));
    const typename V::T b = left > W ? V::loadm(src + x + W, V::mask(int(lesser(W, left - W)))) : V::zero();
    const typename V::Mask m = V::mask(int(lesser(W, d.len - u)));
    V::storem(dst + u, m, depthwiseHalf<false>(a, b, std::make_index_sequence<W>{}));
    V::storem(odd + u, m, depthwiseHalf<true>(a, b, std::make_index_sequence<W>{}));
  }
}

// Row by row: at stride 1 a vector copy (the last vector masked on both
// sides: neither the image nor the buffer is touched past the row); at
// larger strides one pass per phase, a strided gather the compiler
// vectorizes as it can.
void depthwisePadTile(const DepthwisePad& d) {
  for (int64_t Y = 0; Y < d.rows; ++Y) {
    const int64_t y = Y - d.ph;
    if (y < 0 || y >= d.h) continue;
    const float* src = d.x + y * d.w;
    if (d.sw == 2) {
      depthwisePadPairs(d, src, d.buf + Y * 2 * d.len);
      continue;
    }
    for (int64_t r = 0; r < d.sw; ++r) {
      // Index u of phase r is padded column u·sw + r, image column u·sw + r − pw.
      // (Both numerators can be negative, where / rounds towards zero.)
      const int64_t lo = d.pw - r + d.sw - 1, hi = d.w - 1 + d.pw - r;
      const int64_t u0 = lo > 0 ? lo / d.sw : 0, u1 = hi < 0 ? 0 : lesser(d.len, hi / d.sw + 1);
      float* dst = d.buf + Y * d.sw * d.len + r * d.len;
      if (d.sw == 1) {
        const float* s = src - d.pw;
        int64_t u = u0;
        for (; u + V::W <= u1; u += V::W) V::store(dst + u, V::load(s + u));
        if (u < u1) {
          const typename V::Mask m = V::mask(int(u1 - u));
          V::storem(dst + u, m, V::loadm(s + u, m));
        }
      } else {
        for (int64_t u = u0; u < u1; ++u) dst[u] = src[u * d.sw + r - d.pw];
      }
    }
  }
}
