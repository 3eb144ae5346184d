// Gradient rules of the NN ops (matmul, convolutions, pooling, batchnorm,
// im2col/col2im, dropout masks) and of the ops their gradients introduce,
// checked against finite differences, plus a few exact values by hand.
#include <algorithm>

#include "compiler/autodiff/gradcheck.h"
#include "grad_test_util.h"
#include "op_test_util.h"

using namespace nnc;
using nnc::test::f32;
using nnc::test::Operand;
using nnc::test::randomTensor;
using nnc::test::requireGradientsMatch;

namespace {

Attr ints(std::vector<int64_t> v) { return Attr{std::move(v)}; }


// A size in [lo, hi] from a seeded generator: shapes vary between checks,
// not between runs.
int64_t dim(Rng& rng, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo + 1)));
}

Operand constant(Tensor t) { return Operand{std::move(t), false}; }

// For ops linear in each operand (piecewise linear for max-pooling): the loss
// is then linear in each perturbed entry, so a central difference has no
// truncation error at any step, and a larger step shrinks its rounding noise
// (about ulp(loss) / h), which makes the comparison tighter.
GradCheckOptions linear() {
  GradCheckOptions o;
  o.eps = 1e-3;
  return o;
}

ValueId param(Graph& g, const std::string& name, Shape shape, std::vector<double> values) {
  auto p = g.addSource("param", name, f32(std::move(shape)), Attrs{{"init", std::string("value")}, {"args", values}});
  REQUIRE(p.ok());
  return *p;
}

ValueId add(Graph& g, std::string_view op, std::vector<ValueId> in, Attrs attrs = {}) {
  auto v = g.add(op, std::move(in), std::move(attrs));
  if (!v) FAIL("adding " << op << ": " << v.error().message);
  return *v;
}

// The gradients of g's loss with respect to its trainable params, evaluated
// in f64 in training mode.
std::map<std::string, Tensor> gradients(const Graph& g) {
  auto gg = differentiate(g);
  if (!gg) FAIL("differentiating: " << gg.error().message);
  std::vector<ValueId> targets;
  for (const auto& [_, v] : gg->grads) targets.push_back(v);
  auto vals = interpret(gg->graph, {}, EvalOptions{true, true, 42}, targets);
  if (!vals) FAIL("evaluating the gradients: " << vals.error().message);
  std::map<std::string, Tensor> out;
  for (const auto& [name, v] : gg->grads) out[name] = (*vals)[static_cast<size_t>(v)];
  return out;
}

}  // namespace

TEST_CASE("matmul gradients in all three forms", "[grad]") {
  Rng rng(11);
  const int64_t m = dim(rng, 1, 5), k = dim(rng, 1, 6), n = dim(rng, 1, 5), batch = dim(rng, 2, 3);
  SECTION("[M, K] @ [K, N]") {
    requireGradientsMatch("matmul", {{randomTensor({m, k}, 1)}, {randomTensor({k, n}, 2)}}, {}, linear());
  }
  SECTION("[K] @ [K, N]") {
    requireGradientsMatch("matmul", {{randomTensor({k}, 3)}, {randomTensor({k, n}, 4)}}, {}, linear());
  }
  SECTION("[B, M, K] @ [K, N] and rank 4") {
    requireGradientsMatch("matmul", {{randomTensor({batch, m, k}, 5)}, {randomTensor({k, n}, 6)}}, {}, linear());
    requireGradientsMatch("matmul", {{randomTensor({2, batch, m, k}, 7)}, {randomTensor({k, n}, 8)}}, {}, linear());
  }
  SECTION("only one operand differentiable") {
    requireGradientsMatch("matmul", {constant(randomTensor({m, k}, 9)), {randomTensor({k, n}, 10)}}, {}, linear());
    requireGradientsMatch("matmul", {{randomTensor({batch, m, k}, 11)}, constant(randomTensor({k, n}, 12))}, {},
                          linear());
  }
}

