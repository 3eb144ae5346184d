// pad, pad_grad and group_norm as single ops (hand-worked values, shape
// errors, gradients against finite differences; every evaluation also runs
// the lowering through the loop-IR evaluator and the JIT), and the conv1d,
// groupnorm, lstm and gru layers' argument errors and gradients.
#include <catch2/catch.hpp>

#include <cmath>

#include "grad_test_util.h"
#include "op_test_util.h"
#include "test_util.h"

using namespace nnc;
using namespace nnc::test;

namespace {

Attrs padAttrs(std::vector<int64_t> pads, const char* mode, double value = 0) {
  return Attrs{{"pads", std::move(pads)}, {"mode", std::string(mode)}, {"value", value}};
}

Attrs gradAttrs(std::vector<int64_t> pads, const char* mode) {
  return Attrs{{"pads", std::move(pads)}, {"mode", std::string(mode)}};
}

void requireValues(const Tensor& t, const std::vector<double>& want) {
  REQUIRE(t.data.size() == want.size());
  for (size_t i = 0; i < want.size(); ++i) CHECK(t.data[i] == Approx(want[i]).margin(1e-12));
}

// The rendered diagnostic of a model that must not compile.
std::string compileError(const std::string& src) {
  auto c = compile(src);
  REQUIRE_FALSE(c.model);
  return c.diag;
}

}  // namespace

TEST_CASE("pad: the three modes by hand, 1-D and 2-D", "[seq][pad]") {
  const Tensor x = tensor({3}, {1, 2, 3});
  requireValues(evalOp("pad", {x}, padAttrs({2, 1}, "constant", 9)), {9, 9, 1, 2, 3, 9});
  requireValues(evalOp("pad", {x}, padAttrs({2, 1}, "reflect")), {3, 2, 1, 2, 3, 2});
  requireValues(evalOp("pad", {x}, padAttrs({2, 1}, "replicate")), {1, 1, 1, 2, 3, 3});
  const Tensor m = tensor({2, 2}, {1, 2, 3, 4});
  // [left, right, top, bottom]: one column before, one row after.
  requireValues(evalOp("pad", {m}, padAttrs({1, 0, 0, 1}, "replicate")), {1, 1, 2, 3, 3, 4, 3, 3, 4});
  requireValues(evalOp("pad", {m}, padAttrs({0, 1, 1, 0}, "reflect")), {3, 4, 3, 1, 2, 1, 3, 4, 3});
  requireValues(evalOp("pad", {m}, padAttrs({0, 0, 1, 0}, "constant", -1)), {-1, -1, 1, 2, 3, 4});
}

TEST_CASE("pad_grad: each padded element added back to its source", "[seq][pad]") {
  const Tensor dy = tensor({6}, {1, 10, 100, 1000, 10000, 100000});
  // reflect [2, 1] on 3 elements: positions copy elements 2 1 0 1 2 1
  requireValues(evalOp("pad_grad", {dy}, gradAttrs({2, 1}, "reflect")), {100, 1010 + 100000, 1 + 10000});
  // replicate: the left edge to element 0, the right to element 2
  requireValues(evalOp("pad_grad", {dy}, gradAttrs({2, 1}, "replicate")), {111, 1000, 110000});
  requireValues(evalOp("pad_grad", {dy}, gradAttrs({2, 1}, "constant")), {100, 1000, 10000});
}

TEST_CASE("pad: odd shapes and every axis padded, lowered as evaluated", "[seq][pad]") {
  const Tensor x = randomTensor({2, 3, 1, 5}, 11);
  for (const char* mode : {"constant", "replicate"}) {
    INFO(mode);
    const Tensor y = evalOp("pad", {x}, padAttrs({3, 0, 2, 2, 0, 1, 1, 1}, mode, 0.25));
    CHECK(y.shape() == Shape{4, 4, 5, 8});
    evalOp("pad_grad", {y}, gradAttrs({3, 0, 2, 2, 0, 1, 1, 1}, mode));
  }
  const Tensor r = evalOp("pad", {x}, padAttrs({4, 4, 0, 0, 2, 1, 1, 0}, "reflect"));
  CHECK(r.shape() == Shape{3, 6, 1, 13});
  evalOp("pad_grad", {r}, gradAttrs({4, 4, 0, 0, 2, 1, 1, 0}, "reflect"));
}

