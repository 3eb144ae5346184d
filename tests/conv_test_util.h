// What the convolution tests share (tests/test_conv_*.cpp): random
// operands, the registry's double-precision reference evaluation, the
// tolerance that grows with Σ|terms|, and checkConv, which runs one geometry
// through the three runtime calls with a given algorithm (runtime/conv_geom.h)
// on the current instruction set.
#pragma once
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/ops/op_registry.h"
#include "runtime/conv.h"
#include "runtime/gemm.h"
#include "runtime/parallel.h"

namespace conv_test {

using nnc::ConvGeom;

inline nnc::Attr pairAttr(int64_t a, int64_t b) { return nnc::Attr{std::vector<int64_t>{a, b}}; }

// Restores the instruction set and thread count a test changed.
struct Restore {
  std::string isa = nnc::sgemmIsa();
  int threads = nnc::threadCount();
  ~Restore() {
    nnc::setSgemmIsa(isa.c_str());
    nnc::setThreadCount(threads);
  }
};

inline std::vector<std::string> isas() {
  std::vector<std::string> out;
  Restore restore;
  for (const char* name : {"avx512", "avx2", "generic"})
    if (nnc::setSgemmIsa(name)) out.push_back(name);
  return out;
}

inline std::vector<float> randoms(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

inline nnc::Tensor tensorOf(nnc::Shape shape, const std::vector<float>& v, bool absolute = false) {
  std::vector<double> d(v.size());
  for (size_t i = 0; i < v.size(); ++i) d[i] = absolute ? std::fabs(double(v[i])) : double(v[i]);
  return nnc::Tensor(nnc::TensorType{nnc::DType::F32, std::move(shape)}, std::move(d));
}

// The registry's reference evaluation (shape rule and eval, in double).
inline nnc::Tensor reference(std::string_view name, const std::vector<nnc::Tensor>& in, nnc::Attrs attrs) {
  const nnc::OpDef* op = nnc::findOp(name);
  REQUIRE(op);
  auto full = nnc::completeAttrs(*op, in.size(), std::move(attrs));
  if (!full) FAIL(full.error().message);
  std::vector<nnc::TensorType> types;
  std::vector<const nnc::Tensor*> ptrs;
  for (const nnc::Tensor& t : in) {
    types.push_back(t.type);
    ptrs.push_back(&t);
  }
  auto ty = op->shape(types, *full);
  if (!ty) FAIL(ty.error().message);
  nnc::Tensor out(*ty);
  nnc::Rng rng(1);
  const nnc::EvalEnv env{false, &rng};
  auto st = op->eval(nnc::EvalArgs{ptrs, *full, out, env});
  if (!st) FAIL(st.error().message);
  return out;
}

inline std::string describe(const ConvGeom& g) {
  std::ostringstream s;
  s << nnc::sgemmIsa() << " x[" << g.n << ", " << g.c << ", " << g.h << ", " << g.w << "] w[" << g.f << ", "
    << g.c / g.groups << ", " << g.kh << ", " << g.kw << "] stride [" << g.sh << ", " << g.sw << "] pad [" << g.ph
    << ", " << g.pw << "] groups " << g.groups;
  return s.str();
}

inline double activate(double v, int act) {
  switch (act) {
    case 1: return v > 0 ? v : 0;
    case 2: return 1 / (1 + std::exp(-v));
    case 3: return std::tanh(v);
    default: return v;
  }
}

// got against act(want) element by element. `magnitude` is the reference
// evaluated on the operands' absolute values (Σ|terms| per element): a float
// sum of `terms` products in any order is within terms·2^-24·Σ|terms| of the
// exact value, so the tolerance grows with it (as tests/test_gemm.cpp's);
// the activations are 1-Lipschitz, so the same bound holds after them.
inline void requireClose(const char* what, const std::vector<float>& got, const nnc::Tensor& want,
                  const nnc::Tensor& magnitude, int64_t terms, int act, const std::string& context) {
  REQUIRE(got.size() == want.data.size());
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const double w = activate(want.data[i], act);
    const double tol = 1e-4 * std::fabs(w) + 1e-5 + double(terms + 2) * std::ldexp(magnitude.data[i], -23);
    if (!(std::fabs(double(got[i]) - w) <= tol)) {
      if (first < 0) first = int64_t(i);
      ++bad;
    }
  }
  INFO(what << " " << context << " act " << act << ": " << bad << " bad, first " << first << " (got "
            << (first >= 0 ? got[size_t(first)] : 0.0f) << ", want "
            << (first >= 0 ? activate(want.data[size_t(first)], act) : 0.0) << ")");
  CHECK(bad == 0);
}

inline nnc::Attrs convAttrs(const ConvGeom& g) {
  return {{"stride", pairAttr(g.sh, g.sw)}, {"pad", pairAttr(g.ph, g.pw)}, {"groups", g.groups}};
}

// One geometry through all three functions (forward with and without bias,
// the given activation) on the current instruction set.
// algo: a ConvAlgo number (runtime/conv_geom.h); one that does not fit the shapes runs as Gemm.
inline void checkConv(const ConvGeom& g, bool bias, int act, uint32_t seed, int64_t algo = 1) {
  const int64_t oh = g.oh(), ow = g.ow(), cg = g.c / g.groups;
  const nnc::Shape xs{g.n, g.c, g.h, g.w}, ws{g.f, cg, g.kh, g.kw}, ys{g.n, g.f, oh, ow};
  const std::vector<float> x = randoms(size_t(g.n * g.c * g.h * g.w), seed);
  const std::vector<float> w = randoms(size_t(g.f * cg * g.kh * g.kw), seed + 1);
  const std::vector<float> dy = randoms(size_t(g.n * g.f * oh * ow), seed + 2);
  const std::vector<float> b = randoms(size_t(std::max(g.f, g.c)), seed + 3);
  const std::vector<float> bf(b.begin(), b.begin() + g.f), bc(b.begin(), b.begin() + g.c);
  const std::string context = std::string(nnc::convAlgoName(nnc::ConvAlgo(algo))) + " " + describe(g) + (bias ? " with bias" : "");
  const float poison = -777.0f;

  // Forward.
  {
    std::vector<nnc::Tensor> in{tensorOf(xs, x), tensorOf(ws, w)}, absIn{tensorOf(xs, x, true), tensorOf(ws, w, true)};
    if (bias) in.push_back(tensorOf({g.f}, bf)), absIn.push_back(tensorOf({g.f}, bf, true));
    const nnc::Tensor want = reference("conv2d", in, convAttrs(g)), mag = reference("conv2d", absIn, convAttrs(g));
    std::vector<float> y(size_t(g.n * g.f * oh * ow), poison);
    nnc_conv2d(x.data(), w.data(), bias ? bf.data() : &poison, y.data(), g.n, g.c, g.h, g.w, g.f, g.kh, g.kw, g.sh,
               g.sw, g.ph, g.pw, g.groups, bias, act, 0, algo);
    requireClose("conv2d", y, want, mag, g.patchSize(), act, context);
  }
  // Forward with max-pooling after it (none or relu), against the fused op's
  // reference: conv2d, act, maxpool2d.
  for (int64_t pool : {2, 3}) {
    if (act > 1 || oh < pool || ow < pool) continue;
    std::vector<nnc::Tensor> in{tensorOf(xs, x), tensorOf(ws, w)}, absIn{tensorOf(xs, x, true), tensorOf(ws, w, true)};
    if (bias) in.push_back(tensorOf({g.f}, bf)), absIn.push_back(tensorOf({g.f}, bf, true));
    nnc::Attrs a = convAttrs(g);
    a.set("pool", pool);
    const nnc::Tensor mag = reference("conv2d_pool_fused", absIn, a);
    a.set("act", std::string(act == 1 ? "relu" : "none"));
    const nnc::Tensor want = reference("conv2d_pool_fused", in, a);
    std::vector<float> y(size_t(g.n * g.f * (oh / pool) * (ow / pool)), poison);
    nnc_conv2d(x.data(), w.data(), bias ? bf.data() : &poison, y.data(), g.n, g.c, g.h, g.w, g.f, g.kh, g.kw, g.sh,
               g.sw, g.ph, g.pw, g.groups, bias, act, pool, algo);
    requireClose("conv2d pooled", y, want, mag, g.patchSize(), 0, context + " pool " + std::to_string(pool));
  }
  // Weight gradient (dw starts as poison: it must be overwritten).
  {
    nnc::Attrs a = convAttrs(g);
    a.set("kernel", pairAttr(g.kh, g.kw));
    const nnc::Tensor want = reference("conv2d_grad_weight", {tensorOf(xs, x), tensorOf(ys, dy)}, a);
    const nnc::Tensor mag = reference("conv2d_grad_weight", {tensorOf(xs, x, true), tensorOf(ys, dy, true)}, a);
    std::vector<float> dw(size_t(g.f * cg * g.kh * g.kw), poison);
    nnc_conv2d_grad_weight(x.data(), dy.data(), dw.data(), dw.data(), g.n, g.c, g.h, g.w, g.f, g.kh, g.kw, g.sh, g.sw,
                           g.ph, g.pw, g.groups, 0, algo);
    requireClose("conv2d_grad_weight", dw, want, mag, g.n * oh * ow, 0, context);
    // With the bias gradient db[f] = Σ dy[:, f] beside it, through the C++ entry.
    std::vector<float> dw2(dw.size(), poison), db(size_t(g.f), poison);
    nnc::conv2dGradWeight(g, x.data(), dy.data(), dw2.data(), db.data(), nnc::ConvAlgo(algo));
    requireClose("conv2d_grad_weight (with db)", dw2, want, mag, g.n * oh * ow, 0, context);
    nnc::Tensor dbWant(nnc::TensorType{nnc::DType::F32, {g.f}}), dbMag(nnc::TensorType{nnc::DType::F32, {g.f}});
    for (int64_t b = 0; b < g.n; ++b)
      for (int64_t f = 0; f < g.f; ++f)
        for (int64_t p = 0; p < oh * ow; ++p) {
          const double v = dy[size_t((b * g.f + f) * oh * ow + p)];
          dbWant.data[size_t(f)] += v;
          dbMag.data[size_t(f)] += std::fabs(v);
        }
    requireClose("conv2d bias gradient", db, dbWant, dbMag, g.n * oh * ow, 0, context);
  }
  // Input gradient: nnc's conv_transpose2d(dy, w, bias), whose output_pad
  // recovers the forward image size.
  {
    nnc::Attrs a = convAttrs(g);
    a.set("output_pad", pairAttr((g.h + 2 * g.ph - g.kh) % g.sh, (g.w + 2 * g.pw - g.kw) % g.sw));
    std::vector<nnc::Tensor> in{tensorOf(ys, dy), tensorOf(ws, w)}, absIn{tensorOf(ys, dy, true), tensorOf(ws, w, true)};
    if (bias) in.push_back(tensorOf({g.c}, bc)), absIn.push_back(tensorOf({g.c}, bc, true));
    const nnc::Tensor want = reference("conv_transpose2d", in, a), mag = reference("conv_transpose2d", absIn, a);
    REQUIRE(want.shape() == xs);
    std::vector<float> dx(size_t(g.n * g.c * g.h * g.w), poison);
    nnc_conv_transpose2d(dy.data(), w.data(), bias ? bc.data() : &poison, dx.data(), g.n, g.c, g.h, g.w, g.f, g.kh,
                         g.kw, g.sh, g.sw, g.ph, g.pw, g.groups, bias, algo);
    requireClose("conv_transpose2d", dx, want, mag, (g.f / g.groups) * g.kh * g.kw, 0, context);
  }
}

// Random geometries from a fixed seed: batch 1 or 5, channels 1/3/8,
// groups 1, 2 or depthwise, kernels 1..5 (unequal sides), strides 1 and 2
// (unequal too), pad 0..2, non-square images.
inline std::vector<ConvGeom> randomGeoms(int count) {
  std::mt19937 rng(20240611);
  auto pick = [&](std::initializer_list<int64_t> v) { return *(v.begin() + rng() % v.size()); };
  std::vector<ConvGeom> out;
  while (int(out.size()) < count) {
    ConvGeom g;
    g.n = pick({1, 5});
    g.groups = pick({1, 1, 2, 0});  // 0: depthwise
    g.c = pick({1, 3, 8});
    if (g.groups == 2 && g.c % 2) g.c *= 2;
    if (g.groups == 0) g.groups = g.c;
    g.f = g.groups * pick({1, 2, 3});
    g.kh = pick({1, 2, 3, 5});
    g.kw = pick({1, 3, 3, 4});
    g.sh = pick({1, 2});
    g.sw = pick({1, 2});
    g.ph = pick({0, 1, 2});
    g.pw = pick({0, 1, 2});
    g.h = g.kh + int64_t(rng() % 9);
    g.w = g.kw + int64_t(rng() % 13);
    if (g.oh() < 1 || g.ow() < 1) continue;
    out.push_back(g);
  }
  return out;
}

// Shapes the random draw may miss: the kernel as large as the (padded)
// image, 1×1 kernels with stride and padding, wide rows spanning several
// register tiles and cache blocks, K spanning several depth blocks.
inline std::vector<ConvGeom> edgeGeoms() {
  return {
      {1, 3, 7, 9, 4, 7, 9, 1, 1, 0, 0, 1},        // kernel = image: a single window
      {5, 2, 5, 6, 4, 7, 8, 2, 3, 1, 1, 2},        // kernel = padded image
      {5, 8, 9, 11, 6, 1, 1, 1, 1, 0, 0, 1},       // 1×1, a plain GEMM
      {1, 8, 9, 11, 8, 1, 1, 2, 2, 1, 2, 2},       // 1×1 with stride and padding: whole zero rows
      {5, 8, 6, 5, 8, 3, 3, 1, 1, 1, 1, 8},        // depthwise
      {2, 3, 37, 41, 5, 3, 5, 1, 2, 2, 1, 1},      // rows of 20+ windows, several tiles per row
      {1, 48, 12, 13, 20, 3, 3, 1, 1, 1, 1, 1},    // K = 432: two depth blocks
      {1, 2, 70, 70, 3, 2, 2, 1, 1, 0, 0, 1},      // 4761 positions: several column blocks
      {2, 1, 28, 28, 30, 5, 5, 1, 1, 0, 0, 1},     // simple_convnet's convolution
      {1, 4, 3, 3, 2, 5, 5, 1, 1, 2, 2, 1},        // 5×5 on 3×3 with pad 2
      // Direct (stride 1, no padding, K <= 64, rows of 8 or more windows):
      {2, 3, 10, 40, 9, 3, 3, 1, 1, 0, 0, 1},      // rows of 38: two tiles, filters past a tile's 8
      {1, 2, 6, 18, 5, 3, 3, 1, 1, 0, 0, 1},       // rows of exactly 16
      {3, 4, 9, 20, 6, 2, 3, 1, 1, 0, 0, 2},       // two groups
      {1, 4, 7, 21, 3, 4, 4, 1, 1, 0, 0, 1},       // K = 64, the largest direct one
      {1, 8, 7, 21, 3, 3, 3, 1, 1, 0, 0, 1},       // K = 72: the GEMM again
  };
}

}  // namespace conv_test
