// Gradient rules of the softmax family, the losses and their gradient ops:
// symbolic gradients against finite differences (tests/grad_test_util.h),
// the course notes' SoftmaxWithLoss backward checked by number, and the
// error for a loss reached only through ops without a gradient.
#include <cmath>
#include <string>

#include "compiler/autodiff/autodiff.h"
#include "compiler/interpreter/interpreter.h"
#include "tests/grad_test_util.h"

using namespace nnc;
using namespace nnc::test;
using Catch::Matchers::Contains;

namespace {

// Dims in [2, 4], so shapes differ between ops yet stay small enough to
// check every entry.
Shape randomShape(int rank, uint64_t seed) {
  Rng rng(seed);
  Shape s;
  for (int d = 0; d < rank; ++d) s.push_back(2 + static_cast<int64_t>(rng.below(3)));
  return s;
}

Tensor uniformTensor(Shape shape, uint64_t seed, double lo, double hi) {
  Tensor t(TensorType{DType::F32, std::move(shape)});
  Rng rng(seed);
  for (double& v : t.data) v = rng.uniform(lo, hi);
  return t;
}

// Class ids for the rows of `pred` (f32[N, K] or f32[K]).
Tensor labelsFor(const Shape& pred, uint64_t seed) {
  Shape lead(pred.begin(), pred.end() - 1);
  Tensor t(TensorType{DType::I32, lead});
  Rng rng(seed);
  for (double& v : t.data) v = static_cast<double>(rng.below(static_cast<uint64_t>(pred.back())));
  return t;
}

// Positive rows that sum to 1, like a softmax output or soft targets.
Tensor distribution(const Shape& shape, uint64_t seed) {
  Tensor t = uniformTensor(shape, seed, 0.05, 1.0);
  const int64_t k = shape.back();
  for (int64_t r = 0; r < t.numel() / k; ++r) {
    double s = 0;
    for (int64_t c = 0; c < k; ++c) s += t.data[r * k + c];
    for (int64_t c = 0; c < k; ++c) t.data[r * k + c] /= s;
  }
  return t;
}

Operand fixed(Tensor t) { return Operand{std::move(t), false}; }

// Checks a loss op as the graph's loss itself (d loss / d output is the seed
// 1), which needs no gradient rule but the op's own.
void requireLossGradientsMatch(std::string_view op, const std::vector<Operand>& operands) {
  Graph g;
  g.name = std::string(op);
  std::vector<ValueId> ins;
  for (size_t k = 0; k < operands.size(); ++k) {
    const Tensor& t = operands[k].value;
    auto v = operands[k].differentiable
                 ? g.addSource("param", "p" + std::to_string(k), t.type,
                               Attrs{{"init", std::string("value")}, {"args", t.data}})
                 : g.addSource("const", "c" + std::to_string(k), t.type, Attrs{{"value", t.data}});
    REQUIRE(v);
    ins.push_back(*v);
  }
  auto loss = g.add(op, ins);
  if (!loss) FAIL("building " << op << ": " << loss.error().message);
  g.loss = *loss;
  auto r = gradCheck(g, {}, GradCheckOptions{.samples = 200});
  if (!r) FAIL("checking " << op << ": " << r.error().message);
  for (const ParamCheck& p : r->params) {
    INFO(op << " operand " << p.name << ": " << p.checked << " entries, max abs " << p.maxAbs << ", max rel "
            << p.maxRel);
    CHECK(p.checked > 0);
    CHECK(p.ok);
  }
}

}  // namespace

TEST_CASE("softmax and log_softmax gradients", "[grad]") {
  for (int64_t axis : {0, -1, 1}) {
    INFO("axis " << axis);
    const Shape s = randomShape(3, 10 + static_cast<uint64_t>(axis + 1));
    requireGradientsMatch("softmax", {{randomTensor(s, 1)}}, {{"axis", axis}});
    requireGradientsMatch("log_softmax", {{randomTensor(s, 2)}}, {{"axis", axis}});
  }
  requireGradientsMatch("softmax", {{randomTensor({5}, 3, 3.0)}});
}

