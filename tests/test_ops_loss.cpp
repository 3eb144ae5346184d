// Softmax family, losses and metrics. Expected values come from
// tests/reference/gen_loss_refs.py (PyTorch 1.13 / numpy, float64) unless
// marked as the course notes' hand-worked values.
#include <cmath>
#include <limits>
#include <string>

#include "tests/op_test_util.h"

using namespace nnc;
using namespace nnc::test;
using Catch::Matchers::Contains;

namespace {

const Tensor X = tensor({3, 4}, {1.0, -2.0, 0.5, 3.0, 0.0, 0.0, 0.0, 0.0, -1.5, 2.5, 2.5, -0.25});
const std::vector<double> notesY = {0.1, 0.05, 0.6, 0.0, 0.05, 0.1, 0.0, 0.1, 0.0, 0.0};

Tensor ids(Shape s, std::vector<double> v) { return tensor(std::move(s), std::move(v), DType::I32); }

std::string errorOf(std::string_view op, const std::vector<Tensor>& in, Attrs attrs = {}) {
  auto r = tryEvalOp(op, in, std::move(attrs));
  REQUIRE_FALSE(r);
  return r.error().message;
}

std::string shapeErrorOf(std::string_view op, const std::vector<TensorType>& in, Attrs attrs = {}) {
  auto r = inferOp(op, in, std::move(attrs));
  REQUIRE_FALSE(r);
  return r.error().message;
}

double scalar(std::string_view op, const std::vector<Tensor>& in) {
  Tensor t = evalOp(op, in);
  REQUIRE(t.type == TensorType{DType::F32, {}});
  return t.data[0];
}

}  // namespace

TEST_CASE("softmax and log_softmax match PyTorch", "[ops]") {
  requireClose(evalOp("softmax", {X}), {3, 4},
               {0.1105537504, 0.005504147128, 0.06705423914, 0.8168878634, 0.25, 0.25, 0.25, 0.25, 0.008796108086,
                0.480251229, 0.480251229, 0.03070143391});
  requireClose(evalOp("softmax", {X}, {{"axis", int64_t{0}}}), {3, 4},
               {0.6896720861, 0.01016196264, 0.1111656223, 0.9186437382, 0.2537161816, 0.07508731203, 0.06742535823,
                0.0457365786, 0.05661173224, 0.9147507253, 0.8214090195, 0.03561968323});
  requireClose(evalOp("log_softmax", {X}), {3, 4},
               {-2.202253448, -5.202253448, -2.702253448, -0.2022534477, -1.386294361, -1.386294361, -1.386294361,
                -1.386294361, -4.733445918, -0.7334459183, -0.7334459183, -3.483445918});
  requireClose(evalOp("log_softmax", {X}, {{"axis", int64_t{-2}}}), {3, 4},
               {-0.3715390319, -4.589103682, -2.196734097, -0.08485689427, -1.371539032, -2.589103682, -2.696734097,
                -3.084856894, -2.871539032, -0.08910368216, -0.1967340969, -3.334856894});
  // Course notes, hand-worked.
  requireClose(evalOp("softmax", {tensor({3}, {0.3, 2.9, 4.0})}), {3}, {0.01821127, 0.24519181, 0.73659691});
}

TEST_CASE("softmax is shift-invariant and stable for large inputs", "[ops]") {
  Tensor shifted = X;
  for (double& v : shifted.data) v += 123.25;
  requireClose(evalOp("softmax", {shifted}), {3, 4}, evalOp("softmax", {X}).data, 1e-12, 1e-14);

  Tensor big = tensor({3}, {1000.0, 1001.0, 1002.0});
  requireClose(evalOp("softmax", {big}), {3}, {0.09003057317, 0.2447284711, 0.6652409558});
  requireClose(evalOp("log_softmax", {big}), {3}, {-2.407605964, -1.407605964, -0.4076059644});
  Tensor neg = tensor({2}, {-1000.0, -1000.0});
  requireClose(evalOp("softmax", {neg}), {2}, {0.5, 0.5});
}