TEST_CASE("matmul gradients with every transpose flag", "[grad]") {
  Rng rng(13);
  const int64_t m = dim(rng, 2, 4), k = dim(rng, 2, 5), n = dim(rng, 2, 4);
  auto flags = [](int64_t ta, int64_t tb) { return Attrs{{"transpose_a", ta}, {"transpose_b", tb}}; };
  SECTION("matrices") {
    requireGradientsMatch("matmul", {{randomTensor({k, m}, 1)}, {randomTensor({k, n}, 2)}}, flags(1, 0), linear());
    requireGradientsMatch("matmul", {{randomTensor({m, k}, 3)}, {randomTensor({n, k}, 4)}}, flags(0, 1), linear());
    requireGradientsMatch("matmul", {{randomTensor({k, m}, 5)}, {randomTensor({n, k}, 6)}}, flags(1, 1), linear());
  }
  SECTION("a vector or batched left operand with a transposed right one") {
    requireGradientsMatch("matmul", {{randomTensor({k}, 7)}, {randomTensor({n, k}, 8)}}, flags(0, 1), linear());
    requireGradientsMatch("matmul", {{randomTensor({2, m, k}, 9)}, {randomTensor({n, k}, 10)}}, flags(0, 1), linear());
  }
  SECTION("a transposed product by hand") {
    Graph g;
    const ValueId a = param(g, "a", {2, 3}, {1, -2, 0.5, 3, 1, -1});
    const ValueId b = param(g, "b", {2, 3}, {0.5, 2, -1, 1, 1, 2});
    // loss = sum((aᵀ b)²): its gradient holds matmuls of matmuls.
    const ValueId c = add(g, "matmul", {a, b}, flags(1, 0));
    g.loss = add(g, "sum", {add(g, "mul", {c, c})});
    const auto grads = gradients(g);
    // d/da sum(C²) = 2·b·Cᵀ, d/db = 2·a·C with C = aᵀb.
    std::vector<double> cm(9, 0.0);
    const std::vector<double> av = {1, -2, 0.5, 3, 1, -1}, bv = {0.5, 2, -1, 1, 1, 2};
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j)
        for (int p = 0; p < 2; ++p) cm[i * 3 + j] += av[p * 3 + i] * bv[p * 3 + j];
    for (int p = 0; p < 2; ++p)
      for (int i = 0; i < 3; ++i) {
        double da = 0, db = 0;
        for (int j = 0; j < 3; ++j) {
          da += 2 * bv[p * 3 + j] * cm[i * 3 + j];
          db += 2 * av[p * 3 + j] * cm[j * 3 + i];
        }
        CHECK(grads.at("a").data[p * 3 + i] == Approx(da));
        CHECK(grads.at("b").data[p * 3 + i] == Approx(db));
      }
  }
}

TEST_CASE("the course notes' Affine backward by hand", "[grad]") {
  Graph g;
  g.name = "affine";
  const ValueId x = param(g, "x", {1, 2}, {1, 2});
  const ValueId w = param(g, "W", {2, 3}, {1, 2, 3, 4, 5, 6});
  const ValueId b = param(g, "b", {3}, {1, 1, 1});
  auto dout = g.addSource("const", "dout", f32({1, 3}), Attrs{{"value", std::vector<double>{1, 0, 2}}});
  REQUIRE(dout.ok());
  const ValueId y = add(g, "add", {add(g, "matmul", {x, w}), b});
  g.loss = add(g, "sum", {add(g, "mul", {y, *dout})});

  const auto grads = gradients(g);
  CHECK(grads.at("W").shape() == Shape{2, 3});
  CHECK(grads.at("W").data == std::vector<double>{1, 0, 2, 2, 0, 4});
  CHECK(grads.at("b").data == std::vector<double>{1, 0, 2});
  CHECK(grads.at("x").shape() == Shape{1, 2});
  CHECK(grads.at("x").data == std::vector<double>{7, 16});

  // dW is xᵀ @ (the gradient reaching the matmul), as the notes write it,
  // with x read transposed in place; dx = dout @ Wᵀ likewise. The backward
  // graph has no transpose node.
  auto gg = differentiate(g);
  REQUIRE(gg.ok());
  ValueId dw = kNoValue, dx = kNoValue;
  for (const auto& [name, v] : gg->grads) {
    if (name == "W") dw = v;
    if (name == "x") dx = v;
  }
  const Node& mm = gg->graph.node(dw);
  REQUIRE(mm.op->name == "matmul");
  CHECK(gg->graph.node(mm.inputs[0]).name == "x");
  CHECK(mm.attrs.i("transpose_a") == 1);
  CHECK(mm.attrs.i("transpose_b") == 0);
  CHECK(static_cast<size_t>(mm.inputs[1]) >= gg->forwardSize);
  const Node& mx = gg->graph.node(dx);
  REQUIRE(mx.op->name == "matmul");
  CHECK(gg->graph.node(mx.inputs[1]).name == "W");
  CHECK(mx.attrs.i("transpose_a") == 0);
  CHECK(mx.attrs.i("transpose_b") == 1);
  for (size_t i = gg->forwardSize; i < gg->graph.size(); ++i) CHECK(gg->graph.node(static_cast<ValueId>(i)).op->name != "transpose");
}

