// Memory planning: slots that are live at the same time never overlap, a
// kernel's buffers are pairwise disjoint, and reuse shrinks the arena.
#include <catch2/catch.hpp>

#include <fstream>
#include <regex>
#include <sstream>

#include "cli/frontend.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/lower/lower.h"

using namespace nnc;

namespace {

// The train step of examples/FILE.
TrainStep trainStepOf(const char* file) {
  std::ifstream in(std::string(NNC_SOURCE_DIR) + "/examples/" + file);
  std::stringstream text;
  text << in.rdbuf();
  SourceManager sm;
  auto m = cli::compileSource(sm, file, text.str());
  REQUIRE(m);
  auto step = buildTrainStep(m->graph, m->train);
  REQUIRE(step);
  return step.take();
}

Program lowered(const char* file, bool plan) {
  const TrainStep step = trainStepOf(file);
  LowerOptions lo;
  lo.training = true;
  lo.commits = step.updates;
  lo.planMemory = plan;
  auto p = lowerGraph(step.grads.graph, {step.grads.graph.loss}, lo);
  REQUIRE(p);
  return p.take();
}

bool overlap(const Slot& a, const Slot& b) {
  return a.offset < b.offset + std::max<int64_t>(b.size, 1) && b.offset < a.offset + std::max<int64_t>(a.size, 1);
}

}  // namespace

TEST_CASE("memory plan: live slots never overlap, and the arena shrinks", "[lower][memory]") {
  for (const char* file : {"mnist_mlp.nn", "simple_convnet.nn", "multilayer.nn"}) {
    INFO(file);
    const Program p = lowered(file, true);
    // Lifetimes: from the first to the last launch using a slot; sources and
    // commit pairs (never written or read after the last launch) span all.
    const size_t n = p.slots.size();
    std::vector<int> first(n, -1), last(n, -1);
    for (size_t l = 0; l < p.launches.size(); ++l)
      for (int s : p.launches[l].slots) {
        if (first[static_cast<size_t>(s)] < 0) first[static_cast<size_t>(s)] = static_cast<int>(l);
        last[static_cast<size_t>(s)] = static_cast<int>(l);
      }
    for (const auto& [dst, src] : p.commits) {
      first[static_cast<size_t>(dst)] = first[static_cast<size_t>(src)] = -1;
    }
    const int end = static_cast<int>(p.launches.size());
    for (size_t a = 0; a < n; ++a)
      for (size_t b = a + 1; b < n; ++b) {
        const int fa = first[a] < 0 ? 0 : first[a], la = first[a] < 0 ? end : last[a];
        const int fb = first[b] < 0 ? 0 : first[b], lb = first[b] < 0 ? end : last[b];
        if (fa <= lb && fb <= la) {
          INFO(p.slots[a].name << " and " << p.slots[b].name);
          CHECK_FALSE(overlap(p.slots[a], p.slots[b]));
        }
      }
    for (const Slot& s : p.slots) CHECK(s.offset % 16 == 0);
    CHECK(p.arenaFloats < lowered(file, false).arenaFloats);
  }
}

TEST_CASE("memory plan: reshape and flatten of computed values share their operand's slot", "[lower][memory]") {
  const TrainStep step = trainStepOf("simple_convnet.nn");
  const Graph& g = step.grads.graph;
  auto lower = [&](bool alias) {
    LowerOptions lo;
    lo.training = true;
    lo.commits = step.updates;
    lo.aliasViews = alias;
    auto p = lowerGraph(g, {g.loss}, lo);
    REQUIRE(p);
    return p.take();
  };
  const Program aliased = lower(true), copied = lower(false);
  // Among them the forward's flatten of the pooled map and the backward's
  // reshape of its gradient back to [N, C, H, W].
  int views = 0;
  for (ValueId v = 0; v < static_cast<ValueId>(g.size()); ++v) {
    const Node& n = g.node(v);
    if (!n.op->view || aliased.valueSlot[static_cast<size_t>(v)] < 0) continue;
    INFO(n.op->name << " %" << v);
    ++views;
    CHECK(aliased.valueSlot[static_cast<size_t>(v)] == aliased.valueSlot[static_cast<size_t>(n.inputs[0])]);
    CHECK(copied.valueSlot[static_cast<size_t>(v)] != copied.valueSlot[static_cast<size_t>(n.inputs[0])]);
  }
  CHECK(views >= 2);
  CHECK(aliased.launches.size() + static_cast<size_t>(views) == copied.launches.size());
  CHECK(aliased.arenaFloats < copied.arenaFloats);
}

TEST_CASE("elementwise chains: a single-use pointwise value is computed inside its consumer", "[lower][fusion]") {
  std::ifstream in(std::string(NNC_SOURCE_DIR) + "/examples/mnist_mlp.nn");
  std::stringstream text;
  text << in.rdbuf();
  // Trained with SGD here (the example's own train block says Adam), whose
  // update is one subtraction per param.
  const std::string sgd = std::regex_replace(text.str(), std::regex("optimizer = [a-z]+\\([^)]*\\)"),
                                             "optimizer = sgd(lr = 0.1)");
  REQUIRE(sgd.find("optimizer = sgd(lr = 0.1)") != std::string::npos);
  SourceManager sm;
  auto m = cli::compileSource(sm, "mnist_mlp.nn", sgd);
  REQUIRE(m);
  auto step = buildTrainStep(m->graph, m->train);
  REQUIRE(step);
  const Graph& g = step->grads.graph;
  LowerOptions lo;
  lo.training = true;
  lo.commits = step->updates;
  lo.updateInPlace = false;  // the text below names the next values' buffers
  auto fused = lowerGraph(g, {g.loss}, lo);
  lo.fuseElementwise = false;
  auto plain = lowerGraph(g, {g.loss}, lo);
  REQUIRE(fused);
  REQUIRE(plain);
  // Each SGD update W - lr*dW (6 params) and each relu mask dy*step(z) (2)
  // lose one kernel; z + b is also read by the mask, so it is not inlined
  // into relu(z + b), but the two run in one loop that stores both
  // (multi-output fusion, 2 more).
  CHECK(plain->kernels.size() - fused->kernels.size() == 10);
  CHECK_THAT(printProgram(*fused), Catch::Contains("h1 = relu(...) : f32[100, 40], in one loop with"));
  const std::string text2 = printProgram(*fused);
  CHECK_THAT(text2, Catch::Contains("W1.next = sub(...) : f32[784, 40], computing inline") &&
                        Catch::Contains("= mul(...) : f32[100, 40], computing inline"));
  CHECK_THAT(text2, Catch::Contains("W1_next[i0] = (W1[i0] - (train_lr[0] * grad_W1[i0]));"));
}