TEST_CASE("softmax_cross_entropy gradients", "[grad]") {
  const Shape s = randomShape(2, 20);
  SECTION("class ids") {
    requireGradientsMatch("softmax_cross_entropy", {{randomTensor(s, 4)}, fixed(labelsFor(s, 5))});
    requireLossGradientsMatch("softmax_cross_entropy", {{randomTensor(s, 4)}, fixed(labelsFor(s, 5))});
  }
  SECTION("soft targets get a gradient too") {
    requireGradientsMatch("softmax_cross_entropy", {{randomTensor(s, 6)}, {distribution(s, 7)}});
    requireLossGradientsMatch("softmax_cross_entropy", {{randomTensor(s, 6)}, {distribution(s, 7)}});
  }
  SECTION("rank-1 logits are one row") {
    requireGradientsMatch("softmax_cross_entropy", {{randomTensor({4}, 8)}, fixed(labelsFor({4}, 9))});
    requireGradientsMatch("softmax_cross_entropy", {{randomTensor({4}, 8)}, {distribution({4}, 9)}});
  }
  SECTION("its gradient op is differentiable (second derivatives)") {
    requireGradientsMatch("softmax_cross_entropy_grad", {{randomTensor(s, 10)}, fixed(labelsFor(s, 11))});
    requireGradientsMatch("softmax_cross_entropy_grad", {{randomTensor(s, 10)}, {distribution(s, 11)}});
  }
}

TEST_CASE("nll, huber and kl_div gradients", "[grad]") {
  for (const Shape& s : {randomShape(2, 50), randomShape(3, 51), Shape{5}}) {
    INFO(shapeString(s));
    requireGradientsMatch("nll", {{randomTensor(s, 22)}, fixed(labelsFor(s, 23))});
    requireLossGradientsMatch("nll", {{randomTensor(s, 22)}, fixed(labelsFor(s, 23))});
    // Differences on both sides of delta: the quadratic and the linear piece.
    for (double delta : {1.0, 0.3}) {
      requireGradientsMatch("huber", {{randomTensor(s, 24, 2.0)}, {randomTensor(s, 25)}}, {{"delta", delta}});
    }
    requireLossGradientsMatch("huber", {{randomTensor(s, 24, 2.0)}, {randomTensor(s, 25)}});
    requireGradientsMatch("kl_div", {{randomTensor(s, 26)}, {distribution(s, 27)}});
    requireLossGradientsMatch("kl_div", {{randomTensor(s, 26)}, {distribution(s, 27)}});
  }
}

TEST_CASE("softmax_cross_entropy gradients: label smoothing, rank-3 logits", "[grad]") {
  for (const Shape& s : {randomShape(2, 60), randomShape(3, 61), Shape{2, 1, 3, 4}}) {
    INFO(shapeString(s));
    for (double e : {0.0, 0.1, 0.7}) {
      const Attrs a{{"label_smoothing", e}};
      requireGradientsMatch("softmax_cross_entropy", {{randomTensor(s, 28)}, fixed(labelsFor(s, 29))}, a);
      requireGradientsMatch("softmax_cross_entropy", {{randomTensor(s, 30)}, {distribution(s, 31)}}, a);
      requireGradientsMatch("softmax_cross_entropy_grad", {{randomTensor(s, 32)}, {distribution(s, 33)}}, a);
    }
    requireGradientsMatch("cross_entropy", {{distribution(s, 34)}, fixed(labelsFor(s, 35))});
  }
}

TEST_CASE("cross_entropy gradients", "[grad]") {
  const Shape s = randomShape(2, 30);
  requireGradientsMatch("cross_entropy", {{distribution(s, 12)}, fixed(labelsFor(s, 13))});
  requireGradientsMatch("cross_entropy", {{distribution(s, 14)}, {distribution(s, 15)}});
  requireGradientsMatch("cross_entropy", {{distribution({3}, 16)}, fixed(labelsFor({3}, 17))});
  requireLossGradientsMatch("cross_entropy", {{distribution(s, 12)}, fixed(labelsFor(s, 13))});
}