TEST_CASE("softmax shape errors", "[ops]") {
  CHECK_THAT(shapeErrorOf("softmax", {{DType::F32, {}}}), Contains("softmax") && Contains("f32[]"));
  CHECK_THAT(shapeErrorOf("log_softmax", {{DType::F32, {2, 3}}}, {{"axis", int64_t{2}}}),
             Contains("axis 2") && Contains("f32[2, 3]"));
  CHECK_THAT(shapeErrorOf("softmax", {{DType::I32, {4}}}), Contains("i32[4]"));
}

TEST_CASE("softmax_cross_entropy", "[ops]") {
  Tensor labels = ids({3}, {3, 1, 2});
  CHECK(scalar("softmax_cross_entropy", {X, labels}) == Approx(0.773997909).epsilon(1e-8));
  Tensor probs = tensor({3, 4}, {0.1, 0.2, 0.3, 0.4, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0});
  CHECK(scalar("softmax_cross_entropy", {X, probs}) == Approx(1.423997909).epsilon(1e-8));

  SECTION("class ids and one-hot targets agree") {
    Tensor oneHot = evalOp("one_hot", {labels}, {{"depth", int64_t{4}}});
    CHECK(scalar("softmax_cross_entropy", {X, oneHot}) ==
          Approx(scalar("softmax_cross_entropy", {X, labels})).epsilon(1e-12));
  }
  SECTION("rank-1 logits are one row") {
    Tensor row = tensor({4}, {1.0, -2.0, 0.5, 3.0});
    CHECK(scalar("softmax_cross_entropy", {row, ids({}, {0})}) == Approx(2.202253448).epsilon(1e-8));
    CHECK(scalar("softmax_cross_entropy", {row, tensor({4}, {1, 0, 0, 0})}) == Approx(2.202253448).epsilon(1e-8));
  }
  SECTION("large logits stay finite") {
    Tensor big = tensor({1, 3}, {1000.0, 1001.0, 1002.0});
    CHECK(scalar("softmax_cross_entropy", {big, ids({1}, {0})}) == Approx(2.407605964).epsilon(1e-8));
  }
  SECTION("label out of range") {
    std::string e = errorOf("softmax_cross_entropy", {X, ids({3}, {3, 7, 0})});
    CHECK_THAT(e, Contains("softmax_cross_entropy") && Contains("7") && Contains("row 1"));
    CHECK_THAT(errorOf("softmax_cross_entropy", {X, ids({3}, {0, 0, -1})}), Contains("-1") && Contains("row 2"));
  }
  SECTION("shape errors name every shape") {
    CHECK_THAT(shapeErrorOf("softmax_cross_entropy", {{DType::F32, {4, 10}}, {DType::I32, {5}}}),
               Contains("f32[4, 10]") && Contains("i32[5]"));
    CHECK_THAT(shapeErrorOf("softmax_cross_entropy", {{DType::F32, {4, 10}}, {DType::F32, {4, 9}}}),
               Contains("f32[4, 10]") && Contains("f32[4, 9]"));
    CHECK_THAT(shapeErrorOf("softmax_cross_entropy", {{DType::F32, {2, 3, 4}}, {DType::I32, {2, 4}}}),
               Contains("f32[2, 3, 4]") && Contains("i32[2, 4]") && Contains("i32[2, 3]"));
    CHECK_THAT(shapeErrorOf("softmax_cross_entropy", {{DType::F32, {}}, {DType::I32, {}}}),
               Contains("f32[..., K]") && Contains("f32[]"));
    CHECK_THAT(shapeErrorOf("softmax_cross_entropy", {{DType::F32, {10}}, {DType::I32, {1}}}),
               Contains("f32[10]") && Contains("i32[1]") && Contains("i32[]"));
  }
}