TEST_CASE("conv2d gradients", "[grad]") {
  Rng rng(21);
  const int64_t n = dim(rng, 1, 2), c = dim(rng, 1, 3), f = dim(rng, 1, 3);
  SECTION("stride 2, pad 1, non-square input, with bias") {
    const int64_t h = dim(rng, 5, 7), w = dim(rng, 6, 9);
    requireGradientsMatch("conv2d",
                          {{randomTensor({n, c, h, w}, 1)}, {randomTensor({f, c, 3, 3}, 2)}, {randomTensor({f}, 3)}},
                          {{"stride", int64_t{2}}, {"pad", int64_t{1}}}, linear());
  }
  SECTION("without bias, a non-square kernel, per-axis stride and pad") {
    requireGradientsMatch("conv2d", {{randomTensor({n, c, 7, 6}, 4)}, {randomTensor({f, c, 3, 2}, 5)}},
                          {{"stride", ints({2, 1})}, {"pad", ints({1, 0})}}, linear());
  }
  SECTION("input sizes that leave rows and columns no window reads") {
    // 8x7 with kernel 3, stride 3: the last row and column are never read,
    // so the input gradient needs output_pad to come back at full size.
    requireGradientsMatch("conv2d", {{randomTensor({n, c, 8, 7}, 6)}, {randomTensor({f, c, 3, 3}, 7)}},
                          {{"stride", int64_t{3}}}, linear());
  }
  SECTION("groups = 2") {
    const int64_t per = dim(rng, 1, 2), out = 2 * dim(rng, 1, 2);
    requireGradientsMatch(
        "conv2d",
        {{randomTensor({n, 2 * per, 6, 5}, 8)}, {randomTensor({out, per, 3, 3}, 9)}, {randomTensor({out}, 10)}},
        {{"stride", int64_t{2}}, {"pad", int64_t{1}}, {"groups", int64_t{2}}}, linear());
  }
  SECTION("1x1 kernel") {
    requireGradientsMatch("conv2d",
                          {{randomTensor({n, c, 4, 5}, 11)}, {randomTensor({f, c, 1, 1}, 12)}, {randomTensor({f}, 13)}},
                          {}, linear());
  }
  SECTION("kernel the size of the image") {
    requireGradientsMatch("conv2d",
                          {{randomTensor({n, c, 4, 3}, 14)}, {randomTensor({f, c, 4, 3}, 15)}, {randomTensor({f}, 16)}},
                          {}, linear());
  }
}

TEST_CASE("conv_transpose2d gradients", "[grad]") {
  Rng rng(31);
  const int64_t n = dim(rng, 1, 2), c = dim(rng, 1, 3), f = dim(rng, 1, 3);
  SECTION("stride 2, pad 1, output_pad 1, with bias") {
    requireGradientsMatch("conv_transpose2d",
                          {{randomTensor({n, c, 3, 4}, 1)}, {randomTensor({c, f, 3, 3}, 2)}, {randomTensor({f}, 3)}},
                          {{"stride", int64_t{2}}, {"pad", int64_t{1}}, {"output_pad", int64_t{1}}}, linear());
  }
  SECTION("stride 1, no bias") {
    requireGradientsMatch("conv_transpose2d", {{randomTensor({n, c, 3, 3}, 4)}, {randomTensor({c, f, 2, 3}, 5)}}, {},
                          linear());
  }
  SECTION("groups = 2") {
    // W [C, F/groups, KH, KW] with C = 4, F = 6.
    requireGradientsMatch(
        "conv_transpose2d", {{randomTensor({n, 4, 3, 3}, 6)}, {randomTensor({4, 3, 3, 3}, 7)}, {randomTensor({6}, 8)}},
        {{"stride", int64_t{2}}, {"pad", int64_t{1}}, {"output_pad", ints({1, 0})}, {"groups", int64_t{2}}}, linear());
  }
}