TEST_CASE("regression loss gradients", "[grad]") {
  const Shape s = randomShape(3, 40);
  for (const char* op : {"mse", "sse", "bce_with_logits"}) {
    INFO(op);
    requireGradientsMatch(op, {{randomTensor(s, 18)}, {uniformTensor(s, 19, 0, 1)}});
    requireLossGradientsMatch(op, {{randomTensor(s, 18)}, {uniformTensor(s, 19, 0, 1)}});
  }
  // Large |z| is where a naive sigmoid-based rule would lose precision.
  requireGradientsMatch("bce_with_logits", {{randomTensor(s, 20, 8.0)}, {uniformTensor(s, 21, 0, 1)}});
}

TEST_CASE("bce gradients", "[grad]") {
  const Shape s = randomShape(2, 50);
  requireGradientsMatch("bce", {{uniformTensor(s, 22, 0.05, 0.95)}, {uniformTensor(s, 23, 0, 1)}});
  requireLossGradientsMatch("bce", {{uniformTensor(s, 22, 0.05, 0.95)}, {uniformTensor(s, 23, 0, 1)}});
  requireGradientsMatch("bce_grad", {{uniformTensor(s, 24, 0.05, 0.95)}, {uniformTensor(s, 25, 0, 1)}});
}

TEST_CASE("bce's gradient is 0 where the forward clamped its log", "[grad]") {
  // PyTorch's BCELoss: log(0) is clamped to -100, a constant, so p = 0 with
  // t = 1 and p = 1 with t = 0 contribute no gradient (not 0·inf = NaN).
  Tensor p = Tensor(TensorType{DType::F32, {4}}, {0.0, 1.0, 0.25, 1e-50});
  Tensor t = Tensor(TensorType{DType::F32, {4}}, {1.0, 0.0, 1.0, 1.0});
  const OpDef* op = findOp("bce_grad");
  REQUIRE(op);
  Tensor out(TensorType{DType::F32, {4}});
  EvalEnv env;
  Attrs none;
  REQUIRE(op->eval(EvalArgs{{&p, &t}, none, out, env}));
  // Elements 0, 1 and 3 keep only a term whose target weight is 0.
  CHECK(out.data[0] == 0.0);
  CHECK(out.data[1] == 0.0);
  CHECK(out.data[2] == Approx(-1.0 / 0.25 / 4));
  CHECK(out.data[3] == 0.0);
}

TEST_CASE("l1 and l2 gradients", "[grad]") {
  const Shape s = randomShape(2, 60);
  Tensor x = uniformTensor(s, 26, 0.1, 2.0);
  Rng flip(27);
  for (double& v : x.data)
    if (flip.below(2)) v = -v;  // both signs, never within 0.1 of the kink
  requireGradientsMatch("l1", {{x}});
  requireLossGradientsMatch("l1", {{x}});
  requireGradientsMatch("l2", {{randomTensor(s, 28)}});
  requireLossGradientsMatch("l2", {{randomTensor(s, 28)}});
}

TEST_CASE("l1's kink at 0 is detected, not compared", "[grad]") {
  Graph g;
  auto x = g.addSource("param", "x", TensorType{DType::F32, {3}},
                       Attrs{{"init", std::string("value")}, {"args", std::vector<double>{0.0, 0.5, -0.5}}});
  REQUIRE(x);
  auto loss = g.add("l1", {*x});
  REQUIRE(loss);
  g.loss = *loss;
  auto r = gradCheck(g, {});
  REQUIRE(r);
  REQUIRE(r->params.size() == 1);
  CHECK(r->params[0].kinks == 1);
  CHECK(r->params[0].checked == 2);
  CHECK(r->ok);
}

