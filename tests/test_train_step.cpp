#include <catch2/catch.hpp>

#include "compiler/interpreter.h"
#include "compiler/train_step.h"
#include "test_util.h"

using namespace nnc;

TEST_CASE("one SGD step: W' = W - lr * dW, computed in the graph", "[train]") {
  auto c = test::compile(R"(
model lin { input x: f32[1, 2] label t: i32[1] param W: f32[2, 2] = zeros() param b: f32[2] = zeros()
            loss = softmax_cross_entropy(x @ W + b, t) }
train lin { optimizer = sgd(lr = 0.5) })");
  REQUIRE(c.model);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE(step);
  REQUIRE(step->updates.size() == 2);
  TensorMap feeds = {{"x", Tensor(TensorType{DType::F32, {1, 2}}, {1, 2})},
                     {"t", Tensor(TensorType{DType::I32, {1}}, {1})}};
  std::vector<ValueId> targets;
  for (auto [p, next] : step->updates) targets.push_back(next);
  auto vals = interpret(step->grads.graph, feeds, EvalOptions{true, true, 1}, targets);
  REQUIRE(vals);
  // With W = 0, b = 0: p = [1/2, 1/2], dlogits = p - onehot(1) = [0.5, -0.5];
  // dW = x^T dlogits = [[0.5, -0.5], [1, -1]], db = [0.5, -0.5]; W' = -0.5 dW, b' = -0.5 db.
  CHECK((*vals)[static_cast<size_t>(step->updates[0].second)].data == std::vector<double>{-0.25, 0.25, -0.5, 0.5});
  CHECK((*vals)[static_cast<size_t>(step->updates[1].second)].data == std::vector<double>{-0.25, 0.25});
  CHECK(step->grads.graph.node(step->updates[0].second).name == "W.next");
}

TEST_CASE("optimizers other than sgd are refused in words for now", "[train]") {
  auto c = test::compile("model m { input x: f32[1, 2] param W: f32[2, 1] = zeros() loss = sum(x @ W) }\n"
                         "train m { optimizer = adam(lr = 0.001) }");
  REQUIRE(c.model);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE_FALSE(step);
  CHECK_THAT(step.error().message, Catch::Contains("optimizer 'adam' is not supported yet"));
}
