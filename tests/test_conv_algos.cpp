// Each convolution algorithm (runtime/conv_geom.h: Direct, Winograd,
// Depthwise) against the registry's reference ops over the random and edge
// geometries of conv_test_util.h, on every instruction set this CPU runs,
// and bit-identical on 1 and 2 threads. Where an algorithm does not fit a
// shape the runtime computes it by the GEMM, so every geometry is checked
// whichever algorithm takes it; convAlgoFits says which did.
#include <catch2/catch.hpp>

#include <cstring>

#include "conv_test_util.h"

namespace {

using namespace conv_test;

const nnc::ConvAlgo kAlgos[] = {nnc::ConvAlgo::Direct, nnc::ConvAlgo::Winograd, nnc::ConvAlgo::Depthwise};

// Shapes each algorithm is built for (the benchmark table's, shrunk in batch
// and size) besides the random ones: 3×3 pad 1 with channels past one
// vector, stride 2 and 3 (the direct input gradient by phases), 1×1,
// depthwise at stride 1 and 2, multiplier 2.
std::vector<ConvGeom> algoGeoms() {
  return {
      {2, 32, 12, 12, 32, 3, 3, 1, 1, 1, 1, 1},   {1, 20, 9, 11, 24, 3, 3, 1, 1, 1, 1, 1},
      {3, 17, 7, 7, 33, 3, 3, 1, 1, 1, 1, 1},     {2, 1, 14, 14, 32, 3, 3, 1, 1, 1, 1, 1},
      {2, 16, 13, 13, 32, 3, 3, 2, 2, 1, 1, 1},   {1, 32, 14, 14, 16, 3, 3, 2, 2, 1, 1, 1},
      {2, 24, 7, 7, 40, 1, 1, 1, 1, 0, 0, 1},     {1, 40, 9, 10, 20, 1, 1, 1, 1, 0, 0, 1},
      {2, 16, 10, 10, 32, 1, 1, 2, 2, 0, 0, 1},   {2, 32, 14, 14, 32, 3, 3, 1, 1, 1, 1, 32},
      {1, 19, 11, 9, 19, 3, 3, 2, 2, 1, 1, 19},   {2, 8, 9, 9, 16, 3, 3, 1, 1, 1, 1, 8},
      {1, 16, 12, 12, 16, 5, 5, 1, 1, 2, 2, 16},  {2, 1, 28, 28, 30, 5, 5, 1, 1, 0, 0, 1},
      {1, 8, 10, 10, 8, 3, 3, 1, 1, 0, 0, 1},     {1, 8, 10, 10, 8, 3, 3, 1, 1, 2, 2, 1},
      {1, 4, 11, 13, 6, 3, 3, 3, 3, 1, 1, 1},     {2, 12, 8, 8, 12, 3, 3, 1, 1, 1, 1, 3},
      {1, 20, 13, 13, 24, 3, 3, 3, 3, 2, 2, 1},   {3, 9, 9, 12, 16, 3, 3, 2, 2, 0, 0, 1},
  };
}

}  // namespace

TEST_CASE("every convolution algorithm matches the reference ops", "[conv_runtime][conv_algos]") {
  Restore restore;
  std::vector<ConvGeom> geoms = randomGeoms(40), edges = edgeGeoms(), own = algoGeoms();
  geoms.insert(geoms.end(), edges.begin(), edges.end());
  geoms.insert(geoms.end(), own.begin(), own.end());
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    for (const nnc::ConvAlgo algo : kAlgos) {
      uint32_t seed = 1;
      for (size_t i = 0; i < geoms.size(); ++i, seed += 10)
        checkConv(geoms[i], i % 2 == 0, int(i / 2 % 2), seed, int64_t(algo));
    }
  }
}

TEST_CASE("every convolution algorithm gives the same bits on 1 and 2 threads", "[conv_runtime][conv_algos]") {
  Restore restore;
  const std::vector<ConvGeom> geoms = algoGeoms();
  for (const std::string& isa : isas()) {
    REQUIRE(nnc::setSgemmIsa(isa.c_str()));
    for (const nnc::ConvAlgo algo : kAlgos)
      for (const ConvGeom& g : geoms) {
        const int64_t cg = g.c / g.groups, ys = g.n * g.f * g.oh() * g.ow();
        const std::vector<float> x = randoms(size_t(g.n * g.c * g.h * g.w), 7);
        const std::vector<float> w = randoms(size_t(g.f * cg * g.kh * g.kw), 8), dy = randoms(size_t(ys), 9);
        const std::vector<float> b = randoms(size_t(std::max(g.f, g.c)), 10);
        std::vector<float> y[2], yp[2], dw[2], db[2], dx[2];
        for (int t = 0; t < 2; ++t) {
          nnc::setThreadCount(t + 1);
          y[t].resize(size_t(ys));
          yp[t].resize(size_t(ys));
          dw[t].resize(w.size());
          db[t].resize(size_t(g.f));
          dx[t].resize(x.size());
          nnc::conv2d(g, x.data(), w.data(), b.data(), y[t].data(), nnc::kActRelu, 0, algo);
          nnc::conv2d(g, x.data(), w.data(), b.data(), yp[t].data(), nnc::kActRelu, 2, algo);
          nnc::conv2dGradWeight(g, x.data(), dy.data(), dw[t].data(), db[t].data(), algo);
          nnc::convTranspose2d(g, dy.data(), w.data(), b.data(), dx[t].data(), algo);
        }
        INFO(nnc::convAlgoName(algo) << " " << describe(g));
        CHECK(std::memcmp(y[0].data(), y[1].data(), y[0].size() * sizeof(float)) == 0);
        CHECK(std::memcmp(yp[0].data(), yp[1].data(), yp[0].size() * sizeof(float)) == 0);
        CHECK(std::memcmp(dw[0].data(), dw[1].data(), dw[0].size() * sizeof(float)) == 0);
        CHECK(std::memcmp(db[0].data(), db[1].data(), db[0].size() * sizeof(float)) == 0);
        CHECK(std::memcmp(dx[0].data(), dx[1].data(), dx[0].size() * sizeof(float)) == 0);
      }
  }
}

TEST_CASE("convolution algorithm names round-trip", "[conv_runtime][conv_algos]") {
  for (int i = 0; i < nnc::kConvAlgoCount; ++i) {
    nnc::ConvAlgo a{};
    REQUIRE(nnc::convAlgoFromName(nnc::convAlgoName(nnc::ConvAlgo(i)), &a));
    CHECK(int(a) == i);
  }
  nnc::ConvAlgo a{};
  CHECK_FALSE(nnc::convAlgoFromName("fft", &a));
  CHECK_FALSE(nnc::convAlgoFromName("gem", &a));
  CHECK(nnc::convAlgoName(nnc::ConvAlgo(9)) == nullptr);
}
