#include <catch2/catch.hpp>

#include "compiler/interpreter/interpreter.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::compile;

namespace {
std::vector<double> evalOutput(const Graph& g, const std::string& name, TensorMap feeds = {}) {
  auto vals = interpret(g, feeds);
  if (!vals) FAIL(vals.error().message);
  for (const auto& [n, v] : g.outputs)
    if (n == name) return (*vals)[static_cast<size_t>(v)].data;
  FAIL("no output " << name);
  return {};
}
}  // namespace

TEST_CASE("compile-time integer arithmetic in shapes", "[elaborate]") {
  auto c = compile("model m(b = 3) { input x: f32[b * 2, 4*4*30 // 2, (b + 1) % 3] output y = relu(x) }");
  REQUIRE(c.model);
  CHECK(c.model->graph.type(c.model->graph.inputs[0]).shape == Shape{6, 240, 1});
}

TEST_CASE("model parameters can be overridden", "[elaborate]") {
  auto c = compile("model m(batch = 100) { input x: f32[batch, 3] output y = relu(x) }", {"", {{"batch", 7}}});
  REQUIRE(c.model);
  CHECK(c.model->graph.type(c.model->graph.inputs[0]).shape == Shape{7, 3});
}

TEST_CASE("defs expand and for loops unroll", "[elaborate]") {
  auto c = compile(R"(
def block(x, n) { return relu(dense(x, n)) }
model m(batch = 4) {
  input x: f32[batch, 8]
  h = x
  for i in 0..3 { h = block(h, 5 + i) }
  output y = h
})");
  REQUIRE(c.model);
  const Graph& g = c.model->graph;
  REQUIRE(g.params.size() == 6);
  CHECK(g.node(g.params[0]).name == "dense1.W");
  CHECK(g.type(g.params[0]).shape == Shape{8, 5});
  CHECK(g.type(g.params[2]).shape == Shape{5, 6});
  CHECK(g.type(g.params[4]).shape == Shape{6, 7});
  CHECK(g.type(g.outputs[0].second).shape == Shape{4, 7});
}

TEST_CASE("params declared in a def are prefixed per call", "[elaborate]") {
  auto c = compile(R"(
def affine(x) { param W: f32[2, 2] = he() return x @ W }
model m { input x: f32[1, 2] output y = affine(affine(x)) })");
  REQUIRE(c.model);
  CHECK(c.model->graph.node(c.model->graph.params[0]).name == "affine1.W");
  CHECK(c.model->graph.node(c.model->graph.params[1]).name == "affine2.W");
}

TEST_CASE("simple_convnet: layer sugar shapes and 433,890 params", "[elaborate]") {
  auto c = compile(test::readText(test::sourcePath("examples/simple_convnet.nn")));
  REQUIRE(c.model);
  const Graph& g = c.model->graph;
  CHECK(g.paramCount(true) == 433890);
  CHECK(g.type(g.findByName("conv1.W")).shape == Shape{30, 1, 5, 5});
  CHECK(g.type(g.findByName("fc1.W")).shape == Shape{4320, 100});
  CHECK(g.type(g.findByName("p")).shape == Shape{100, 30, 12, 12});
  CHECK(g.loss != kNoValue);
  REQUIRE(c.model->train);
  CHECK(c.model->train->settings.at("optimizer").kind == "adam");
  CHECK(c.model->train->settings.at("optimizer").args.at("lr").number == 0.001);
}

TEST_CASE("three_layer gives the course notes' values", "[elaborate][interp]") {
  auto c = compile(test::readText(test::sourcePath("examples/three_layer.nn")));
  REQUIRE(c.model);
  // Both from the course notes; the second is its worked example for x = [1.0, 0.5].
  auto y = evalOutput(c.model->graph, "y");
  REQUIRE(y.size() == 2);
  CHECK(y[0] == Approx(0.32882937).margin(1e-6));
  CHECK(y[1] == Approx(0.72300564).margin(1e-6));
  auto y2 = evalOutput(c.model->graph, "y", {{"x", Tensor(TensorType{DType::F32, {2}}, {1.0, 0.5})}});
  CHECK(y2[0] == Approx(0.31682708).margin(1e-6));
  CHECK(y2[1] == Approx(0.69627909).margin(1e-6));
}

TEST_CASE("gates: truth tables of AND, NAND, OR and XOR", "[elaborate][interp]") {
  auto c = compile(test::readText(test::sourcePath("examples/gates.nn")));
  REQUIRE(c.model);
  CHECK(evalOutput(c.model->graph, "AND") == std::vector<double>{0, 0, 0, 1});
  CHECK(evalOutput(c.model->graph, "NAND") == std::vector<double>{1, 1, 1, 0});
  CHECK(evalOutput(c.model->graph, "OR") == std::vector<double>{0, 1, 1, 1});
  CHECK(evalOutput(c.model->graph, "XOR") == std::vector<double>{0, 1, 1, 0});
}

