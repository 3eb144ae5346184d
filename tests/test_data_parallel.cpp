// A data-parallel rank's train step (docs/distributed.md) in one process:
// its buckets, where the passes put their starts, the memory plan's blocks,
// and what it computes with no collectives installed (the sum over one
// process), against the interpreter. tests/mpi/ runs it across processes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "compiler/lower/compile_program.h"
#include "test_util.h"

using namespace nnc;

namespace {

// Four param gradients of 12, 60, 20 and 120 bytes: with 80-byte buckets,
// fc2.W and fc2.b share one, fc1.b and fc1.W one each.
const char* kModel = R"(
model dp(batch = 4) {
    input x: f32[batch, 6]
    label t: i32[batch]
    h      = relu(dense(x, 5, name = "fc1"))
    logits = dense(h, 3, name = "fc2")
    loss   = softmax_cross_entropy(logits, t)
}
train dp {
    optimizer  = adam(lr = 0.01)
    regularize = l2(0.01)
}
)";

TrainStep stepOf(double scale, int64_t bucketBytes) {
  auto c = test::compile(kModel);
  if (!c.model) FAIL(c.diag);
  DataParallel dp{2, scale, bucketBytes};
  auto step = buildTrainStep(c.model->graph, c.model->train, &dp);
  if (!step) FAIL(step.error().message);
  return step.take();
}

std::vector<ValueId> idsOf(const Graph& g, OpId op) {
  std::vector<ValueId> r;
  for (ValueId v = 0; v < static_cast<ValueId>(g.size()); ++v)
    if (g.node(v).op->is(op)) r.push_back(v);
  return r;
}

TensorMap feedsOf(const TrainStep& s) {
  const Graph& g = s.grads.graph;
  TensorMap feeds = randomFeeds(g, 3);
  auto params = initParams(g, 5);
  REQUIRE(params);
  for (auto& [k, v] : *params) feeds[k] = v;
  feeds["train.lr"] = Tensor(g.type(s.lr), {0.01});
  return feeds;
}

}  // namespace

TEST_CASE("data-parallel step: buckets in the backward's order and one wait per gradient", "[parallel]") {
  const TrainStep s = stepOf(0.5, 80);
  const Graph& g = s.grads.graph;
  CHECK(s.buckets == 3);
  const std::vector<ValueId> starts = idsOf(g, OpId::AllreduceStart), waits = idsOf(g, OpId::AllreduceWait);
  REQUIRE(starts.size() == 3);
  CHECK(waits.size() == 4);
  std::vector<size_t> sizes;
  for (ValueId st : starts) sizes.push_back(g.node(st).inputs.size());
  CHECK(sizes == std::vector<size_t>{2, 1, 1});
  // fc2's gradients complete first, fc1.W's last.
  CHECK(g.node(g.node(starts[2]).inputs[0]).name == "grad_fc1.W");
  // The update reads the sums, never a rank's own gradient.
  for (auto [param, next] : s.updates) {
    (void)next;
    const ValueId grad = [&] {
      for (const auto& [name, v] : s.grads.grads)
        if (name == g.node(param).name) return v;
      return kNoValue;
    }();
    REQUIRE(grad != kNoValue);
    for (ValueId v = 0; v < static_cast<ValueId>(g.size()); ++v) {
      const Node& n = g.node(v);
      if (std::find(n.inputs.begin(), n.inputs.end(), grad) == n.inputs.end()) continue;
      CHECK((n.op->is(OpId::AllreduceStart) || n.op->is(OpId::AllreduceWait)));
    }
  }
  // The loss is scaled by the rank's share before it is differentiated.
  CHECK(g.node(g.loss).name == "train.rank_loss");
}

