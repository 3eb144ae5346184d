// The optimizer's passes (compiler/passes/): each rewrite on small graphs,
// golden dumps of the optimized train steps, fusions firing only where
// legal, and fused programs against the interpreter and against unfused
// programs on random convolution shapes.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/frontend.h"
#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "compiler/passes/pipeline.h"
#include "runtime/rng.h"
#include "test_util.h"

using namespace nnc;

namespace {

Elaborated compile(SourceManager& sm, const std::string& text) {
  auto m = cli::compileSource(sm, "test.nn", text);
  if (!m) FAIL(sm.render(m.error()));
  return m.take();
}

Elaborated loadFile(SourceManager& sm, const std::string& rel, int64_t batch = 0) {
  std::ifstream in(test::sourcePath(rel));
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  ElaborateOptions eo;
  if (batch) eo.overrides["batch"] = batch;
  auto m = cli::compileSource(sm, rel, text.str(), eo);
  if (!m) FAIL(sm.render(m.error()));
  return m.take();
}

std::vector<ValueId> rootsOf(const Graph& g) {
  std::vector<ValueId> r;
  for (const auto& [_, v] : g.outputs) r.push_back(v);
  if (g.loss != kNoValue) r.push_back(g.loss);
  return r;
}

// The ops of a graph's compute nodes, in order, e.g. "conv2d_fused maxpool2d_relu ...".
std::string opsOf(const Graph& g) {
  std::string s;
  for (const Node& n : g.nodes)
    if (n.op->kind == OpKind::Compute) {
      if (!s.empty()) s += ' ';
      s += n.op->name;
    }
  return s;
}

struct TrainGraph {
  TrainStep step;
  std::vector<ValueId> roots;
};

TrainGraph trainGraph(const Elaborated& m) {
  auto step = buildTrainStep(m.graph, m.train);
  if (!step) FAIL(step.error().message);
  const std::vector<ValueId> roots = rootsOf({step->grads.graph.loss}, step->lowering());
  return {step.take(), roots};
}

Optimized optimize(const Graph& g, const std::vector<ValueId>& roots, const PassOptions& opt = {}) {
  auto o = optimizeGraph(g, roots, opt);
  if (!o) FAIL(o.error().message);
  return o.take();
}

}  // namespace

TEST_CASE("simplify: identities disappear, casts that broadcast stay", "[passes]") {
  SourceManager sm;
  Elaborated m = compile(sm, R"(model m {
    input x: f32[2, 3]
    input s: f32[]
    a = x * 1
    b = 0 + a
    c = b / 1
    d = -(-c)
    e = transpose(transpose(d))
    f = reshape(reshape(e, shape = [3, 2]), shape = [6])
    g = s * 1 + x - 0
    output y = f
    output z = g
  })");
  const Graph& g = m.graph;
  const Optimized o = optimize(g, rootsOf(g));
  // f = reshape(x) is all that is left of the chain; s·1 + x keeps its add
  // (the result broadcasts s to x's shape); g − 0 stays, an output keeps
  // a node of its own.
  CHECK(opsOf(o.graph) == "reshape add sub");
  CHECK(o.graph.node(o.graph.node(o.map[g.findByName("f")]).inputs[0]).name == "x");
  // And the values are unchanged.
  TensorMap feeds;
  feeds["x"] = Tensor(g.type(g.findByName("x")), {1, -2, 3, 4, 5.5, -6});
  feeds["s"] = Tensor(g.type(g.findByName("s")), {0.25});
  auto before = interpret(g, feeds, EvalOptions{true});
  auto after = interpret(o.graph, feeds, EvalOptions{true});
  REQUIRE(before);
  REQUIRE(after);
  for (const char* name : {"f", "g"})
    CHECK((*after)[static_cast<size_t>(o.map[g.findByName(name)])].data ==
          (*before)[static_cast<size_t>(g.findByName(name))].data);
}

