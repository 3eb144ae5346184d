#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "compiler/lower/loop_ir.h"
#include "test_util.h"

using namespace nnc::loop;

namespace {
// y[M, N] = x[M, K] @ w[K, N]: zero, then accumulate over k.
Kernel matmulKernel(int64_t M, int64_t K, int64_t N) {
  Kernel k{"matmul", "y = x @ w", {{"x", M * K}, {"w", K * N}, {"y", M * N}}, {}, 0};
  const int i = k.newVar(), j = k.newVar(), r = k.newVar();
  const Affine yij = Affine::var(i, N) + Affine::var(j);
  k.body.push_back(loopOver(i, M,
                            {loopOver(j, N,
                                      {store(2, yij, constant(0)),
                                       loopOver(r, K,
                                                {store(2, yij,
                                                       apply(Op::Mul, {load(0, Affine::var(i, K) + Affine::var(r)),
                                                                       load(1, Affine::var(r, N) + Affine::var(j))}),
                                                       Combine::Add)})})},
                            true));
  return k;
}

// A 1-D "same" convolution with zero padding, to exercise guards:
// y[o] = sum_t x[o + t - 1] * w[t] for 0 <= o + t - 1 < n.
Kernel paddedConv(int64_t n) {
  Kernel k{"conv1d", "", {{"x", n}, {"w", 3}, {"y", n}}, {}, 0};
  const int o = k.newVar(), t = k.newVar();
  const Affine src = Affine::var(o) + Affine::var(t) + (-1);
  k.body.push_back(loopOver(
      o, n,
      {store(2, Affine::var(o), constant(0)),
       loopOver(t, 3, {guard(src, 0, n, {store(2, Affine::var(o), apply(Op::Mul, {load(0, src), load(1, Affine::var(t))}), Combine::Add)})})}));
  return k;
}
}  // namespace

TEST_CASE("loop IR: text dump", "[loopir]") {
  CHECK(print(matmulKernel(2, 3, 4)) ==
        "# y = x @ w\n"
        "kernel matmul(x[6], w[12], y[8]) {\n"
        "  for i0 in 0..2 parallel {\n"
        "    for i1 in 0..4 {\n"
        "      y[4*i0 + i1] = 0.0;\n"
        "      for i2 in 0..3 {\n"
        "        y[4*i0 + i1] += (x[3*i0 + i2] * w[4*i2 + i1]);\n"
        "      }\n"
        "    }\n"
        "  }\n"
        "}\n");
}

TEST_CASE("loop IR: the evaluator computes matmul and padded convolution", "[loopir]") {
  std::vector<float> x = {1, 2, 3, 4, 5, 6}, w = {1, 0, 0, 1, 1, 1}, y(4);
  evaluate(matmulKernel(2, 3, 2), {x.data(), w.data(), y.data()});
  // [[1, 2, 3], [4, 5, 6]] @ [[1, 0], [0, 1], [1, 1]] = [[4, 5], [10, 11]]
  CHECK(y == std::vector<float>{4, 5, 10, 11});
  std::vector<float> s = {1, 2, 3, 4}, f = {1, 10, 100}, o(4);
  evaluate(paddedConv(4), {s.data(), f.data(), o.data()});
  // o[i] = s[i-1] + 10 s[i] + 100 s[i+1], zeros outside.
  CHECK(o == std::vector<float>{210, 321, 432, 43});
}

TEST_CASE("loop IR: printed C++ compiles with g++ and computes what the evaluator does", "[loopir]") {
  const auto dir = std::filesystem::temp_directory_path() / ("nnc_loopir_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream src(dir / "k.cpp");
    src << "#include <cmath>\n#include <cstdint>\n#include <cstdio>\n"
        << cppPrelude() << printCpp(matmulKernel(2, 3, 2)) << printCpp(paddedConv(4))
        << "int main() {\n"
           "  float x[6] = {1, 2, 3, 4, 5, 6}, w[6] = {1, 0, 0, 1, 1, 1}, y[4];\n"
           "  matmul(x, w, y);\n"
           "  float s[4] = {1, 2, 3, 4}, f[3] = {1, 10, 100}, o[4];\n"
           "  conv1d(s, f, o);\n"
           "  for (float v : y) std::printf(\"%g \", v);\n"
           "  for (float v : o) std::printf(\"%g \", v);\n"
           "}\n";
  }
  const std::string cmd = "g++ -std=c++17 -O2 -Wall -Wextra -Werror -o " + (dir / "k").string() + " " +
                          (dir / "k.cpp").string() + " && " + (dir / "k").string() + " > " + (dir / "out").string();
  REQUIRE(std::system(cmd.c_str()) == 0);
  CHECK(nnc::test::readText((dir / "out").string()) == "4 5 10 11 210 321 432 43 ");
  std::filesystem::remove_all(dir);
}

