// Multi-output fusion of pointwise kernels (compiler/lower/fusion_groups.cpp,
// multiOutputGroups): a pointwise kernel feeding another pointwise kernel of
// the same shape is computed in that kernel's loop, which stores both. The
// optimizers' updates become one loop per param; values a kernel between
// them reads, or of another shape, keep their own kernels; and the results
// equal the unfused programs' and the interpreter's, on 1 and 2 threads.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include <fmt/format.h>

#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "compiler/passes/pipeline.h"
#include "runtime/parallel.h"
#include "runtime/rng.h"
#include "test_util.h"

using namespace nnc;

namespace {

// AdaGrad's and RMSprop's eps raised from 1e-7: with it, the first step of
// a weight whose gradient is about eps moves by lr·g/(|g| + eps), which
// magnifies the f32 rounding of g past any useful tolerance (the unfused
// program differs from the interpreter as much there).
const char* const kOptimizers[] = {"sgd(lr = 0.1)",
                                   "momentum(lr = 0.1, momentum = 0.8)",
                                   "nesterov(lr = 0.1, momentum = 0.8)",
                                   "adagrad(lr = 0.1, eps = 0.001)",
                                   "rmsprop(lr = 0.01, decay_rate = 0.9, eps = 0.001)",
                                   "adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99)"};

// A dense layer small enough to read, trained with `optimizer`.
std::string tinyModel(const std::string& optimizer) {
  return "model m { input x: f32[2, 3] label t: i32[2] param W: f32[3, 4] = he() param b: f32[4] = zeros()\n"
         "  loss = softmax_cross_entropy(x @ W + b, t) }\n"
         "train m { optimizer = " + optimizer + " }";
}

// Two dense layers, W1 large enough (51,200 values) that its update loop
// runs on the thread pool.
std::string mlpModel(const std::string& optimizer) {
  return "model m { input x: f32[8, 256] label t: i32[8]\n"
         "  param W1: f32[256, 200] = he() param b1: f32[200] = zeros()\n"
         "  param W2: f32[200, 10] = he() param b2: f32[10] = zeros()\n"
         "  h = relu(x @ W1 + b1)\n"
         "  loss = softmax_cross_entropy(h @ W2 + b2, t) }\n"
         "train m { optimizer = " + optimizer + " }";
}

TrainStep trainStep(const std::string& src) {
  auto c = test::compile(src);
  if (!c.model) FAIL(c.diag);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  if (!step) FAIL(step.error().message);
  return step.take();
}

// What CompiledProgram::create lowers: the optimized graph's loop IR.
// The next values keep buffers of their own here (no in-place update), so
// that each loop's stores can be named, and SGD's weight step stays a loop
// (no fuse-update into the GEMM: tests/test_passes.cpp has that).
Program lowerProgram(const Graph& g, const std::vector<ValueId>& targets, LowerOptions lo, PassOptions po = {}) {
  lo.updateInPlace = false;
  po.disabled.insert("update");
  auto o = optimizeGraph(g, rootsOf(targets, lo), po);
  if (!o) FAIL(o.error().message);
  std::vector<ValueId> mapped;
  for (ValueId t : targets) mapped.push_back(o->map[static_cast<size_t>(t)]);
  auto p = lowerGraph(o->graph, mapped, mapCommits(loweringFor(lo, po), o->map));
  if (!p) FAIL(p.error().message);
  return p.take();
}

void collectStores(const std::vector<loop::Stmt>& body, std::vector<int>& bufs) {
  for (const loop::Stmt& s : body) {
    if (s.kind == loop::Stmt::Kind::Store) bufs.push_back(s.buf);
    collectStores(s.body, bufs);
  }
}

// The names of the slots a launch stores into, one per store statement.
std::vector<std::string> storedSlots(const Program& p, const Launch& l) {
  std::vector<int> bufs;
  collectStores(p.kernels[static_cast<size_t>(l.kernel)].body, bufs);
  std::vector<std::string> names;
  for (int b : bufs) names.push_back(p.slots[static_cast<size_t>(l.slots[static_cast<size_t>(b)])].name);
  return names;
}

size_t distinct(const std::vector<std::string>& names) { return std::set<std::string>(names.begin(), names.end()).size(); }

// The launches storing into any slot named in `names`.
std::vector<const Launch*> launchesWriting(const Program& p, const std::set<std::string>& names) {
  std::vector<const Launch*> found;
  for (const Launch& l : p.launches)
    for (const std::string& s : storedSlots(p, l))
      if (names.count(s)) {
        found.push_back(&l);
        break;
      }
  return found;
}

std::set<std::string> stateOf(const std::string& optimizer, const std::string& param) {
  std::set<std::string> s = {param + ".next"};
  const std::string kind = optimizer.substr(0, optimizer.find('('));
  if (kind == "momentum" || kind == "nesterov") s.insert(param + ".v.next");
  if (kind == "adagrad" || kind == "rmsprop") s.insert(param + ".h.next");
  if (kind == "adam") s.insert({param + ".m.next", param + ".v.next"});
  return s;
}

// The update kernels of a train step (those storing a `.next` value), as text.
std::string updateKernels(const Program& p) {
  std::string out;
  for (const Launch& l : p.launches) {
    bool update = false;
    for (const std::string& s : storedSlots(p, l)) update |= s.size() > 5 && s.substr(s.size() - 5) == ".next";
    if (update) out += loop::print(p.kernels[static_cast<size_t>(l.kernel)]) + "\n";
  }
  return out;
}

Tensor randomTensor(const TensorType& t, Rng& rng, bool label) {
  Tensor x(t);
  for (double& v : x.data) v = label ? static_cast<double>(rng.below(4)) : rng.uniform() * 2 - 1;
  return x;
}

void fill(jit::CompiledProgram& cp, ValueId v, const Tensor& t) {
  float* d = cp.data(v);
  if (!d) return;
  for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
}

bool close(double got, double want, double rtol, double atol) { return std::abs(got - want) <= atol + rtol * std::abs(want); }

}  // namespace

