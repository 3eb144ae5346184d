// Every example through the JIT against the reference interpreter (f32 mode):
// inference outputs and loss, and a few whole train steps (forward, backward
// and the optimizer update in one native call), params compared after each.
// Batches are shrunk with --set batch=N where a model has the parameter, to
// keep the interpreter's share of the test time small.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/frontend.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "runtime/parallel.h"
#include "runtime/rng.h"

using namespace nnc;

namespace {

struct Example {
  const char* file;
  int64_t batch;  // 0: the model has no batch parameter
  std::vector<std::pair<const char*, int64_t>> shrink = {};  // other model parameters, made small
};

const Example kExamples[] = {{"three_layer.nn", 0},    {"gates.nn", 0},      {"mnist_mlp.nn", 8},
                             {"simple_convnet.nn", 4}, {"multilayer.nn", 8}, {"optimizers/mnist_adam.nn", 8},
                             // Kernels repeated across layers and params: run through one function each.
                             {"blocks/residual.nn", 2}, {"batchnorm/on.nn", 4},
                             // Embeddings, layernorm, fused attention, batched matmul.
                             {"transformer/char_transformer.nn", 2, {{"context", 8}, {"vocab", 11}, {"d", 16}, {"layers", 2}}}};

Elaborated loadExample(const Example& ex, SourceManager& sm) {
  const std::string path = std::string(NNC_SOURCE_DIR) + "/examples/" + ex.file;
  std::ifstream in(path);
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  ElaborateOptions eo;
  if (ex.batch) eo.overrides["batch"] = ex.batch;
  for (const auto& [name, v] : ex.shrink) eo.overrides[name] = v;
  auto m = cli::compileSource(sm, path, text.str(), eo);
  if (!m) FAIL(sm.render(m.error()));
  return m.take();
}

// Deterministic data for every input and label: pixels in [0, 1), class ids
// in range, f32 targets in [0, 1).
TensorMap randomFeeds(const Graph& g, uint64_t seed) {
  Rng rng(seed);
  TensorMap feeds;
  auto fill = [&](ValueId v, bool label) {
    const Node& n = g.node(v);
    Tensor t(n.type);
    if (!label && !n.attrs.floats("example").empty()) return;  // keep the model's own example
    for (double& x : t.data) x = n.type.dtype == DType::I32 ? static_cast<double>(rng.below(10)) : rng.uniform();
    feeds[n.name] = std::move(t);
  };
  for (ValueId v : g.inputs) fill(v, false);
  for (ValueId v : g.labels) fill(v, true);
  return feeds;
}

void requireClose(const std::string& what, const float* got, const Tensor& want, double rtol = 1e-4,
                  double atol = 1e-5) {
  for (size_t i = 0; i < want.data.size(); ++i) {
    INFO(what << "[" << i << "]: JIT " << got[i] << ", interpreter " << want.data[i]);
    REQUIRE(std::abs(got[i] - want.data[i]) <= atol + rtol * std::abs(want.data[i]));
  }
}

void fillSlot(jit::CompiledProgram& p, ValueId v, const Tensor& t) {
  float* d = p.data(v);
  if (!d) return;
  for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
}

}  // namespace

// Each with the optimizer's fusions and with every fusion off.
jit::CompileOptions variant(bool fused) {
  jit::CompileOptions co;
  co.passes = fused ? PassOptions{} : PassOptions::unfused();
  return co;
}

TEST_CASE("jit models: inference matches the interpreter on every example", "[jit][models]") {
  const bool fused = GENERATE(true, false);
  for (const Example& ex : kExamples) {
    DYNAMIC_SECTION(ex.file << (fused ? " fused" : " unfused")) {
      SourceManager sm;
      Elaborated m = loadExample(ex, sm);
      const Graph& g = m.graph;
      std::vector<ValueId> targets;
      for (const auto& [_, v] : g.outputs) targets.push_back(v);
      if (g.loss != kNoValue) targets.push_back(g.loss);
      TensorMap feeds = randomFeeds(g, 7);
      auto params = initParams(g, 42);
      REQUIRE(params);
      for (auto& [k, v] : *params) feeds[k] = v;
      auto want = interpret(g, feeds, EvalOptions{}, targets);
      REQUIRE(want);
      auto cp = jit::CompiledProgram::create(g, targets, LowerOptions{}, variant(fused));
      if (!cp) FAIL(cp.error().message);
      for (ValueId v = 0; v < static_cast<ValueId>(g.size()); ++v)
        if (g.node(v).op->kind == OpKind::Source && g.node(v).op->name != "const")
          fillSlot(**cp, v, (*want)[static_cast<size_t>(v)]);
      (*cp)->run();
      for (ValueId v : targets) requireClose(g.node(v).name, (*cp)->data(v), (*want)[static_cast<size_t>(v)]);
    }
  }
}