TEST_CASE("conv2d_grad_weight computes conv2d's weight gradient and has its own", "[grad]") {
  SECTION("second derivatives: both operands, with groups") {
    // x [2, 4, 6, 5], 3x3 windows, stride 2, pad 1 -> dy [2, 6, 3, 3].
    requireGradientsMatch("conv2d_grad_weight", {{randomTensor({2, 4, 6, 5}, 1)}, {randomTensor({2, 6, 3, 3}, 2)}},
                          {{"kernel", int64_t{3}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}, {"groups", int64_t{2}}},
                          linear());
  }
  SECTION("a shape error names both operands") {
    auto r =
        nnc::test::opGraph("conv2d_grad_weight", {{randomTensor({1, 2, 5, 5}, 3)}, {randomTensor({1, 3, 4, 4}, 4)}},
                           {{"kernel", int64_t{3}}});
    REQUIRE_FALSE(r.ok());
    CHECK_THAT(r.error().message, Catch::Contains("dy must be 3x3"));
    CHECK_THAT(r.error().message, Catch::Contains("x f32[1, 2, 5, 5], dy f32[1, 3, 4, 4]"));
  }
}

TEST_CASE("maxpool2d gradients", "[grad]") {
  Rng rng(41);
  const int64_t n = dim(rng, 1, 2), c = dim(rng, 1, 3);
  SECTION("overlapping windows: kernel 3, stride 2") {
    requireGradientsMatch("maxpool2d", {{randomTensor({n, c, 7, 6}, 1)}},
                          {{"kernel", int64_t{3}}, {"stride", int64_t{2}}}, linear());
  }
  SECTION("padding") {
    requireGradientsMatch("maxpool2d", {{randomTensor({n, c, 5, 6}, 2)}},
                          {{"kernel", int64_t{3}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}}, linear());
  }
  SECTION("default stride, non-square kernel") {
    requireGradientsMatch("maxpool2d", {{randomTensor({n, c, 4, 6}, 3)}}, {{"kernel", ints({2, 3})}}, linear());
  }
  SECTION("maxpool2d_grad and maxpool2d_gather: linear in their second operand") {
    const Attrs a{{"kernel", int64_t{3}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}};
    const Tensor x = randomTensor({n, c, 5, 6}, 4);
    requireGradientsMatch("maxpool2d_grad", {constant(x), {randomTensor({n, c, 3, 3}, 5)}}, a, linear());
    requireGradientsMatch("maxpool2d_gather", {constant(x), {randomTensor({n, c, 5, 6}, 6)}}, a, linear());
  }
}

TEST_CASE("maxpool2d sends a tie's gradient to the first maximum", "[grad]") {
  Graph g;
  g.name = "ties";
  // Overlapping 2x2 windows, stride 1: the top-left one is all 5s, the
  // bottom-right one has two 9s.
  const ValueId x = param(g, "x", {1, 1, 3, 3}, {5, 5, 1, 5, 5, 9, 0, 9, 3});
  g.loss = add(g, "sum", {add(g, "maxpool2d", {x}, {{"kernel", int64_t{2}}, {"stride", int64_t{1}}})});
  const auto grads = gradients(g);
  CHECK(grads.at("x").data == std::vector<double>{1, 0, 0, 0, 0, 2, 0, 1, 0});

  // The branch pattern is each window's arg-max, the first of a tie.
  const Tensor t(f32({1, 1, 3, 3}), {5, 5, 1, 5, 5, 9, 0, 9, 3});
  std::vector<int64_t> pattern;
  findOp("maxpool2d")->branches({&t}, Attrs{{"kernel", ints({2})}, {"stride", ints({1})}, {"pad", ints({0})}}, pattern);
  CHECK(pattern == std::vector<int64_t>{0, 5, 7, 5});
}