TEST_CASE("SoftmaxWithLoss backward is (softmax(x) - onehot(t)) / N", "[grad]") {
  // The course notes' SoftmaxWithLoss layer, for a batch of 2 rows. Row 0 is
  // the notes' softmax example: softmax([0.3, 2.9, 4.0]) = [0.01821127,
  // 0.24519181, 0.73659691], label 2, so its gradient row is
  // [0.01821127, 0.24519181, 0.73659691 − 1] / 2. Row 1 with label 0 by
  // PyTorch 1.13 (float64): x = torch.tensor([[0.3, 2.9, 4.0], [1.0, -1.0,
  // 0.5]], requires_grad=True); F.cross_entropy(x, tensor([2, 0])).backward().
  const std::vector<double> want = {0.009105636647773769, 0.12259590646753694,  -0.13170154311531068,
                                    -0.21295150351615272, 0.03884778957428529, 0.1741037139418674};
  Graph g;
  g.name = "softmax_with_loss";
  auto x = g.addSource("param", "x", TensorType{DType::F32, {2, 3}},
                       Attrs{{"init", std::string("value")}, {"args", std::vector<double>{0.3, 2.9, 4.0, 1.0, -1.0, 0.5}}});
  auto t = g.addSource("const", "t", TensorType{DType::I32, {2}}, Attrs{{"value", std::vector<double>{2, 0}}});
  REQUIRE(x);
  REQUIRE(t);
  auto loss = g.add("softmax_cross_entropy", {*x, *t});
  REQUIRE(loss);
  g.loss = *loss;

  auto gg = differentiate(g);
  if (!gg) FAIL(gg.error().message);
  REQUIRE(gg->grads.size() == 1);
  REQUIRE(gg->grads[0].first == "x");
  const ValueId dx = gg->grads[0].second;
  // The rule, not a special case: the gradient is the gradient op times dy = 1.
  bool viaGradOp = false;
  for (size_t i = gg->forwardSize; i < gg->graph.size(); ++i)
    viaGradOp |= gg->graph.nodes[i].op->name == "softmax_cross_entropy_grad";
  CHECK(viaGradOp);

  auto vals = interpret(gg->graph, {}, EvalOptions{.f64 = true}, {dx});
  if (!vals) FAIL(vals.error().message);
  const Tensor& got = (*vals)[static_cast<size_t>(dx)];
  REQUIRE(got.shape() == Shape{2, 3});
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i);
    CHECK(got.data[i] == Approx(want[i]).epsilon(1e-12).margin(1e-15));
  }
  // Each row of (softmax − onehot) sums to 0.
  CHECK(got.data[0] + got.data[1] + got.data[2] == Approx(0).margin(1e-15));
}

TEST_CASE("a loss reached only through argmax has no gradient, in words", "[grad]") {
  Graph g;
  g.name = "argmax_loss";
  auto w = g.addSource("param", "w", TensorType{DType::F32, {2, 3}},
                       Attrs{{"init", std::string("value")}, {"args", std::vector<double>{1, 2, 3, 3, 2, 1}}});
  REQUIRE(w);

  SECTION("argmax then one_hot") {
    auto a = g.add("argmax", {*w});
    REQUIRE(a);
    auto oh = g.add("one_hot", {*a}, {{"depth", int64_t{3}}});
    REQUIRE(oh);
    auto target = g.addSource("const", "target", TensorType{DType::F32, {2, 3}}, Attrs{{"value", std::vector<double>{0.5}}});
    REQUIRE(target);
    auto loss = g.add("mse", {*oh, *target});
    REQUIRE(loss);
    g.loss = *loss;
  }
  SECTION("accuracy") {
    auto t = g.addSource("const", "t", TensorType{DType::I32, {2}}, Attrs{{"value", std::vector<double>{2, 0}}});
    REQUIRE(t);
    auto loss = g.add("accuracy", {*w, *t});
    REQUIRE(loss);
    g.loss = *loss;
  }
  auto gg = differentiate(g);
  REQUIRE_FALSE(gg);
  CHECK_THAT(gg.error().message, Contains("'w'") && Contains("only through ops that have no gradient"));
}
