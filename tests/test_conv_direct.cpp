// The direct convolution's own edge cases (runtime/conv_direct.cpp) against
// the reference ops on every instruction set: rows shorter and longer than a
// register tile, channel and filter counts off the vector width, batch 1,
// padding 0/1/2/3, strides 1/2/3 (the input gradient by phases where the
// stride is past 1 or the padding reaches the window; forward at stride 3
// the GEMM's), rows as narrow as one window; and that directFits takes the
// shapes it is built for.
#include <catch2/catch.hpp>

#include "conv_test_util.h"
#include "runtime/conv_direct.h"

namespace {

using namespace conv_test;

std::vector<ConvGeom> directGeoms() {
  return {
      {1, 3, 5, 29, 17, 3, 3, 1, 1, 1, 1, 1},   // 29 wide: tiles of 10 (avx512) or 10/9
      {2, 9, 7, 7, 65, 3, 3, 1, 1, 1, 1, 1},    // 65 filters: a block of one lane
      {1, 16, 6, 6, 1, 3, 3, 1, 1, 0, 0, 1},    // one filter
      {1, 8, 5, 1, 8, 3, 1, 1, 1, 1, 0, 1},     // one column
      {2, 10, 9, 9, 12, 3, 3, 1, 1, 2, 2, 1},   // padding 2
      {1, 12, 11, 12, 24, 5, 5, 1, 1, 2, 2, 1}, // 5×5, padding 2
      {1, 20, 11, 13, 40, 3, 3, 2, 2, 1, 1, 1}, // stride 2, odd sizes
      {1, 20, 12, 13, 40, 3, 3, 2, 1, 0, 1, 1}, // stride 2 down, 1 across
      {1, 7, 13, 13, 9, 3, 3, 3, 3, 1, 1, 1},   // stride 3: the GEMM's
      {3, 64, 7, 7, 70, 1, 1, 1, 1, 0, 0, 1},   // 1×1, filters past 64
      // 1×1, the constant-stride tiles: one-row ones, K in several slices,
      // padded, stride 2 across only, odd sizes and C off the vector width.
      {2, 21, 14, 14, 40, 1, 1, 1, 1, 0, 0, 1},
      {1, 130, 3, 5, 17, 1, 1, 1, 1, 0, 0, 1},
      {1, 18, 6, 7, 20, 1, 1, 1, 1, 1, 1, 1},
      {1, 19, 5, 9, 33, 1, 1, 1, 2, 0, 0, 1},
      {1, 33, 4, 4, 130, 2, 2, 1, 1, 1, 1, 1},  // 2×2 with padding 1: 5×5 output
      {1, 40, 30, 30, 16, 3, 3, 1, 1, 1, 1, 1}, // one 30-wide image, several weight-gradient row ranges
      // The input gradient by phases (strides, or padding past the window):
      {2, 9, 13, 11, 17, 3, 3, 3, 3, 2, 2, 1},  // stride 3, padding 2, odd sizes
      {1, 24, 9, 9, 20, 5, 5, 2, 2, 2, 2, 1},   // 5×5 stride 2: phases of 3×3, 3×2, 2×3, 2×2 taps
      {1, 10, 8, 8, 12, 3, 3, 1, 1, 3, 3, 1},   // stride 1, padding 3 ≥ the window
      {3, 16, 7, 7, 8, 2, 2, 2, 2, 0, 0, 1},    // 2×2 stride 2, padding 0: one tap per phase
      {1, 33, 15, 14, 30, 1, 1, 2, 2, 0, 0, 1}, // 1×1 stride 2: three phases without taps
      {2, 8, 6, 10, 16, 4, 4, 3, 2, 1, 2, 1},   // 4×4, strides 3 and 2
      {1, 17, 28, 28, 64, 3, 3, 2, 2, 1, 1, 1}, // the table's stride-2 layer, C off the vector width
      // Stride 2 across, the deinterleaved copy: phases of unequal length,
      // padding 0 and 2, stride 2 across only, 5×5 with unequal padding.
      {1, 5, 8, 9, 16, 3, 3, 2, 2, 0, 0, 1},
      {2, 13, 9, 10, 19, 3, 3, 1, 2, 2, 2, 1},
      {1, 6, 11, 12, 20, 5, 5, 2, 2, 2, 1, 1},
      {1, 9, 5, 37, 8, 3, 3, 2, 2, 1, 1, 1},    // 37 wide: the input gradient's interleave, vectors a row
  };
}

}  // namespace

TEST_CASE("direct convolution edge cases match the reference ops", "[conv_runtime][conv_direct]") {
  Restore restore;
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    uint32_t seed = 7;
    for (const ConvGeom& g : directGeoms())
      for (int act = 0; act < 2; ++act, seed += 10) checkConv(g, act == 0, act, seed, int64_t(nnc::ConvAlgo::Direct));
  }
}

TEST_CASE("directFits takes the benchmark shapes", "[conv_runtime][conv_direct]") {
  using nnc::ConvDir;
  const ConvGeom s1{64, 32, 28, 28, 32, 3, 3, 1, 1, 1, 1, 1}, s2{64, 32, 28, 28, 64, 3, 3, 2, 2, 1, 1, 1},
      p1{64, 128, 14, 14, 64, 1, 1, 1, 1, 0, 0, 1}, dw{2, 8, 9, 9, 8, 3, 3, 1, 1, 1, 1, 8};
  for (const ConvGeom& g : {s1, s2, p1}) {
    CHECK(nnc::directFits(g, ConvDir::Forward, nnc::kActRelu));
    CHECK(nnc::directFits(g, ConvDir::WeightGrad, 0));
  }
  CHECK(nnc::directFits(s1, ConvDir::InputGrad, 0));
  CHECK(nnc::directFits(p1, ConvDir::InputGrad, 0));
  CHECK(nnc::directFits(s2, ConvDir::InputGrad, 0));
  const ConvGeom s3{2, 9, 13, 11, 17, 3, 3, 3, 3, 2, 2, 1}, c4{64, 4, 28, 28, 32, 3, 3, 2, 2, 1, 1, 1};
  CHECK(nnc::directFits(s3, ConvDir::InputGrad, 0));
  CHECK_FALSE(nnc::directFits(s3, ConvDir::Forward, 0));  // stride 3 along rows: no tile for it
  CHECK_FALSE(nnc::directFits(c4, ConvDir::InputGrad, 0));  // 4 channels: a quarter of a vector
  CHECK_FALSE(nnc::directFits(s1, ConvDir::Forward, nnc::kActSigmoid));
  CHECK_FALSE(nnc::directFits(dw, ConvDir::Forward, 0));
}