TEST_CASE("dropout is x times a mask, batchnorm creates its statistics", "[elaborate]") {
  auto c = compile("model m { input x: f32[4, 3] output y = batchnorm(dropout(x, 0.25)) }");
  REQUIRE(c.model);
  const Graph& g = c.model->graph;
  CHECK(g.findByName("bn1.running_var") != kNoValue);
  CHECK(g.paramCount(true) == 6);
  CHECK(g.paramCount(false) == 12);
  bool sawMask = false;
  for (const Node& n : g.nodes) sawMask |= n.op->name == "dropout_mask";
  CHECK(sawMask);
}

TEST_CASE("elaboration errors point at the code", "[elaborate][diagnostics]") {
  struct Case {
    const char* src;
    const char* want;
  };
  const Case cases[] = {
      {"model m { input x: f32[2, 3]\n output y = x @ x }",
       "m.nn:2:15: error: matmul: inner dimensions differ: f32[2, 3] @ f32[2, 3]"},
      {"model m { output y = relu(z) }", "m.nn:1:27: error: unknown name 'z'"},
      {"model m { input x: f32[0] output y = x }", "m.nn:1:24: error: dimension must be positive, got 0"},
      {"model m { input x: f32[-3] output y = x }", "dimension must be positive, got -3"},
      {"model m { input x: f32[100000, 100000, 1000] output y = x }", "more than 2^31 elements"},
      {"model m { n = 9223372036854775807 + 1 input x: f32[n] output y = x }", "integer overflow"},
      {"model m { input x: f32[2] h = x for i in 0..100000000 { h = h + x } output y = h }",
       "exceeds the unrolling limit"},
      {"model m { input x: f32[2] h = x for i in 0..2000 { for j in 0..1000 { } } output y = h }", "compile-time work exceeds"},
      {"def f(x) { return f(x) }\nmodel m { input x: f32[2] output y = f(x) }", "calls nested deeper than 64"},
      {"model m { input x: f32[2] loss = x }", "'loss' must be an f32 scalar, got f32[2]"},
      {"model m { param W: f32[2, 2] = [[1, 2], [3]] output y = W }", "1 item at depth 2, expected 2"},
      {"model m { input x: f32[2] output y = conv2d(x, filters = 3, kernel = 3) }",
       "conv2d: input must be [N, C, H, W], got f32[2]"},
      {"model m { input x: f32[2] output y = nosuch(x) }", "unknown function 'nosuch'"},
      {"model m { input x: f32[2] return x }", "'return' belongs in a def"},
      {"model m { input x: f32[2] }", "has neither a loss nor an output"},
      {"model m { input x: f32[2] output y = x } train other { epochs = 1 }", "unknown model 'other'"},
      {"model m { input x: f32[2] output y = x } train m { optimiser = sgd() }", "unknown train setting 'optimiser'"},
      {"model m { input x: f32[2] output y = x } train m { optimizer = adamax() }", "unknown optimizer 'adamax'"},
      {"model m { input x: f32[2] output y = leaky_relu(x, alpha = \"a\") }", "must be a number"},
  };
  for (const Case& c : cases) {
    INFO(c.src);
    auto r = compile(c.src);
    REQUIRE_FALSE(r.model);
    CHECK_THAT(r.diag, Catch::Contains(c.want));
  }
}

TEST_CASE("errors inside a def name the call site", "[elaborate][diagnostics]") {
  auto r = compile("def f(x) { return x @ x }\nmodel m { input x: f32[2, 3]\n output y = f(x) }");
  REQUIRE_FALSE(r.model);
  CHECK(r.diag ==
        "m.nn:1:21: error: matmul: inner dimensions differ: f32[2, 3] @ f32[2, 3]\n"
        "  def f(x) { return x @ x }\n"
        "                      ^\n"
        "m.nn:3:13: note: in 'f' called here\n"
        "   output y = f(x) }\n"
        "              ^\n");
}

// What Elaborated records besides the graph, for the commands that feed data
// and read results.
namespace {
Elaborated compileExample(const std::string& rel, ElaborateOptions opt = {}) {
  auto c = compile(test::readText(test::sourcePath(rel)), opt);
  if (!c.model) FAIL(c.diag);
  return std::move(*c.model);
}
}  // namespace

TEST_CASE("mnist_mlp records its batch parameter, batch axes, scores and the loss's logits", "[elaborate]") {
  const Elaborated m = compileExample("examples/mnist_mlp.nn");
  const Graph& g = m.graph;
  REQUIRE(m.params.size() == 1);
  CHECK(m.params[0].name == "batch");
  CHECK(m.params[0].value == 100);
  CHECK(m.hasBatchParam());
  CHECK(m.param("hidden") == nullptr);
  REQUIRE(g.inputs.size() == 1);
  REQUIRE(g.labels.size() == 1);
  CHECK(m.batchAxis.at(g.inputs[0]) == 0);
  CHECK(m.batchAxis.at(g.labels[0]) == 0);
  CHECK(m.batch == 100);
  CHECK(m.scores == std::vector<ValueId>{g.findByName("probs")});
  CHECK(m.lossScores == g.findByName("logits"));
  CHECK(g.node(m.lossScores).type.shape == Shape{100, 10});
  CHECK(m.perSample.empty());
  CHECK(m.metrics.empty());

  const Elaborated small = compileExample("examples/mnist_mlp.nn", {"", {{"batch", 7}}, {}});
  CHECK(small.params[0].value == 7);
  CHECK(small.batch == 7);
  CHECK(small.graph.type(small.scores.at(0)).shape == Shape{7, 10});
}