TEST_CASE("cross_entropy from probabilities", "[ops]") {
  Tensor p = tensor({2, 3}, {0.1, 0.7, 0.2, 0.25, 0.25, 0.5});
  CHECK(scalar("cross_entropy", {p, ids({2}, {1, 2})}) == Approx(0.5249108908).epsilon(1e-8));
  CHECK(scalar("cross_entropy", {p, tensor({2, 3}, {0.0, 1.0, 0.0, 0.2, 0.3, 0.5})}) ==
        Approx(0.698197636).epsilon(1e-8));

  // Course notes, hand-worked: -log(0.6 + 1e-7) and -log(0.1 + 1e-7).
  Tensor y = tensor({10}, notesY);
  CHECK(scalar("cross_entropy", {y, ids({}, {2})}) == Approx(0.510825457).epsilon(1e-8));
  CHECK(scalar("cross_entropy", {y, ids({}, {7})}) == Approx(2.302584092).epsilon(1e-8));
  Tensor t2(TensorType{DType::F32, {10}});
  t2.data[2] = 1;
  CHECK(scalar("cross_entropy", {y, t2}) == Approx(0.510825457).epsilon(1e-8));
  // p = 0 at the label: the epsilon keeps it finite (-log 1e-7).
  CHECK(scalar("cross_entropy", {y, ids({}, {3})}) == Approx(16.11809565).epsilon(1e-8));

  CHECK_THAT(errorOf("cross_entropy", {p, ids({2}, {1, 3})}), Contains("3") && Contains("row 1"));
  CHECK_THAT(shapeErrorOf("cross_entropy", {{DType::F32, {2, 3}}, {DType::F32, {3, 2}}}),
             Contains("f32[2, 3]") && Contains("f32[3, 2]"));
}

TEST_CASE("mse and sse", "[ops]") {
  Tensor a = tensor({2, 3}, {0.5, -1.0, 2.0, 3.0, 0.25, -0.75});
  Tensor b = tensor({2, 3}, {1.0, 1.0, 1.0, 2.0, -0.5, 0.0});
  CHECK(scalar("mse", {a, b}) == Approx(1.229166667).epsilon(1e-8));
  CHECK(scalar("sse", {a, b}) == Approx(3.6875));
  CHECK(scalar("mse", {a, a}) == 0.0);

  // Course notes, hand-worked: mean_squared_error with t one-hot at 2.
  Tensor t2(TensorType{DType::F32, {10}});
  t2.data[2] = 1;
  CHECK(scalar("sse", {tensor({10}, notesY), t2}) == Approx(0.0975));

  for (const char* op : {"mse", "sse", "bce", "bce_with_logits"}) {
    INFO(op);
    CHECK_THAT(shapeErrorOf(op, {{DType::F32, {2, 3}}, {DType::F32, {3, 2}}}),
               Contains(op) && Contains("f32[2, 3]") && Contains("f32[3, 2]"));
    CHECK_THAT(shapeErrorOf(op, {{DType::F32, {4}}, {DType::I32, {4}}}), Contains("i32[4]"));
  }
}

TEST_CASE("bce and bce_with_logits", "[ops]") {
  Tensor p = tensor({4}, {0.9, 0.2, 0.6, 0.01});
  Tensor t = tensor({4}, {1.0, 0.0, 0.3, 1.0});
  CHECK(scalar("bce", {p, t}) == Approx(1.432081363).epsilon(1e-8));

  SECTION("logs clamp at -100 for p = 0 and p = 1") {
    // Wrong-way certainties cost 100 each, right-way ones 0, never inf or NaN.
    CHECK(scalar("bce", {tensor({4}, {0.0, 1.0, 0.0, 1.0}), tensor({4}, {1.0, 0.0, 0.0, 1.0})}) == Approx(50.0));
    CHECK(scalar("bce", {tensor({1}, {0.0}), tensor({1}, {1.0})}) == Approx(100.0));
    CHECK(scalar("bce", {tensor({1}, {1.0}), tensor({1}, {1.0})}) == 0.0);
  }

  Tensor z = tensor({3, 2}, {2.0, -3.0, 0.0, 40.0, -40.0, 0.7});
  Tensor tz = tensor({3, 2}, {1.0, 0.0, 0.5, 1.0, 1.0, 0.0});
  CHECK(scalar("bce_with_logits", {z, tz}) == Approx(6.995308099).epsilon(1e-8));
  CHECK(std::isfinite(scalar("bce_with_logits", {tensor({2}, {1000.0, -1000.0}), tensor({2}, {0.0, 1.0})})));
  CHECK(scalar("bce_with_logits", {tensor({2}, {1000.0, -1000.0}), tensor({2}, {0.0, 1.0})}) == Approx(1000.0));
}

