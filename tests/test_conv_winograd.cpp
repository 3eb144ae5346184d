// Winograd F(4×4, 3×3) (runtime/conv_winograd.h) on the benchmark's shapes
// (batch cut to 1–2) within the usual tolerance of conv_test_util.h, every
// direction, and its measured error against the double reference bounded:
// the transforms' coefficients (5 and 4 in Bᵀ, 8 in Aᵀ, 1/6 and 1/24 in G)
// make its float error larger than the direct method's, about 5e-6 of the
// largest output on these shapes where the GEMM's is 2e-7–8e-7
// (max |error| / max |reference|, operands uniform in [-1, 1]).
#include <catch2/catch.hpp>

#include <cmath>

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
