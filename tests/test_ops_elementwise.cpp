// Elementwise and reduction ops, and the broadcasting helpers, against values
// worked out by hand.
#include <cmath>
#include <limits>

#include "compiler/ops/broadcast.h"
#include "op_test_util.h"

using namespace nnc;
using namespace nnc::test;
using Catch::Matchers::Contains;

namespace {


// x[i, j, k] = 12i + 4j + k, i.e. 0..23 in row-major order.
Tensor iota234() {
  std::vector<double> v(24);
  for (int i = 0; i < 24; ++i) v[static_cast<size_t>(i)] = i;
  return tensor({2, 3, 4}, v);
}

}  // namespace

TEST_CASE("broadcasting: shapes and index maps", "[ops]") {
  REQUIRE(*broadcastShapes({2, 1}, {1, 3}) == Shape{2, 3});
  REQUIRE(*broadcastShapes({}, {2, 2}) == Shape{2, 2});
  REQUIRE(*broadcastShapes({4, 1, 3}, {2, 1}) == Shape{4, 2, 3});
  REQUIRE_FALSE(broadcastShapes({2, 3}, {2}).has_value());
  REQUIRE(broadcastsTo({3}, {2, 3}));
  REQUIRE_FALSE(broadcastsTo({2, 3}, {3}));
  REQUIRE_FALSE(broadcastsTo({2, 1}, {1, 3}));  // broadcasts with, not to

  // [2, 1] read inside [2, 3]: each row repeats its one element.
  BroadcastIndex col({2, 1}, {2, 3});
  std::vector<int64_t> got;
  for (int64_t i = 0; i < 6; ++i) got.push_back(col(i));
  REQUIRE(got == std::vector<int64_t>{0, 0, 0, 1, 1, 1});
  BroadcastIndex row({3}, {2, 3});
  REQUIRE(row(4) == 1);  // element (1, 1) reads b[1]
}

TEST_CASE("broadcasting: reduceToShape sums back over broadcast dims", "[ops]") {
  Tensor g = tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  requireClose(reduceToShape(g, {3}), {3}, {5, 7, 9});     // column sums: 1+4, 2+5, 3+6
  requireClose(reduceToShape(g, {2, 1}), {2, 1}, {6, 15});  // row sums: 1+2+3, 4+5+6
  requireClose(reduceToShape(g, {}), {}, {21});            // 1+...+6
  requireClose(reduceToShape(g, {2, 3}), {2, 3}, {1, 2, 3, 4, 5, 6});
  REQUIRE(reduceToShapeAxes({2, 3}, {3}) == std::vector<int64_t>{0});
  REQUIRE(reduceToShapeAxes({2, 3}, {2, 1}) == std::vector<int64_t>{1});
  REQUIRE(reduceToShapeAxes({4, 2, 3}, {2, 1}) == std::vector<int64_t>{0, 2});
  REQUIRE(reduceToShapeAxes({2, 3}, {2, 3}).empty());
}

TEST_CASE("binary ops broadcast both ways", "[ops]") {
  Tensor m = tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor v = tensor({3}, {10, 20, 30});
  // [2,3] + [3]: v added to each row.
  requireClose(evalOp("add", {m, v}), {2, 3}, {11, 22, 33, 14, 25, 36});
  // [3] - [2,3]: the small operand first, so the order of operands is kept.
  requireClose(evalOp("sub", {v, m}), {2, 3}, {9, 18, 27, 6, 15, 24});
  // [2,1] + [1,3]: an outer sum, out[i][j] = c[i] + r[j].
  Tensor c = tensor({2, 1}, {1, 2});
  Tensor r = tensor({1, 3}, {10, 20, 30});
  requireClose(evalOp("add", {c, r}), {2, 3}, {11, 21, 31, 12, 22, 32});
  // scalar [] with [2,2], on either side.
  Tensor s = tensor({}, {5});
  Tensor q = tensor({2, 2}, {1, 2, 3, 4});
  requireClose(evalOp("add", {s, q}), {2, 2}, {6, 7, 8, 9});
  requireClose(evalOp("sub", {q, s}), {2, 2}, {-4, -3, -2, -1});
  requireClose(evalOp("sub", {s, q}), {2, 2}, {4, 3, 2, 1});
}