TEST_CASE("avgpool2d gradients", "[grad]") {
  Rng rng(51);
  const int64_t n = dim(rng, 1, 2), c = dim(rng, 1, 3);
  SECTION("pad 1, overlapping windows") {
    requireGradientsMatch("avgpool2d", {{randomTensor({n, c, 5, 6}, 1)}},
                          {{"kernel", int64_t{3}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}}, linear());
  }
  SECTION("default stride, rows no window reads") {
    requireGradientsMatch("avgpool2d", {{randomTensor({n, c, 5, 4}, 2)}}, {{"kernel", int64_t{2}}}, linear());
  }
  SECTION("avgpool2d_grad") {
    requireGradientsMatch(
        "avgpool2d_grad", {{randomTensor({n, c, 3, 3}, 3)}},
        {{"shape", ints({n, c, 5, 6})}, {"kernel", int64_t{3}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}}, linear());
  }
  SECTION("by hand: padding takes its share") {
    Graph g;
    g.name = "avg";
    const ValueId x = param(g, "x", {1, 1, 2, 2}, {1, 2, 3, 4});
    // kernel 2, stride 2, pad 1 over 2x2: four windows, each with one pixel.
    g.loss = add(g, "sum",
                 {add(g, "avgpool2d", {x}, {{"kernel", int64_t{2}}, {"stride", int64_t{2}}, {"pad", int64_t{1}}})});
    CHECK(gradients(g).at("x").data == std::vector<double>{0.25, 0.25, 0.25, 0.25});
  }
}

TEST_CASE("batchnorm gradients in training mode", "[grad]") {
  Rng rng(61);
  const int64_t n = dim(rng, 2, 5), c = dim(rng, 1, 4);
  const Attrs eps{{"eps", 1e-3}};
  SECTION("[N, C]") {
    requireGradientsMatch("batchnorm",
                          {{randomTensor({n, c}, 1)},
                           {randomTensor({c}, 2)},
                           {randomTensor({c}, 3)},
                           constant(randomTensor({c}, 4)),
                           constant(Tensor(f32({c}), std::vector<double>(c, 1.5)))},
                          eps);
  }
  SECTION("[N, C, H, W]") {
    requireGradientsMatch("batchnorm", {{randomTensor({n, c, 3, 2}, 5)},
                                        {randomTensor({c}, 6)},
                                        {randomTensor({c}, 7)},
                                        constant(randomTensor({c}, 8)),
                                        constant(Tensor(f32({c}), std::vector<double>(c, 0.5)))});
  }
}

TEST_CASE("im2col and col2im gradients", "[grad]") {
  Rng rng(71);
  const int64_t n = dim(rng, 1, 2), c = dim(rng, 1, 3);
  const Attrs window{{"kernel", ints({3, 2})}, {"stride", int64_t{2}}, {"pad", int64_t{1}}};
  requireGradientsMatch("im2col", {{randomTensor({n, c, 5, 4}, 1)}}, window, linear());
  // 5x4 padded to 7x6, 3x2 windows with stride 2: 3x3 positions.
  Attrs back = window;
  back.set("shape", ints({n, c, 5, 4}));
  requireGradientsMatch("col2im", {{randomTensor({n * 9, c * 6}, 2)}}, back, linear());
}

TEST_CASE("dropout_mask passes no gradient, the mul applying it does", "[grad]") {
  Graph g;
  g.name = "dropout";
  std::vector<double> xs;
  for (int i = 0; i < 40; ++i) xs.push_back(0.1 * i - 2);
  const ValueId x = param(g, "x", {4, 10}, xs);
  const ValueId mask = add(g, "dropout_mask", {x}, {{"rate", 0.5}});
  g.loss = add(g, "sum", {add(g, "mul", {x, mask})});
  auto gg = differentiate(g);
  REQUIRE(gg.ok());
  auto vals = interpret(gg->graph, {}, EvalOptions{true, true, 42});
  REQUIRE(vals.ok());
  const Tensor& m = (*vals)[static_cast<size_t>(mask)];
  const Tensor& dx = (*vals)[static_cast<size_t>(gg->grads.at(0).second)];
  CHECK(dx.data == m.data);
  CHECK(std::count(m.data.begin(), m.data.end(), 0.0) > 0);
  CHECK(std::count(m.data.begin(), m.data.end(), 2.0) > 0);

  auto r = gradCheck(g, {});
  REQUIRE(r.ok());
  CHECK(r->ok);
}