TEST_CASE("l1 and l2 penalties", "[ops]") {
  Tensor a = tensor({2, 3}, {0.5, -1.0, 2.0, 3.0, 0.25, -0.75});
  CHECK(scalar("l1", {a}) == Approx(7.5));
  CHECK(scalar("l2", {a}) == Approx(7.4375));
  CHECK(scalar("l2", {tensor({}, {-3.0})}) == Approx(4.5));
  CHECK_THAT(shapeErrorOf("l1", {{DType::I32, {3}}}), Contains("l1") && Contains("i32[3]"));
}

TEST_CASE("one_hot", "[ops]") {
  Tensor out = evalOp("one_hot", {ids({2, 2}, {2, 0, 1, 3})}, {{"depth", int64_t{4}}});
  CHECK(out.type == TensorType{DType::F32, {2, 2, 4}});
  requireClose(out, {2, 2, 4}, {0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1});
  requireClose(evalOp("one_hot", {ids({}, {1})}, {{"depth", int64_t{3}}}), {3}, {0, 1, 0});

  std::string e = errorOf("one_hot", {ids({2, 2}, {2, 0, 9, 3})}, {{"depth", int64_t{4}}});
  CHECK_THAT(e, Contains("9") && Contains("[1, 0]"));
  CHECK_THAT(errorOf("one_hot", {ids({2}, {-2, 0})}, {{"depth", int64_t{4}}}), Contains("-2"));
  CHECK_THAT(shapeErrorOf("one_hot", {{DType::F32, {2}}}, {{"depth", int64_t{4}}}), Contains("f32[2]"));
  CHECK_THAT(shapeErrorOf("one_hot", {{DType::I32, {2}}}, {{"depth", int64_t{0}}}), Contains("depth"));
  CHECK_FALSE(inferOp("one_hot", {{DType::I32, {2}}}));  // depth is required
}

TEST_CASE("argmax", "[ops]") {
  // Ties resolve to the first index.
  Tensor x = tensor({3, 4}, {1.0, 5.0, 5.0, 2.0, 7.0, 7.0, 0.0, 7.0, -1.0, -3.0, -0.5, -0.5});
  Tensor last = evalOp("argmax", {x});
  CHECK(last.type == TensorType{DType::I32, {3}});
  CHECK(last.data == std::vector<double>{1, 0, 2});
  Tensor first = evalOp("argmax", {x}, {{"axis", int64_t{0}}});
  CHECK(first.type == TensorType{DType::I32, {4}});
  CHECK(first.data == std::vector<double>{1, 1, 0, 1});

  // A middle axis of a rank-3 tensor: x[i, j, k] = values below, reduce j.
  Tensor x3 = tensor({2, 3, 2}, {0, 9, 4, 1, 2, 1, 5, 0, 5, 3, 1, 8});
  Tensor mid = evalOp("argmax", {x3}, {{"axis", int64_t{1}}});
  CHECK(mid.type == TensorType{DType::I32, {2, 2}});
  CHECK(mid.data == std::vector<double>{1, 0, 0, 2});

  CHECK(evalOp("argmax", {ids({3}, {4, 6, 6})}).data == std::vector<double>{1});
  CHECK_THAT(shapeErrorOf("argmax", {{DType::F32, {2, 3}}}, {{"axis", int64_t{-3}}}),
             Contains("argmax") && Contains("f32[2, 3]"));
  CHECK_THAT(shapeErrorOf("argmax", {{DType::F32, {2, 0}}}), Contains("f32[2, 0]"));
}

TEST_CASE("accuracy", "[ops]") {
  Tensor y = tensor({4, 3}, {0.1, 0.8, 0.1, 0.3, 0.1, 0.6, 0.2, 0.5, 0.3, 0.9, 0.05, 0.05});
  Tensor labels = ids({4}, {1, 2, 0, 0});
  CHECK(scalar("accuracy", {y, labels}) == Approx(0.75));
  Tensor oneHot = evalOp("one_hot", {labels}, {{"depth", int64_t{3}}});
  CHECK(scalar("accuracy", {y, oneHot}) == Approx(0.75));
  CHECK(scalar("accuracy", {tensor({3}, {0.1, 0.2, 0.7}), ids({}, {2})}) == 1.0);

  CHECK_THAT(errorOf("accuracy", {y, ids({4}, {1, 2, 3, 0})}), Contains("3") && Contains("row 2"));
  CHECK_THAT(shapeErrorOf("accuracy", {{DType::F32, {4, 3}}, {DType::I32, {3}}}),
             Contains("accuracy") && Contains("f32[4, 3]") && Contains("i32[3]"));
}