TEST_CASE("fold, cse and dce", "[passes]") {
  SourceManager sm;
  Elaborated m = compile(sm, R"(model m {
    input x: f32[4]
    k = exp([0, 1, 2, 3]) * 2
    a = relu(x) + k
    b = relu(x) + k
    unused = tanh(x)
    output y = a * b
  })");
  const Graph& g = m.graph;
  const Optimized o = optimize(g, rootsOf(g));
  // exp and ·2 folded into a const; the second relu(x) + k merged into the
  // first; tanh dropped.
  CHECK(opsOf(o.graph) == "relu add mul");
  const Node& y = o.graph.node(o.map[g.findByName("y")]);
  CHECK(y.inputs[0] == y.inputs[1]);
  const ValueId k = o.map[g.findByName("k")];
  REQUIRE(o.graph.node(k).op->name == "const");
  const std::vector<double>& folded = o.graph.node(k).attrs.floats("value");
  for (int i = 0; i < 4; ++i) CHECK(folded[static_cast<size_t>(i)] == static_cast<double>(static_cast<float>(2 * std::exp(i))));
}

// With the GEMM forced (it computes every convolution): the dumps do not
// follow the runtime's choice per shape, which its kernels' tuning moves.
PassOptions gemmForced() {
  PassOptions o;
  o.convAlgo = "gemm";
  return o;
}

TEST_CASE("golden: the optimized train steps of simple_convnet and mnist_mlp", "[passes][golden]") {
  for (const char* file : {"simple_convnet", "mnist_mlp"}) {
    SourceManager sm;
    Elaborated m = loadFile(sm, fmt::format("examples/{}.nn", file));
    TrainGraph t = trainGraph(m);
    const Optimized o = optimize(t.step.grads.graph, t.roots, gemmForced());
    CHECK(test::matchesGolden(printGraph(o.graph), fmt::format("{}.optimized", file)));
  }
}

