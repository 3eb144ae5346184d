// Gradient rules of the elementwise, reduction and shape ops against central
// finite differences, with broadcasting both ways and every axis.
#include "grad_test_util.h"

using namespace nnc;
using nnc::test::Operand;
using nnc::test::randomTensor;
using nnc::test::requireGradientsMatch;

namespace {
Tensor positive(Shape s, uint64_t seed) {
  Tensor t = randomTensor(std::move(s), seed);
  for (double& v : t.data) v = 0.5 + std::abs(v);
  return t;
}
// Values at least 0.1 away from 0, so sign-dependent ops are smooth around them.
Tensor awayFromZero(Shape s, uint64_t seed) {
  Tensor t = randomTensor(std::move(s), seed);
  for (double& v : t.data) v = v >= 0 ? v + 0.1 : v - 0.1;
  return t;
}
}  // namespace

TEST_CASE("binary ops: gradients with broadcasting both ways", "[grad]") {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{3}, {2, 3}}, {{2, 1}, {1, 3}}, {{}, {2, 2}}, {{4, 1, 3}, {2, 1}}};
  for (const char* op : {"add", "sub", "mul", "div", "maximum", "minimum"}) {
    for (const auto& [sa, sb] : shapes) {
      INFO(op << " " << shapeString(sa) << " with " << shapeString(sb));
      // div's divisor stays away from 0; maximum/minimum operands differ clearly.
      Tensor a = randomTensor(sa, 11), b = std::string(op) == "div" ? positive(sb, 12) : randomTensor(sb, 12, 3.0);
      requireGradientsMatch(op, {{a}, {b}});
    }
  }
  requireGradientsMatch("pow", {{positive({2, 3}, 1)}, {randomTensor({3}, 2)}});
  requireGradientsMatch("pow", {{positive({2, 3}, 3)}, {Tensor(TensorType{DType::F32, {}}, {2.0}), false}});
}

TEST_CASE("unary ops: gradients", "[grad]") {
  for (const char* op : {"neg", "exp", "square", "sigmoid", "tanh", "identity"})
    requireGradientsMatch(op, {{randomTensor({3, 4}, 5)}});
  for (const char* op : {"log", "sqrt"}) requireGradientsMatch(op, {{positive({3, 4}, 6)}});
  for (const char* op : {"abs", "relu"}) requireGradientsMatch(op, {{awayFromZero({3, 4}, 7)}});
  requireGradientsMatch("leaky_relu", {{awayFromZero({3, 4}, 8)}}, {{"alpha", 0.2}});
}

TEST_CASE("reductions: gradients over each axis, with and without keepdims", "[grad]") {
  const Tensor x = randomTensor({2, 3, 4}, 21);
  for (const char* op : {"sum", "mean", "max"}) {
    for (int64_t keep : {0, 1}) {
      INFO(op << " keepdims=" << keep);
      requireGradientsMatch(op, {{x}}, {{"keepdims", keep}});
      for (int64_t axis : {0, 1, 2, -1}) requireGradientsMatch(op, {{x}}, {{"axis", axis}, {"keepdims", keep}});
      requireGradientsMatch(op, {{x}}, {{"axis", std::vector<int64_t>{0, 2}}, {"keepdims", keep}});
    }
  }
}

TEST_CASE("max shares its gradient evenly among tied maxima", "[grad]") {
  Graph g;
  ValueId p = *g.addSource("param", "p", TensorType{DType::F32, {4}},
                           Attrs{{"init", std::string("value")}, {"args", std::vector<double>{1, 3, 3, 2}}});
  g.loss = *g.add("max", {p});
  auto gg = differentiate(g);
  REQUIRE(gg);
  auto vals = interpret(gg->graph, {}, EvalOptions{true, true, 1}, {gg->grads[0].second});
  REQUIRE(vals);
  CHECK((*vals)[static_cast<size_t>(gg->grads[0].second)].data == std::vector<double>{0, 0.5, 0.5, 0});
}

TEST_CASE("shape ops: gradients", "[grad]") {
  const Tensor x = randomTensor({2, 3, 4}, 31);
  requireGradientsMatch("reshape", {{x}}, {{"shape", std::vector<int64_t>{4, -1}}});
  requireGradientsMatch("flatten", {{x}});
  requireGradientsMatch("transpose", {{x}}, {{"perm", std::vector<int64_t>{1, 0, 2}}});
  requireGradientsMatch("transpose", {{x}});
  requireGradientsMatch("concat", {{x}, {randomTensor({2, 2, 4}, 32)}, {randomTensor({2, 1, 4}, 33)}}, {{"axis", 1}});
  requireGradientsMatch("slice", {{x}}, {{"axis", 2}, {"start", 1}, {"end", 4}, {"step", 2}});
  requireGradientsMatch("slice", {{x}}, {{"axis", -2}, {"start", -2}, {"end", 3}});
  requireGradientsMatch("broadcast_to", {{randomTensor({3, 1}, 34)}}, {{"shape", std::vector<int64_t>{2, 3, 4}}});
  requireGradientsMatch("unslice", {{randomTensor({2, 3, 2}, 35)}},
                        {{"shape", std::vector<int64_t>{2, 3, 4}}, {"axis", 2}, {"start", 0}, {"end", 4}, {"step", 2}});
}