// ---- lowerings: every evalOp also checks the op's loop-IR kernel against
// the reference (tests/op_test_util.h); these cases cover its shapes. ----

namespace {

Tensor randomLike(Shape s, uint64_t seed, double scale = 2.0) {
  Rng rng(seed);
  Tensor t(TensorType{DType::F32, std::move(s)});
  for (double& v : t.data) v = scale * rng.uniform(-1, 1);
  return t;
}

// The op's lowered kernel run by the loop-IR evaluator, for inputs the
// reference rejects (out-of-range labels).
std::vector<float> runLowered(std::string_view op, const std::vector<Tensor>& in, Attrs attrs = {}) {
  Graph g;
  std::vector<ValueId> idsV;
  for (size_t i = 0; i < in.size(); ++i) {
    auto id = g.addSource("input", "in" + std::to_string(i), in[i].type);
    REQUIRE(id);
    idsV.push_back(*id);
  }
  auto id = g.add(op, idsV, std::move(attrs));
  REQUIRE(id);
  auto k = lowerNode(g, *id, false);
  REQUIRE(k);
  std::vector<std::vector<float>> bufs;
  for (const loop::Buffer& b : k->buffers) bufs.emplace_back(static_cast<size_t>(b.size), -777.0f);
  for (size_t i = 0; i < in.size(); ++i)
    for (size_t j = 0; j < in[i].data.size(); ++j) bufs[i][j] = static_cast<float>(in[i].data[j]);
  std::vector<float*> ptrs;
  for (auto& b : bufs) ptrs.push_back(b.data());
  loop::evaluate(*k, ptrs);
  return bufs[in.size()];
}

}  // namespace

TEST_CASE("lowered softmax and log_softmax along every axis of a 3-D tensor", "[ops]") {
  Tensor x = randomLike({3, 4, 5}, 1, 5.0);
  for (int64_t axis : {0, 1, 2, -1}) {
    INFO("axis " << axis);
    evalOp("softmax", {x}, {{"axis", axis}});
    evalOp("log_softmax", {x}, {{"axis", axis}});
  }
  // A NaN poisons its own slice only.
  x.data[7] = std::nan("");
  for (int64_t axis : {0, 1, 2}) {
    const Tensor s = evalOp("softmax", {x}, {{"axis", axis}});
    int64_t nans = 0;
    for (double v : s.data) nans += std::isnan(v);
    CHECK(nans == x.shape()[static_cast<size_t>(axis)]);
  }
  evalOp("softmax", {tensor({1}, {3.0})});
  evalOp("log_softmax", {randomLike({2, 1, 3}, 2)}, {{"axis", int64_t{1}}});
}

TEST_CASE("lowered softmax_cross_entropy and its gradient, ids and probabilities", "[ops]") {
  const Tensor z = randomLike({7, 5}, 3, 4.0);
  const Tensor labels = ids({7}, {0, 4, 2, 2, 1, 3, 0});
  Tensor probs = randomLike({7, 5}, 4, 1.0);
  for (int64_t r = 0; r < 7; ++r) {  // rows of non-negative weights summing to 1, some exactly 0
    double s = 0;
    for (int64_t c = 0; c < 5; ++c) s += probs.data[r * 5 + c] = (c + r) % 3 == 0 ? 0.0 : std::abs(probs.data[r * 5 + c]);
    for (int64_t c = 0; c < 5; ++c) probs.data[r * 5 + c] /= s;
  }
  for (const Tensor& t : {labels, probs}) {
    evalOp("softmax_cross_entropy", {z, t});
    evalOp("softmax_cross_entropy_grad", {z, t});
    evalOp("cross_entropy", {evalOp("softmax", {z}), t});
  }
  // A -inf logit where the target is 0 adds 0, not NaN.
  Tensor masked = z;
  masked.data[0] = -std::numeric_limits<double>::infinity();  // class 0 of row 0; probs row 0 has weight 0 there
  REQUIRE(probs.data[0] == 0.0);
  CHECK(std::isfinite(scalar("softmax_cross_entropy", {masked, probs})));
  evalOp("softmax_cross_entropy_grad", {masked, probs});
  // One row as a vector.
  evalOp("softmax_cross_entropy_grad", {tensor({4}, {1.0, -2.0, 0.5, 3.0}), ids({}, {2})});
}