TEST_CASE("simple_convnet: the batch axis of an image input", "[elaborate]") {
  const Elaborated m = compileExample("examples/simple_convnet.nn");
  const Graph& g = m.graph;
  CHECK(g.type(g.inputs[0]).shape == Shape{100, 1, 28, 28});
  CHECK(m.batchAxis.at(g.inputs[0]) == 0);
  CHECK(m.batch == 100);
  CHECK(m.scores == std::vector<ValueId>{g.findByName("probs")});
  REQUIRE(m.lossScores != kNoValue);
  CHECK(m.lossScores == g.node(g.loss).inputs[0]);
  CHECK(g.type(m.lossScores).shape == Shape{100, 10});
}

TEST_CASE("a model without a batch parameter takes samples along its leading axis", "[elaborate]") {
  const Elaborated m = compileExample("examples/three_layer.nn");
  const Graph& g = m.graph;
  CHECK(m.params.empty());
  CHECK_FALSE(m.hasBatchParam());
  CHECK(m.batchAxis.at(g.inputs[0]) == 0);
  CHECK(m.batch == 2);
  CHECK(m.scores.empty());  // y is f32[2]: one value per "sample", not a row of scores
  CHECK(m.perSample == std::vector<ValueId>{g.outputs[0].second});
  CHECK(m.lossScores == kNoValue);

  auto c = compile("model lin { input x: f32[1, 2] label t: i32[1] param W: f32[2, 2] = zeros()\n"
                   "  logits = x @ W loss = softmax_cross_entropy(logits, t) output probs = softmax(logits) }");
  REQUIRE(c.model);
  CHECK(c.model->batch == 1);
  CHECK(c.model->batchAxis.at(c.model->graph.labels[0]) == 0);
  CHECK(c.model->scores.size() == 1);
  CHECK(c.model->lossScores == c.model->graph.findByName("logits"));
}

TEST_CASE("the batch axis is the one written `batch`, scalars have none", "[elaborate]") {
  auto c = compile("model m(batch = 4, rate = 0.5) { input x: f32[3, batch] input s: f32[] label t: f32[batch]\n"
                   "  loss = mse(sum(x * s, axis = 0), t) output total = sum(x) }");
  REQUIRE(c.model);
  const Elaborated& m = *c.model;
  CHECK(m.batchAxis.at(m.graph.inputs[0]) == 1);
  CHECK(m.batchAxis.at(m.graph.inputs[1]) == -1);
  CHECK(m.batchAxis.at(m.graph.labels[0]) == 0);
  CHECK(m.batch == 4);
  REQUIRE(m.params.size() == 2);
  CHECK(m.params[0].value == 4);
  CHECK(m.params[1].name == "rate");
  CHECK_FALSE(m.params[1].value.has_value());  // not an integer
  REQUIRE(m.metrics.size() == 1);
  CHECK(m.metrics[0].first == "total");
}

TEST_CASE("binary_addition and conv_anomaly: metrics and per-sample outputs", "[elaborate]") {
  const Elaborated rnn = compileExample("examples/rnn/binary_addition.nn");
  REQUIRE(rnn.params.size() == 3);
  CHECK(rnn.param("steps")->value == 8);
  CHECK(rnn.param("hidden")->value == 16);
  CHECK(rnn.batch == 100);
  CHECK(rnn.batchAxis.at(rnn.graph.labels[0]) == 0);
  REQUIRE(rnn.metrics.size() == 1);
  CHECK(rnn.metrics[0].first == "accuracy");
  CHECK(rnn.lossScores == kNoValue);  // bce_with_logits reads no class scores

  const Elaborated ae = compileExample("examples/autoencoder/conv_anomaly.nn");
  CHECK(ae.graph.labels.empty());
  CHECK(ae.perSample == std::vector<ValueId>{ae.graph.findByName("err")});
  CHECK(ae.scores.empty());
  CHECK(ae.lossScores == kNoValue);
}

TEST_CASE("defaults give model parameters the model has, after overrides", "[elaborate]") {
  ElaborateOptions opt;
  opt.defaults["batch"] = 2;
  CHECK(compileExample("examples/mnist_mlp.nn", opt).batch == 2);
  CHECK(compileExample("examples/three_layer.nn", opt).params.empty());  // no batch: ignored, no error
  opt.overrides["batch"] = 5;
  CHECK(compileExample("examples/mnist_mlp.nn", opt).batch == 5);
}