TEST_CASE("pad: bad pads and modes are errors naming the op and the shape", "[seq][pad]") {
  const TensorType x = f32({2, 3, 4});
  requireError(inferOp("pad", {x}, padAttrs({1, 1, 1}, "constant")), {"pad:", "pairs", "f32[2, 3, 4]"});
  requireError(inferOp("pad", {x}, padAttrs({1, 1, 1, 1, 1, 1, 1, 1}, "constant")), {"at most the 3 axes"});
  requireError(inferOp("pad", {x}, padAttrs({}, "constant")), {"pads []"});
  requireError(inferOp("pad", {x}, padAttrs({0, -1}, "constant")), {"must not be negative", "f32[2, 3, 4]"});
  requireError(inferOp("pad", {x}, padAttrs({4, 0}, "reflect")), {"reflect pads (4, 0) of axis 2", "size 4"});
  requireError(inferOp("pad", {x}, padAttrs({1, 1}, "wrap")), {"mode must be", "\"wrap\""});
  CHECK(inferOp("pad", {x}, padAttrs({3, 3}, "reflect")).ok());
  CHECK(inferOp("pad", {x}, padAttrs({9, 9}, "replicate"))->shape == Shape{2, 3, 22});
  requireError(inferOp("pad_grad", {f32({2, 3})}, gradAttrs({2, 1}, "constant")), {"leave nothing", "f32[2, 3]"});
  const std::string diag = compileError(
      "model m {\n  input x: f32[2, 3]\n  output y = pad(x, [1], mode = \"reflect\")\n}\n");
  CHECK_THAT(diag, Catch::Matchers::Contains("m.nn:3:14: error: pad: pads [1] must be pairs"));
}

TEST_CASE("pad: gradients against finite differences in every mode", "[seq][pad][grad]") {
  const Tensor x = randomTensor({2, 3, 4}, 5);
  requireGradientsMatch("pad", {{x}}, padAttrs({2, 1, 0, 2}, "constant", 0.5));
  requireGradientsMatch("pad", {{x}}, padAttrs({3, 2, 1, 2}, "reflect"));
  requireGradientsMatch("pad", {{x}}, padAttrs({5, 1, 1, 0, 1, 1}, "replicate"));
  requireGradientsMatch("pad_grad", {{randomTensor({2, 6, 7}, 6)}}, gradAttrs({3, 0, 1, 2}, "reflect"));
  requireGradientsMatch("pad_grad", {{randomTensor({2, 6, 7}, 7)}}, gradAttrs({3, 0, 1, 2}, "replicate"));
}

TEST_CASE("group_norm: by hand, lowered as evaluated", "[seq][groupnorm]") {
  // x = [1, 3] is one group: mean 2, variance 1, x̂ = ∓1/√(1 + eps).
  const double s = std::sqrt(1 + 1e-5);
  const Tensor y = evalOp("group_norm", {tensor({1, 2}, {1, 3}), tensor({2}, {2, 1}), tensor({2}, {0, 5})},
                          Attrs{{"groups", int64_t{1}}});
  requireValues(y, {-2 / s, 5 + 1 / s});
  // Two groups of one channel each: every value is its group's mean, x̂ = 0.
  requireValues(evalOp("group_norm", {tensor({1, 2}, {1, 3}), tensor({2}, {2, 1}), tensor({2}, {0, 5})},
                       Attrs{{"groups", int64_t{2}}}),
                {0, 5});
  // Odd sizes, 3-D and 5-D.
  evalOp("group_norm", {randomTensor({3, 6, 7}, 1), randomTensor({6}, 2), randomTensor({6}, 3)},
         Attrs{{"groups", int64_t{3}}});
  evalOp("group_norm", {randomTensor({2, 4, 3, 1, 5}, 1, 3.0), randomTensor({4}, 2), randomTensor({4}, 3)},
         Attrs{{"groups", int64_t{2}}, {"eps", 0.1}});
}