TEST_CASE("binary ops compute their function", "[ops]") {
  Tensor m = tensor({2, 3}, {1, 2, 3, 4, 5, 6});
  // [1,2,3,4,5,6] * [10,20,30] per row.
  requireClose(evalOp("mul", {m, tensor({3}, {10, 20, 30})}), {2, 3}, {10, 40, 90, 40, 100, 180});
  // [[1,2],[3,4]] / [2,4] per row: 1/2, 2/4, 3/2, 4/4.
  requireClose(evalOp("div", {tensor({2, 2}, {1, 2, 3, 4}), tensor({2}, {2, 4})}), {2, 2}, {0.5, 0.5, 1.5, 1.0});
  Tensor a = tensor({3}, {1, 5, -2});
  Tensor t = tensor({}, {3});
  requireClose(evalOp("maximum", {a, t}), {3}, {3, 5, 3});
  requireClose(evalOp("minimum", {a, t}), {3}, {1, 3, -2});
  // 2^2, 3^2, 4^2; then 4^0.5 = 2 and 9^-1 = 1/9.
  requireClose(evalOp("pow", {tensor({3}, {2, 3, 4}), tensor({}, {2})}), {3}, {4, 9, 16});
  requireClose(evalOp("pow", {tensor({2}, {4, 9}), tensor({2}, {0.5, -1})}), {2}, {2, 0.1111111111});
  // NaN propagates through maximum as in NumPy.
  double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor mx = evalOp("maximum", {tensor({2}, {nan, 1}), tensor({2}, {1, nan})});
  REQUIRE(std::isnan(mx.data[0]));
  REQUIRE(std::isnan(mx.data[1]));
}

TEST_CASE("relu keeps NaN and inf as PyTorch's: reference, evaluator and JIT", "[ops]") {
  // evalOp also runs the lowered kernel in the loop-IR evaluator and the JIT
  // and requires NaN where the reference has NaN. 19 elements: the JIT's
  // vector body and its remainder both see a NaN.
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  std::vector<double> v{nan, inf, -inf, 1, -2, 0, -0.0};
  while (v.size() < 19) v.push_back(double(v.size() % 3) - 1);
  v[17] = nan;
  const Tensor r = evalOp("relu", {tensor({19}, v)});
  REQUIRE(std::isnan(r.data[0]));
  REQUIRE(std::isnan(r.data[17]));
  CHECK(r.data[1] == inf);
  CHECK(r.data[2] == 0);
  CHECK(r.data[3] == 1);
  CHECK(r.data[4] == 0);
  CHECK(!std::signbit(r.data[6]));  // relu(-0) = +0, as PyTorch's
  // leaky_relu and the gradient-side ops keep their rules: NaN stays NaN.
  REQUIRE(std::isnan(evalOp("leaky_relu", {tensor({19}, v)}).data[0]));
  // sqrt(x - 0.5) of x < 0.5 is NaN, and relu must not hide it.
  const Tensor s = evalOp("relu", {evalOp("sqrt", {tensor({2}, {-0.25, 4})})});
  REQUIRE(std::isnan(s.data[0]));
  CHECK(s.data[1] == 2);
}

TEST_CASE("binary op shape errors name the op and both types", "[ops]") {
  requireError(inferOp("add", {f32({100, 40}), f32({30})}), {"add: cannot broadcast", "f32[100, 40]", "f32[30]"});
  requireError(inferOp("mul", {f32({2, 3}), f32({4, 1, 2})}), {"mul:", "f32[2, 3]", "f32[4, 1, 2]"});
  requireError(inferOp("sub", {TensorType{DType::I32, {2, 3}}, f32({3})}), {"sub:", "f32", "i32[2, 3]"});
  REQUIRE(*inferOp("pow", {f32({2, 1}), f32({1, 3})}) == f32({2, 3}));
}

