// NN ops: matmul, convolutions, pooling, dropout masks, batchnorm, im2col.
#include <cmath>
#include <limits>

#include "compiler/ops/im2col.h"
#include "op_test_util.h"
#include "runtime/random_calls.h"

using namespace nnc;
using nnc::test::evalOp;
using nnc::test::f32;
using nnc::test::inferOp;
using nnc::test::requireClose;
using nnc::test::tensor;
using nnc::test::tryEvalOp;

namespace {

Attr ints(std::vector<int64_t> v) { return Attr{std::move(v)}; }

Tensor randomTensor(Shape shape, Rng& rng) {
  Tensor t(TensorType{DType::F32, std::move(shape)});
  for (double& v : t.data) v = rng.uniform(-1, 1);
  return t;
}

double dot(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double s = 0;
  for (size_t i = 0; i < a.data.size(); ++i) s += a.data[i] * b.data[i];
  return s;
}

// The shape rule's error for these operand types and attributes.
std::string shapeError(std::string_view op, const std::vector<TensorType>& in, Attrs attrs = {}) {
  auto r = inferOp(op, in, std::move(attrs));
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}


// The course notes' 2x1x4x4 example.
const Tensor kNotesImage = tensor({2, 1, 4, 4}, {36, 81, 79, 54, 6, 72, 5, 87, 57, 4, 37, 8, 78, 42, 79, 61,  //
                                                 33, 38, 44, 78, 19, 72, 53, 34, 92, 18, 52, 31, 13, 38, 10, 93});
const std::vector<double> kNotesCol = {
    36, 81, 79, 6,  72, 5,  57, 4,  37,  //
    81, 79, 54, 72, 5,  87, 4,  37, 8,   //
    6,  72, 5,  57, 4,  37, 78, 42, 79,  //
    72, 5,  87, 4,  37, 8,  42, 79, 61,  //
    33, 38, 44, 19, 72, 53, 92, 18, 52,  //
    38, 44, 78, 72, 53, 34, 18, 52, 31,  //
    19, 72, 53, 92, 18, 52, 13, 38, 10,  //
    72, 53, 34, 18, 52, 31, 38, 10, 93};
const std::vector<double> kNotesRoundTrip = {36, 162, 158, 54,  12, 288, 20,  174, 114, 16, 148, 16, 78, 84, 158, 61,
                                             33, 76,  88,  78,  38, 288, 212, 68,  184, 72, 208, 62, 13, 76, 20,  93};

}  // namespace

TEST_CASE("im2col and col2im reproduce the course notes", "[ops]") {
  const Tensor col = evalOp("im2col", {kNotesImage}, {{"kernel", int64_t{3}}});
  REQUIRE(col.shape() == Shape{8, 9});
  REQUIRE(col.data == kNotesCol);

  const Tensor back = evalOp("col2im", {col}, {{"shape", ints({2, 1, 4, 4})}, {"kernel", int64_t{3}}});
  REQUIRE(back.shape() == Shape{2, 1, 4, 4});
  REQUIRE(back.data == kNotesRoundTrip);

  // The plain functions the ops are built on agree.
  const PatchGeom g{.n = 2, .c = 1, .h = 4, .w = 4, .kh = 3, .kw = 3};
  REQUIRE(g.oh() == 2);
  REQUIRE(im2col(kNotesImage.data, g) == kNotesCol);
  REQUIRE(col2im(kNotesCol, g) == kNotesRoundTrip);
}

TEST_CASE("im2col orders columns channel-major and zero-fills padding", "[ops]") {
  const Tensor x = tensor({1, 2, 3, 3}, {0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18});
  const Tensor col = evalOp("im2col", {x}, {{"kernel", int64_t{2}}});
  REQUIRE(col.shape() == Shape{4, 8});
  REQUIRE(std::vector<double>(col.data.begin(), col.data.begin() + 8) ==
          std::vector<double>{0, 1, 3, 4, 10, 11, 13, 14});

  const Tensor padded = evalOp("im2col", {x}, {{"kernel", int64_t{2}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}});
  REQUIRE(padded.shape() == Shape{4, 8});
  REQUIRE(std::vector<double>(padded.data.begin(), padded.data.begin() + 8) ==
          std::vector<double>{0, 0, 0, 0, 0, 0, 0, 10});

  CHECK(slideCount(2, 3, 2, 0) == 0);  // a negative numerator must not round up to one position
  CHECK(slideCount(7, 3, 2, 1) == 4);
}

TEST_CASE("matmul by hand", "[ops]") {
  const Tensor a = tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  const Tensor b = tensor({3, 2}, {7, 8, 9, 10, 11, 12});
  requireClose(evalOp("matmul", {a, b}), {2, 2}, {58, 64, 139, 154});

  // The seeds' three-layer network, first step: x @ W1 + b1.
  const Tensor x = tensor({2}, {1.0, 0.5});
  const Tensor w1 = tensor({2, 3}, {0.1, 0.3, 0.5, 0.2, 0.4, 0.6});
  const Tensor h = evalOp("matmul", {x, w1});
  requireClose(h, {3}, {0.2, 0.5, 0.8});
  const std::vector<double> b1 = {0.1, 0.2, 0.3}, want = {0.3, 0.7, 1.1};
  for (size_t i = 0; i < 3; ++i) CHECK(h.data[i] + b1[i] == Approx(want[i]));

  // Leading axes of a rank-3 left operand are batch axes.
  const Tensor batch = tensor({2, 1, 3}, {1, 2, 3, 4, 5, 6});
  requireClose(evalOp("matmul", {batch, b}), {2, 1, 2}, {58, 64, 139, 154});
}

