// The activation zoo (gelu, silu, elu, selu, softplus, clip, relu6, prelu,
// erf) and the reductions min, var, std and logsumexp: forward values and
// gradients against PyTorch 1.13 (tests/reference/gen_activation_refs.py),
// gradients against finite differences, and every case's lowering (the loop
// IR's evaluator and the JIT at O2) against the reference interpreter.
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/autodiff/autodiff.h"
#include "compiler/interpreter/interpreter.h"
#include "grad_test_util.h"
#include "io/npy.h"
#include "op_test_util.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::evalOp;
using nnc::test::f32;
using nnc::test::inferOp;
using nnc::test::Operand;
using nnc::test::randomTensor;
using nnc::test::requireClose;
using nnc::test::requireError;
using nnc::test::requireGradientsMatch;

namespace {

struct RefCase {
  const char* name;  // tests/reference/data/activations/<name>.npz
  const char* op;
  Attrs attrs;
};

using Ints = std::vector<int64_t>;

// The same cases, by name, as gen_activation_refs.py.
const std::vector<RefCase>& refCases() {
  static const std::vector<RefCase> cases = {
      {"erf", "erf", {}},
      {"erf_random", "erf", {}},
      {"gelu", "gelu", {}},
      {"gelu_random", "gelu", {}},
      {"gelu_tanh", "gelu", {{"approximate", std::string("tanh")}}},
      {"silu", "silu", {}},
      {"elu", "elu", {}},
      {"elu_alpha", "elu", {{"alpha", 0.5}}},
      {"selu", "selu", {}},
      {"softplus", "softplus", {}},
      {"softplus_beta", "softplus", {{"beta", 2.0}, {"threshold", 5.0}}},
      {"clip", "clip", {{"min", -0.5}, {"max", 1.5}}},
      {"clip_min", "clip", {{"min", 0.25}}},
      {"clip_max", "clip", {{"max", -0.25}}},
      {"relu6", "relu6", {}},
      {"prelu_channels", "prelu", {}},
      {"prelu_vector", "prelu", {}},
      {"prelu_scalar", "prelu", {}},
      {"prelu_outer", "prelu", {}},
      {"min_all", "min", {}},
      {"min_axis1", "min", {{"axis", Ints{1}}}},
      {"min_axes02_keep", "min", {{"axis", Ints{0, 2}}, {"keepdims", int64_t{1}}}},
      {"min_ties", "min", {{"axis", Ints{2}}}},
      {"min_ties_all", "min", {}},
      {"var_all", "var", {}},
      {"var_axis1_keep", "var", {{"axis", Ints{1}}, {"keepdims", int64_t{1}}}},
      {"var_axes02", "var", {{"axis", Ints{0, 2}}}},
      {"var_axis2_c0", "var", {{"axis", Ints{2}}, {"correction", int64_t{0}}}},
      {"var_axis0_c2", "var", {{"axis", Ints{0}}, {"correction", int64_t{2}}}},
      {"var_offset", "var", {{"axis", Ints{1}}}},
      {"std_all", "std", {}},
      {"std_axis1_keep", "std", {{"axis", Ints{1}}, {"keepdims", int64_t{1}}}},
      {"std_axes02", "std", {{"axis", Ints{0, 2}}}},
      {"std_axis2_c0", "std", {{"axis", Ints{2}}, {"correction", int64_t{0}}}},
      {"std_axis0_c2", "std", {{"axis", Ints{0}}, {"correction", int64_t{2}}}},
      {"std_offset", "std", {{"axis", Ints{1}}}},
      {"logsumexp_all", "logsumexp", {}},
      {"logsumexp_axis1", "logsumexp", {{"axis", Ints{1}}}},
      {"logsumexp_axes02_keep", "logsumexp", {{"axis", Ints{0, 2}}, {"keepdims", int64_t{1}}}},
      {"logsumexp_large", "logsumexp", {{"axis", Ints{1}}}},
      {"logsumexp_large_axis0", "logsumexp", {{"axis", Ints{0}}, {"keepdims", int64_t{1}}}},
  };
  return cases;
}

std::vector<std::string> operandNames(const RefCase& c) {
  if (std::string(c.op) == "prelu") return {"x", "slope"};
  return {"x"};
}

std::map<std::string, Tensor> loadCase(const RefCase& c) {
  auto r = readNpz(test::sourcePath(std::string("tests/reference/data/activations/") + c.name + ".npz"));
  if (!r) FAIL(r.error().message);
  return r.take();
}

std::vector<Tensor> operandsOf(const RefCase& c, const std::map<std::string, Tensor>& data) {
  std::vector<Tensor> in;
  for (const std::string& n : operandNames(c)) in.push_back(data.at(n));
  return in;
}

// The gradients of sum(op(operands) · dy), as autodiff builds them, by the
// interpreter in f64.
std::vector<Tensor> gradients(const RefCase& c, const std::vector<Tensor>& in, const Tensor& dy) {
  Graph g;
  std::vector<ValueId> ids;
  for (size_t k = 0; k < in.size(); ++k) {
    auto p = g.addSource("param", fmt::format("p{}", k), in[k].type,
                         Attrs{{"init", std::string("value")}, {"args", in[k].data}});
    REQUIRE(p.ok());
    ids.push_back(*p);
  }
  auto y = g.add(c.op, ids, c.attrs);
  if (!y) FAIL(y.error().message);
  auto r = g.addSource("const", "dy", g.type(*y), Attrs{{"value", dy.data}});
  auto prod = g.add("mul", {*y, *r});
  auto loss = g.add("sum", {*prod});
  REQUIRE(loss.ok());
  g.loss = *loss;
  auto gg = differentiate(g);
  if (!gg) FAIL("differentiate: " << gg.error().message);
  std::vector<ValueId> targets;
  for (size_t k = 0; k < in.size(); ++k)
    for (const auto& [name, v] : gg->grads)
      if (name == fmt::format("p{}", k)) targets.push_back(v);
  REQUIRE(targets.size() == in.size());
  auto vals = interpret(gg->graph, {}, EvalOptions{true, true, 42}, targets);
  if (!vals) FAIL("interpret: " << vals.error().message);
  std::vector<Tensor> out;
  for (ValueId t : targets) out.push_back((*vals)[static_cast<size_t>(t)]);
  return out;
}

}  // namespace