TEST_CASE("overlap-allreduce starts each bucket right after its last gradient", "[parallel][passes]") {
  const TrainStep s = stepOf(0.5, 80);
  const Graph& g = s.grads.graph;
  const std::vector<ValueId> roots = rootsOf({g.loss}, s.lowering());
  auto on = optimizeGraph(g, roots, PassOptions{});
  REQUIRE(on);
  const Graph& o = on->graph;
  const std::vector<ValueId> starts = idsOf(o, OpId::AllreduceStart);
  REQUIRE(starts.size() == 3);
  for (ValueId st : starts) {
    const ValueId last = *std::max_element(o.node(st).inputs.begin(), o.node(st).inputs.end());
    for (ValueId v = last + 1; v < st; ++v) CHECK(o.node(v).op->is(OpId::AllreduceStart));
  }
  // fc2's bucket starts before fc1.W's gradient is computed: it overlaps it.
  const ValueId fc1W = o.node(starts[2]).inputs[0];
  CHECK(starts[0] < fc1W);

  // Off, every start waits for the whole backward.
  PassOptions off;
  off.disabled.insert("overlap-allreduce");
  auto plain = optimizeGraph(g, roots, off);
  REQUIRE(plain);
  const std::vector<ValueId> late = idsOf(plain->graph, OpId::AllreduceStart);
  REQUIRE(late.size() == 3);
  CHECK(late[0] > plain->graph.node(late[2]).inputs[0]);
}

TEST_CASE("the memory plan lays each bucket's gradients out back to back", "[parallel][lower]") {
  const TrainStep s = stepOf(0.5, 80);
  const Graph& g = s.grads.graph;
  for (bool plan : {true, false}) {
    LowerOptions lo = s.lowering();
    lo.planMemory = plan;
    auto lp = compileProgram(g, {g.loss}, lo, PassOptions{});
    REQUIRE(lp);
    const Program& p = lp->program;
    REQUIRE(p.groups.size() == 3);
    for (const std::vector<int>& group : p.groups)
      for (size_t i = 1; i < group.size(); ++i) {
        const Slot &a = p.slots[static_cast<size_t>(group[i - 1])], &b = p.slots[static_cast<size_t>(group[i])];
        CHECK(b.offset == a.offset + alignedFloats(a.size));
      }
    // No other slot lies inside a bucket while the bucket is live: the
    // block is one allocation of the planner (disjoint from every slot
    // alive at the same launch, which the planner's own rule keeps).
    const std::string ir = printProgram(p);
    CHECK(ir.find("nnc_allreduce_start(") != std::string::npos);
    CHECK(ir.find("nnc_allreduce_wait(") != std::string::npos);
  }
}

TEST_CASE("a data-parallel step in one process: the JIT matches the interpreter", "[parallel][jit]") {
  // With no collectives installed the sums are over this process alone:
  // the step is the plain one on a loss scaled by 0.5.
  const TrainStep s = stepOf(0.5, 80);
  const Graph& g = s.grads.graph;
  const TensorMap feeds = feedsOf(s);
  std::vector<ValueId> targets = {g.loss};
  for (auto [_, next] : s.updates) targets.push_back(next);
  for (auto [_, next] : s.state) targets.push_back(next);
  auto ref = interpret(g, feeds, EvalOptions{false, true, 1}, targets);
  REQUIRE(ref);

  auto cp = jit::CompiledProgram::create(g, {g.loss}, s.lowering());
  REQUIRE(cp);
  for (const auto& [name, t] : feeds) {
    float* d = (*cp)->data(g.findByName(name));
    if (!d) continue;
    for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
  }
  (*cp)->run();
  CHECK((*cp)->data(g.loss)[0] == Approx((*ref)[static_cast<size_t>(g.loss)].data[0]).epsilon(1e-4));
  for (const auto* pairs : {&s.updates, &s.state})
    for (auto [param, next] : *pairs) {
      const Tensor& want = (*ref)[static_cast<size_t>(next)];
      const float* got = (*cp)->data(param);  // committed after the run
      REQUIRE(got);
      for (size_t i = 0; i < want.data.size(); ++i)
        CHECK(std::fabs(got[i] - want.data[i]) <= 1e-5 + 1e-4 * std::fabs(want.data[i]));
    }

  // The plain step's loss, unscaled, is twice this one's.
  auto c = test::compile(kModel);
  REQUIRE(c.model);
  auto plain = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE(plain);
  auto whole = interpret(plain->grads.graph, feeds, EvalOptions{false, true, 1}, {plain->grads.graph.loss});
  REQUIRE(whole);
  CHECK((*whole)[static_cast<size_t>(plain->grads.graph.loss)].data[0] ==
        Approx(2 * (*ref)[static_cast<size_t>(g.loss)].data[0]).epsilon(1e-6));
}
