#include <catch2/catch.hpp>

#include <regex>

#include "compiler/autodiff/autodiff.h"
#include "compiler/autodiff/gradcheck.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::compile;
using nnc::test::runCli;
using nnc::test::sourcePath;

namespace {
// Evaluates the gradients of a compiled model in f64 with the given feeds.
std::map<std::string, std::vector<double>> gradients(const Graph& g, const TensorMap& feeds) {
  auto gg = differentiate(g);
  if (!gg) FAIL(gg.error().message);
  std::vector<ValueId> targets;
  for (const auto& [_, v] : gg->grads) targets.push_back(v);
  auto vals = interpret(gg->graph, feeds, EvalOptions{true, true, 1}, targets);
  if (!vals) FAIL(vals.error().message);
  std::map<std::string, std::vector<double>> out;
  for (const auto& [name, v] : gg->grads) out[name] = (*vals)[static_cast<size_t>(v)].data;
  return out;
}
Tensor vec(std::vector<double> v) {
  const auto n = static_cast<int64_t>(v.size());
  return Tensor(TensorType{DType::F32, {n}}, std::move(v));
}
}  // namespace

TEST_CASE("the course notes' chain rule: z = t^2, t = x + y gives dz/dx = 2(x + y)", "[autodiff]") {
  auto c = compile("model m { param x: f32[3] = zeros() param y: f32[3] = zeros() t = x + y loss = sum(t * t) }");
  REQUIRE(c.model);
  auto g = gradients(c.model->graph, {{"x", vec({1, 2, -3})}, {"y", vec({0.5, -4, 2})}});
  CHECK(g["x"] == std::vector<double>{3, -4, -2});
  CHECK(g["y"] == std::vector<double>{3, -4, -2});
}

TEST_CASE("sigmoid'(0) = 0.25 and a value used twice sums its contributions", "[autodiff]") {
  auto c = compile("model m { param x: f32[2] = zeros() s = sigmoid(x) loss = sum(s + s * 3) }");
  REQUIRE(c.model);
  auto g = gradients(c.model->graph, {{"x", vec({0, 0})}});
  CHECK(g["x"] == std::vector<double>{1.0, 1.0});  // 4 * 0.25
}

TEST_CASE("broadcast operands get gradients summed back to their shape", "[autodiff]") {
  auto c = compile("model m { param a: f32[2, 3] = zeros() param b: f32[3] = zeros() param s: f32[] = zeros()\n"
                   "loss = sum((a + b) * s) }");
  REQUIRE(c.model);
  Tensor a(TensorType{DType::F32, {2, 3}}, {1, 2, 3, 4, 5, 6});
  auto g = gradients(c.model->graph, {{"a", a}, {"b", vec({10, 20, 30})}, {"s", Tensor(TensorType{DType::F32, {}}, {2})}});
  CHECK(g["a"] == std::vector<double>{2, 2, 2, 2, 2, 2});
  CHECK(g["b"] == std::vector<double>{4, 4, 4});
  CHECK(g["s"] == std::vector<double>{1 + 2 + 3 + 4 + 5 + 6 + 2 * (10 + 20 + 30)});
}

TEST_CASE("L2 weight decay adds lambda * W to the weights' gradients, not the biases'", "[autodiff]") {
  auto c = compile("model m { input x: f32[1, 2] param W: f32[2, 2] = zeros() param b: f32[2] = zeros()\n"
                   "loss = sum(x @ W + b) }");
  REQUIRE(c.model);
  Graph g = c.model->graph;
  REQUIRE(addWeightDecay(g, "l2", 0.5));
  Tensor x(TensorType{DType::F32, {1, 2}}, {1, 2});
  Tensor W(TensorType{DType::F32, {2, 2}}, {1, -2, 3, 4});
  auto gr = gradients(g, {{"x", x}, {"W", W}, {"b", vec({7, 7})}});
  // d sum(x W + b) / dW = x^T 1 = [[1, 1], [2, 2]]; plus 0.5 * W.
  CHECK(gr["W"] == std::vector<double>{1.5, 0, 3.5, 4});
  CHECK(gr["b"] == std::vector<double>{1, 1});
}

TEST_CASE("gradients cannot be asked of integers or through argmax", "[autodiff]") {
  auto c = compile("model m { input x: f32[2, 3] label t: i32[2] param W: f32[3, 3] = he()\n"
                   "loss = sum(one_hot(argmax(x @ W), 3)) }");
  REQUIRE(c.model);
  auto gg = differentiate(c.model->graph);
  REQUIRE_FALSE(gg);
  CHECK_THAT(gg.error().message, Catch::Contains("depends on 'W' only through ops that have no gradient"));
  auto ints = differentiate(c.model->graph, GradOptions{{"t"}});
  REQUIRE_FALSE(ints);
  CHECK_THAT(ints.error().message, Catch::Contains("'t' is i32[2]: integer values have no gradient"));
}

TEST_CASE("nnc grad mnist_mlp: dW1 is a matmul of x transposed with a gradient", "[autodiff][cli][golden]") {
  auto r = runCli({"grad", sourcePath("examples/mnist_mlp.nn")});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(test::matchesGolden(r.out, "mnist_mlp.grad"));
  // The course notes' dW = xT . dout, with x read transposed in place: the
  // backward pass materializes no transpose.
  CHECK(std::regex_search(r.out, std::regex("grad_W1 = matmul\\(%0:x, %[0-9]+, transpose_a=1, transpose_b=0\\)")));
  CHECK_THAT(r.out, !Catch::Contains("transpose("));
}

TEST_CASE("nnc gradcheck passes on mnist_mlp and simple_convnet and on char_transformer", "[autodiff][cli]") {
  for (const char* ex : {"examples/mnist_mlp.nn", "examples/simple_convnet.nn"}) {
    auto r = runCli({"gradcheck", sourcePath(ex)});
    INFO(r.out << r.err);
    CHECK(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\npassed"));
  }
  // The transformer example (embedding, layernorm, fused causal attention,
  // gelu), shrunk to one block over 8 positions.
  auto r = runCli({"gradcheck", sourcePath("examples/transformer/char_transformer.nn"), "--set", "layers=1", "--set",
                   "context=8", "--samples", "3"});
  INFO(r.out << r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("block1.attn.qkv.W") && Catch::Contains("\npassed"));
}

TEST_CASE("gradcheck reports kinks instead of failing on them", "[autodiff]") {
  // relu(x) with x exactly 0: the difference window straddles the kink.
  auto c = compile("model m { param x: f32[3] = [0.0, 1.0, -1.0] loss = sum(relu(x)) }");
  REQUIRE(c.model);
  auto rep = gradCheck(c.model->graph, {});
  REQUIRE(rep);
  REQUIRE(rep->params.size() == 1);
  CHECK(rep->params[0].kinks == 1);
  CHECK(rep->params[0].checked == 2);
  CHECK(rep->ok);
}