TEST_CASE("multi-output fusion: each optimizer's update of a param is one loop", "[lower][fusion][multi]") {
  std::string golden;
  for (const char* optimizer : kOptimizers) {
    INFO(optimizer);
    const TrainStep step = trainStep(tinyModel(optimizer));
    const Graph& g = step.grads.graph;
    const Program fused = lowerProgram(g, {g.loss}, step.lowering());
    LowerOptions off = step.lowering();
    off.fuseMultiOutput = false;
    const Program separate = lowerProgram(g, {g.loss}, off);
    for (const std::string param : {"W", "b"}) {
      INFO(param);
      const std::set<std::string> state = stateOf(optimizer, param);
      const std::vector<const Launch*> ls = launchesWriting(fused, state);
      REQUIRE(ls.size() == 1);
      // One store per value the step commits; nesterov's lr·g, read twice
      // in the loop and by nothing else, has no store at all.
      const std::vector<std::string> stored = storedSlots(fused, *ls[0]);
      CHECK(std::set<std::string>(stored.begin(), stored.end()) == state);
      CHECK(stored.size() == state.size());
      CHECK(stored.back() == param + ".next");
      // Without the fusion: one kernel per stored value.
      CHECK(launchesWriting(separate, state).size() == state.size());
    }
    golden += fmt::format("# {}\n", optimizer) + updateKernels(fused);
  }
  CHECK(test::matchesGolden(golden, "optimizer_updates.loop"));
}

TEST_CASE("multi-output fusion: the Adam update's loop", "[lower][fusion][multi]") {
  const TrainStep step = trainStep(tinyModel("adam()"));
  const Graph& g = step.grads.graph;
  const Program p = lowerProgram(g, {g.loss}, step.lowering());
  const std::vector<const Launch*> ls = launchesWriting(p, {"W.next"});
  REQUIRE(ls.size() == 1);
  const std::string text = loop::print(p.kernels[static_cast<size_t>(ls[0]->kernel)]);
  // m' and v' stored, then read back in the same iteration for W' (the JIT
  // forwards the stored value); g read once.
  CHECK_THAT(text, Catch::Contains("W_m_next[i0] = ") && Catch::Contains("W_v_next[i0] = ") &&
                       Catch::Contains("W_next[i0] = ") && Catch::Contains("in one loop with"));
  CHECK(storedSlots(p, *ls[0]) == std::vector<std::string>{"W.m.next", "W.v.next", "W.next"});
  // The loop is the flat parallel loop a pointwise kernel gets.
  const loop::Kernel& k = p.kernels[static_cast<size_t>(ls[0]->kernel)];
  REQUIRE(k.body.size() == 1);
  CHECK(k.body[0].kind == loop::Stmt::Kind::Loop);
  CHECK(k.body[0].parallel);
  CHECK(k.body[0].extent == 12);
  CHECK(k.body[0].body.size() == 3);
  // --no-fuse=elementwise turns it off with the chains.
  PassOptions po;
  po.disabled.insert("elementwise");
  const Program off = lowerProgram(g, {g.loss}, step.lowering(), po);
  CHECK(launchesWriting(off, {"W.next", "W.m.next", "W.v.next"}).size() == 3);
}