TEST_CASE("lowered losses: long sums, clamps and NaN", "[ops]") {
  // 10007 elements: two blocks of partial sums and a tail.
  const Tensor y = randomLike({10007}, 5), t = randomLike({10007}, 6);
  for (const char* op : {"mse", "sse", "bce_with_logits"}) evalOp(op, {y, t});
  evalOp("l1", {y});
  evalOp("l2", {y});
  Tensor p = randomLike({10007}, 7, 0.5), tp = randomLike({10007}, 8, 0.5);
  // f32-exact probabilities: 1 − p near p = 1 would otherwise amplify the
  // inputs' rounding to f32 far beyond the comparison's tolerance.
  for (double& v : p.data) v = static_cast<float>(v + 0.5);
  for (double& v : tp.data) v = static_cast<float>(v + 0.5);
  evalOp("bce", {p, tp});
  evalOp("bce_grad", {p, tp});
  // Clamped logs at p = 0 and 1 give exactly 0 gradient terms.
  const Tensor edge = tensor({2, 3}, {0.0, 1.0, 0.5, 1e-30, 1.0 - 1e-7, 0.25});
  const Tensor te = tensor({2, 3}, {1.0, 0.0, 0.5, 0.0, 1.0, 1.0});
  evalOp("bce", {edge, te});
  evalOp("bce_grad", {edge, te});
  // NaN propagates as in the reference.
  const Tensor withNaN = tensor({3}, {0.5, std::nan(""), 0.25});
  CHECK(std::isnan(scalar("bce", {withNaN, tensor({3}, {1, 0, 1})})));
  evalOp("bce_grad", {withNaN, tensor({3}, {1, 0, 1})});
  CHECK(std::isnan(scalar("mse", {withNaN, tensor({3}, {1, 0, 1})})));
  evalOp("bce_with_logits", {tensor({4}, {30.0, -30.0, 0.0, 1e-3}), tensor({4}, {1, 1, 0.5, 0})});
  evalOp("l2", {tensor({}, {-3.0})});
}

TEST_CASE("lowered argmax, one_hot and accuracy: first maximum, NaN wins", "[ops]") {
  const double nan = std::nan("");
  const Tensor x = tensor({3, 4}, {1, nan, 3, nan, nan, 5, 5, 1, 2, 2, -1, 2});
  CHECK(evalOp("argmax", {x}).data == std::vector<double>{1, 0, 0});
  CHECK(evalOp("argmax", {x}, {{"axis", int64_t{0}}}).data == std::vector<double>{1, 0, 1, 0});
  const Tensor x3 = randomLike({3, 4, 5}, 9);
  for (int64_t axis : {0, 1, 2}) evalOp("argmax", {x3}, {{"axis", axis}});
  evalOp("one_hot", {ids({2, 3}, {0, 4, 2, 1, 1, 3})}, {{"depth", int64_t{5}}});
  // accuracy: a NaN row predicts its first NaN, ties go to the first maximum.
  const Tensor yv = tensor({3, 4}, {1, nan, 3, 0, 2, 2, 1, 0, 0, 0, 0, 1});
  CHECK(scalar("accuracy", {yv, ids({3}, {1, 1, 3})}) == Approx(2.0 / 3.0));
  CHECK(scalar("accuracy", {yv, tensor({3, 4}, {0, 1, 0, 0, 0.5, 0.5, 0, 0, 0, 0, 0, 1})}) == Approx(1.0));
}