TEST_CASE("unary ops compute their function", "[ops]") {
  requireClose(evalOp("neg", {tensor({3}, {2, -0.5, 0})}), {3}, {-2, 0.5, 0});
  // e^-1, e^0, e^1, e^2.
  requireClose(evalOp("exp", {tensor({4}, {-1, 0, 1, 2})}), {4}, {0.3678794412, 1, 2.7182818285, 7.3890560989});
  // ln 1 = 0, ln e = 1, ln 10, ln 0.5 = -ln 2.
  requireClose(evalOp("log", {tensor({4}, {1, std::exp(1.0), 10, 0.5})}), {4}, {0, 1, 2.302585093, -0.6931471806});
  requireClose(evalOp("sqrt", {tensor({4}, {0, 1, 4, 2})}), {4}, {0, 1, 2, 1.4142135624});
  requireClose(evalOp("square", {tensor({3}, {-3, 0.5, 2})}), {3}, {9, 0.25, 4});
  requireClose(evalOp("abs", {tensor({3}, {-3, 0, 2.5})}), {3}, {3, 0, 2.5});
  requireClose(evalOp("sign", {tensor({3}, {-3, 0, 2.5})}), {3}, {-1, 0, 1});
  requireClose(evalOp("relu", {tensor({3}, {-2, 0, 3})}), {3}, {0, 0, 3});
  // Default alpha 0.01: -2 * 0.01 = -0.02; with alpha 0.2: -2 * 0.2 = -0.4.
  requireClose(evalOp("leaky_relu", {tensor({3}, {-2, 0, 3})}), {3}, {-0.02, 0, 3});
  requireClose(evalOp("leaky_relu", {tensor({3}, {-2, 0, 3})}, {{"alpha", 0.2}}), {3}, {-0.4, 0, 3});
  // sigmoid(0) = 0.5, sigmoid(1) = 1/(1+e^-1), sigmoid(-1) = 1 - sigmoid(1), sigmoid(2) = 1/(1+e^-2).
  requireClose(evalOp("sigmoid", {tensor({4}, {0, 1, -1, 2})}), {4}, {0.5, 0.7310585786, 0.2689414214, 0.8807970780});
  // tanh(1) = (e^2-1)/(e^2+1), tanh(0.5) = (e-1)/(e+1).
  requireClose(evalOp("tanh", {tensor({4}, {0, 1, -1, 0.5})}), {4}, {0, 0.7615941560, -0.7615941560, 0.4621171573});
  requireClose(evalOp("step", {tensor({3}, {-1, 0, 0.5})}), {3}, {0, 0, 1});
  requireClose(evalOp("identity", {tensor({2, 1}, {1.5, -2})}), {2, 1}, {1.5, -2});
}

TEST_CASE("sigmoid is stable for large |x|", "[ops]") {
  // 1/(1+e^-x) saturates to 1 and e^x/(1+e^x) to 0; no inf/inf NaN at either end.
  Tensor y = evalOp("sigmoid", {tensor({4}, {1000, -1000, 800, -800})});
  requireClose(y, {4}, {1, 0, 1, 0});
  for (double v : y.data) REQUIRE(std::isfinite(v));
  // sigmoid(-30) = e^-30/(1+e^-30) ~ 9.357622969e-14, kept to full relative precision.
  Tensor small = evalOp("sigmoid", {tensor({}, {-30})});
  REQUIRE(std::abs(small.data[0] - 9.357622968840175e-14) < 1e-22);
}

TEST_CASE("unary ops keep the shape and require f32", "[ops]") {
  REQUIRE(*inferOp("tanh", {f32({2, 3})}) == f32({2, 3}));
  REQUIRE(*inferOp("relu", {f32({})}) == f32({}));
  requireError(inferOp("exp", {TensorType{DType::I32, {4}}}), {"exp:", "f32", "i32[4]"});
  requireError(inferOp("neg", {f32({2}), f32({2})}), {"neg takes 1"});
}