TEST_CASE("group_norm: shape and attribute errors", "[seq][groupnorm]") {
  const TensorType c6 = f32({6});
  requireError(inferOp("group_norm", {f32({2, 6, 4}), c6, c6}, Attrs{{"groups", int64_t{4}}}),
               {"group_norm:", "divide the 6 channels, got 4", "x f32[2, 6, 4], gamma f32[6], beta f32[6]"});
  requireError(inferOp("group_norm", {f32({2, 6, 4}), c6, c6}, Attrs{{"groups", int64_t{0}}}), {"got 0"});
  requireError(inferOp("group_norm", {f32({2, 5}), c6, c6}, Attrs{{"groups", int64_t{1}}}),
               {"gamma and beta must be [5]", "gamma f32[6]"});
  requireError(inferOp("group_norm", {f32({6}), c6, c6}, Attrs{{"groups", int64_t{1}}}), {"[N, C, ...]"});
  requireError(inferOp("group_norm", {f32({2, 6}), c6, c6}, Attrs{{"groups", int64_t{2}}, {"eps", -1.0}}),
               {"eps must be positive"});
}

TEST_CASE("group_norm: gradients against finite differences", "[seq][groupnorm][grad]") {
  requireGradientsMatch("group_norm", {{randomTensor({2, 6, 3, 2}, 1, 2.0)}, {randomTensor({6}, 2)}, {randomTensor({6}, 3)}},
                        Attrs{{"groups", int64_t{3}}});
  requireGradientsMatch("group_norm", {{randomTensor({3, 4}, 4)}, {randomTensor({4}, 5)}, {randomTensor({4}, 6)}},
                        Attrs{{"groups", int64_t{1}}, {"eps", 0.01}});
}

TEST_CASE("conv1d, groupnorm, lstm, gru layers: argument errors in words", "[seq][layers]") {
  auto model = [](const std::string& x, const std::string& body) {
    return "model m {\n  input x: f32" + x + "\n  output y = " + body + "\n}\n";
  };
  CHECK_THAT(compileError(model("[2, 3, 8]", "conv1d(x, 4, 3, dilation = 2)")),
             Catch::Matchers::Contains("m.nn:3:41: error: conv1d: dilation 2 is not supported"));
  CHECK_THAT(compileError(model("[2, 3, 8]", "conv1d(x, 4, 3, stride = 2, pad = \"same\")")),
             Catch::Matchers::Contains("pad = \"same\" needs stride 1"));
  CHECK_THAT(compileError(model("[2, 3, 8]", "conv1d(x, 4, 3, pad = \"full\")")),
             Catch::Matchers::Contains("conv1d: pad must be an integer, a list of two, \"valid\" or \"same\", got \"full\""));
  CHECK_THAT(compileError(model("[2, 3, 8, 8]", "conv1d(x, 4, 3)")),
             Catch::Matchers::Contains("conv1d: input must be [N, C, L], got f32[2, 3, 8, 8]"));
  CHECK_THAT(compileError(model("[2, 3, 8]", "conv1d(x, 4, 3, groups = 2)")),
             Catch::Matchers::Contains("groups=2 must divide the input channels (3)"));
  CHECK_THAT(compileError(model("[2, 3, 8, 8]", "conv2d(x, 4, 3, stride = 2, pad = \"same\")")),
             Catch::Matchers::Contains("conv2d: pad = \"same\" needs stride 1"));
  CHECK_THAT(compileError(model("[2, 3, 8, 8]", "conv_transpose2d(x, 4, 3, pad = \"same\")")),
             Catch::Matchers::Contains("conv_transpose2d: pad must be an integer, a list of two or \"valid\""));
  CHECK_THAT(compileError(model("[2, 6, 8]", "groupnorm(x, 4)")),
             Catch::Matchers::Contains("group_norm: groups must be positive and divide the 6 channels, got 4"));
  CHECK_THAT(compileError(model("[2, 6]", "lstm(x, 4)")),
             Catch::Matchers::Contains("lstm: input must be [batch, T, features], got f32[2, 6]"));
  CHECK_THAT(compileError(model("[2, 5, 6]", "gru(x, 0)")), Catch::Matchers::Contains("gru: units must be positive"));
  CHECK_THAT(compileError(model("[2, 5, 6]", "gru(x, 3, return_sequences = 2)")),
             Catch::Matchers::Contains("return_sequences must be 0 or 1, got 2"));
}