TEST_CASE("activation zoo and reductions: values as PyTorch's, lowered and JIT alike", "[activations][torch]") {
  for (const RefCase& c : refCases()) {
    INFO("case " << c.name);
    const auto data = loadCase(c);
    // evalOp also runs the op's kernel through the loop IR's evaluator and
    // the JIT, against the reference evaluation.
    const Tensor y = evalOp(c.op, operandsOf(c, data), c.attrs);
    requireClose(y, data.at("y").shape(), data.at("y").data);
  }
}

TEST_CASE("activation zoo and reductions: gradients as PyTorch's autograd", "[activations][torch]") {
  for (const RefCase& c : refCases()) {
    INFO("case " << c.name);
    const auto data = loadCase(c);
    const std::vector<Tensor> in = operandsOf(c, data);
    const std::vector<Tensor> grads = gradients(c, in, data.at("dy"));
    const std::vector<std::string> names = operandNames(c);
    for (size_t k = 0; k < names.size(); ++k) {
      INFO("d / d " << names[k]);
      const Tensor& want = data.at("grad_" + names[k]);
      requireClose(grads[k], want.shape(), want.data);
    }
  }
}

TEST_CASE("activation zoo and reductions: gradients against finite differences", "[activations][grad]") {
  for (const RefCase& c : refCases()) {
    INFO("case " << c.name);
    const auto data = loadCase(c);
    std::vector<Operand> ops;
    for (Tensor& t : operandsOf(c, data)) ops.push_back({std::move(t)});
    requireGradientsMatch(c.op, ops, c.attrs);
  }
  // Random values at other shapes, attributes at non-default values.
  requireGradientsMatch("gelu", {{randomTensor({3, 1, 5}, 1, 3.0)}}, {{"approximate", std::string("tanh")}});
  requireGradientsMatch("softplus", {{randomTensor({4, 4}, 2, 4.0)}}, {{"beta", 0.5}, {"threshold", 1.0}});
  requireGradientsMatch("elu", {{randomTensor({5}, 3)}}, {{"alpha", 2.0}});
  requireGradientsMatch("prelu", {{randomTensor({2, 3, 2, 2}, 4)}, {randomTensor({3, 1, 1}, 5)}});
  requireGradientsMatch("prelu", {{randomTensor({3}, 6)}, {randomTensor({2, 1}, 7)}});
  for (const char* op : {"min", "var", "std", "logsumexp"}) {
    INFO(op);
    requireGradientsMatch(op, {{randomTensor({2, 3, 1, 4}, 8)}}, {{"axis", Ints{1, 3}}});
    requireGradientsMatch(op, {{randomTensor({5, 3}, 9)}}, {{"axis", Ints{-2}}, {"keepdims", int64_t{1}}});
  }
}