#include "compiler/jit/jit.h"
#include "runtime/rng.h"

TEST_CASE("loop IR: the LLVM printer's code computes what the evaluator does", "[loopir][jit]") {
  auto engine = nnc::jit::Engine::create(3);
  REQUIRE(engine);
  auto m = std::make_unique<nnc::jit::Module>("loops");
  // Awkward sizes: primes, not multiples of any vector width.
  const int64_t M = 7, K = 13, N = 37;
  REQUIRE(nnc::jit::addKernel(*m, matmulKernel(M, K, N)));
  REQUIRE(nnc::jit::addKernel(*m, paddedConv(4)));
  // relu over 1000 elements: y = max(x, 0), a loop the vectorizer must widen.
  Kernel relu{"relu", "", {{"x", 1000}, {"y", 1000}}, {}, 0};
  const int i = relu.newVar();
  relu.body.push_back(loopOver(i, 1000, {store(1, Affine::var(i), apply(Op::Max, {load(0, Affine::var(i)), constant(0)}))}));
  REQUIRE(nnc::jit::addKernel(*m, relu));
  std::string ir;
  REQUIRE((*engine)->add(std::move(m), &ir));
  if (nnc::jit::host().vectorBits == 512) CHECK_THAT(ir, Catch::Contains("<16 x float>"));

  using Fn3 = void (*)(float*, float*, float*);
  auto mm = (*engine)->lookup("matmul");
  REQUIRE(mm);
  nnc::Rng rng(3);
  std::vector<float> x(M * K), w(K * N), y(M * N), want(M * N);
  for (float& v : x) v = static_cast<float>(rng.normal());
  for (float& v : w) v = static_cast<float>(rng.normal());
  reinterpret_cast<Fn3>(*mm)(x.data(), w.data(), y.data());
  evaluate(matmulKernel(M, K, N), {x.data(), w.data(), want.data()});
  // The JIT may fuse multiply-adds (contract), so equal within f32 rounding.
  for (size_t k = 0; k < y.size(); ++k) CHECK(y[k] == Approx(want[k]).epsilon(1e-5).margin(1e-5));

  auto conv = (*engine)->lookup("conv1d");
  REQUIRE(conv);
  std::vector<float> s = {1, 2, 3, 4}, f = {1, 10, 100}, o(4);
  reinterpret_cast<Fn3>(*conv)(s.data(), f.data(), o.data());
  CHECK(o == std::vector<float>{210, 321, 432, 43});

  auto r = (*engine)->lookup("relu");
  REQUIRE(r);
  std::vector<float> a(1000), b(1000);
  for (size_t k = 0; k < a.size(); ++k) a[k] = static_cast<float>(k % 7) - 3.0f;
  reinterpret_cast<void (*)(float*, float*)>(*r)(a.data(), b.data());
  for (size_t k = 0; k < a.size(); ++k) CHECK(b[k] == std::max(a[k], 0.0f));
}