TEST_CASE("reductions over every axis of [2,3,4]", "[ops]") {
  Tensor x = iota234();  // x[i,j,k] = 12i + 4j + k
  // All axes: 0+...+23 = 276, mean 11.5, max 23; a scalar unless keepdims.
  requireClose(evalOp("sum", {x}), {}, {276});
  requireClose(evalOp("mean", {x}), {}, {11.5});
  requireClose(evalOp("max", {x}), {}, {23});
  requireClose(evalOp("sum", {x}, {{"keepdims", int64_t{1}}}), {1, 1, 1}, {276});

  // axis 0: x[0,j,k] + x[1,j,k] = 2(4j+k) + 12.
  std::vector<double> sum0 = {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34};
  requireClose(evalOp("sum", {x}, {{"axis", int64_t{0}}}), {3, 4}, sum0);
  requireClose(evalOp("sum", {x}, {{"axis", int64_t{0}}, {"keepdims", int64_t{1}}}), {1, 3, 4}, sum0);
  // axis 1: sum over j of 12i+4j+k = 36i + 3k + 12.
  std::vector<double> sum1 = {12, 15, 18, 21, 48, 51, 54, 57};
  requireClose(evalOp("sum", {x}, {{"axis", int64_t{1}}}), {2, 4}, sum1);
  requireClose(evalOp("sum", {x}, {{"axis", int64_t{1}}, {"keepdims", int64_t{1}}}), {2, 1, 4}, sum1);
  // axis 2: sum over k = 48i + 16j + 6.
  std::vector<double> sum2 = {6, 22, 38, 54, 70, 86};
  requireClose(evalOp("sum", {x}, {{"axis", int64_t{2}}}), {2, 3}, sum2);
  requireClose(evalOp("sum", {x}, {{"axis", int64_t{2}}, {"keepdims", int64_t{1}}}), {2, 3, 1}, sum2);

  // mean: the sums above divided by the axis length.
  requireClose(evalOp("mean", {x}, {{"axis", int64_t{0}}}), {3, 4}, {6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17});
  requireClose(evalOp("mean", {x}, {{"axis", int64_t{1}}}), {2, 4}, {4, 5, 6, 7, 16, 17, 18, 19});
  requireClose(evalOp("mean", {x}, {{"axis", int64_t{2}}, {"keepdims", int64_t{1}}}), {2, 3, 1},
               {1.5, 5.5, 9.5, 13.5, 17.5, 21.5});
  // max: the last index along the axis wins since x grows along every axis.
  requireClose(evalOp("max", {x}, {{"axis", int64_t{0}}}), {3, 4}, {12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23});
  requireClose(evalOp("max", {x}, {{"axis", int64_t{1}}, {"keepdims", int64_t{1}}}), {2, 1, 4},
               {8, 9, 10, 11, 20, 21, 22, 23});
  requireClose(evalOp("max", {x}, {{"axis", int64_t{2}}}), {2, 3}, {3, 7, 11, 15, 19, 23});
}

TEST_CASE("reductions with negative and multiple axes", "[ops]") {
  Tensor x = iota234();
  // -1 is axis 2.
  requireClose(evalOp("sum", {x}, {{"axis", int64_t{-1}}}), {2, 3}, {6, 22, 38, 54, 70, 86});
  // axes {0, 2}: per j, sum of 12i over (i,k) = 48, of 4j = 32j, of k = 2*6 = 12 -> 60 + 32j.
  requireClose(evalOp("sum", {x}, {{"axis", std::vector<int64_t>{-1, 0}}}), {3}, {60, 92, 124});
  requireClose(evalOp("sum", {x}, {{"axis", std::vector<int64_t>{0, 2}}, {"keepdims", int64_t{1}}}), {1, 3, 1},
               {60, 92, 124});
  // mean over {1, 2}: per i, 12i + mean(4j) + mean(k) = 12i + 4 + 1.5.
  requireClose(evalOp("mean", {x}, {{"axis", std::vector<int64_t>{-2, -1}}}), {2}, {5.5, 17.5});
  // max of all-negative values must not be stuck at the zero fill.
  requireClose(evalOp("max", {tensor({3}, {-5, -3, -7})}), {}, {-3});
}

TEST_CASE("reduction errors name the rank", "[ops]") {
  TensorType t = f32({2, 3, 4});
  requireError(inferOp("sum", {t}, {{"axis", int64_t{3}}}), {"sum:", "axis 3", "rank 3", "f32[2, 3, 4]"});
  requireError(inferOp("mean", {t}, {{"axis", int64_t{-4}}}), {"mean:", "axis -4", "rank 3"});
  requireError(inferOp("max", {t}, {{"axis", std::vector<int64_t>{1, -2}}}), {"max:", "repeated", "rank 3"});
  requireError(inferOp("sum", {t}, {{"keepdims", int64_t{2}}}), {"sum:", "keepdims"});
  requireError(inferOp("sum", {TensorType{DType::I32, {3}}}), {"sum:", "i32[3]"});
  REQUIRE(*inferOp("sum", {f32({})}) == f32({}));
}

// ---- lowering coverage: evalOp also runs each op's loop-IR kernel and
// compares it with the reference, so these cases only pick the inputs. ----