TEST_CASE("lowered class ops never read out of bounds for out-of-range labels", "[ops]") {
  // The runtime validates labels before feeding; a bad id here matches no
  // class instead of addressing memory.
  CHECK(runLowered("one_hot", {ids({2}, {9, 1})}, {{"depth", int64_t{3}}}) == std::vector<float>{0, 0, 0, 0, 1, 0});
  const Tensor z = tensor({2, 3}, {1, 2, 3, 3, 2, 1});
  const double good = scalar("softmax_cross_entropy", {tensor({1, 3}, {3, 2, 1}), ids({1}, {0})});
  // Row 0's id 7 contributes nothing; the mean still divides by 2 rows.
  CHECK(runLowered("softmax_cross_entropy", {z, ids({2}, {7, 0})})[0] == Approx(good / 2).epsilon(1e-6));
  const std::vector<float> g = runLowered("softmax_cross_entropy_grad", {z, ids({2}, {-1, 0})});
  for (float v : g) CHECK(std::isfinite(v));
  CHECK(std::isfinite(runLowered("cross_entropy", {tensor({2, 3}, {0.2, 0.3, 0.5, 0.1, 0.1, 0.8}), ids({2}, {3, 2})})[0]));
  CHECK(runLowered("accuracy", {z, ids({2}, {5, 0})})[0] == Approx(0.5));
}

// ---- nll, huber, kl_div, label smoothing, any-rank classification -------
// Values from tests/reference/gen_loss_refs.py (PyTorch 1.13, float64).

TEST_CASE("nll from log-probabilities", "[ops]") {
  Tensor labels = ids({3}, {3, 1, 2});
  Tensor lp = evalOp("log_softmax", {X});
  CHECK(scalar("nll", {lp, labels}) == Approx(0.773997909).epsilon(1e-8));  // = softmax_cross_entropy
  CHECK(scalar("nll", {X, labels}) == Approx(-1.833333333).epsilon(1e-8));  // any scores, as F.nll_loss
  CHECK(scalar("nll", {tensor({4}, {-1, -2, -3, -4}), ids({}, {2})}) == 3);
  CHECK_THAT(errorOf("nll", {X, ids({3}, {0, 4, 0})}), Contains("nll") && Contains("4") && Contains("row 1"));
  CHECK_THAT(shapeErrorOf("nll", {{DType::F32, {3, 4}}, {DType::F32, {3, 4}}}),
             Contains("nll") && Contains("f32[3, 4]") && Contains("i32[3]"));
}

TEST_CASE("huber", "[ops]") {
  Tensor a = tensor({2, 3}, {0.5, -1.0, 2.0, 3.0, 0.25, -0.75});
  Tensor b = tensor({2, 3}, {1.0, 1.0, 1.0, 2.0, -0.5, 0.0});
  CHECK(scalar("huber", {a, b}) == Approx(0.53125).epsilon(1e-10));
  CHECK(evalOp("huber", {a, b}, {{"delta", 0.5}}).data[0] == Approx(0.375).epsilon(1e-10));
  CHECK(evalOp("huber", {a, b}, {{"delta", 3.0}}).data[0] == Approx(0.6145833333).epsilon(1e-9));
  // Broadcast-free odd shape, NaN propagates.
  Tensor n = evalOp("huber", {tensor({1}, {std::nan("")}), tensor({1}, {0})});
  CHECK(std::isnan(n.data[0]));
  CHECK_THAT(errorOf("huber", {a, b}, {{"delta", 0.0}}), Contains("huber") && Contains("delta") && Contains("0"));
  CHECK_THAT(errorOf("huber", {a, b}, {{"delta", -1.0}}), Contains("delta must be a positive number, got -1"));
  CHECK_THAT(shapeErrorOf("huber", {{DType::F32, {2, 3}}, {DType::F32, {3, 2}}}),
             Contains("huber") && Contains("f32[2, 3]") && Contains("f32[3, 2]"));
}

TEST_CASE("kl_div, batchmean", "[ops]") {
  Tensor p = tensor({3, 4}, {0.1, 0.2, 0.3, 0.4, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0});
  CHECK(scalar("kl_div", {evalOp("log_softmax", {X}), p}) == Approx(0.7663307736).epsilon(1e-9));
  CHECK(scalar("kl_div", {X, p}) == Approx(-1.841000469).epsilon(1e-9));
  // A zero target with a -inf log-probability adds 0 (torch's xlogy).
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(scalar("kl_div", {tensor({1, 2}, {-inf, 0}), tensor({1, 2}, {0, 1})}) == 0);
  CHECK_THAT(shapeErrorOf("kl_div", {{DType::F32, {}}, {DType::F32, {}}}), Contains("kl_div") && Contains("batch"));
  CHECK_THAT(shapeErrorOf("kl_div", {{DType::F32, {3, 4}}, {DType::F32, {4}}}),
             Contains("f32[3, 4]") && Contains("f32[4]"));
}