TEST_CASE("fusions fire only where legal", "[passes]") {
  SourceManager sm;
  SECTION("relu read elsewhere: its pooling is not fused, the relu goes into the convolution") {
    Elaborated m = compile(sm, R"(model m {
      input x: f32[2, 1, 6, 6]
      c = relu(conv2d(x, filters = 2, kernel = 3))
      p = maxpool2d(c, kernel = 2)
      output act = c
      output pooled = p
    })");
    const Optimized o = optimize(m.graph, rootsOf(m.graph));
    REQUIRE(opsOf(o.graph) == "conv2d_fused maxpool2d");
    CHECK(o.graph.node(o.map[m.graph.findByName("c")]).attrs.s("act") == "relu");
  }
  SECTION("relu then pooling, nothing else reads the convolution: the pooling goes into it") {
    Elaborated m = compile(sm, R"(model m {
      input x: f32[2, 1, 6, 6]
      output pooled = maxpool2d(relu(conv2d(x, filters = 2, kernel = 3)), kernel = 2)
    })");
    const Optimized o = optimize(m.graph, rootsOf(m.graph));
    REQUIRE(opsOf(o.graph) == "conv2d_pool_fused");
    const Node& p = o.graph.node(o.map[m.graph.findByName("pooled")]);
    CHECK(p.attrs.s("act") == "relu");
    CHECK(p.attrs.i("pool") == 2);
    CHECK(typeString(p.type) == "f32[2, 2, 2, 2]");
  }
  SECTION("relu then a pooling whose windows overlap: only the relu goes into the pooling") {
    Elaborated m = compile(sm, R"(model m {
      input x: f32[2, 1, 6, 6]
      output pooled = maxpool2d(relu(conv2d(x, filters = 2, kernel = 3)), kernel = 2, stride = 1)
    })");
    const Optimized o = optimize(m.graph, rootsOf(m.graph));
    CHECK(opsOf(o.graph) == "conv2d_fused maxpool2d_relu");
  }
  SECTION("SGD: a weight whose gradient is a product read only by its step is updated in the GEMM") {
    SourceManager sm2;
    Elaborated m = loadFile(sm2, "examples/init/relu_he.nn");  // SGD, three dense layers
    TrainGraph t = trainGraph(m);
    const Optimized o = optimize(t.step.grads.graph, t.roots);
    const std::string ops = opsOf(o.graph);
    size_t updates = 0;
    for (size_t at = ops.find("matmul_update"); at != std::string::npos; at = ops.find("matmul_update", at + 1)) ++updates;
    CHECK(updates == 3);  // the three weights; the biases' gradients are sums
    const Node& w1 = o.graph.node(o.map[t.step.grads.graph.findByName("W1.next")]);
    CHECK(w1.op->name == "matmul_update");
    CHECK(w1.attrs.i("transpose_a") == 1);
    PassOptions off;
    off.disabled.insert("update");
    CHECK(opsOf(optimize(t.step.grads.graph, t.roots, off).graph).find("matmul_update") == std::string::npos);
  }
  SECTION("Adam, or a gradient read twice: no update in the GEMM") {
    SourceManager sm2;
    Elaborated adam = loadFile(sm2, "examples/mnist_mlp.nn");
    TrainGraph t = trainGraph(adam);
    CHECK(opsOf(optimize(t.step.grads.graph, t.roots).graph).find("matmul_update") == std::string::npos);
    Elaborated m = compile(sm, R"(model m {
      input x: f32[3, 4]
      input d: f32[3, 5]
      input lr: f32[]
      param W: f32[4, 5] = he()
      g = matmul(x, d, transpose_a = 1)
      output next = W - lr * g
      output norm = sum(g * g)
    })");
    const Optimized o = optimize(m.graph, rootsOf(m.graph));
    CHECK(opsOf(o.graph).find("matmul_update") == std::string::npos);
  }
  SECTION("training: the relu's gradient reads the convolution, which keeps its store") {
    SourceManager sm2;
    Elaborated m = loadFile(sm2, "examples/simple_convnet.nn");
    TrainGraph t = trainGraph(m);
    const Optimized o = optimize(t.step.grads.graph, t.roots);
    const std::string ops = opsOf(o.graph);
    CHECK(ops.find("conv2d_pool_fused") == std::string::npos);
    CHECK(ops.find("maxpool2d_relu ") != std::string::npos);
  }
  SECTION("a pre-activation read by another op keeps its own store") {
    Elaborated m = compile(sm, R"(model m {
      input x: f32[3, 4]
      param W: f32[4, 5] = he()
      param b: f32[5] = zeros()
      z = x @ W + b
      output h = relu(z)
      output s = sigmoid(z)
    })");
    const Optimized o = optimize(m.graph, rootsOf(m.graph));
    CHECK(opsOf(o.graph) == "matmul_fused relu sigmoid");
    CHECK(o.graph.node(o.graph.node(o.map[m.graph.findByName("h")]).inputs[0]).attrs.s("act") == "none");
  }
  SECTION("a bias that is not one per column is an ordinary add") {
    Elaborated m = compile(sm, R"(model m {
      input x: f32[3, 4]
      param W: f32[4, 5] = he()
      param b: f32[3, 1] = zeros()
      output h = tanh(x @ W + b)
    })");
    const Optimized o = optimize(m.graph, rootsOf(m.graph));
    CHECK(opsOf(o.graph) == "matmul add tanh");
  }
  SECTION("conv + activation goes into the convolution's epilogue") {
    Elaborated m = compile(sm, R"(model m {
      input x: f32[2, 3, 7, 5]
      output y = tanh(conv2d(x, filters = 4, kernel = 3, pad = 1))
    })");
    const Optimized o = optimize(m.graph, rootsOf(m.graph));
    REQUIRE(opsOf(o.graph) == "conv2d_fused");
    CHECK(o.graph.nodes.back().attrs.s("act") == "tanh");
  }
  SECTION("--no-fuse and -O0 switch fusions off") {
    Elaborated m = loadFile(sm, "examples/simple_convnet.nn");
    TrainGraph t = trainGraph(m);
    PassOptions noConv;
    noConv.disabled = {"conv"};
    CHECK(opsOf(optimize(t.step.grads.graph, t.roots, noConv).graph).find("conv2d_fused") == std::string::npos);
    CHECK(opsOf(optimize(t.step.grads.graph, t.roots, PassOptions::unfused()).graph).find("fused") == std::string::npos);
    PassOptions o0;
    o0.optimize = false;
    CHECK(optimize(t.step.grads.graph, t.roots, o0).graph.size() == t.step.grads.graph.size());
  }
}

