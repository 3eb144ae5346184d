// Winograd F(4×4, 3×3) (runtime/conv_winograd.h) on the benchmark's shapes
// (batch cut to 1–2) and a sweep of its own edge cases, within the usual
// tolerance of conv_test_util.h, every direction, every instruction set,
// bit-identical on 1 and 2 threads, and its measured error against the
// double reference bounded:
// the transforms' coefficients (5 and 4 in Bᵀ, 8 in Aᵀ, 1/6 and 1/24 in G)
// make its float error larger than the direct method's, about 5e-6 of the
// largest output on these shapes where the GEMM's is 2e-7–8e-7
// (max |error| / max |reference|, operands uniform in [-1, 1]).
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>

#include "conv_test_util.h"
#include "runtime/conv_winograd.h"

namespace {

using namespace conv_test;

// max |got − want| / max |want| of conv2d's forward by `algo`.
double forwardError(const ConvGeom& g, nnc::ConvAlgo algo) {
  const std::vector<float> x = randoms(size_t(g.n * g.c * g.h * g.w), 3);
  const std::vector<float> w = randoms(size_t(g.f * g.c * 9), 4);
  const nnc::Tensor want =
      reference("conv2d", {tensorOf({g.n, g.c, g.h, g.w}, x), tensorOf({g.f, g.c, 3, 3}, w)}, convAttrs(g));
  std::vector<float> y(want.data.size());
  nnc::conv2d(g, x.data(), w.data(), nullptr, y.data(), nnc::kActNone, 0, algo);
  double err = 0, mag = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    err = std::max(err, std::fabs(double(y[i]) - want.data[i]));
    mag = std::max(mag, std::fabs(want.data[i]));
  }
  return err / mag;
}

// What the kernels cut and block: odd and non-square maps (tiles cut by the
// edge), pad 0, 1, 2 and unequal, batch 1, channels and filters not a
// multiple of 16 or past one filter block (64 on AVX-512), 128 inputs (the
// four-vector filter blocks), several chunks of tile rows and several
// weight-gradient runs (n = 3 on 14²), a single output pixel.
const ConvGeom kSweep[] = {
    {1, 17, 9, 11, 5, 3, 3, 1, 1, 1, 1, 1},   {2, 20, 13, 7, 33, 3, 3, 1, 1, 0, 0, 1},
    {1, 3, 6, 10, 70, 3, 3, 1, 1, 2, 2, 1},   {3, 33, 14, 14, 17, 3, 3, 1, 1, 1, 1, 1},
    {1, 128, 7, 7, 20, 3, 3, 1, 1, 1, 1, 1},  {2, 24, 5, 9, 128, 3, 3, 1, 1, 2, 0, 1},
    {1, 5, 3, 3, 3, 3, 3, 1, 1, 0, 0, 1},     {2, 1, 8, 8, 1, 3, 3, 1, 1, 0, 1, 1},
    {1, 70, 11, 6, 65, 3, 3, 1, 1, 1, 2, 1},  {3, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1},
};

const ConvGeom kBenchShapes[] = {
    {1, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1},
    {2, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 1},
    {2, 128, 7, 7, 128, 3, 3, 1, 1, 1, 1, 1},
};

}  // namespace

TEST_CASE("Winograd computes the benchmark's 3x3 shapes within the usual tolerance", "[conv_runtime][conv_winograd]") {
  for (const ConvGeom& g : kBenchShapes) {
    REQUIRE(nnc::convAlgoFits(nnc::ConvAlgo::Winograd, g, nnc::ConvDir::Forward, nnc::kActRelu));
    REQUIRE(nnc::convAlgoFits(nnc::ConvAlgo::Winograd, g, nnc::ConvDir::InputGrad));
    REQUIRE(nnc::convAlgoFits(nnc::ConvAlgo::Winograd, g, nnc::ConvDir::WeightGrad));
    checkConv(g, true, nnc::kActRelu, 11, int64_t(nnc::ConvAlgo::Winograd));
  }
}