namespace {

// Distinct, unordered values of both signs (max must not just pick the last).
Tensor scrambled(Shape s, int seed = 0) {
  std::vector<double> v(static_cast<size_t>(numel(s)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = static_cast<double>((static_cast<int>(i) * 37 + seed * 11 + 5) % 53) / 8.0 - 3.0;
  return tensor(std::move(s), std::move(v));
}

// The lowered kernel's output alone, in f32: for checks the hook's tolerance
// cannot make (the sign of a zero).
std::vector<float> lowered(std::string_view name, const std::vector<Tensor>& in, Attrs attrs = {}) {
  Graph g;
  std::vector<ValueId> ids;
  for (size_t i = 0; i < in.size(); ++i) ids.push_back(*g.addSource("input", "in" + std::to_string(i), in[i].type));
  const OpDef* op = findOp(name);
  const ValueId id = *g.add(name, ids, *completeAttrs(*op, in.size(), std::move(attrs)));
  auto k = lowerNode(g, id, false);
  REQUIRE(k.ok());
  std::vector<std::vector<float>> bufs;
  for (const loop::Buffer& b : k->buffers) bufs.emplace_back(static_cast<size_t>(b.size), -777.0f);
  for (size_t i = 0; i < in.size(); ++i)
    for (size_t j = 0; j < in[i].data.size(); ++j) bufs[i][j] = static_cast<float>(in[i].data[j]);
  std::vector<float*> ptrs;
  for (auto& b : bufs) ptrs.push_back(b.data());
  loop::evaluate(*k, ptrs);
  return bufs[in.size()];
}

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

}  // namespace

TEST_CASE("every elementwise op is lowered", "[ops][lower]") {
  for (const char* name : {"add", "sub", "mul", "div", "maximum", "minimum", "pow", "neg", "exp", "log", "sqrt",
                           "square", "abs", "sign", "relu", "leaky_relu", "sigmoid", "tanh", "step", "identity"}) {
    INFO(name);
    REQUIRE(findOp(name)->pointwise != nullptr);
  }
  for (const char* name : {"sum", "mean", "max"}) REQUIRE(findOp(name)->lower != nullptr);
}

TEST_CASE("lowered binary ops broadcast rank-0, row, column and middle-axis operands", "[ops][lower]") {
  const Tensor x = scrambled({2, 3, 4});
  const std::vector<Shape> others = {{}, {4}, {1, 4}, {3, 1}, {2, 1, 1}, {1, 3, 1}, {2, 1, 4}, {2, 3, 4}, {1, 1, 1}};
  for (const char* name : {"add", "sub", "mul", "div", "maximum", "minimum"})
    for (const Shape& s : others) {
      INFO(name << " with " << shapeString(s));
      Tensor y = scrambled(s, 3);
      for (double& v : y.data) v += v == 0 ? 0.5 : 0;  // no division by zero
      REQUIRE(evalOp(name, {x, y}).shape() == Shape{2, 3, 4});
      REQUIRE(evalOp(name, {y, x}).shape() == Shape{2, 3, 4});
    }
  // Both operands broadcast: [2,1,3,1] with [4,1,5] -> [2,4,3,5].
  REQUIRE(evalOp("mul", {scrambled({2, 1, 3, 1}), scrambled({4, 1, 5}, 1)}).shape() == Shape{2, 4, 3, 5});
  // pow of positive bases by a column of exponents.
  Tensor base = scrambled({3, 4});
  for (double& v : base.data) v = std::abs(v) + 0.25;
  REQUIRE(evalOp("pow", {base, tensor({3, 1}, {0.5, 2, -1.5})}).shape() == Shape{3, 4});
}

TEST_CASE("lowered unary ops on a rank-3 tensor and on a scalar", "[ops][lower]") {
  Tensor x = scrambled({2, 3, 4});
  Tensor pos = x;
  for (double& v : pos.data) v = std::abs(v) + 0.125;
  for (const char* name : {"neg", "exp", "square", "abs", "sign", "relu", "leaky_relu", "sigmoid", "tanh", "step",
                           "identity"}) {
    INFO(name);
    REQUIRE(evalOp(name, {x}).shape() == Shape{2, 3, 4});
    REQUIRE(evalOp(name, {tensor({}, {-1.5})}).shape() == Shape{});
  }
  REQUIRE(evalOp("log", {pos}).shape() == Shape{2, 3, 4});
  REQUIRE(evalOp("sqrt", {pos}).shape() == Shape{2, 3, 4});
  evalOp("leaky_relu", {x}, {{"alpha", 0.3}});
}

TEST_CASE("lowered elementwise ops on NaN, infinities and zeros", "[ops][lower]") {
  // The hook checks that NaN comes out where the reference has NaN and values
  // elsewhere; maximum/minimum propagate NaN from either side. (It cannot
  // compare infinite results, so infinities only go where results are finite.)
  const Tensor a = tensor({5}, {kNaN, 1, kNaN, 0, 2});
  const Tensor b = tensor({5}, {1, kNaN, kNaN, -0.0, -3});
  for (const char* name : {"add", "sub", "mul", "div", "maximum", "minimum", "pow"}) {
    INFO(name);
    evalOp(name, {a, b});
    evalOp(name, {b, a});
  }
  const Tensor x = tensor({5}, {kNaN, 0, -0.0, 30, -30});
  for (const char* name : {"neg", "exp", "abs", "sign", "relu", "leaky_relu", "sigmoid", "tanh", "step", "identity",
                           "square"}) {
    INFO(name);
    evalOp(name, {x});
  }
  const Tensor inf = tensor({2}, {kInf, -kInf});
  requireClose(evalOp("sigmoid", {inf}), {2}, {1, 0});
  requireClose(evalOp("tanh", {inf}), {2}, {1, -1});
  requireClose(evalOp("sign", {inf}), {2}, {1, -1});
  requireClose(evalOp("step", {inf}), {2}, {1, 0});
  requireClose(evalOp("sigmoid", {tensor({2}, {89, -89})}), {2}, {1, 0});
  // What the tolerance cannot see: the sign of zero follows the reference.
  const std::vector<float> sg = lowered("sign", {tensor({2}, {-0.0, 0.0})});
  REQUIRE(std::signbit(sg[0]));
  REQUIRE_FALSE(std::signbit(sg[1]));
  REQUIRE_FALSE(std::signbit(lowered("relu", {tensor({1}, {-0.0})})[0]));
  // std::max(a, b) returns a on ties, so max(-0, 0) is -0; min(0, -0) is 0.
  REQUIRE(std::signbit(lowered("maximum", {tensor({1}, {-0.0}), tensor({1}, {0.0})})[0]));
  REQUIRE_FALSE(std::signbit(lowered("minimum", {tensor({1}, {0.0}), tensor({1}, {-0.0})})[0]));
}

TEST_CASE("lowered reductions over every set of axes of a rank-4 tensor", "[ops][lower]") {
  const Tensor x = scrambled({2, 3, 4, 5});
  for (const char* name : {"sum", "mean", "max"})
    for (int mask = 0; mask < 16; ++mask) {
      std::vector<int64_t> axes;
      for (int d = 0; d < 4; ++d)
        if (mask & (1 << d)) axes.push_back(d);
      if (axes.empty()) continue;  // an empty list means every axis: the mask 15 case
      for (int64_t keep : {0, 1}) {
        INFO(name << " over " << shapeString(axes) << " keepdims " << keep);
        evalOp(name, {x}, {{"axis", axes}, {"keepdims", keep}});
      }
    }
  for (const char* name : {"sum", "mean", "max"}) {
    INFO(name);
    evalOp(name, {x});
    evalOp(name, {tensor({}, {2.5})});
    evalOp(name, {scrambled({7})}, {{"axis", int64_t{0}}});
    // Dims of extent 1 among kept and reduced ones.
    evalOp(name, {scrambled({1, 3, 1, 2})}, {{"axis", std::vector<int64_t>{0, 3}}});
    evalOp(name, {scrambled({3, 1, 2})}, {{"axis", std::vector<int64_t>{1}}, {"keepdims", int64_t{1}}});
  }
}

TEST_CASE("lowered reductions over each axis of a rank-3 tensor", "[ops][lower]") {
  const Tensor x = scrambled({3, 4, 5}, 2);
  for (const char* name : {"sum", "mean", "max"})
    for (int64_t axis : {0, 1, 2, -1})
      for (int64_t keep : {0, 1}) {
        INFO(name << " axis " << axis << " keepdims " << keep);
        evalOp(name, {x}, {{"axis", axis}, {"keepdims", keep}});
      }
}

TEST_CASE("lowered max propagates NaN and handles -inf", "[ops][lower]") {
  // Row 0 has a NaN first, row 1 in the middle, row 2 last; row 3 starts at -inf.
  const Tensor x = tensor({4, 3}, {kNaN, 1, 2, 3, kNaN, 4, 5, 6, kNaN, -kInf, -7, -kInf});
  Tensor rows = evalOp("max", {x}, {{"axis", int64_t{1}}});
  REQUIRE(std::isnan(rows.data[0]));
  REQUIRE(std::isnan(rows.data[1]));
  REQUIRE(std::isnan(rows.data[2]));
  REQUIRE(rows.data[3] == -7);
  evalOp("max", {x}, {{"axis", int64_t{0}}});
  evalOp("max", {x});
  evalOp("sum", {x}, {{"axis", int64_t{0}}});  // every column meets a NaN
  // No -inf start value: a cell of -inf only stays -inf.
  REQUIRE(lowered("max", {tensor({3}, {-kInf, -kInf, -kInf})})[0] == -kInf);
}