TEST_CASE("jit models: three train steps match the interpreter's", "[jit][models]") {
  const bool fused = GENERATE(true, false);
  for (const Example& ex : kExamples) {
    DYNAMIC_SECTION(ex.file << (fused ? " fused" : " unfused")) {
      SourceManager sm;
      Elaborated m = loadExample(ex, sm);
      if (m.graph.loss == kNoValue) continue;
      auto step = buildTrainStep(m.graph, m.train);
      REQUIRE(step);
      const Graph& sg = step->grads.graph;
      auto cp = jit::CompiledProgram::create(sg, {sg.loss}, step->lowering(), variant(fused));
      if (!cp) FAIL(cp.error().message);
      auto params = initParams(sg, 42);  // the optimizer state too (zeros)
      REQUIRE(params);
      for (const auto& [name, t] : *params) fillSlot(**cp, sg.findByName(name), t);
      for (int s = 0; s < 3; ++s) {
        TensorMap feeds = randomFeeds(sg, 100 + static_cast<uint64_t>(s));
        for (auto& [k, v] : *params) feeds[k] = v;
        feeds[sg.node(step->lr).name] = Tensor(sg.type(step->lr), {step->lrAt(s)});
        std::vector<ValueId> targets = {sg.loss};
        for (auto [_, next] : step->updates) targets.push_back(next);
        for (auto [_, next] : step->state) targets.push_back(next);
        auto want = interpret(sg, feeds, EvalOptions{false, true, 42}, targets);
        REQUIRE(want);
        for (const auto& [name, t] : feeds) fillSlot(**cp, sg.findByName(name), t);
        (*cp)->run();
        INFO("step " << s);
        requireClose("loss", (*cp)->data(sg.loss), (*want)[static_cast<size_t>(sg.loss)]);
        // After the commit the param slots hold the next values.
        for (const auto& pairs : {step->updates, step->state})
          for (auto [param, next] : pairs) {
            requireClose(sg.node(param).name, (*cp)->data(param), (*want)[static_cast<size_t>(next)]);
            (*params)[sg.node(param).name] = (*want)[static_cast<size_t>(next)];
          }
      }
    }
  }
}

// Programs compiled and run with 1 and 2 threads (so also split into
// different numbers of modules) at full batch size, over several steps.
TEST_CASE("jit models: train steps give the same bytes on 1 and 2 threads", "[jit][models]") {
  for (const char* file : {"simple_convnet.nn", "mnist_mlp.nn"}) {
  INFO(file);
  SourceManager sm;
  Elaborated m = loadExample({file, 0}, sm);
  auto step = buildTrainStep(m.graph, m.train);
  REQUIRE(step);
  const Graph& sg = step->grads.graph;
  LowerOptions lo;
  lo.training = true;
  lo.commits = step->updates;
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2}) {
    setThreadCount(threads);
    auto cp = jit::CompiledProgram::create(sg, {sg.loss}, lo);
    if (!cp) FAIL(cp.error().message);
    auto params = initParams(sg, 42);
    REQUIRE(params);
    TensorMap feeds = randomFeeds(sg, 5);
    feeds[sg.node(step->lr).name] = Tensor(sg.type(step->lr), {0.1});
    for (const auto& [name, t] : *params) fillSlot(**cp, sg.findByName(name), t);
    for (const auto& [name, t] : feeds) fillSlot(**cp, sg.findByName(name), t);
    for (int i = 0; i < 4; ++i) (*cp)->run();
    std::vector<float> all((*cp)->data(sg.loss), (*cp)->data(sg.loss) + 1);
    for (auto [param, _] : step->updates) all.insert(all.end(), (*cp)->data(param), (*cp)->data(param) + (*cp)->size(param));
    results.push_back(std::move(all));
  }
  setThreadCount(0);
  CHECK(results[0] == results[1]);
  }
}

// One function per set of identical kernels (CompileOptions::dedupe) runs
// each launch on its own buffers: the step's bytes are those of a function
// per kernel, on 1 and 2 compile and run threads alike.
TEST_CASE("jit models: deduplicated kernels give the same bytes as one function each", "[jit][models]") {
  for (const Example& ex : {Example{"blocks/residual.nn", 8}, Example{"batchnorm/on.nn", 16}, Example{"optimizers/mnist_adam.nn", 16}}) {
    INFO(ex.file);
    SourceManager sm;
    Elaborated m = loadExample(ex, sm);
    auto step = buildTrainStep(m.graph, m.train);
    REQUIRE(step);
    const Graph& sg = step->grads.graph;
    std::vector<std::vector<float>> results;
    for (bool dedupe : {false, true})
      for (int threads : {1, 2}) {
        INFO("dedupe " << dedupe << ", threads " << threads);
        setThreadCount(threads);
        jit::CompileOptions co;
        co.dedupe = dedupe;
        auto cp = jit::CompiledProgram::create(sg, {sg.loss}, step->lowering(), co);
        if (!cp) FAIL(cp.error().message);
        const auto kernels = static_cast<int>((*cp)->program().kernels.size());
        if (dedupe && std::string(ex.file) != "optimizers/mnist_adam.nn")  // its kernels all differ
          CHECK((*cp)->times().kernelsCompiled < kernels);
        else
          CHECK((*cp)->times().kernelsCompiled == kernels);
        auto params = initParams(sg, 42);
        REQUIRE(params);
        TensorMap feeds = randomFeeds(sg, 5);
        feeds[sg.node(step->lr).name] = Tensor(sg.type(step->lr), {0.01});
        for (const auto& [name, t] : *params) fillSlot(**cp, sg.findByName(name), t);
        for (const auto& [name, t] : feeds) fillSlot(**cp, sg.findByName(name), t);
        for (int i = 0; i < 3; ++i) (*cp)->run();
        std::vector<float> all((*cp)->data(sg.loss), (*cp)->data(sg.loss) + 1);
        for (const auto& pairs : {step->updates, step->state})
          for (auto [param, _] : pairs) all.insert(all.end(), (*cp)->data(param), (*cp)->data(param) + (*cp)->size(param));
        results.push_back(std::move(all));
      }
    setThreadCount(0);
    for (size_t i = 1; i < results.size(); ++i) CHECK(results[i] == results[0]);
  }
}
