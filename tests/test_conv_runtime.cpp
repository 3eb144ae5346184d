// The runtime's implicit-im2col convolutions (runtime/conv.h) and the GEMM
// epilogue (nnc_sgemm_ep) against the op registry's double-precision
// reference evaluations of conv2d, conv2d_grad_weight and conv_transpose2d:
// randomized shapes (strides, padding, groups, depthwise, 1×1 kernels,
// kernels as large as the image, bias, each activation) on every instruction
// set this CPU runs, and bit-identical results on 1 and 2 threads.
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

namespace {

using nnc::ConvGeom;

nnc::Attr pairAttr(int64_t a, int64_t b) { return nnc::Attr{std::vector<int64_t>{a, b}}; }

// Restores the instruction set and thread count a test changed.
struct Restore {
  std::string isa = nnc::sgemmIsa();
  int threads = nnc::threadCount();
  ~Restore() {
    nnc::setSgemmIsa(isa.c_str());
    nnc::setThreadCount(threads);
  }
};

std::vector<std::string> isas() {
  std::vector<std::string> out;
  Restore restore;
  for (const char* name : {"avx512", "avx2", "generic"})
    if (nnc::setSgemmIsa(name)) out.push_back(name);
  return out;
}

std::vector<float> randoms(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

nnc::Tensor tensorOf(nnc::Shape shape, const std::vector<float>& v, bool absolute = false) {
  std::vector<double> d(v.size());
  for (size_t i = 0; i < v.size(); ++i) d[i] = absolute ? std::fabs(double(v[i])) : double(v[i]);
  return nnc::Tensor(nnc::TensorType{nnc::DType::F32, std::move(shape)}, std::move(d));
}

// The registry's reference evaluation (shape rule and eval, in double).
nnc::Tensor reference(std::string_view name, const std::vector<nnc::Tensor>& in, nnc::Attrs attrs) {
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

std::string describe(const ConvGeom& g) {
  std::ostringstream s;
  s << nnc::sgemmIsa() << " x[" << g.n << ", " << g.c << ", " << g.h << ", " << g.w << "] w[" << g.f << ", "
    << g.c / g.groups << ", " << g.kh << ", " << g.kw << "] stride [" << g.sh << ", " << g.sw << "] pad [" << g.ph
    << ", " << g.pw << "] groups " << g.groups;
  return s.str();
}

double activate(double v, int act) {
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
void requireClose(const char* what, const std::vector<float>& got, const nnc::Tensor& want,
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

nnc::Attrs convAttrs(const ConvGeom& g) {
  return {{"stride", pairAttr(g.sh, g.sw)}, {"pad", pairAttr(g.ph, g.pw)}, {"groups", g.groups}};
}

// One geometry through all three functions (forward with and without bias,
// the given activation) on the current instruction set.
void checkConv(const ConvGeom& g, bool bias, int act, uint32_t seed) {
  const int64_t oh = g.oh(), ow = g.ow(), cg = g.c / g.groups;
  const nnc::Shape xs{g.n, g.c, g.h, g.w}, ws{g.f, cg, g.kh, g.kw}, ys{g.n, g.f, oh, ow};
  const std::vector<float> x = randoms(size_t(g.n * g.c * g.h * g.w), seed);
  const std::vector<float> w = randoms(size_t(g.f * cg * g.kh * g.kw), seed + 1);
  const std::vector<float> dy = randoms(size_t(g.n * g.f * oh * ow), seed + 2);
  const std::vector<float> b = randoms(size_t(std::max(g.f, g.c)), seed + 3);
  const std::vector<float> bf(b.begin(), b.begin() + g.f), bc(b.begin(), b.begin() + g.c);
  const std::string context = describe(g) + (bias ? " with bias" : "");
  const float poison = -777.0f;

  // Forward.
  {
    std::vector<nnc::Tensor> in{tensorOf(xs, x), tensorOf(ws, w)}, absIn{tensorOf(xs, x, true), tensorOf(ws, w, true)};
    if (bias) in.push_back(tensorOf({g.f}, bf)), absIn.push_back(tensorOf({g.f}, bf, true));
    const nnc::Tensor want = reference("conv2d", in, convAttrs(g)), mag = reference("conv2d", absIn, convAttrs(g));
    std::vector<float> y(size_t(g.n * g.f * oh * ow), poison);
    nnc_conv2d(x.data(), w.data(), bias ? bf.data() : &poison, y.data(), g.n, g.c, g.h, g.w, g.f, g.kh, g.kw, g.sh,
               g.sw, g.ph, g.pw, g.groups, bias, act, 0);
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
               g.sw, g.ph, g.pw, g.groups, bias, act, pool);
    requireClose("conv2d pooled", y, want, mag, g.patchSize(), 0, context + " pool " + std::to_string(pool));
  }
  // Weight gradient (dw starts as poison: it must be overwritten).
  {
    nnc::Attrs a = convAttrs(g);
    a.set("kernel", pairAttr(g.kh, g.kw));
    const nnc::Tensor want = reference("conv2d_grad_weight", {tensorOf(xs, x), tensorOf(ys, dy)}, a);
    const nnc::Tensor mag = reference("conv2d_grad_weight", {tensorOf(xs, x, true), tensorOf(ys, dy, true)}, a);
    std::vector<float> dw(size_t(g.f * cg * g.kh * g.kw), poison);
    nnc_conv2d_grad_weight(x.data(), dy.data(), dw.data(), g.n, g.c, g.h, g.w, g.f, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw,
                           g.groups);
    requireClose("conv2d_grad_weight", dw, want, mag, g.n * oh * ow, 0, context);
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
                         g.kw, g.sh, g.sw, g.ph, g.pw, g.groups, bias);
    requireClose("conv_transpose2d", dx, want, mag, (g.f / g.groups) * g.kh * g.kw, 0, context);
  }
}

// Random geometries from a fixed seed: batch 1 or 5, channels 1/3/8,
// groups 1, 2 or depthwise, kernels 1..5 (unequal sides), strides 1 and 2
// (unequal too), pad 0..2, non-square images.
std::vector<ConvGeom> randomGeoms(int count) {
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
std::vector<ConvGeom> edgeGeoms() {
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

}  // namespace

TEST_CASE("implicit-im2col convolutions match the reference ops", "[conv_runtime]") {
  Restore restore;
  const std::vector<ConvGeom> geoms = randomGeoms(60), edges = edgeGeoms();
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    uint32_t seed = 1;
    for (size_t i = 0; i < geoms.size(); ++i, seed += 10) checkConv(geoms[i], i % 2 == 0, int(i / 2 % 4), seed);
    for (size_t i = 0; i < edges.size(); ++i, seed += 10) checkConv(edges[i], i % 2 == 1, int(i % 4), seed);
  }
}

TEST_CASE("conv2d applies each activation after the bias", "[conv_runtime]") {
  Restore restore;
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    for (int act = 0; act < 4; ++act)
      for (bool bias : {false, true}) {
        checkConv({5, 3, 10, 7, 6, 3, 3, 1, 1, 1, 1, 1}, bias, act, 100 + uint32_t(act));
        checkConv({1, 8, 8, 9, 4, 2, 3, 2, 1, 0, 2, 2}, bias, act, 200 + uint32_t(act));
      }
  }
}

// relu as PyTorch's: NaN stays NaN, inf stays inf, the rest max(x, 0).
void requireRelu(const std::vector<float>& got, const std::vector<float>& in, const std::string& what) {
  REQUIRE(got.size() == in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    INFO(what << " element " << i << " of " << in[i] << ": " << got[i]);
    if (std::isnan(in[i]))
      REQUIRE(std::isnan(got[i]));
    else
      REQUIRE(got[i] == (in[i] > 0 ? in[i] : 0.0f));
  }
}

TEST_CASE("conv2d's relu and pooling and the GEMM's relu keep NaN on every instruction set", "[conv_runtime]") {
  Restore restore;
  const float inf = INFINITY;
  // One image row of 16: NaN, ±inf, -0, signs (the direct kernel takes
  // rows of at least 8); a 1×1 convolution with weight 1 passes x through.
  std::vector<float> x(32);
  const float head[] = {NAN, -1.0f, 2.0f, -0.0f, inf, -inf, 3.0f, -2.0f};
  for (size_t i = 0; i < x.size(); ++i) x[i] = i < 8 ? head[i] : float(int(i % 5) - 2);
  x[21] = NAN;
  const std::vector<float> w{1.0f}, zero{0.0f};
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    INFO(isa);
    std::vector<float> y(32, -777.0f);
    // Direct (unpadded, stride 1) and through the GEMM (padded by 1 row: the
    // middle two of its four rows are x).
    nnc_conv2d(x.data(), w.data(), zero.data(), y.data(), 1, 1, 2, 16, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0);
    requireRelu(y, x, "direct conv2d relu");
    std::vector<float> yp(64, -777.0f);
    nnc_conv2d(x.data(), w.data(), zero.data(), yp.data(), 1, 1, 2, 16, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0);
    requireRelu(std::vector<float>(yp.begin() + 16, yp.begin() + 48), x, "GEMM conv2d relu");
    // Max-pooled, 2×2 (x's two rows: windows of columns 2p, 2p+1): a window
    // with a NaN gives NaN, relu or not.
    for (int64_t act : {0, 1}) {
      std::vector<float> z(8, -777.0f);
      nnc_conv2d(x.data(), w.data(), zero.data(), z.data(), 1, 1, 2, 16, 1, 1, 1, 1, 1, 0, 0, 1, 1, act, 2);
      for (size_t p = 0; p < 8; ++p) {
        const float c[] = {x[2 * p], x[2 * p + 1], x[16 + 2 * p], x[16 + 2 * p + 1]};
        const bool nan = std::isnan(c[0]) || std::isnan(c[1]) || std::isnan(c[2]) || std::isnan(c[3]);
        const float m = std::max(std::max(c[0], c[1]), std::max(c[2], c[3]));
        INFO("pooled window " << p << " act " << act << ": " << z[p]);
        if (nan)
          REQUIRE(std::isnan(z[p]));
        else
          REQUIRE(z[p] == (act && m < 0 ? 0.0f : m));
      }
    }
  }
}

TEST_CASE("the GEMM epilogue's relu keeps NaN on every instruction set", "[conv_runtime]") {
  Restore restore;
  // C = relu(A·1 + bias): each C row is its A row's sum plus the bias, small
  // integers (exact); a NaN or inf in an A row makes its whole row NaN or inf.
  struct Case {
    int64_t m, n, k;
  };
  for (const Case c : {Case{3, 5, 4}, Case{20, 40, 8}, Case{37, 70, 300}}) {
    std::vector<float> a(size_t(c.m * c.k)), b(size_t(c.k * c.n), 1.0f), bias(size_t(c.n));
    for (size_t i = 0; i < a.size(); ++i) a[i] = float(int(i * 7 % 5) - 2);
    for (size_t j = 0; j < bias.size(); ++j) bias[j] = float(int(j % 3) - 1);
    a[size_t(1 * c.k + c.k / 2)] = NAN;
    a[size_t(2 * c.k)] = INFINITY;
    if (c.m > 10) a[size_t(9 * c.k + 1)] = -INFINITY;
    std::vector<float> want(size_t(c.m * c.n));
    for (int64_t i = 0; i < c.m; ++i)
      for (int64_t j = 0; j < c.n; ++j) {
        float s = 0;
        for (int64_t kk = 0; kk < c.k; ++kk) s += a[size_t(i * c.k + kk)];
        want[size_t(i * c.n + j)] = s + bias[size_t(j)];
      }
    for (const std::string& isa : isas()) {
      REQUIRE(nnc::setSgemmIsa(isa.c_str()));
      std::vector<float> y(want.size(), -777.0f);
      nnc_sgemm_ep(a.data(), b.data(), y.data(), bias.data(), c.m, c.n, c.k, c.k, c.n, c.n, 0, 0, 1, 1);
      requireRelu(y, want, isa + " sgemm relu " + std::to_string(c.m) + "x" + std::to_string(c.n) + "x" +
                               std::to_string(c.k));
    }
  }
}

TEST_CASE("convolutions give the same bits on 1 and 2 threads", "[conv_runtime]") {
  Restore restore;
  // Batches split over threads (5 and 11 images, grad weight's chunks), and
  // single images whose GEMMs are split instead; relu and pooled forwards
  // too (direct where it fits).
  const ConvGeom geoms[] = {
      {5, 8, 20, 17, 16, 3, 3, 1, 1, 1, 1, 1},
      {11, 6, 13, 14, 12, 3, 3, 2, 1, 1, 0, 2},
      {1, 16, 40, 40, 32, 3, 3, 1, 1, 1, 1, 1},
      {1, 64, 20, 20, 64, 3, 3, 1, 1, 1, 1, 1},
      {7, 1, 28, 28, 30, 5, 5, 1, 1, 0, 0, 1},  // direct: 7 chunks of the weight gradient
      {23, 3, 12, 30, 10, 3, 3, 1, 1, 0, 0, 1},  // direct: 16 chunks of unequal sizes
  };
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    for (const ConvGeom& g : geoms) {
      const int64_t cg = g.c / g.groups, ys = g.n * g.f * g.oh() * g.ow();
      const std::vector<float> x = randoms(size_t(g.n * g.c * g.h * g.w), 7);
      const std::vector<float> w = randoms(size_t(g.f * cg * g.kh * g.kw), 8), dy = randoms(size_t(ys), 9);
      const std::vector<float> b = randoms(size_t(std::max(g.f, g.c)), 10);
      std::vector<float> y[2], yr[2], yp[2], dw[2], dx[2];
      for (int t = 0; t < 2; ++t) {
        nnc::setThreadCount(t + 1);
        y[t].resize(size_t(ys));
        yr[t].resize(size_t(ys));
        yp[t].resize(size_t(ys));
        nnc::conv2d(g, x.data(), w.data(), b.data(), yr[t].data(), nnc::kActRelu);
        nnc::conv2d(g, x.data(), w.data(), b.data(), yp[t].data(), nnc::kActRelu, 2);
        dw[t].resize(w.size());
        dx[t].resize(x.size());
        nnc::conv2d(g, x.data(), w.data(), b.data(), y[t].data(), nnc::kActTanh);
        nnc::conv2dGradWeight(g, x.data(), dy.data(), dw[t].data());
        nnc::convTranspose2d(g, dy.data(), w.data(), b.data(), dx[t].data());
      }
      INFO(describe(g));
      CHECK(std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)) == 0);
      CHECK(std::memcmp(yr[0].data(), yr[1].data(), yr[0].size() * sizeof(float)) == 0);
      CHECK(std::memcmp(yp[0].data(), yp[1].data(), yp[0].size() * sizeof(float)) == 0);
      CHECK(std::memcmp(dw[0].data(), dw[1].data(), dw[0].size() * sizeof(float)) == 0);
      CHECK(std::memcmp(dx[0].data(), dx[1].data(), dx[0].size() * sizeof(float)) == 0);
    }
  }
}

