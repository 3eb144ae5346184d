// nnc::sgemm against a triple loop in double: every transpose combination,
// accumulate on and off, leading dimensions wider than the matrices, shapes
// at and off the register-tile and cache-block edges, on every instruction
// set this CPU runs; and bit-identical results for 1 and 2 threads.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/gemm.h"
#include "runtime/parallel.h"

namespace {

struct Case {
  int64_t M, N, K;
};

// Restores the instruction set and thread count a test changed.
struct Restore {
  std::string isa = nnc::sgemmIsa();
  int threads = nnc::threadCount();
  ~Restore() {
    nnc::setSgemmIsa(isa.c_str());
    nnc::setThreadCount(threads);
  }
};

std::vector<float> randoms(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Runs one product with each leading dimension `pad` wider than needed (the
// padding holds values that must not leak in or be overwritten) and checks
// every element of C, padding included.
void check(const Case& c, bool transA, bool transB, bool accumulate, int64_t pad) {
  const int64_t M = c.M, N = c.N, K = c.K;
  const int64_t aRows = transA ? K : M, aCols = transA ? M : K;
  const int64_t bRows = transB ? N : K, bCols = transB ? K : N;
  const int64_t lda = aCols + pad, ldb = bCols + pad, ldc = N + pad;
  const std::vector<float> A = randoms(size_t(aRows * lda), 1), B = randoms(size_t(bRows * ldb), 2);
  const std::vector<float> C0 = randoms(size_t(M * ldc), 3);
  std::vector<float> C = C0;
  nnc::sgemm(transA, transB, M, N, K, A.data(), lda, B.data(), ldb, C.data(), ldc, accumulate);

  int64_t bad = 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < ldc; ++n) {
      const float got = C[size_t(m * ldc + n)];
      if (n >= N) {
        bad += got != C0[size_t(m * ldc + n)];
        continue;
      }
      double want = accumulate ? double(C0[size_t(m * ldc + n)]) : 0.0, magnitude = std::fabs(want);
      for (int64_t k = 0; k < K; ++k) {
        const double p = double(transA ? A[size_t(k * lda + m)] : A[size_t(m * lda + k)]) *
                         double(transB ? B[size_t(n * ldb + k)] : B[size_t(k * ldb + n)]);
        want += p;
        magnitude += std::fabs(p);
      }
      // A float sum of K products (plus C) in any order is within
      // (K+1)·u·Σ|terms| of the exact value (u = 2^-24, the classic dot
      // product bound), so the tolerance grows with K and with the terms'
      // size rather than with the result, which cancellation can make tiny;
      // rtol 1e-4 and atol 1e-5 cover what the bound's slack does not.
      const double tol = 1e-4 * std::fabs(want) + 1e-5 + double(K + 2) * std::ldexp(magnitude, -23);
      bad += !(std::fabs(double(got) - want) <= tol);
    }
  INFO(nnc::sgemmIsa() << " M=" << M << " N=" << N << " K=" << K << " transA=" << transA << " transB=" << transB
                       << " accumulate=" << accumulate << " pad=" << pad);
  CHECK(bad == 0);
}

const Case kCases[] = {
    {1, 1, 1},    {7, 13, 17},  {31, 37, 41}, {1, 100, 50},  {100, 1, 50},  {33, 65, 1},   {33, 65, 17},
    {100, 30, 25}, {15, 17, 16}, {14, 32, 8},  {40, 200, 30}, {3, 2100, 5}, {20, 50, 700}, {257, 129, 300},
    // One micro-panel of B read in place (N at most NR, many rows): attention's P·V.
    {128, 32, 128}, {61, 12, 40}, {45, 7, 33},
};

std::vector<std::string> isas() {
  std::vector<std::string> out;
  Restore restore;
  for (const char* name : {"avx512", "avx2", "generic"})
    if (nnc::setSgemmIsa(name)) out.push_back(name);
  return out;
}

}  // namespace

TEST_CASE("sgemm matches a double-precision triple loop", "[gemm]") {
  Restore restore;
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    for (const Case& c : kCases)
      for (int t = 0; t < 8; ++t) check(c, t & 1, t & 2, t & 4, (c.M * c.N * c.K < 1000000) ? 3 : 0);
  }
}

TEST_CASE("sgemm with K = 0 writes zeros or leaves C", "[gemm]") {
  for (bool accumulate : {false, true}) {
    std::vector<float> C(6, 7.0f);
    nnc::sgemm(false, false, 2, 2, 0, nullptr, 1, nullptr, 2, C.data(), 3, accumulate);
    const float v = accumulate ? 7.0f : 0.0f;
    CHECK(C == std::vector<float>{v, v, 7.0f, v, v, 7.0f});
  }
  for (int t = 0; t < 8; ++t) check({5, 9, 0}, t & 1, t & 2, t & 4, 2);
}

