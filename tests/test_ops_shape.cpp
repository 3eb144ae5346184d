// Shape ops against values worked out by hand.
#include <algorithm>
#include <numeric>

#include "op_test_util.h"

using namespace nnc;
using namespace nnc::test;
using Catch::Matchers::Contains;

namespace {


Tensor iota(Shape s, DType dt = DType::F32) {
  std::vector<double> v(static_cast<size_t>(numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
  return tensor(std::move(s), std::move(v), dt);
}

std::vector<double> range(int n) { return iota({n}).data; }

}  // namespace

TEST_CASE("reshape infers one -1 and keeps the data", "[ops]") {
  Tensor x = iota({2, 3});
  requireClose(evalOp("reshape", {x}, {{"shape", std::vector<int64_t>{3, -1}}}), {3, 2}, range(6));
  requireClose(evalOp("reshape", {x}, {{"shape", std::vector<int64_t>{-1}}}), {6}, range(6));
  requireClose(evalOp("reshape", {tensor({1, 1}, {7})}, {{"shape", std::vector<int64_t>{}}}), {}, {7});
  Tensor xi = evalOp("reshape", {iota({4}, DType::I32)}, {{"shape", std::vector<int64_t>{2, 2}}});
  REQUIRE(xi.type == TensorType{DType::I32, {2, 2}});

  requireError(inferOp("reshape", {f32({2, 3})}, {{"shape", std::vector<int64_t>{4, 2}}}),
               {"reshape:", "f32[2, 3]", "[4, 2]", "6 elements", "8 elements"});
  requireError(inferOp("reshape", {f32({2, 3})}, {{"shape", std::vector<int64_t>{4, -1}}}),
               {"reshape:", "f32[2, 3]", "[4, -1]"});
  requireError(inferOp("reshape", {f32({2, 3})}, {{"shape", std::vector<int64_t>{-1, -1}}}), {"at most one -1"});
  requireError(inferOp("reshape", {f32({2, 3})}, {{"shape", std::vector<int64_t>{0, 6}}}), {"reshape:", "positive"});
  requireError(inferOp("reshape", {f32({2, 3})}), {"missing attribute 'shape'"});
}

TEST_CASE("flatten merges the dims from axis on", "[ops]") {
  Tensor x = iota({2, 3, 4, 5});
  // [N,C,H,W] -> [N, C*H*W] = [2, 60]; the row-major data does not move.
  requireClose(evalOp("flatten", {x}), {2, 60}, range(120));
  REQUIRE(*inferOp("flatten", {f32({2, 3, 4, 5})}, {{"axis", int64_t{2}}}) == f32({2, 3, 20}));
  REQUIRE(*inferOp("flatten", {f32({2, 3, 4, 5})}, {{"axis", int64_t{0}}}) == f32({120}));
  REQUIRE(*inferOp("flatten", {f32({2, 3, 4, 5})}, {{"axis", int64_t{-1}}}) == f32({2, 3, 4, 5}));
  REQUIRE(inferOp("flatten", {TensorType{DType::I32, {2, 3}}})->dtype == DType::I32);
  requireError(inferOp("flatten", {f32({2, 3})}, {{"axis", int64_t{2}}}), {"flatten:", "rank 2", "f32[2, 3]"});
}

TEST_CASE("transpose permutes axes", "[ops]") {
  // x[i,j,k] = 12i + 4j + k; out[j,i,k] = x[i,j,k], so out runs over j, then i, then k.
  Tensor x = iota({2, 3, 4});
  requireClose(evalOp("transpose", {x}, {{"perm", std::vector<int64_t>{1, 0, 2}}}), {3, 2, 4},
               {0, 1, 2, 3, 12, 13, 14, 15, 4, 5, 6, 7, 16, 17, 18, 19, 8, 9, 10, 11, 20, 21, 22, 23});
  // Default reverses: [[0,1,2],[3,4,5]] -> [[0,3],[1,4],[2,5]].
  requireClose(evalOp("transpose", {iota({2, 3})}), {3, 2}, {0, 3, 1, 4, 2, 5});
  // Reversing [2,3,4]: out[k,j,i] = 12i + 4j + k.
  Tensor r = evalOp("transpose", {x}, {{"perm", std::vector<int64_t>{-1, 1, 0}}});
  REQUIRE(r.shape() == Shape{4, 3, 2});
  REQUIRE(r.data[1] == 12);  // out[0,0,1] = x[1,0,0]
  REQUIRE(r.data[2] == 4);   // out[0,1,0] = x[0,1,0]
  REQUIRE(r.data[6] == 1);   // out[1,0,0] = x[0,0,1]
  REQUIRE(inferOp("transpose", {TensorType{DType::I32, {2, 3}}})->dtype == DType::I32);

  requireError(inferOp("transpose", {f32({2, 3, 4})}, {{"perm", std::vector<int64_t>{0, 0, 1}}}),
               {"transpose:", "repeated", "f32[2, 3, 4]"});
  requireError(inferOp("transpose", {f32({2, 3, 4})}, {{"perm", std::vector<int64_t>{1, 0}}}),
               {"transpose:", "[1, 0]", "f32[2, 3, 4]"});
  requireError(inferOp("transpose", {f32({2, 3})}, {{"perm", std::vector<int64_t>{0, 2}}}),
               {"transpose:", "axis 2", "rank 2"});
}

TEST_CASE("concat joins along an axis", "[ops]") {
  Tensor a = tensor({2, 2}, {1, 2, 3, 4});
  Tensor b = tensor({2, 3}, {5, 6, 7, 8, 9, 10});
  // Axis 1: each output row is a's row then b's row.
  requireClose(evalOp("concat", {a, b}, {{"axis", int64_t{1}}}), {2, 5}, {1, 2, 5, 6, 7, 3, 4, 8, 9, 10});
  requireClose(evalOp("concat", {a, b, a}, {{"axis", int64_t{-1}}}), {2, 7},
               {1, 2, 5, 6, 7, 1, 2, 3, 4, 8, 9, 10, 3, 4});
  // Axis 0 (default): rows stacked.
  requireClose(evalOp("concat", {tensor({1, 2}, {1, 2}), a}), {3, 2}, {1, 2, 1, 2, 3, 4});
  requireClose(evalOp("concat", {a}), {2, 2}, {1, 2, 3, 4});
  REQUIRE(inferOp("concat", {TensorType{DType::I32, {2}}, TensorType{DType::I32, {3}}})->dtype == DType::I32);

  requireError(inferOp("concat", {f32({2, 2}), f32({3, 3})}, {{"axis", int64_t{1}}}),
               {"concat:", "axis 1", "f32[2, 2]", "f32[3, 3]"});
  requireError(inferOp("concat", {f32({2}), TensorType{DType::I32, {2}}}), {"concat:", "dtype", "f32[2]", "i32[2]"});
  requireError(inferOp("concat", {f32({2}), f32({2, 1})}), {"concat:", "rank", "f32[2]", "f32[2, 1]"});
  requireError(inferOp("concat", {}), {"concat takes at least 1"});
}

TEST_CASE("slice follows NumPy's indexing", "[ops]") {
  Tensor x = iota({2, 5});  // rows [0..4], [5..9]
  auto sl = [&](int64_t axis, int64_t start, int64_t end, int64_t step = 1) {
    return evalOp("slice", {x}, {{"axis", axis}, {"start", start}, {"end", end}, {"step", step}});
  };
  // Columns -3:-1 of 5 are 2:4.
  requireClose(sl(1, -3, -1), {2, 2}, {2, 3, 7, 8});
  // 1:100:2 clamps the end to 5: columns 1 and 3.
  requireClose(sl(1, 1, 100, 2), {2, 2}, {1, 3, 6, 8});
  // -100:2 clamps the start to 0: columns 0 and 1.
  requireClose(sl(-1, -100, 2), {2, 2}, {0, 1, 5, 6});
  // Rows -1:2 is row 1.
  requireClose(sl(0, -1, 2), {1, 5}, {5, 6, 7, 8, 9});
  // 0:5:3 takes columns 0 and 3 (ceil(5/3) = 2 of them).
  requireClose(sl(1, 0, 5, 3), {2, 2}, {0, 3, 5, 8});
  REQUIRE(inferOp("slice", {TensorType{DType::I32, {4}}}, {{"axis", int64_t{0}}, {"start", int64_t{1}}, {"end", int64_t{3}}})
              ->shape == Shape{2});

  auto err = [](int64_t axis, int64_t start, int64_t end, int64_t step = 1) {
    return inferOp("slice", {f32({2, 5})}, {{"axis", axis}, {"start", start}, {"end", end}, {"step", step}});
  };
  requireError(err(1, 3, 1), {"slice:", "nothing", "f32[2, 5]"});
  requireError(err(1, 5, 10), {"slice:", "nothing"});
  requireError(err(1, 0, 2, 0), {"slice:", "step", "positive"});
  requireError(err(1, 0, 2, -1), {"slice:", "step"});
  requireError(err(2, 0, 1), {"slice:", "rank 2"});
}

TEST_CASE("elementwise, reduction and shape ops are registered with summaries", "[ops]") {
  for (const char* name : {"add", "sub", "mul", "div", "maximum", "minimum", "pow", "neg", "exp", "log", "sqrt",
                           "square", "abs", "sign", "relu", "leaky_relu", "sigmoid", "tanh", "step", "identity", "sum",
                           "mean", "max", "reshape", "flatten", "transpose", "concat", "slice"}) {
    INFO(name);
    const OpDef* op = findOp(name);
    REQUIRE(op != nullptr);
    REQUIRE(op->shape != nullptr);
    REQUIRE(op->eval != nullptr);
    REQUIRE_FALSE(op->summary.empty());
  }
  REQUIRE(findOp("add")->operands == std::vector<std::string_view>{"a", "b"});
  REQUIRE(findOp("exp")->operands == std::vector<std::string_view>{"x"});
  REQUIRE(findOp("concat")->variadic);
}

// ---- lowering coverage: evalOp also runs each op's loop-IR kernel against
// the reference, so these cases only pick shapes and attributes. ----

TEST_CASE("shape ops are lowered", "[ops][lower]") {
  for (const char* name : {"reshape", "flatten", "transpose", "concat", "slice", "unslice"}) {
    INFO(name);
    REQUIRE(findOp(name)->lower != nullptr);
  }
  REQUIRE(findOp("broadcast_to")->pointwise != nullptr);
}

TEST_CASE("lowered transpose: every perm of rank 3 and 4", "[ops][lower]") {
  for (const Shape& s : {Shape{2, 3, 4}, Shape{2, 3, 4, 5}, Shape{1, 3, 1, 2}}) {
    std::vector<int64_t> perm(s.size());
    std::iota(perm.begin(), perm.end(), 0);
    do {
      INFO(shapeString(s) << " perm " << shapeString(perm));
      Tensor y = evalOp("transpose", {iota(s)}, {{"perm", perm}});
      for (size_t d = 0; d < s.size(); ++d) REQUIRE(y.shape()[d] == s[static_cast<size_t>(perm[d])]);
    } while (std::next_permutation(perm.begin(), perm.end()));
  }
  evalOp("transpose", {iota({2, 3, 4, 5})});  // default: reversed
  evalOp("transpose", {iota({5})});
  evalOp("transpose", {tensor({}, {3})});
}

TEST_CASE("lowered concat along each axis, variadic", "[ops][lower]") {
  const Shape base{2, 3, 4};
  for (int64_t axis = 0; axis < 3; ++axis) {
    std::vector<Tensor> parts;
    for (int64_t len : {1, 3, 2}) {
      Shape s = base;
      s[static_cast<size_t>(axis)] = len;
      Tensor t = iota(s);
      for (double& v : t.data) v += 100.0 * static_cast<double>(parts.size());
      parts.push_back(t);
    }
    INFO("axis " << axis);
    Tensor y = evalOp("concat", parts, {{"axis", axis}});
    REQUIRE(y.shape()[static_cast<size_t>(axis)] == 6);
    evalOp("concat", parts, {{"axis", axis - 3}});
    evalOp("concat", {parts[1]}, {{"axis", axis}});
  }
  evalOp("concat", {iota({2}), iota({3}), iota({1}), iota({4})});
  evalOp("concat", {iota({2, 2, 2, 3}), iota({2, 2, 2, 1})}, {{"axis", int64_t{3}}});
}

TEST_CASE("lowered slice and unslice: every axis, steps, negative indices", "[ops][lower]") {
  const Tensor x = iota({4, 5, 6});
  struct Case {
    int64_t start, end, step;
  };
  const std::vector<Case> cases = {{0, 100, 1}, {1, 3, 1},   {-3, -1, 1}, {-100, 2, 1}, {0, 6, 2},
                                   {1, 100, 3}, {-4, 6, 2},  {-1, 100, 1}, {0, -1, 4}, {2, 3, 5}};
  for (int64_t axis : {0, 1, 2, -1})
    for (const Case& c : cases) {
      Attrs at{{"axis", axis}, {"start", c.start}, {"end", c.end}, {"step", c.step}};
      const OpDef* op = findOp("slice");
      auto full = completeAttrs(*op, 1, at);
      REQUIRE(full.ok());
      if (!op->shape({x.type}, *full)) continue;  // selects nothing on this axis
      INFO("axis " << axis << " " << c.start << ":" << c.end << ":" << c.step);
      Tensor y = evalOp("slice", {x}, at);
      Attrs un = at;
      un.set("shape", x.shape());
      Tensor back = evalOp("unslice", {y}, un);
      REQUIRE(back.shape() == x.shape());
    }
}

TEST_CASE("lowered broadcast_to, reshape and flatten", "[ops][lower]") {
  for (const Shape& s : {Shape{}, Shape{4}, Shape{3, 1}, Shape{1, 4}, Shape{2, 1, 4}, Shape{1, 3, 1}, Shape{2, 3, 4}}) {
    INFO(shapeString(s));
    REQUIRE(evalOp("broadcast_to", {iota(s)}, {{"shape", std::vector<int64_t>{2, 3, 4}}}).shape() == Shape{2, 3, 4});
  }
  evalOp("broadcast_to", {iota({3, 1})}, {{"shape", std::vector<int64_t>{5, 2, 3, 4}}});
  evalOp("reshape", {iota({2, 3, 4})}, {{"shape", std::vector<int64_t>{4, -1, 2}}});
  evalOp("flatten", {iota({2, 3, 4, 5})}, {{"axis", int64_t{2}}});
  evalOp("flatten", {iota({2, 3, 4, 5})}, {{"axis", int64_t{0}}});
  evalOp("reshape", {iota({4}, DType::I32)}, {{"shape", std::vector<int64_t>{2, 2}}});
}