TEST_CASE("conv layers: pad = \"same\" keeps the size, \"valid\" is 0", "[seq][layers]") {
  auto c = compile(
      "model m {\n  input x: f32[2, 3, 7, 8]\n  input s: f32[2, 3, 9]\n"
      "  output a = conv2d(x, 4, [3, 4], pad = \"same\")\n  output b = conv2d(x, 4, 5, pad = \"same\")\n"
      "  output c = conv2d(x, 4, 3, pad = \"valid\")\n  output d = conv1d(s, 5, 2, pad = \"same\")\n"
      "  output e = conv1d(s, 5, 4, stride = 2, pad = \"valid\")\n  output f = lstm(s, 7, return_sequences = 0)\n"
      "  output g = gru(s, 7)\n  output h = groupnorm(s, 3)\n}\n");
  REQUIRE(c.model);
  const Graph& g = c.model->graph;
  std::map<std::string, Shape> shapes;
  for (const auto& [name, v] : g.outputs) shapes[name] = g.type(v).shape;
  CHECK(shapes["a"] == Shape{2, 4, 7, 8});
  CHECK(shapes["b"] == Shape{2, 4, 7, 8});
  CHECK(shapes["c"] == Shape{2, 4, 5, 6});
  CHECK(shapes["d"] == Shape{2, 5, 9});
  CHECK(shapes["e"] == Shape{2, 5, 3});
  CHECK(shapes["f"] == Shape{2, 7});
  CHECK(shapes["g"] == Shape{2, 3, 7});
  CHECK(shapes["h"] == Shape{2, 3, 9});
  std::set<std::string> params;
  for (ValueId p : g.params) params.insert(g.node(p).name + " " + shapeString(g.type(p).shape));
  CHECK(params.count("lstm1.W_ih [28, 9]"));
  CHECK(params.count("lstm1.W_hh [28, 7]"));
  CHECK(params.count("lstm1.b_hh [28]"));
  CHECK(params.count("gru1.W_ih [21, 9]"));
  CHECK(params.count("conv1d_1.W [5, 3, 2]"));
  CHECK(params.count("gn1.gamma [3]"));
}

TEST_CASE("lstm and gru: gradients against finite differences", "[seq][grad]") {
  for (const char* layer : {"lstm", "gru"}) {
    DYNAMIC_SECTION(layer) {
      auto c = compile(std::string("model m {\n  input x: f32[2, 4, 3]\n  label t: f32[2, 4, 5]\n  y = ") + layer +
                       "(x, 5)\n  loss = mse(y, t)\n}\n");
      REQUIRE(c.model);
      GradCheckOptions opt;
      opt.samples = 40;
      auto r = gradCheck(c.model->graph, randomFeeds(c.model->graph, 3), opt);
      REQUIRE(r.ok());
      for (const ParamCheck& p : r->params) {
        INFO(p.name << ": max rel " << p.maxRel);
        CHECK(p.checked > 0);
        CHECK(p.ok);
      }
    }
  }
}