TEST_CASE("sgemm with M = 0 or N = 0 touches nothing", "[gemm]") {
  std::vector<float> C(4, 7.0f);
  nnc::sgemm(false, false, 0, 2, 3, nullptr, 3, nullptr, 2, C.data(), 2, false);
  nnc::sgemm(false, false, 2, 0, 3, nullptr, 3, nullptr, 2, C.data(), 2, false);
  CHECK(C == std::vector<float>(4, 7.0f));
}

TEST_CASE("sgemm gives the same bits on 1 and 2 threads", "[gemm]") {
  Restore restore;
  // Big enough to be split among threads: by rows, and (M under one tile)
  // by columns; K spans several cache blocks.
  for (const Case& c : {Case{300, 200, 500}, Case{10, 3000, 700}})
    for (int t = 0; t < 4; ++t) {
      const bool transA = t & 1, transB = t & 2;
      const std::vector<float> A = randoms(size_t(c.M * c.K), 4), B = randoms(size_t(c.K * c.N), 5);
      std::vector<float> one(size_t(c.M * c.N)), two(size_t(c.M * c.N));
      nnc::setThreadCount(1);
      nnc::sgemm(transA, transB, c.M, c.N, c.K, A.data(), transA ? c.M : c.K, B.data(), transB ? c.K : c.N,
                 one.data(), c.N, false);
      nnc::setThreadCount(2);
      nnc::sgemm(transA, transB, c.M, c.N, c.K, A.data(), transA ? c.M : c.K, B.data(), transB ? c.K : c.N,
                 two.data(), c.N, false);
      INFO("M=" << c.M << " N=" << c.N << " K=" << c.K << " transA=" << transA << " transB=" << transB);
      CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
    }
}

TEST_CASE("nnc_sgemm forwards to sgemm", "[gemm]") {
  const std::vector<float> A{1, 2, 3, 4}, B{5, 6, 7, 8};  // 2×2 each
  std::vector<float> C{1, 1, 1, 1};
  nnc_sgemm(A.data(), B.data(), C.data(), 2, 2, 2, 2, 2, 2, /*transA=*/1, /*transB=*/0, /*accumulate=*/1);
  // Aᵀ·B = [[1,3],[2,4]]·[[5,6],[7,8]] = [[26,30],[38,44]], plus 1.
  CHECK(C == std::vector<float>{27, 31, 39, 45});
}

TEST_CASE("sgemmUpdate: out = W - lr * op(A) op(B), in place or not, depth blocks included", "[gemm]") {
  Restore restore;
  // K = 100 (a batch) and K = 700 (past one depth block: the scaled partial
  // products are added slice by slice).
  const Case cases[] = {{784, 40, 100}, {33, 17, 700}, {5, 3, 1}};
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    for (const Case& c : cases)
      for (bool transA : {false, true})
        for (bool inPlace : {false, true}) {
          INFO(isa << " " << c.M << "x" << c.N << "x" << c.K << " transA " << transA << " in place " << inPlace);
          const std::vector<float> A = randoms(size_t(c.M * c.K), 1), B = randoms(size_t(c.K * c.N), 2);
          std::vector<float> W = randoms(size_t(c.M * c.N), 3), out(W.size(), -777.0f);
          const std::vector<float> W0 = W;
          const float lr = 0.37f;
          nnc_sgemm_update(A.data(), B.data(), W.data(), &lr, inPlace ? W.data() : out.data(), c.M, c.N, c.K,
                           transA ? c.M : c.K, c.N, transA, 0);
          const std::vector<float>& got = inPlace ? W : out;
          int64_t bad = 0;
          for (int64_t m = 0; m < c.M; ++m)
            for (int64_t n = 0; n < c.N; ++n) {
              double dot = 0, mag = 0;
              for (int64_t k = 0; k < c.K; ++k) {
                const double a = transA ? A[size_t(k * c.M + m)] : A[size_t(m * c.K + k)];
                dot += a * B[size_t(k * c.N + n)];
                mag += std::fabs(a * B[size_t(k * c.N + n)]);
              }
              const double want = W0[size_t(m * c.N + n)] - double(lr) * dot;
              const double tol = 1e-5 + 1e-4 * std::fabs(want) + double(c.K + 2) * std::ldexp(mag, -23);
              bad += !(std::fabs(got[size_t(m * c.N + n)] - want) <= tol);
            }
          CHECK(bad == 0);
          if (!inPlace) CHECK(W == W0);
        }
  }
}