TEST_CASE("Winograd's forward error stays within 30x the GEMM's and 2e-5 of the output", "[conv_runtime][conv_winograd]") {
  for (const ConvGeom& g : kBenchShapes) {
    const double wino = forwardError(g, nnc::ConvAlgo::Winograd), gemm = forwardError(g, nnc::ConvAlgo::Gemm);
    INFO(describe(g) << ": winograd " << wino << ", gemm " << gemm);
    CHECK(wino < 2e-5);
    CHECK(wino < 30 * std::max(gemm, 1e-7));
  }
}

TEST_CASE("Winograd fits stride-1 3x3 windows with padding up to 2 and no groups", "[conv_runtime][conv_winograd]") {
  using nnc::ConvDir;
  const ConvGeom fits{1, 3, 5, 6, 4, 3, 3, 1, 1, 2, 0, 1};
  CHECK(nnc::winogradFits(fits, ConvDir::Forward, nnc::kActNone));
  CHECK(nnc::winogradFits(fits, ConvDir::InputGrad, nnc::kActNone));
  ConvGeom g = fits;
  g.sh = 2;
  CHECK_FALSE(nnc::winogradFits(g, ConvDir::Forward, nnc::kActNone));
  g = fits;
  g.kw = 5;
  CHECK_FALSE(nnc::winogradFits(g, ConvDir::Forward, nnc::kActNone));
  g = fits;
  g.ph = 3;  // the input gradient's forward would need padding −1
  CHECK_FALSE(nnc::winogradFits(g, ConvDir::WeightGrad, nnc::kActNone));
  g = fits;
  g.groups = 2, g.c = 4;
  CHECK_FALSE(nnc::winogradFits(g, ConvDir::Forward, nnc::kActNone));
  CHECK_FALSE(nnc::winogradFits(fits, ConvDir::Forward, nnc::kActSigmoid));  // the GEMM's epilogue takes those
}

TEST_CASE("Winograd matches the reference on its edge cases, every instruction set", "[conv_runtime][conv_winograd]") {
  Restore restore;
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    uint32_t seed = 100;
    for (const ConvGeom& g : kSweep) {
      INFO(describe(g));
      REQUIRE(nnc::winogradFits(g, nnc::ConvDir::Forward, nnc::kActRelu));
      REQUIRE(nnc::winogradFits(g, nnc::ConvDir::InputGrad, nnc::kActNone));
      REQUIRE(nnc::winogradFits(g, nnc::ConvDir::WeightGrad, nnc::kActNone));
      checkConv(g, seed % 2 == 0, int(seed / 10 % 2), seed, int64_t(nnc::ConvAlgo::Winograd));
      seed += 10;
    }
  }
}

TEST_CASE("Winograd gives the same bits on 1 and 2 threads, every instruction set", "[conv_runtime][conv_winograd]") {
  Restore restore;
  const nnc::ConvAlgo algo = nnc::ConvAlgo::Winograd;
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    for (const ConvGeom& g : kSweep) {
      const int64_t ys = g.n * g.f * g.oh() * g.ow();
      const std::vector<float> x = randoms(size_t(g.n * g.c * g.h * g.w), 7), w = randoms(size_t(g.f * g.c * 9), 8);
      const std::vector<float> dy = randoms(size_t(ys), 9), b = randoms(size_t(std::max(g.f, g.c)), 10);
      std::vector<float> y[2], dw[2], db[2], dx[2];
      for (int t = 0; t < 2; ++t) {
        nnc::setThreadCount(t + 1);
        y[t].resize(size_t(ys));
        dw[t].resize(w.size());
        db[t].resize(size_t(g.f));
        dx[t].resize(x.size());
        nnc::conv2d(g, x.data(), w.data(), b.data(), y[t].data(), nnc::kActRelu, 0, algo);
        nnc::conv2dGradWeight(g, x.data(), dy.data(), dw[t].data(), db[t].data(), algo);
        nnc::convTranspose2d(g, dy.data(), w.data(), b.data(), dx[t].data(), algo);
      }
      INFO(describe(g));
      CHECK(std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)) == 0);
      CHECK(std::memcmp(dw[0].data(), dw[1].data(), dw[0].size() * sizeof(float)) == 0);
      CHECK(std::memcmp(db[0].data(), db[1].data(), db[0].size() * sizeof(float)) == 0);
      CHECK(std::memcmp(dx[0].data(), dx[1].data(), dx[0].size() * sizeof(float)) == 0);
    }
  }
}