namespace {

// Lowers and JIT-compiles `src`'s outputs with multi-output fusion on and
// off; checks the fused program's launches with `check`, and both
// programs' outputs against the interpreter.
template <typename Check>
void inferenceCase(const std::string& src, Check check) {
  auto c = test::compile(src);
  if (!c.model) FAIL(c.diag);
  const Graph& g = c.model->graph;
  std::vector<ValueId> targets;
  for (const auto& [_, v] : g.outputs) targets.push_back(v);
  Rng rng(3);
  TensorMap feeds;
  for (ValueId v : g.inputs) feeds[g.node(v).name] = randomTensor(g.type(v), rng, false);
  auto want = interpret(g, feeds, EvalOptions{}, targets);
  REQUIRE(want);
  for (bool multi : {true, false}) {
    LowerOptions lo;
    lo.fuseMultiOutput = multi;
    if (multi) check(lowerProgram(g, targets, lo));
    auto cp = jit::CompiledProgram::create(g, targets, lo);
    if (!cp) FAIL(cp.error().message);
    for (const auto& [name, t] : feeds) fill(**cp, g.findByName(name), t);
    (*cp)->run();
    for (ValueId t : targets)
      for (size_t i = 0; i < (*want)[static_cast<size_t>(t)].data.size(); ++i) {
        INFO(g.node(t).name << "[" << i << "] multi " << multi);
        CHECK(close((*cp)->data(t)[i], (*want)[static_cast<size_t>(t)].data[i], 1e-5, 1e-6));
      }
  }
}

}  // namespace

TEST_CASE("multi-output fusion: only same-shape values, never across a kernel that reads them", "[lower][fusion][multi]") {
  SECTION("a value read again after its consumer is stored by the consumer's loop") {
    inferenceCase(R"(model m { input x: f32[4, 5]
      a = tanh(x)
      output y = a * a + 1
      output s = sum(a, axis = [1])
    })",
                  [](const Program& p) {
                    const std::vector<const Launch*> ls = launchesWriting(p, {"y"});
                    REQUIRE(ls.size() == 1);
                    CHECK(storedSlots(p, *ls[0]).size() == 2);  // a and y
                    CHECK(p.launches.size() == 2);              // and the sum
                  });
  }
  SECTION("a kernel between them reads the producer: no fusion") {
    // exp(x) is read by the row sums, which run before the division.
    inferenceCase(R"(model m { input x: f32[4, 5]
      e = exp(x)
      s = sum(e, axis = [1], keepdims = 1)
      output y = e / s + e
    })",
                  [](const Program& p) {
                    CHECK(p.launches.size() == 3);
                    for (const Launch& l : p.launches) CHECK(distinct(storedSlots(p, l)) == 1);
                  });
  }
  SECTION("a kernel between them that does not read the producer does not stop it") {
    inferenceCase(R"(model m { input x: f32[4, 5] input W: f32[5, 5]
      a = tanh(x)
      z = x @ W
      output y = a * z + a
      output a2 = a
    })",
                  [](const Program& p) {
                    CHECK(p.launches.size() == 2);  // the matmul, then a and y in one loop
                    const std::vector<const Launch*> ls = launchesWriting(p, {"y"});
                    REQUIRE(ls.size() == 1);
                    CHECK(storedSlots(p, *ls[0]).size() == 2);
                  });
  }
  SECTION("a value of another shape keeps its own kernel") {
    inferenceCase(R"(model m { input x: f32[4, 5] input c: f32[5]
      a = exp(c)
      output y = x * a + a
      output a2 = a
    })",
                  [](const Program& p) {
                    CHECK(p.launches.size() == 2);
                    for (const Launch& l : p.launches) CHECK(distinct(storedSlots(p, l)) == 1);
                  });
  }
  SECTION("a value broadcast by its reader keeps its own kernel") {
    inferenceCase(R"(model m { input x: f32[4, 5] input c: f32[1, 5]
      a = exp(c)
      output y = x * a + a
      output a2 = a
    })",
                  [](const Program& p) { CHECK(p.launches.size() == 2); });
  }
  SECTION("chains of producers join, each stored once") {
    inferenceCase(R"(model m { input x: f32[3, 7]
      a = tanh(x)
      b = a * a
      c = b + a
      output y = c * b - a
      output sa = sum(a)
      output sb = sum(b)
      output sc = sum(c)
    })",
                  [](const Program& p) {
                    const std::vector<const Launch*> ls = launchesWriting(p, {"y"});
                    REQUIRE(ls.size() == 1);
                    CHECK(storedSlots(p, *ls[0]).size() == 4);
                    CHECK(p.launches.size() == 4);
                  });
  }
}