TEST_CASE("fused ops' reference rules equal the ops they replace", "[passes]") {
  // The interpreter on the optimized train step against the interpreter on
  // the original (f64): fusion changes no value.
  for (const char* file : {"simple_convnet", "mnist_mlp"}) {
    INFO(file);
    SourceManager sm;
    Elaborated m = loadFile(sm, fmt::format("examples/{}.nn", file), 3);
    TrainGraph t = trainGraph(m);
    const Graph& g = t.step.grads.graph;
    const Optimized o = optimize(g, t.roots);
    TensorMap feeds = randomFeeds(g, 3);
    auto params = initParams(g, 42);
    REQUIRE(params);
    for (auto& [k, v] : *params) feeds[k] = v;
    auto want = interpret(g, feeds, EvalOptions{true, true}, t.roots);
    auto got = interpret(o.graph, feeds, EvalOptions{true, true});
    REQUIRE(want);
    REQUIRE(got);
    for (ValueId r : t.roots) {
      const Tensor &a = (*want)[static_cast<size_t>(r)], &b = (*got)[static_cast<size_t>(o.map[static_cast<size_t>(r)])];
      REQUIRE(a.data.size() == b.data.size());
      for (size_t i = 0; i < a.data.size(); ++i) REQUIRE(std::abs(a.data[i] - b.data[i]) <= 1e-12 + 1e-10 * std::abs(a.data[i]));
    }
  }
}

namespace {

void fillSlot(jit::CompiledProgram& p, ValueId v, const Tensor& t) {
  float* d = p.data(v);
  if (!d) return;
  for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
}

}  // namespace

TEST_CASE("fused and unfused train steps agree on random convolution shapes", "[passes][conv]") {
  // Two convolutions (the second needs the input gradient, conv_transpose2d)
  // with random geometry: stride 1 or 2 per side, padding 0..2, 1×1 kernels
  // and kernels as large as the image, groups, non-square images.
  Rng rng(2024);
  for (int trial = 0; trial < 14; ++trial) {
    const int64_t n = 1 + static_cast<int64_t>(rng.below(3)), groups = 1 + static_cast<int64_t>(rng.below(2));
    const int64_t c = groups * (1 + static_cast<int64_t>(rng.below(3))), f1 = groups * (1 + static_cast<int64_t>(rng.below(3)));
    const int64_t h = 3 + static_cast<int64_t>(rng.below(8)), w = 3 + static_cast<int64_t>(rng.below(8));
    const int64_t kh = trial == 0 ? h : trial == 1 ? 1 : 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(std::min<int64_t>(h, 5))));
    const int64_t kw = trial == 0 ? w : trial == 1 ? 1 : 1 + static_cast<int64_t>(rng.below(static_cast<uint64_t>(std::min<int64_t>(w, 5))));
    const int64_t sh = 1 + static_cast<int64_t>(rng.below(2)), sw = 1 + static_cast<int64_t>(rng.below(2));
    const int64_t ph = trial == 0 ? 0 : static_cast<int64_t>(rng.below(3)), pw = trial == 0 ? 0 : static_cast<int64_t>(rng.below(3));
    if (ph >= kh || pw >= kw) continue;  // a window entirely in padding is legal but uninteresting
    const std::string act = trial % 3 == 0 ? "relu" : trial % 3 == 1 ? "tanh" : "sigmoid";
    const std::string text = fmt::format(R"(model m {{
      input x: f32[{n}, {c}, {h}, {w}]
      a = {act}(conv2d(x, filters = {f1}, kernel = [{kh}, {kw}], stride = [{sh}, {sw}], pad = [{ph}, {pw}], groups = {g}))
      y = conv2d(a, filters = 2, kernel = 1, pad = 1)
      loss = l2(y)
    }}
    train m {{ optimizer = sgd(lr = 0.05) }})",
                                         fmt::arg("n", n), fmt::arg("c", c), fmt::arg("h", h), fmt::arg("w", w),
                                         fmt::arg("act", act), fmt::arg("f1", f1), fmt::arg("kh", kh), fmt::arg("kw", kw),
                                         fmt::arg("sh", sh), fmt::arg("sw", sw), fmt::arg("ph", ph), fmt::arg("pw", pw),
                                         fmt::arg("g", groups));
    INFO(text);
    SourceManager sm;
    auto m = cli::compileSource(sm, "conv.nn", text);
    if (!m) FAIL(sm.render(m.error()));
    TrainGraph t = trainGraph(*m);
    const Graph& g = t.step.grads.graph;
    TensorMap feeds = randomFeeds(g, static_cast<uint64_t>(trial));
    auto params = initParams(g, 42);
    REQUIRE(params);
    for (auto& [k, v] : *params) feeds[k] = v;
    feeds[g.node(t.step.lr).name] = Tensor(g.type(t.step.lr), {0.05});
    std::vector<ValueId> targets = {g.loss};
    for (auto [_, next] : t.step.updates) targets.push_back(next);
    auto want = interpret(g, feeds, EvalOptions{false, true}, targets);
    REQUIRE(want);
    std::vector<std::vector<float>> results;
    for (const PassOptions& passes : {PassOptions{}, PassOptions::unfused()}) {
      jit::CompileOptions co;
      co.passes = passes;
      auto cp = jit::CompiledProgram::create(g, {g.loss}, t.step.lowering(), co);
      if (!cp) FAIL(cp.error().message);
      CHECK((opsOf((*cp)->optimizedGraph()).find("conv2d_fused") != std::string::npos) == passes.enabled("conv"));
      for (const auto& [name, v] : feeds) fillSlot(**cp, g.findByName(name), v);
      (*cp)->run();
      std::vector<float> r((*cp)->data(g.loss), (*cp)->data(g.loss) + 1);
      for (auto [param, _] : t.step.updates) r.insert(r.end(), (*cp)->data(param), (*cp)->data(param) + (*cp)->size(param));
      results.push_back(std::move(r));
    }
    std::vector<double> reference = (*want)[static_cast<size_t>(g.loss)].data;
    for (auto [_, next] : t.step.updates) {
      const std::vector<double>& d = (*want)[static_cast<size_t>(next)].data;
      reference.insert(reference.end(), d.begin(), d.end());
    }
    for (const std::vector<float>& r : results) {
      INFO((&r == &results[0] ? "fused" : "unfused"));
      REQUIRE(r.size() == reference.size());
      for (size_t i = 0; i < r.size(); ++i) {
        INFO("element " << i << ": got " << r[i] << ", interpreter " << reference[i]);
        REQUIRE(std::abs(r[i] - reference[i]) <= 1e-5 + 1e-4 * std::abs(reference[i]));
      }
    }
  }
}

