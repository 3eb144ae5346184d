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

// One vector of outputs at src + x (MASKED: the row's last, under m), the
// tap count NT a template argument (0: d.taps at run time). No lambdas: GCC
// compiles those without the instruction set of the pragma around them.
template <int NT, bool MASKED>
typename V::T depthwiseSum(const DepthwiseRows& d, const typename V::T* wv, const int64_t* off, const float* src,
                           typename V::T acc, typename V::Mask m) {
  if constexpr (NT > 0) {
#pragma GCC unroll 25
    for (int t = 0; t < NT; ++t) acc = V::fma(wv[t], MASKED ? V::loadm(src + off[t], m) : V::load(src + off[t]), acc);
  } else {
    for (int64_t t = 0; t < d.taps; ++t) {
      const float* p = src + d.off[t];
      acc = V::fma(V::bcast(d.w[t]), MASKED ? V::loadm(p, m) : V::load(p), acc);
    }
  }
  return d.act == kActRelu ? V::relu(acc) : acc;
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
  for (int64_t r = 0; r < d.rows; ++r) {
    const float* src = d.src + r * d.lds;
    float* out = d.out + r * d.ldo;
    int64_t x = 0;
    for (; x < whole; x += V::W) V::store(out + x, depthwiseSum<NT, false>(d, wv, off, src + x, bias, tail));
    if (x < d.count) V::storem(out + x, tail, depthwiseSum<NT, true>(d, wv, off, src + x, bias, tail));
  }
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