namespace {

struct RunResult {
  std::vector<std::vector<float>> params;  // after each step: every param and state value, in order
};

// Three train steps of `src` through the JIT, the given passes and
// lowering, `threads` threads; after each, every committed value is
// compared with the interpreter's (f32 mode) at rtol 1e-4, atol 1e-5.
RunResult runSteps(const std::string& src, const PassOptions& po, bool multi, int threads) {
  const TrainStep step = trainStep(src);
  const Graph& g = step.grads.graph;
  setThreadCount(threads);
  LowerOptions lo = step.lowering();
  lo.fuseMultiOutput = multi;
  jit::CompileOptions co;
  co.passes = po;
  auto cp = jit::CompiledProgram::create(g, {g.loss}, lo, co);
  if (!cp) FAIL(cp.error().message);
  auto params = initParams(g, 42);
  REQUIRE(params);
  for (const auto& [name, t] : *params) fill(**cp, g.findByName(name), t);
  RunResult r;
  Rng rng(11);
  for (int s = 0; s < 3; ++s) {
    TensorMap feeds = *params;
    for (ValueId v : g.inputs)
      if (v != step.lr) feeds[g.node(v).name] = randomTensor(g.type(v), rng, false);
    for (ValueId v : g.labels) feeds[g.node(v).name] = randomTensor(g.type(v), rng, true);
    feeds[g.node(step.lr).name] = Tensor(g.type(step.lr), {step.lrAt(s)});
    std::vector<ValueId> targets = {g.loss};
    for (const auto& pairs : {step.updates, step.state})
      for (auto [_, next] : pairs) targets.push_back(next);
    auto want = interpret(g, feeds, EvalOptions{false, true, 42}, targets);
    REQUIRE(want);
    for (const auto& [name, t] : feeds) fill(**cp, g.findByName(name), t);
    (*cp)->run();
    std::vector<float> all;
    for (const auto& pairs : {step.updates, step.state})
      for (auto [param, next] : pairs) {
        const float* got = (*cp)->data(param);
        const Tensor& w = (*want)[static_cast<size_t>(next)];
        for (size_t i = 0; i < w.data.size(); ++i) {
          INFO("step " << s << ": " << g.node(param).name << "[" << i << "] JIT " << got[i] << ", interpreter "
                       << w.data[i]);
          REQUIRE(close(got[i], w.data[i], 1e-4, 1e-5));
        }
        all.insert(all.end(), got, got + w.data.size());
        (*params)[g.node(param).name] = w;
      }
    r.params.push_back(std::move(all));
  }
  setThreadCount(0);
  return r;
}

}  // namespace

TEST_CASE("multi-output fusion: train steps equal the unfused ones and the interpreter", "[lower][fusion][multi][jit]") {
  PassOptions noElementwise;
  noElementwise.disabled.insert("elementwise");
  for (const char* optimizer : kOptimizers) {
    INFO(optimizer);
    const std::string src = mlpModel(optimizer);
    const RunResult fused1 = runSteps(src, {}, true, 1);
    const RunResult fused2 = runSteps(src, {}, true, 2);
    const RunResult single = runSteps(src, {}, false, 1);
    const RunResult unfused = runSteps(src, noElementwise, true, 2);
    // The same code on 1 and 2 threads: the same bytes.
    CHECK(fused1.params == fused2.params);
    // Multi-output fusion alone computes each value by the same expression
    // and hands a stored value on unrounded only where it was a float
    // anyway: the same bytes. Nesterov's lr·g, which is no longer stored,
    // could be contracted into an FMA on one side only; it is not on
    // x86-64 with LLVM 19 today, but only rtol 1e-5 is promised there.
    if (std::string(optimizer).rfind("nesterov", 0) != 0) CHECK(fused1.params == single.params);
    // With the chains off, every op rounds its result to f32 (no FMA
    // contraction across ops), so only closeness.
    for (size_t s = 0; s < fused1.params.size(); ++s)
      for (size_t i = 0; i < fused1.params[s].size(); ++i) {
        INFO("step " << s << " value " << i);
        REQUIRE(close(fused1.params[s][i], single.params[s][i], 1e-5, 1e-7));
        REQUIRE(close(fused1.params[s][i], unfused.params[s][i], 1e-5, 1e-7));
      }
  }
}