TEST_CASE("gelu, its tanh form and silu go into the GEMM's epilogue and compute what the interpreter does",
          "[passes][activations]") {
  // Inputs spread over [-6, 6] reach erf's clamp at ±4 and silu's saturation.
  for (const auto& [call, act] : {std::pair{"gelu(z)", "gelu"}, std::pair{"gelu(z, approximate = \"tanh\")", "gelu_tanh"},
                                   std::pair{"silu(z)", "silu"}}) {
    INFO(call);
    SourceManager sm;
    Elaborated m = compile(sm, fmt::format(R"(model m {{
      input x: f32[37, 19]
      param W: f32[19, 23] = he()
      param b: f32[23] = zeros()
      z = x @ W + b
      output y = {}
    }})",
                                           call));
    const Graph& g = m.graph;
    const Optimized o = optimize(g, rootsOf(g));
    REQUIRE(opsOf(o.graph) == "matmul_fused");
    CHECK(o.graph.nodes.back().attrs.s("act") == act);

    TensorMap feeds = randomFeeds(g, 7);
    for (double& v : feeds.at("x").data) v *= 6;
    auto params = initParams(g, 42);
    REQUIRE(params);
    for (auto& [k, v] : *params) feeds[k] = v;
    const ValueId y = g.findByName("y");
    auto want = interpret(g, feeds, EvalOptions{false, true}, {y});
    REQUIRE(want);
    auto cp = jit::CompiledProgram::create(g, {y}, LowerOptions{});
    if (!cp) FAIL(cp.error().message);
    REQUIRE(opsOf((*cp)->optimizedGraph()) == "matmul_fused");
    for (const auto& [name, v] : feeds) fillSlot(**cp, g.findByName(name), v);
    (*cp)->run();
    const std::vector<double>& ref = (*want)[static_cast<size_t>(y)].data;
    for (size_t i = 0; i < ref.size(); ++i) {
      INFO("element " << i << ": got " << (*cp)->data(y)[i] << ", interpreter " << ref[i]);
      REQUIRE(std::abs((*cp)->data(y)[i] - ref[i]) <= 1e-5 + 1e-4 * std::abs(ref[i]));
    }
  }
  SECTION("a convolution keeps gelu apart: its epilogues apply relu, sigmoid and tanh only") {
    SourceManager sm;
    Elaborated m = compile(sm, R"(model m {
      input x: f32[2, 3, 7, 5]
      output y = gelu(conv2d(x, filters = 4, kernel = 3, pad = 1))
    })");
    CHECK(opsOf(optimize(m.graph, rootsOf(m.graph)).graph) == "conv2d_fused gelu");
  }
}
