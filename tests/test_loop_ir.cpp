#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "compiler/loop_ir.h"
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
        << printCpp(matmulKernel(2, 3, 2)) << printCpp(paddedConv(4))
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
