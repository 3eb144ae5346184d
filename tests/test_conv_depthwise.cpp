// The depthwise kernels (runtime/conv_depthwise.h) on the shapes their
// padded copies and phases make hard, beyond test_conv_algos.cpp's sweep:
// multipliers 2 and 3, 5×5 and 1×1 windows, strides 3 and unequal ones,
// planes of 1×1 and 2×3 pixels, rows exactly one vector and one lane past,
// padding as wide as the window (whole rows and columns of dy that reach no
// pixel), batch 1. Every one is asserted to take the depthwise path, then
// checked against the reference ops on every instruction set.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

#include "conv_test_util.h"
#include "runtime/conv_depthwise.h"

namespace {

using namespace conv_test;

std::vector<ConvGeom> depthwiseGeoms() {
  return {
      {1, 3, 9, 9, 6, 5, 5, 1, 1, 2, 2, 3},      // multiplier 2, 5×5
      {2, 2, 11, 13, 6, 3, 3, 2, 2, 1, 1, 2},    // multiplier 3, stride 2
      {1, 4, 13, 14, 4, 3, 3, 3, 3, 1, 1, 4},    // stride 3
      {2, 3, 10, 17, 3, 3, 5, 3, 2, 2, 0, 3},    // unequal strides, kernel and padding
      {1, 5, 1, 1, 5, 3, 3, 1, 1, 1, 1, 5},      // 1×1 plane
      {1, 3, 2, 3, 6, 3, 3, 1, 1, 1, 1, 3},      // 2×3 plane, multiplier 2
      {1, 2, 3, 1, 2, 1, 1, 2, 2, 0, 0, 2},      // one column at stride 2: a phase with no pixel
      {1, 2, 1, 2, 2, 2, 2, 3, 3, 1, 1, 2},      // 1×2 plane at stride 3
      {1, 2, 2, 3, 2, 3, 3, 2, 2, 2, 2, 2},      // padding beyond the plane
      {3, 4, 6, 7, 4, 1, 1, 2, 2, 2, 2, 4},      // 1×1 window, pad 2: dy rows reaching no pixel
      {1, 2, 5, 16, 2, 3, 3, 1, 1, 1, 1, 2},     // rows of 16 windows: whole vectors
      {1, 2, 5, 17, 2, 3, 3, 1, 1, 1, 1, 2},     // rows of 17: one lane past
      {1, 2, 7, 35, 4, 3, 3, 2, 2, 1, 1, 2},     // stride 2 over rows of 35
      {2, 3, 8, 8, 3, 7, 7, 1, 1, 3, 3, 3},      // 7×7: taps past the kernels with a fixed count
      {2, 3, 9, 12, 3, 3, 3, 1, 2, 1, 1, 3},     // stride 1 × 2: dy spread along rows only
      {2, 3, 12, 9, 6, 3, 3, 2, 1, 1, 0, 3},     // stride 2 × 1, multiplier 2
      {1, 2, 10, 10, 2, 3, 3, 2, 2, 0, 0, 2},    // stride 2, pad 0: dx's last row and column read by none
      {1, 2, 9, 11, 4, 5, 5, 2, 2, 2, 2, 2},     // 5×5 at stride 2, multiplier 2
      {1, 2, 6, 6, 2, 3, 3, 2, 2, 3, 3, 2},      // stride 2, pad past the window: dy's edges reach no pixel
      {1, 64, 14, 14, 64, 3, 3, 1, 1, 1, 1, 64}, // the benchmark's shapes, batch 1
      {1, 64, 14, 14, 64, 3, 3, 2, 2, 1, 1, 64},
  };
}

}  // namespace

TEST_CASE("depthwise kernels match the reference ops on their edge shapes", "[conv_runtime][conv_depthwise]") {
  Restore restore;
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    uint32_t seed = 5;
    int i = 0;
    for (const ConvGeom& g : depthwiseGeoms()) {
      INFO(describe(g));
      REQUIRE(nnc::depthwiseFits(g, nnc::ConvDir::Forward, nnc::kActRelu));
      REQUIRE(nnc::depthwiseFits(g, nnc::ConvDir::InputGrad, nnc::kActNone));
      REQUIRE(nnc::depthwiseFits(g, nnc::ConvDir::WeightGrad, nnc::kActNone));
      for (int threads : {1, 2}) {
        nnc::setThreadCount(threads);
        checkConv(g, i % 2 == 0, i / 2 % 2, seed += 10, int64_t(nnc::ConvAlgo::Depthwise));
      }
      ++i;
    }
  }
}

TEST_CASE("depthwise fits only one filter group per channel", "[conv_runtime][conv_depthwise]") {
  const ConvGeom dw{2, 8, 9, 9, 16, 3, 3, 1, 1, 1, 1, 8};
  CHECK(nnc::depthwiseFits(dw, nnc::ConvDir::Forward, nnc::kActNone));
  CHECK_FALSE(nnc::depthwiseFits(dw, nnc::ConvDir::Forward, nnc::kActSigmoid));
  CHECK(nnc::depthwiseFits(dw, nnc::ConvDir::WeightGrad, nnc::kActSigmoid));  // act is the forward's only
  ConvGeom grouped = dw;
  grouped.groups = 4;
  CHECK_FALSE(nnc::depthwiseFits(grouped, nnc::ConvDir::Forward, nnc::kActNone));
  ConvGeom dense = dw;
  dense.groups = 1;
  CHECK_FALSE(nnc::depthwiseFits(dense, nnc::ConvDir::Forward, nnc::kActNone));
}

// A NaN in a column no window reads (the last, at stride 2 over an even
// padded width) must not reach the weight gradient through the masked-off
// lanes of a row's last vector.
TEST_CASE("depthwise weight gradient ignores pixels no window reads", "[conv_runtime][conv_depthwise]") {
  Restore restore;
  const ConvGeom g{1, 1, 4, 20, 1, 3, 3, 2, 2, 0, 0, 1};  // ow 9: columns 0..18 read, 19 not
  std::vector<float> x(size_t(g.h * g.w), 1.0f), dy(size_t(g.oh() * g.ow()), 1.0f), dw(9), db(1);
  for (int64_t y = 0; y < g.h; ++y) x[size_t(y * g.w + g.w - 1)] = std::numeric_limits<float>::quiet_NaN();
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    nnc::conv2dGradWeight(g, x.data(), dy.data(), dw.data(), db.data(), nnc::ConvAlgo::Depthwise);
    INFO(isa);
    for (float v : dw) CHECK(v == float(g.oh() * g.ow()));
    CHECK(db[0] == float(g.oh() * g.ow()));
  }
}