namespace {
// max, min and a max= reduction over x[0..n) against y: out0 = max(x, y),
// out1 = min(x, y), out2[0] = -inf max= every x.
Kernel extremaKernel(int64_t n) {
  Kernel k{"extrema", "", {{"x", n}, {"y", n}, {"mx", n}, {"mn", n}, {"red", 1}}, {}, 0};
  const int i = k.newVar(), j = k.newVar();
  const Affine at = Affine::var(i);
  k.body.push_back(loopOver(i, n,
                            {store(2, at, apply(Op::Max, {load(0, at), load(1, at)})),
                             store(3, at, apply(Op::Min, {load(0, at), load(1, at)}))},
                            true));
  k.body.push_back(store(4, Affine::constant(0), constant(-INFINITY)));
  k.body.push_back(loopOver(j, n, {store(4, Affine::constant(0), load(0, Affine::var(j)), Combine::Max)}));
  return k;
}

// NaN at a few places in x and y (one in the vector body, one in the
// remainder), the rest small integers; every printer must give NaN there.
void extremaInputs(int64_t n, std::vector<float>& x, std::vector<float>& y) {
  x.assign(size_t(n), 0);
  y.assign(size_t(n), 0);
  for (int64_t k = 0; k < n; ++k) x[size_t(k)] = float(k % 7) - 3, y[size_t(k)] = float(k % 5) - 2;
  x[3] = NAN;
  y[40] = NAN;
  x[size_t(n - 1)] = NAN;
}

void checkExtrema(const std::vector<float>& x, const std::vector<float>& y, const float* mx, const float* mn,
                  float red, const std::string& who) {
  for (size_t k = 0; k < x.size(); ++k) {
    INFO(who << " element " << k << ": max " << mx[k] << ", min " << mn[k]);
    if (std::isnan(x[k]) || std::isnan(y[k])) {
      REQUIRE(std::isnan(mx[k]));
      REQUIRE(std::isnan(mn[k]));
    } else {
      REQUIRE(mx[k] == std::max(x[k], y[k]));
      REQUIRE(mn[k] == std::min(x[k], y[k]));
    }
  }
  INFO(who << " max= reduction: " << red);
  REQUIRE(std::isnan(red));
}
}  // namespace

TEST_CASE("loop IR: max, min and max= propagate NaN in the evaluator, the JIT and printed C++", "[loopir][jit]") {
  const int64_t n = 101;
  std::vector<float> x, y;
  extremaInputs(n, x, y);
  {
    std::vector<float> mx(n), mn(n), red(1);
    evaluate(extremaKernel(n), {x.data(), y.data(), mx.data(), mn.data(), red.data()});
    checkExtrema(x, y, mx.data(), mn.data(), red[0], "evaluator");
  }
  {
    auto engine = nnc::jit::Engine::create(3);
    REQUIRE(engine);
    auto m = std::make_unique<nnc::jit::Module>("extrema");
    REQUIRE(nnc::jit::addKernel(*m, extremaKernel(n)));
    REQUIRE((*engine)->add(std::move(m)));
    auto f = (*engine)->lookup("extrema");
    REQUIRE(f);
    std::vector<float> mx(n), mn(n), red(1);
    reinterpret_cast<void (*)(float*, float*, float*, float*, float*)>(*f)(x.data(), y.data(), mx.data(), mn.data(),
                                                                           red.data());
    checkExtrema(x, y, mx.data(), mn.data(), red[0], "JIT");
  }
  const auto dir = std::filesystem::temp_directory_path() / ("nnc_loopir_nan_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream src(dir / "k.cpp");
    src << "#include <cmath>\n#include <cstdint>\n#include <cstdio>\n"
        << cppPrelude() << printCpp(extremaKernel(n))
        << "int main() {\n"
           "  float x[101], y[101], mx[101], mn[101], red[1];\n"
           "  for (int k = 0; k < 101; ++k) x[k] = float(k % 7) - 3, y[k] = float(k % 5) - 2;\n"
           "  x[3] = NAN; y[40] = NAN; x[100] = NAN;\n"
           "  extrema(x, y, mx, mn, red);\n"
           "  for (int k = 0; k < 101; ++k) std::printf(\"%g %g\\n\", mx[k], mn[k]);\n"
           "  std::printf(\"%g\\n\", red[0]);\n"
           "}\n";
  }
  for (const char* flags : {"-O2", "-O3 -march=native"}) {
    INFO(flags);
    const std::string cmd = std::string("g++ -std=c++17 -Wall -Wextra -Werror ") + flags + " -o " +
                            (dir / "k").string() + " " + (dir / "k.cpp").string() + " && " + (dir / "k").string() +
                            " > " + (dir / "out").string();
    REQUIRE(std::system(cmd.c_str()) == 0);
    std::ifstream in(dir / "out");
    std::vector<float> mx(n), mn(n);
    std::string a, b;
    auto num = [](const std::string& s) { return s.find("nan") != std::string::npos ? NAN : std::stof(s); };
    for (int64_t k = 0; k < n; ++k) {
      REQUIRE(in >> a >> b);
      mx[size_t(k)] = num(a), mn[size_t(k)] = num(b);
    }
    REQUIRE(in >> a);
    checkExtrema(x, y, mx.data(), mn.data(), num(a), std::string("g++ ") + flags);
  }
  std::filesystem::remove_all(dir);
}