TEST_CASE("softmax_cross_entropy with label smoothing", "[ops]") {
  Tensor labels = ids({3}, {3, 1, 2});
  Tensor probs = tensor({3, 4}, {0.1, 0.2, 0.3, 0.4, 1.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.0});
  auto smoothed = [&](const Tensor& t, double e) {
    return evalOp("softmax_cross_entropy", {X, t}, {{"label_smoothing", e}}).data[0];
  };
  CHECK(smoothed(labels, 0.1) == Approx(0.9094145757).epsilon(1e-9));
  CHECK(smoothed(probs, 0.2) == Approx(1.564831242).epsilon(1e-9));
  CHECK(smoothed(labels, 1.0) == Approx(2.128164576).epsilon(1e-9));
  CHECK(smoothed(labels, 0.0) == Approx(0.773997909).epsilon(1e-8));
  CHECK_THAT(errorOf("softmax_cross_entropy", {X, labels}, {{"label_smoothing", 1.5}}),
             Contains("softmax_cross_entropy: label_smoothing must be in [0, 1], got 1.5"));
  CHECK_THAT(errorOf("softmax_cross_entropy", {X, labels}, {{"label_smoothing", -0.1}}), Contains("got -0.1"));
}

TEST_CASE("class ops take logits of any rank: [batch, T, K] with ids [batch, T]", "[ops]") {
  const Tensor z3 = tensor({2, 2, 3}, {0.5, -1.0, 2.0, 1.5, 0.0, -0.5, -2.0, 1.0, 0.25, 0.0, 3.0, 1.0});
  const Tensor t3 = ids({2, 2}, {2, 0, 1, 1});
  CHECK(scalar("softmax_cross_entropy", {z3, t3}) == Approx(0.2844098041).epsilon(1e-9));
  CHECK(evalOp("softmax_cross_entropy", {z3, t3}, {{"label_smoothing", 0.1}}).data[0] ==
        Approx(0.4239931375).epsilon(1e-9));
  requireClose(evalOp("softmax_cross_entropy_grad", {z3, t3}, {{"label_smoothing", 0.1}}), {2, 2, 3},
               {0.0354892647, 0.001444809984, -0.03693407469, -0.04930215226, 0.03272957357, 0.01657257868,
                -0.0001562565131, -0.06909235494, 0.06924861145, 0.0021691832, -0.02238464971, 0.02021546651});
  CHECK(scalar("nll", {evalOp("log_softmax", {z3}), t3}) == Approx(0.2844098041).epsilon(1e-9));
  // Probabilities of the logits' shape; one-hot rows agree with the ids.
  Tensor hot = evalOp("one_hot", {t3}, {{"depth", int64_t{3}}});
  CHECK(scalar("softmax_cross_entropy", {z3, hot}) == Approx(0.2844098041).epsilon(1e-9));
  CHECK(scalar("cross_entropy", {evalOp("softmax", {z3}), t3}) == Approx(0.2844098041).epsilon(1e-6));
  // argmax rows are [2, 0], [1, 1]: labels [2, 1], [1, 1] get 3 of 4 (by hand).
  CHECK(scalar("accuracy", {z3, t3}) == 1);
  CHECK(scalar("accuracy", {z3, ids({2, 2}, {2, 1, 1, 1})}) == 0.75);
  // Rank 4, odd sizes: the same as the rows flattened to [N, K].
  Tensor z4(TensorType{DType::F32, {1, 3, 1, 5}});
  Rng rng(3);
  for (double& v : z4.data) v = rng.uniform(-2, 2);
  Tensor t4 = ids({1, 3, 1}, {4, 0, 2});
  Tensor flat = z4;
  flat.type.shape = {3, 5};
  CHECK(scalar("softmax_cross_entropy", {z4, t4}) ==
        Approx(scalar("softmax_cross_entropy", {flat, ids({3}, {4, 0, 2})})).epsilon(1e-12));
  CHECK_THAT(errorOf("softmax_cross_entropy", {z3, ids({2, 2}, {2, 0, 3, 1})}), Contains("row 2"));
}