namespace {

// nnc_sgemm_ep against nnc_sgemm followed by the same epilogue in float.
void checkEpilogue(int64_t M, int64_t N, int64_t K, bool transA, bool transB, int biasKind, int act, int64_t pad) {
  const int64_t lda = (transA ? M : K) + pad, ldb = (transB ? K : N) + pad, ldc = N + pad;
  const std::vector<float> A = randoms(size_t((transA ? K : M) * lda), 11);
  const std::vector<float> B = randoms(size_t((transB ? N : K) * ldb), 12);
  const std::vector<float> bias = randoms(size_t(std::max<int64_t>(std::max(M, N), 1)), 13);
  const std::vector<float> C0 = randoms(size_t(std::max<int64_t>(M * ldc, 1)), 14);
  std::vector<float> want = C0, got = C0;
  nnc_sgemm(A.data(), B.data(), want.data(), M, N, K, lda, ldb, ldc, transA, transB, 0);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float& v = want[size_t(m * ldc + n)];
      if (biasKind == 1) v += bias[size_t(n)];
      if (biasKind == 2) v += bias[size_t(m)];
      if (act == 1) v = v > 0.0f ? v : 0.0f;
      if (act == 2) v = 1.0f / (1.0f + std::exp(-v));
      if (act == 3) v = std::tanh(v);
    }
  const float poison = -777.0f;
  nnc_sgemm_ep(A.data(), B.data(), got.data(), biasKind ? bias.data() : &poison, M, N, K, lda, ldb, ldc, transA,
               transB, biasKind, act);
  int64_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i)
    bad += !(std::fabs(got[i] - want[i]) <= 1e-6f * std::fabs(want[i]) + 1e-7f);  // the padding stays C0's
  INFO(nnc::sgemmIsa() << " M=" << M << " N=" << N << " K=" << K << " transA=" << transA << " transB=" << transB
                       << " bias_kind=" << biasKind << " act=" << act);
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("nnc_sgemm_ep is sgemm followed by bias and activation", "[conv_runtime][gemm]") {
  Restore restore;
  struct Shape {
    int64_t M, N, K;
  };
  const Shape shapes[] = {{1, 1, 1}, {7, 13, 17}, {100, 30, 25}, {33, 65, 300}, {3, 2100, 5}, {257, 129, 40}, {5, 9, 0}};
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    int i = 0;
    for (const Shape& s : shapes)
      for (int t = 0; t < 4; ++t)
        for (int biasKind = 0; biasKind < 3; ++biasKind, ++i)
          checkEpilogue(s.M, s.N, s.K, t & 1, t & 2, biasKind, i % 4, i % 3 == 0 ? 3 : 0);
  }
  // Bits on 1 and 2 threads.
  const int64_t M = 300, N = 200, K = 500;
  const std::vector<float> A = randoms(size_t(M * K), 4), B = randoms(size_t(K * N), 5), bias = randoms(size_t(N), 6);
  std::vector<float> C[2];
  for (int t = 0; t < 2; ++t) {
    nnc::setThreadCount(t + 1);
    C[t].resize(size_t(M * N));
    nnc::sgemmEpilogue(false, false, M, N, K, A.data(), K, B.data(), N, C[t].data(), N, bias.data(), 1, 2);
  }
  CHECK(std::memcmp(C[0].data(), C[1].data(), C[0].size() * sizeof(float)) == 0);
}