TEST_CASE("matmul shape errors name both shapes", "[ops]") {
  CHECK(shapeError("matmul", {f32({100, 784}), f32({40, 10})}) ==
        "matmul: inner dimensions differ: f32[100, 784] @ f32[40, 10]");
  CHECK(shapeError("matmul", {f32({3}), f32({4, 2})}) == "matmul: inner dimensions differ: f32[3] @ f32[4, 2]");
  const std::string vec = shapeError("matmul", {f32({2, 3}), f32({3})});
  CHECK_THAT(vec, Catch::Contains("f32[2, 3] @ f32[3]"));
  const std::string i32 = shapeError("matmul", {TensorType{DType::I32, {2, 3}}, f32({3, 4})});
  CHECK_THAT(i32, Catch::Contains("i32[2, 3] @ f32[3, 4]"));
}

TEST_CASE("conv2d by hand", "[ops]") {
  const Tensor k = tensor({1, 1, 2, 2}, {1, 2, 3, 4});
  SECTION("one channel, 3x3 image, 2x2 kernel") {
    const Tensor x = tensor({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    requireClose(evalOp("conv2d", {x, k}), {1, 1, 2, 2}, {37, 47, 67, 77});
  }
  SECTION("stride 2") {
    const Tensor x = tensor({1, 1, 4, 4}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16});
    requireClose(evalOp("conv2d", {x, k}, {{"stride", int64_t{2}}}), {1, 1, 2, 2}, {44, 64, 124, 144});
  }
  SECTION("pad 1") {
    const Tensor x = tensor({1, 1, 2, 2}, {1, 2, 3, 4});
    requireClose(evalOp("conv2d", {x, k}, {{"pad", int64_t{1}}}), {1, 1, 3, 3}, {4, 11, 6, 14, 30, 14, 6, 11, 4});
  }
  const Tensor x2 = tensor({1, 2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  SECTION("two input channels, two filters, bias") {
    const Tensor w = tensor({2, 2, 2, 2}, {1, 0, 0, 1, 1, 1, 1, 1,  //
                                           0, 1, 0, 0, 0, 0, 0, -1});
    requireClose(evalOp("conv2d", {x2, w}), {1, 2, 1, 1}, {31, -6});
    requireClose(evalOp("conv2d", {x2, w, tensor({2}, {0.5, -1})}), {1, 2, 1, 1}, {31.5, -7});
  }
  SECTION("groups = 2: each filter sees only its own channel") {
    const Tensor w = tensor({2, 1, 2, 2}, {1, 0, 0, 1, 1, 1, 1, 1});
    requireClose(evalOp("conv2d", {x2, w}, {{"groups", int64_t{2}}}), {1, 2, 1, 1}, {5, 26});
    requireClose(evalOp("conv2d", {x2, w, tensor({2}, {1, 2})}, {{"groups", int64_t{2}}}), {1, 2, 1, 1}, {6, 28});
  }
  SECTION("separate stride and pad per axis") {
    const Tensor x = tensor({1, 1, 2, 3}, {1, 2, 3, 4, 5, 6});
    const Tensor one = tensor({1, 1, 1, 1}, {1});
    // pad [1, 0], stride [2, 1]: rows -1 and 1 of the padded image, every column.
    requireClose(evalOp("conv2d", {x, one}, {{"stride", ints({2, 1})}, {"pad", ints({1, 0})}}), {1, 1, 2, 3},
                 {0, 0, 0, 4, 5, 6});
  }
}

TEST_CASE("conv2d equals im2col then matmul", "[ops]") {
  Rng rng(7);
  const int64_t n = 2, c = 3, f = 4, kh = 3, kw = 2;
  const Tensor x = randomTensor({n, c, 7, 6}, rng), w = randomTensor({f, c, kh, kw}, rng), b = randomTensor({f}, rng);
  const Attrs window = {{"stride", ints({2, 1})}, {"pad", ints({1, 0})}};
  const Tensor y = evalOp("conv2d", {x, w, b}, window);
  REQUIRE(y.shape() == Shape{n, f, 4, 5});

  const Tensor col =
      evalOp("im2col", {x}, {{"kernel", ints({kh, kw})}, {"stride", ints({2, 1})}, {"pad", ints({1, 0})}});
  // W as [C*KH*KW, F]: each filter flattened into a column.
  Tensor wt(f32({c * kh * kw, f}));
  for (int64_t i = 0; i < f; ++i)
    for (int64_t j = 0; j < c * kh * kw; ++j) wt.data[j * f + i] = w.data[i * c * kh * kw + j];
  const Tensor prod = evalOp("matmul", {col, wt});  // [N*OH*OW, F]
  const int64_t positions = 4 * 5;
  for (int64_t in = 0; in < n; ++in)
    for (int64_t fi = 0; fi < f; ++fi)
      for (int64_t p = 0; p < positions; ++p) {
        const double want = prod.data[(in * positions + p) * f + fi] + b.data[fi];
        REQUIRE(y.data[(in * f + fi) * positions + p] == Approx(want).margin(1e-12));
      }
}

TEST_CASE("conv_transpose2d by hand", "[ops]") {
  const Tensor x = tensor({1, 1, 2, 2}, {1, 2, 3, 4});
  SECTION("stride 1: overlapping kernels add up") {
    const Tensor w = tensor({1, 1, 2, 2}, {1, 2, 3, 4});
    requireClose(evalOp("conv_transpose2d", {x, w}), {1, 1, 3, 3}, {1, 4, 4, 6, 20, 16, 9, 24, 16});
    // pad crops the border of that result.
    requireClose(evalOp("conv_transpose2d", {x, w}, {{"pad", int64_t{1}}}), {1, 1, 1, 1}, {20});
  }
  SECTION("stride 2 spreads each pixel into its own block; output_pad adds bias-only edges") {
    const Tensor ones = tensor({1, 1, 2, 2}, {1, 1, 1, 1});
    requireClose(evalOp("conv_transpose2d", {x, ones}, {{"stride", int64_t{2}}}), {1, 1, 4, 4},
                 {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
    requireClose(
        evalOp("conv_transpose2d", {x, ones, tensor({1}, {0.5})}, {{"stride", int64_t{2}}, {"output_pad", int64_t{1}}}),
        {1, 1, 5, 5},
        {1.5, 1.5, 2.5, 2.5, 0.5, 1.5, 1.5, 2.5, 2.5, 0.5, 3.5, 3.5, 4.5, 4.5, 0.5, 3.5, 3.5, 4.5, 4.5, 0.5,
         0.5, 0.5, 0.5, 0.5, 0.5});
  }
  SECTION("weight layout [C, F/groups, KH, KW]: one input channel feeds two outputs") {
    const Tensor w = tensor({1, 2, 1, 1}, {2, -1});
    requireClose(evalOp("conv_transpose2d", {x, w}), {1, 2, 2, 2}, {2, 4, 6, 8, -1, -2, -3, -4});
  }
}

TEST_CASE("conv_transpose2d is the adjoint of conv2d", "[ops]") {
  // <conv2d(x, W), y> == <x, conv_transpose2d(y, W)> for every x and y.
  Rng rng(11);
  struct Case {
    Shape x, w;
    int64_t groups;
  };
  for (const Case& c : {Case{{2, 3, 8, 7}, {5, 3, 3, 3}, 1}, Case{{2, 4, 8, 7}, {6, 2, 3, 2}, 2}}) {
    INFO("x " << shapeString(c.x) << ", W " << shapeString(c.w) << ", groups " << c.groups);
    const Tensor x = randomTensor(c.x, rng), w = randomTensor(c.w, rng);
    const Attrs conv = {{"stride", int64_t{2}}, {"pad", int64_t{1}}, {"groups", c.groups}};
    const Tensor fx = evalOp("conv2d", {x, w}, conv);
    const Tensor y = randomTensor(fx.shape(), rng);
    // output_pad recovers the input size that stride 2 made ambiguous.
    const int64_t oh = (fx.shape()[2] - 1) * 2 - 2 + c.w[2], ow = (fx.shape()[3] - 1) * 2 - 2 + c.w[3];
    Attrs transposed = conv;
    transposed.set("output_pad", ints({c.x[2] - oh, c.x[3] - ow}));
    const Tensor fty = evalOp("conv_transpose2d", {y, w}, transposed);
    REQUIRE(fty.shape() == x.shape());
    CHECK(dot(fx, y) == Approx(dot(x, fty)).epsilon(1e-12));
  }
}

TEST_CASE("conv shape errors name the shapes", "[ops]") {
  const std::string channels = shapeError("conv2d", {f32({1, 3, 8, 8}), f32({4, 2, 3, 3})});
  CHECK_THAT(channels, Catch::StartsWith("conv2d:") && Catch::Contains("f32[1, 3, 8, 8]") &&
                           Catch::Contains("f32[4, 2, 3, 3]"));
  const std::string small = shapeError("conv2d", {f32({1, 1, 2, 2}), f32({1, 1, 3, 3})});
  CHECK_THAT(small, Catch::Contains("does not fit") && Catch::Contains("f32[1, 1, 2, 2]") &&
                        Catch::Contains("f32[1, 1, 3, 3]"));
  const std::string bias = shapeError("conv2d", {f32({1, 1, 4, 4}), f32({2, 1, 3, 3}), f32({3})});
  CHECK_THAT(bias, Catch::Contains("f32[2, 1, 3, 3]") && Catch::Contains("f32[3]"));
  const std::string groups =
      shapeError("conv2d", {f32({1, 3, 4, 4}), f32({2, 1, 3, 3})}, {{"groups", int64_t{2}}});
  CHECK_THAT(groups, Catch::Contains("groups") && Catch::Contains("f32[1, 3, 4, 4]"));
  CHECK_THAT(shapeError("conv2d", {f32({3, 4}), f32({1, 1, 3, 3})}), Catch::Contains("f32[3, 4]"));
  CHECK_THAT(shapeError("conv2d", {f32({1, 1, 4, 4}), f32({1, 1, 3, 3})}, {{"stride", ints({1, 1, 1})}}),
             Catch::Contains("stride"));
  CHECK(inferOp("conv2d", {f32({1, 1, 3, 3}), f32({1, 1, 3, 3})}).ok());

  const std::string tchannels = shapeError("conv_transpose2d", {f32({1, 3, 4, 4}), f32({2, 1, 3, 3})});
  CHECK_THAT(tchannels, Catch::StartsWith("conv_transpose2d:") && Catch::Contains("f32[1, 3, 4, 4]") &&
                            Catch::Contains("f32[2, 1, 3, 3]"));
  CHECK_THAT(shapeError("conv_transpose2d", {f32({1, 1, 4, 4}), f32({1, 1, 3, 3})},
                        {{"stride", int64_t{2}}, {"output_pad", int64_t{2}}}),
             Catch::Contains("output_pad"));
  CHECK_THAT(shapeError("conv_transpose2d", {f32({1, 1, 1, 1}), f32({1, 1, 1, 1})}, {{"pad", int64_t{1}}}),
             Catch::Contains("f32[1, 1, 1, 1]"));
}

TEST_CASE("maxpool2d and avgpool2d", "[ops]") {
  const Tensor x = tensor({1, 1, 5, 5}, {1, 5, 2, 8, 3,  //
                                         9, 4, 7, 0, 6,  //
                                         2, 11, 3, 12, 1,  //
                                         6, 0, 10, 5, 13,  //
                                         4, 7, 1, 9, 2});
  const Attrs overlapping = {{"kernel", int64_t{3}}, {"stride", int64_t{2}}};
  requireClose(evalOp("maxpool2d", {x}, overlapping), {1, 1, 2, 2}, {11, 12, 11, 13});
  requireClose(evalOp("avgpool2d", {x}, overlapping), {1, 1, 2, 2}, {44 / 9.0, 42 / 9.0, 44 / 9.0, 56 / 9.0});

  // The stride defaults to the kernel: disjoint windows.
  const Tensor y = tensor({1, 2, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8, -1, -2, -3, -4, -5, -6, -7, -8});
  requireClose(evalOp("maxpool2d", {y}, {{"kernel", int64_t{2}}}), {1, 2, 1, 2}, {6, 8, -1, -3});
  requireClose(evalOp("avgpool2d", {y}, {{"kernel", int64_t{2}}}), {1, 2, 1, 2}, {3.5, 5.5, -3.5, -5.5});

  // Padding: -inf for max (the negative values win over it), zeros counted for avg.
  const Attrs padded = {{"kernel", int64_t{2}}, {"stride", int64_t{1}}, {"pad", int64_t{1}}};
  requireClose(evalOp("maxpool2d", {tensor({1, 1, 2, 2}, {-1, -2, -3, -4})}, padded), {1, 1, 3, 3},
               {-1, -1, -2, -1, -1, -2, -3, -3, -4});
  requireClose(evalOp("avgpool2d", {tensor({1, 1, 2, 2}, {1, 2, 3, 4})}, padded), {1, 1, 3, 3},
               {0.25, 0.75, 0.5, 1.0, 2.5, 1.5, 0.75, 1.75, 1.0});

  // Non-square windows and strides.
  requireClose(evalOp("maxpool2d", {y}, {{"kernel", ints({1, 2})}}), {1, 2, 2, 2}, {2, 4, 6, 8, -1, -3, -5, -7});

  // A pad of the kernel would make windows of padding only; kernel - 1 is
  // ONNX's limit (test_maxpool_2d_pads), past PyTorch's half the kernel.
  CHECK_THAT(shapeError("maxpool2d", {f32({1, 1, 4, 4})}, {{"kernel", int64_t{3}}, {"pad", int64_t{3}}}),
             Catch::Contains("pad [3] must be less than the kernel [3]"));
  requireClose(evalOp("maxpool2d", {tensor({1, 1, 2, 2}, {1, 2, 3, 4})}, {{"kernel", int64_t{3}}, {"stride", int64_t{1}}, {"pad", int64_t{2}}}),
               {1, 1, 4, 4}, {1, 2, 2, 2, 3, 4, 4, 4, 3, 4, 4, 4, 3, 4, 4, 4});
  CHECK_THAT(shapeError("avgpool2d", {f32({1, 1, 2, 2})}, {{"kernel", int64_t{3}}}),
             Catch::StartsWith("avgpool2d:") && Catch::Contains("f32[1, 1, 2, 2]"));
  CHECK_THAT(shapeError("maxpool2d", {f32({4, 4})}, {{"kernel", int64_t{2}}}), Catch::Contains("f32[4, 4]"));
  CHECK_THAT(shapeError("maxpool2d", {f32({1, 1, 4, 4})}), Catch::Contains("missing attribute 'kernel'"));
}

TEST_CASE("dropout_mask", "[ops]") {
  const Tensor x(f32({100, 100}));
  const double rate = 0.3;
  const Tensor mask = evalOp("dropout_mask", {x}, {{"rate", rate}}, /*training=*/true);
  REQUIRE(mask.shape() == Shape{100, 100});
  int64_t zeros = 0;
  for (double m : mask.data) {
    if (m == 0) ++zeros;
    else REQUIRE(m == 1 / (1 - rate));
  }
  CHECK(std::abs(static_cast<double>(zeros) / 10000 - rate) < 0.02);

  // Same seed, same mask: the backward pass relies on replaying it.
  CHECK(evalOp("dropout_mask", {x}, {{"rate", rate}}, true).data == mask.data);

  const Tensor inference = evalOp("dropout_mask", {x}, {{"rate", rate}});
  for (double m : inference.data) REQUIRE(m == 1);
  const Tensor none = evalOp("dropout_mask", {x}, {{"rate", 0.0}}, true);
  for (double m : none.data) REQUIRE(m == 1);

  CHECK(evalOp("dropout_mask", {x}).data == inference.data);  // rate defaults to 0.5
  CHECK_THAT(shapeError("dropout_mask", {f32({2})}, {{"rate", 1.0}}), Catch::Contains("rate"));
  CHECK_THAT(shapeError("dropout_mask", {f32({2})}, {{"rate", -0.1}}), Catch::Contains("rate"));
}

TEST_CASE("batchnorm", "[ops]") {
  const double eps = 1e-5;
  const Tensor gamma = tensor({2}, {2, 0.5}), beta = tensor({2}, {1, -1});
  const Tensor rmean = tensor({2}, {1, 2}), rvar = tensor({2}, {4, 9});

  SECTION("training, [N, C]: batch statistics per channel") {
    // Channel 0: {1, 3}, mean 2, variance 1. Channel 1: {10, 30}, mean 20, variance 100.
    const Tensor x = tensor({2, 2}, {1, 10, 3, 30});
    const double s0 = 1 / std::sqrt(1 + eps), s1 = 10 / std::sqrt(100 + eps);
    requireClose(evalOp("batchnorm", {x, gamma, beta, rmean, rvar}, {}, true), {2, 2},
                 {1 - 2 * s0, -1 - 0.5 * s1, 1 + 2 * s0, -1 + 0.5 * s1}, 1e-12, 1e-12);
  }
  SECTION("training, [N, C, H, W]: statistics over batch and space") {
    // Channel 0: {1, 2, 3, 6}, mean 3, variance (4 + 1 + 0 + 9) / 4 = 3.5.
    // Channel 1: {0, 0, 4, 4}, mean 2, variance 4.
    const Tensor x = tensor({2, 2, 1, 2}, {1, 2, 0, 0, 3, 6, 4, 4});
    const double i0 = 1 / std::sqrt(3.5 + eps), i1 = 1 / std::sqrt(4 + eps);
    requireClose(evalOp("batchnorm", {x, gamma, beta, rmean, rvar}, {}, true), {2, 2, 1, 2},
                 {1 - 4 * i0, 1 - 2 * i0, -1 - i1, -1 - i1, 1, 1 + 6 * i0, -1 + i1, -1 + i1}, 1e-12, 1e-12);
  }
  SECTION("inference uses the running statistics") {
    const Tensor x = tensor({1, 2, 1, 2}, {3, 5, 8, -1});
    const double i0 = 1 / std::sqrt(4 + eps), i1 = 1 / std::sqrt(9 + eps);
    requireClose(evalOp("batchnorm", {x, gamma, beta, rmean, rvar}, {{"eps", eps}}), {1, 2, 1, 2},
                 {1 + 2 * 2 * i0, 1 + 2 * 4 * i0, -1 + 0.5 * 6 * i1, -1 - 0.5 * 3 * i1}, 1e-12, 1e-12);
  }
  SECTION("shape errors") {
    const std::string e = shapeError("batchnorm", {f32({4, 3}), f32({2}), f32({2}), f32({2}), f32({2})});
    CHECK_THAT(e, Catch::StartsWith("batchnorm:") && Catch::Contains("f32[4, 3]") && Catch::Contains("f32[2]"));
    CHECK_THAT(shapeError("batchnorm", {f32({4, 3, 2}), f32({3}), f32({3}), f32({3}), f32({3})}),
               Catch::Contains("f32[4, 3, 2]"));
  }
}

TEST_CASE("im2col and col2im shape errors", "[ops]") {
  const std::string e = shapeError("col2im", {f32({8, 8})}, {{"shape", ints({2, 1, 4, 4})}, {"kernel", int64_t{3}}});
  CHECK_THAT(e, Catch::Contains("[8, 9]") && Catch::Contains("f32[8, 8]") && Catch::Contains("[2, 1, 4, 4]"));
  CHECK_THAT(shapeError("im2col", {f32({1, 1, 2, 2})}, {{"kernel", int64_t{3}}}),
             Catch::StartsWith("im2col:") && Catch::Contains("f32[1, 1, 2, 2]"));
  CHECK_THAT(shapeError("col2im", {f32({8, 9})}, {{"shape", ints({2, 4, 4})}, {"kernel", int64_t{3}}}),
             Catch::Contains("shape"));
}

// ---- lowerings: every evalOp below also runs the op's loop-IR kernel (the
// evaluator and the JIT) against the reference, so these cases are mostly
// about covering the lowering's geometry. ----

namespace {

Tensor transposed(const Tensor& m) {
  const int64_t r = m.shape()[0], c = m.shape()[1];
  Tensor t(f32({c, r}));
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) t.data[j * r + i] = m.data[i * c + j];
  return t;
}

// The op's lowered kernel run by the loop-IR evaluator on f32 inputs.
std::vector<float> runLowered(std::string_view op, const std::vector<TensorType>& types,
                              const std::vector<std::vector<float>>& inputs, Attrs attrs) {
  Graph g;
  std::vector<ValueId> ids;
  for (size_t i = 0; i < types.size(); ++i) {
    auto id = g.addSource("input", "in" + std::to_string(i), types[i]);
    REQUIRE(id);
    ids.push_back(*id);
  }
  auto id = g.add(op, ids, std::move(attrs));
  REQUIRE(id);
  auto k = lowerNode(g, *id, false);
  REQUIRE(k);
  std::vector<std::vector<float>> bufs;
  for (const loop::Buffer& b : k->buffers) bufs.emplace_back(static_cast<size_t>(b.size), -777.0f);
  for (size_t i = 0; i < inputs.size(); ++i) bufs[i] = inputs[i];
  std::vector<float*> ptrs;
  for (auto& b : bufs) ptrs.push_back(b.data());
  loop::evaluate(*k, ptrs);
  return bufs[types.size()];
}

Attrs flags(int64_t ta, int64_t tb) { return {{"transpose_a", ta}, {"transpose_b", tb}}; }

}  // namespace

TEST_CASE("matmul with every transpose flag and batched leading axes", "[ops]") {
  Rng rng(3);
  const Tensor a = randomTensor({3, 5}, rng), b = randomTensor({5, 4}, rng);
  const Tensor want = evalOp("matmul", {a, b});
  requireClose(evalOp("matmul", {transposed(a), b}, flags(1, 0)), {3, 4}, want.data, 1e-12, 1e-12);
  requireClose(evalOp("matmul", {a, transposed(b)}, flags(0, 1)), {3, 4}, want.data, 1e-12, 1e-12);
  requireClose(evalOp("matmul", {transposed(a), transposed(b)}, flags(1, 1)), {3, 4}, want.data, 1e-12, 1e-12);

  // [..., M, K] @ [N, K]ᵀ: the leading axes flatten into rows of one GEMM.
  const Tensor batch = randomTensor({2, 3, 2, 5}, rng);
  const Tensor bw = evalOp("matmul", {batch, b});
  REQUIRE(bw.shape() == Shape{2, 3, 2, 4});
  requireClose(evalOp("matmul", {batch, transposed(b)}, flags(0, 1)), {2, 3, 2, 4}, bw.data, 1e-12, 1e-12);
  // [K] @ [N, K]ᵀ: one row.
  const Tensor v = randomTensor({5}, rng);
  requireClose(evalOp("matmul", {v, transposed(b)}, flags(0, 1)), {4}, evalOp("matmul", {v, b}).data, 1e-12, 1e-12);
  // Degenerate sizes: a 1x1 product and an inner dimension of 1.
  requireClose(evalOp("matmul", {tensor({1, 1}, {3}), tensor({1, 1}, {-2})}, flags(1, 1)), {1, 1}, {-6});
  requireClose(evalOp("matmul", {tensor({1, 2}, {1, 2}), tensor({3, 1}, {1, 2, 3})}, flags(1, 1)), {2, 3},
               {1, 2, 3, 2, 4, 6});

  CHECK(inferOp("matmul", {f32({5, 3}), f32({4, 5})}, flags(1, 1))->shape == Shape{3, 4});
  CHECK(shapeError("matmul", {f32({3, 5}), f32({3, 4})}, flags(0, 1)) ==
        "matmul: inner dimensions differ: f32[3, 5] @ f32[3, 4]^T");
  // A transposed batch of matrices times one matrix is a batched product.
  CHECK(inferOp("matmul", {f32({2, 5, 3}), f32({5, 4})}, flags(1, 0))->shape == Shape{2, 3, 4});
  CHECK_THAT(shapeError("matmul", {f32({2, 5, 3}), f32({6, 4})}, flags(1, 0)),
             Catch::Contains("inner dimensions") && Catch::Contains("f32[2, 5, 3]^T"));
  CHECK_THAT(shapeError("matmul", {f32({5}), f32({5, 4})}, flags(1, 0)), Catch::Contains("transpose_a"));
  CHECK_THAT(shapeError("matmul", {f32({2, 5}), f32({5, 4})}, flags(0, 2)), Catch::Contains("transpose_b must be 0 or 1"));
}

namespace {

struct ConvCase {
  Shape x, w;
  Attrs attrs;
  bool bias;
};

// Shapes that stress the im2col geometry and the per-group GEMM offsets.
std::vector<ConvCase> convCases() {
  return {
      {{2, 4, 7, 6}, {6, 2, 3, 3}, {{"stride", ints({2})}, {"pad", ints({1})}, {"groups", int64_t{2}}}, true},
      {{1, 3, 5, 8}, {4, 3, 2, 3}, {{"stride", ints({1, 2})}, {"pad", ints({0, 1})}}, true},  // non-square
      {{2, 3, 4, 5}, {5, 3, 1, 1}, {}, false},                                               // 1x1 kernel
      {{2, 3, 4, 5}, {2, 3, 1, 1}, {{"stride", ints({2})}}, true},                            // 1x1, stride 2
      {{2, 2, 4, 5}, {3, 2, 4, 5}, {}, true},                                                 // kernel = image
      {{1, 2, 3, 3}, {2, 2, 3, 3}, {{"pad", ints({1})}}, false},                              // kernel = image, padded
      {{2, 6, 6, 5}, {6, 1, 3, 2}, {{"pad", ints({1, 1})}, {"groups", int64_t{6}}}, false},  // depthwise
      {{1, 2, 8, 7}, {2, 2, 3, 3}, {{"stride", ints({3})}}, true},  // rows and columns no window reads
  };
}

}  // namespace

TEST_CASE("lowered conv2d, conv_transpose2d and conv2d_grad_weight over varied geometry", "[ops]") {
  Rng rng(17);
  for (const ConvCase& c : convCases()) {
    INFO("x " << shapeString(c.x) << ", W " << shapeString(c.w) << ", bias " << c.bias);
    const Tensor x = randomTensor(c.x, rng), w = randomTensor(c.w, rng), b = randomTensor({c.w[0]}, rng);
    const Tensor y = evalOp("conv2d", c.bias ? std::vector<Tensor>{x, w, b} : std::vector<Tensor>{x, w}, c.attrs);

    // conv2d's weight gradient with the same window.
    Attrs wattrs = c.attrs;
    wattrs.set("kernel", ints({c.w[2], c.w[3]}));
    const Tensor dw = evalOp("conv2d_grad_weight", {x, randomTensor(y.shape(), rng)}, wattrs);
    REQUIRE(dw.shape() == c.w);

    // conv_transpose2d maps y-shaped tensors back to x's shape (W read as
    // [C_in = F, C_out / groups, KH, KW] from y's channels).
    const Shape ys = y.shape();
    const auto stride = c.attrs.has("stride") ? c.attrs.ints("stride") : std::vector<int64_t>{1};
    const auto pad = c.attrs.has("pad") ? c.attrs.ints("pad") : std::vector<int64_t>{0};
    Attrs tattrs = c.attrs;
    tattrs.set("output_pad", ints({(c.x[2] + 2 * pad.front() - c.w[2]) % stride.front(),
                                   (c.x[3] + 2 * pad.back() - c.w[3]) % stride.back()}));
    const Tensor dy = randomTensor(ys, rng), tb = randomTensor({c.x[1]}, rng);
    const Tensor dx = evalOp("conv_transpose2d", {dy, w}, tattrs);
    REQUIRE(dx.shape() == c.x);
    evalOp("conv_transpose2d", {dy, w, tb}, tattrs);
  }
}

TEST_CASE("lowered im2col and col2im with stride, pad and non-square windows", "[ops]") {
  Rng rng(19);
  const Tensor x = randomTensor({2, 3, 5, 7}, rng);
  for (const Attrs& a : {Attrs{{"kernel", ints({3, 2})}, {"stride", int64_t{2}}, {"pad", int64_t{1}}},
                         Attrs{{"kernel", int64_t{1}}, {"stride", ints({2, 3})}},
                         Attrs{{"kernel", ints({5, 7})}}, Attrs{{"kernel", int64_t{2}}, {"pad", ints({0, 1})}}}) {
    const Tensor col = evalOp("im2col", {x}, a);
    Attrs back = a;
    back.set("shape", ints({2, 3, 5, 7}));
    REQUIRE(evalOp("col2im", {randomTensor(col.shape(), rng)}, back).shape() == x.shape());
  }
}

TEST_CASE("lowered pooling: padding, overlapping and skipping windows, ties", "[ops]") {
  Rng rng(23);
  const Tensor x = randomTensor({2, 3, 7, 6}, rng);
  // Ties everywhere: the gradient goes to each window's first maximum only.
  Tensor flat(f32({1, 2, 4, 5}));
  for (size_t i = 0; i < flat.data.size(); ++i) flat.data[i] = i % 3 == 0 ? 1.0 : 0.5;
  for (const Attrs& a : {Attrs{{"kernel", int64_t{3}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}},
                         Attrs{{"kernel", ints({2, 3})}, {"stride", int64_t{1}}},
                         Attrs{{"kernel", int64_t{2}}, {"stride", int64_t{3}}},  // pixels no window reads
                         Attrs{{"kernel", int64_t{2}}}, Attrs{{"kernel", ints({3, 2})}, {"pad", ints({1, 0})}}}) {
    for (const Tensor& in : {x, flat}) {
      const Tensor mp = evalOp("maxpool2d", {in}, a);
      const Tensor ap = evalOp("avgpool2d", {in}, a);
      const Tensor dy = randomTensor(mp.shape(), rng);
      const Tensor dx = evalOp("maxpool2d_grad", {in, dy}, a);
      evalOp("maxpool2d_gather", {in, randomTensor(in.shape(), rng)}, a);
      Attrs ga = a;
      ga.set("shape", in.shape());
      evalOp("avgpool2d_grad", {dy}, ga);
      // Each window's dy lands on exactly one element.
      double sumDy = 0, sumDx = 0;
      for (double d : dy.data) sumDy += d;
      for (double d : dx.data) sumDx += d;
      CHECK(sumDx == Approx(sumDy).margin(1e-9));
    }
  }
  // A tie inside one window: the first (row-major) maximum gets it all.
  const Tensor tie = tensor({1, 1, 2, 2}, {1, 3, 3, 0});
  requireClose(evalOp("maxpool2d_grad", {tie, tensor({1, 1, 1, 1}, {5})}, {{"kernel", int64_t{2}}}), {1, 1, 2, 2},
               {0, 5, 0, 0});
  requireClose(evalOp("maxpool2d_gather", {tie, tensor({1, 1, 2, 2}, {7, 8, 9, 10})}, {{"kernel", int64_t{2}}}),
               {1, 1, 1, 1}, {8});
  // -inf never beats the running maximum's −inf start: such a window stays
  // -inf and routes no gradient; a NaN is the window's maximum (PyTorch's
  // max_pool2d propagates it) and takes its gradient. (Through the lowered
  // kernel directly: == cannot compare NaN, so the NaN is checked apart.)
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> odd = {-inf, std::nanf(""), 2, -inf};
  const std::vector<float> pooled = runLowered("maxpool2d", {f32({1, 1, 2, 2})}, {odd}, {{"kernel", int64_t{1}}});
  REQUIRE(pooled.size() == 4);
  CHECK(std::isnan(pooled[1]));
  CHECK((pooled[0] == -inf && pooled[2] == 2 && pooled[3] == -inf));
  CHECK(runLowered("maxpool2d_grad", {f32({1, 1, 2, 2}), f32({1, 1, 2, 2})}, {odd, {1, 2, 3, 4}},
                   {{"kernel", int64_t{1}}}) == std::vector<float>{0, 2, 3, 0});
}

TEST_CASE("max-pooling propagates NaN as PyTorch's max_pool2d: reference, evaluator and JIT", "[ops]") {
  // evalOp checks the loop-IR evaluator and the JIT against the reference,
  // NaN for NaN. Windows of 2×2 tiling a 4×6 image (the tiled lowering) and
  // 3×3 at stride 2 with padding (the window sweep); one window holds two
  // NaNs, whose first (row-major) takes the gradient.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> v(24);
  for (size_t i = 0; i < v.size(); ++i) v[i] = double(int(i * 5 % 11) - 5);
  v[1] = nan;   // window (0, 0)
  v[9] = nan;   // window (0, 2), second row: after ...
  v[10] = nan;  // ... its neighbour in the first column of the window's pair
  v[16] = -std::numeric_limits<double>::infinity();
  const Tensor x = tensor({1, 1, 4, 6}, v);
  for (const Attrs& a : {Attrs{{"kernel", int64_t{2}}},
                         Attrs{{"kernel", int64_t{3}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}}}) {
    const Tensor y = evalOp("maxpool2d", {x}, a);
    const Tensor yr = evalOp("maxpool2d_relu", {x}, a);
    REQUIRE(std::isnan(y.data[0]));
    REQUIRE(std::isnan(yr.data[0]));
    int64_t nans = 0;
    for (double d : y.data) nans += std::isnan(d);
    CHECK(nans >= 2);
    Tensor dy = y;
    for (size_t i = 0; i < dy.data.size(); ++i) dy.data[i] = double(i + 1);
    const Tensor dx = evalOp("maxpool2d_grad", {x, dy}, a);
    // Window 0's gradient goes to its NaN (the 3×3 sweep's window 1 too).
    CHECK(dx.data[1] == (a.i("kernel") == 2 ? 1 : 3));
    evalOp("maxpool2d_relu_grad", {x, dy}, a);
    evalOp("maxpool2d_gather", {x, x}, a);
  }
}

TEST_CASE("lowered batchnorm on a larger random batch", "[ops]") {
  Rng rng(29);
  const Tensor x = randomTensor({4, 3, 5, 2}, rng), g = randomTensor({3}, rng), b = randomTensor({3}, rng);
  const Tensor rm = randomTensor({3}, rng);
  Tensor rv = randomTensor({3}, rng);
  for (double& v : rv.data) v = std::abs(v) + 0.1;
  for (bool training : {false, true}) evalOp("batchnorm", {x, g, b, rm, rv}, {}, training);
  evalOp("batchnorm", {randomTensor({6, 3}, rng), g, b, rm, rv}, {}, true);
}

TEST_CASE("lowered dropout_mask: the runtime's mask keeps 1 - rate and scales by 1/(1 - rate)", "[ops]") {
  for (double rate : {0.0, 0.25, 0.5, 0.9}) {
    INFO("rate " << rate);
    Graph g;
    auto x = g.addSource("input", "x", f32({200, 100}));
    REQUIRE(x);
    auto m = g.add("dropout_mask", {*x}, {{"rate", rate}});
    REQUIRE(m);
    auto k = lowerNode(g, *m, /*training=*/true);
    REQUIRE(k);
    auto run = [&] {
      std::vector<std::vector<float>> bufs;
      for (const loop::Buffer& b : k->buffers) bufs.emplace_back(static_cast<size_t>(b.size), -777.0f);
      std::vector<float*> ptrs;
      for (auto& b : bufs) ptrs.push_back(b.data());
      loop::evaluate(*k, ptrs);
      return bufs[1];
    };
    setRandomSeed(5);
    const std::vector<float> mask = run();
    const float scale = static_cast<float>(1 / (1 - rate));
    int64_t kept = 0;
    for (float v : mask) {
      REQUIRE((v == 0.0f || v == scale));
      kept += v != 0.0f;
    }
    // 20000 draws: the kept fraction is within 5 standard deviations of 1 - rate.
    const double n = static_cast<double>(mask.size()), p = 1 - rate;
    CHECK(std::abs(static_cast<double>(kept) / n - p) <= 5 * std::sqrt(p * (1 - p) / n) + 1e-12);
    // The same seed replays the mask; the generator moves on otherwise.
    setRandomSeed(5);
    CHECK(run() == mask);
    if (rate > 0) CHECK(run() != mask);
  }
  // Inference lowers to all ones, without a runtime call.
  Graph g;
  auto x = g.addSource("input", "x", f32({3}));
  REQUIRE(x);
  auto m = g.add("dropout_mask", {*x}, {{"rate", 0.5}});
  REQUIRE(m);
  auto k = lowerNode(g, *m, false);
  REQUIRE(k);
  CHECK_THAT(loop::print(*k), !Catch::Contains("nnc_dropout_mask"));
}