TEST_CASE("reductions: the lowering matches the interpreter over odd shapes and axes", "[activations][jit]") {
  // Size-1 dims, reduced dims in the middle (kept dims after them go
  // innermost), a rank-0 result and a result of one element per row.
  const std::vector<std::pair<Shape, Ints>> cases = {
      {{7}, {}}, {{5, 3, 7}, {0}}, {{5, 3, 7}, {1}}, {{2, 3, 1, 5}, {1, 3}}, {{1, 9}, {1}}, {{4, 1, 3}, {0, 1}},
      {{3, 17}, {0}}};
  for (const char* op : {"min", "var", "std", "logsumexp"})
    for (const auto& [shape, axes] : cases)
      for (int64_t keep : {0, 1}) {
        INFO(op << " of " << shapeString(shape) << " over " << axes.size() << " axes, keepdims " << keep);
        evalOp(op, {randomTensor(shape, 31, 2.0)}, {{"axis", axes}, {"keepdims", keep}});
      }
  // var of a single element with correction 1 divides by 0: inf·0 is NaN, as torch.
  const Tensor one = evalOp("var", {test::tensor({1}, {2.5})});
  CHECK(std::isnan(one.data[0]));
  // logsumexp of -inf row stays -inf; a row holding +inf is +inf, not NaN.
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor lse = evalOp("logsumexp", {test::tensor({2, 2}, {-inf, -inf, inf, 1})}, {{"axis", Ints{1}}});
  CHECK(lse.data == std::vector<double>{-inf, inf});
}

TEST_CASE("activation zoo: NaN propagates and the lowering agrees at the edges", "[activations][jit]") {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = test::tensor({6}, {nan, -0.0, 0.0, -50, 50, 1e-30});
  for (const char* op : {"erf", "gelu", "silu", "elu", "selu", "softplus", "relu6"}) {
    INFO(op);
    const Tensor y = evalOp(op, {x});  // checks the kernel and the JIT too
    CHECK(std::isnan(y.data[0]));
  }
  const Tensor c = evalOp("clip", {x}, {{"min", -1.0}, {"max", 1.0}});
  CHECK(std::isnan(c.data[0]));
  CHECK(c.data[3] == -1);
  CHECK(c.data[4] == 1);
  evalOp("gelu", {x}, {{"approximate", std::string("tanh")}});
  evalOp("prelu", {x, test::tensor({}, {0.25})});
}

TEST_CASE("the lowered erf is within 5e-7 of std::erf and calls no libm function", "[activations][loop]") {
  const int64_t n = 1600001;  // [-8, 8] in steps of 1e-5
  Graph g;
  auto x = g.addSource("input", "x", f32({n}));
  auto y = g.add("erf", {*x});
  REQUIRE(y.ok());
  auto k = lowerNode(g, *y, false);
  REQUIRE(k.ok());
  std::vector<float> in(static_cast<size_t>(n)), out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) in[static_cast<size_t>(i)] = static_cast<float>(i - n / 2) * 1e-5f;
  loop::evaluate(*k, {in.data(), out.data()});
  double worst = 0;
  for (size_t i = 0; i < in.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(out[i]) - std::erf(static_cast<double>(in[i]))));
  CHECK(worst < 5e-7);
  // Multiplies, adds, a division and selects only: the loop vectorizes.
  const std::string cpp = loop::printCpp(*k);
  CHECK_THAT(cpp, !Catch::Contains("std::erf") && !Catch::Contains("erff") && !Catch::Contains("std::exp"));
}

TEST_CASE("activation zoo and reductions: shape rules and bad attributes", "[activations]") {
  requireError(inferOp("gelu", {f32({2})}, {{"approximate", std::string("fast")}}), {"gelu", "approximate", "fast"});
  requireError(inferOp("softplus", {f32({2})}, {{"beta", 0.0}}), {"softplus", "beta must be positive"});
  requireError(inferOp("clip", {f32({2})}, {{"min", 2.0}, {"max", 1.0}}), {"clip", "min (2)", "max (1)"});
  requireError(inferOp("var", {f32({2, 3})}, {{"correction", int64_t{-1}}}), {"var", "correction", "-1"});
  requireError(inferOp("std", {f32({2, 3})}, {{"axis", Ints{2}}}), {"std", "f32[2, 3]"});
  requireError(inferOp("prelu", {f32({2, 3}), f32({2})}), {"prelu", "f32[2, 3]", "f32[2]"});
  requireError(inferOp("logsumexp", {f32({0, 3})}, {{"axis", Ints{0}}}), {"logsumexp", "empty"});
  requireError(inferOp("elu", {TensorType{DType::I32, {2}}}), {"elu", "i32"});
  CHECK(inferOp("prelu", {f32({2, 3, 4, 4}), f32({3, 1, 1})})->shape == Shape{2, 3, 4, 4});
  CHECK(inferOp("min", {f32({2, 3})}, {{"axis", Ints{1}}, {"keepdims", int64_t{1}}})->shape == Shape{2, 1});
}
