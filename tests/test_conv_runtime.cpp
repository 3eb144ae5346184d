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
#include "conv_test_util.h"

namespace {

using namespace conv_test;

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
    nnc_conv2d(x.data(), w.data(), zero.data(), y.data(), 1, 1, 2, 16, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0);
    requireRelu(y, x, "direct conv2d relu");
    std::vector<float> yp(64, -777.0f);
    nnc_conv2d(x.data(), w.data(), zero.data(), yp.data(), 1, 1, 2, 16, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 0, 0);
    requireRelu(std::vector<float>(yp.begin() + 16, yp.begin() + 48), x, "GEMM conv2d relu");
    // Max-pooled, 2×2 (x's two rows: windows of columns 2p, 2p+1): a window
    // with a NaN gives NaN, relu or not.
    for (int64_t act : {0, 1}) {
      std::vector<float> z(8, -777.0f);
      nnc_conv2d(x.data(), w.data(), zero.data(), z.data(), 1, 1, 2, 16, 1, 1, 1, 1, 1, 0, 0, 1, 1, act, 2, 0);
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
