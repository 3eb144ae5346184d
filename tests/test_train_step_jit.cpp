// The issue-21 training additions through the JIT against the reference
// interpreter: a language-model-shaped step (rank-3 logits [batch, T, V],
// labels i32[batch, T], label smoothing) trained by AdamW with warmup and
// gradient clipping, fused and unfused, params and state compared after
// each step; and nnc run with all of them on Fashion-MNIST.
#include <catch2/catch.hpp>

#include <cmath>
#include <regex>

#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "runtime/rng.h"
#include "test_util.h"

using namespace nnc;

namespace {

// A next-token model in miniature: one-hot tokens [batch, T, V] through a
// dense layer to logits [batch, T, V].
const char* kSequenceModel = R"(
model lm(batch = 3) {
    input  x: f32[batch, 5, 7]
    label  t: i32[batch, 5]
    param  W: f32[7, 7] = normal(0.5)
    param  b: f32[7]    = zeros()
    logits = x @ W + b
    loss   = softmax_cross_entropy(logits, t, label_smoothing = 0.1)
}
train lm {
    optimizer      = adamw(lr = 0.05, weight_decay = 0.1)
    warmup         = 2
    schedule       = cosine(total = 6, min_lr = 0.001)
    clip_grad_norm = 0.02
})";

void fillSlot(jit::CompiledProgram& p, ValueId v, const Tensor& t) {
  float* d = p.data(v);
  if (!d) return;
  for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
}

void requireClose(const std::string& what, const float* got, const Tensor& want) {
  for (size_t i = 0; i < want.data.size(); ++i) {
    INFO(what << "[" << i << "]: JIT " << got[i] << ", interpreter " << want.data[i]);
    REQUIRE(std::abs(got[i] - want.data[i]) <= 1e-5 + 1e-4 * std::abs(want.data[i]));
  }
}

TensorMap sequenceBatch(uint64_t seed) {
  Rng rng(seed);
  Tensor x(TensorType{DType::F32, {3, 5, 7}}), t(TensorType{DType::I32, {3, 5}});
  for (int64_t p = 0; p < 15; ++p) x.data[static_cast<size_t>(p * 7 + static_cast<int64_t>(rng.below(7)))] = 1;
  for (double& v : t.data) v = static_cast<double>(rng.below(7));
  return {{"x", x}, {"t", t}};
}

}  // namespace

TEST_CASE("jit: adamw, warmup, clipping and smoothed rank-3 cross-entropy match the interpreter", "[jit][train]") {
  const bool fused = GENERATE(true, false);
  INFO((fused ? "fused" : "unfused"));
  auto c = test::compile(kSequenceModel);
  if (!c.model) FAIL(c.diag);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE(step);
  REQUIRE(step->gradScale != kNoValue);
  const Graph& sg = step->grads.graph;
  jit::CompileOptions co;
  co.passes = fused ? PassOptions{} : PassOptions::unfused();
  auto cp = jit::CompiledProgram::create(sg, {sg.loss, step->gradScale}, step->lowering(), co);
  if (!cp) FAIL(cp.error().message);
  // The softmax_ce fusion pairs the rank-3 loss with its gradient.
  bool pairFused = false;
  for (const auto& k : (*cp)->program().kernels) pairFused |= k.name.find("fused_softmax_ce") != std::string::npos;
  CHECK(pairFused == fused);
  auto params = initParams(sg, 42);  // the optimizer state too (zeros)
  REQUIRE(params);
  for (const auto& [name, t] : *params) fillSlot(**cp, sg.findByName(name), t);
  bool clipped = false;
  for (int s = 0; s < 5; ++s) {
    INFO("step " << s);
    TensorMap feeds = sequenceBatch(100 + static_cast<uint64_t>(s));
    for (auto& [k, v] : *params) feeds[k] = v;
    feeds[sg.node(step->lr).name] = Tensor(sg.type(step->lr), {step->lrAt(s)});
    std::vector<ValueId> targets = {sg.loss, step->gradScale};
    for (auto [_, next] : step->updates) targets.push_back(next);
    for (auto [_, next] : step->state) targets.push_back(next);
    auto want = interpret(sg, feeds, EvalOptions{false, true, 42}, targets);
    REQUIRE(want);
    for (const auto& [name, t] : feeds) fillSlot(**cp, sg.findByName(name), t);
    (*cp)->run();
    requireClose("loss", (*cp)->data(sg.loss), (*want)[static_cast<size_t>(sg.loss)]);
    requireClose("grad_scale", (*cp)->data(step->gradScale), (*want)[static_cast<size_t>(step->gradScale)]);
    clipped |= (*want)[static_cast<size_t>(step->gradScale)].data[0] < 1;
    for (const auto& pairs : {step->updates, step->state})
      for (auto [param, next] : pairs) {
        requireClose(sg.node(param).name, (*cp)->data(param), (*want)[static_cast<size_t>(next)]);
        (*params)[sg.node(param).name] = (*want)[static_cast<size_t>(next)];
      }
  }
  CHECK(clipped);  // the test exercises the clipped branch
}

TEST_CASE("nnc run trains with adamw, --warmup and --clip-grad-norm to a finite loss", "[train][cli]") {
  const std::string dir = test::tempDir("adamw_run");
  const std::string src = test::readText(test::sourcePath("examples/mnist_mlp.nn"));
  const std::string model = src.substr(0, src.find("\ntrain "));
  std::ofstream(dir + "/m.nn") << model << "\ntrain mnist_mlp {\n    data = idx(\"/usr/share/datasets/fashion-mnist\")\n"
                               << "    optimizer = adamw(lr = 0.002, weight_decay = 0.05)\n"
                               << "    schedule = cosine(total = 6)\n}\n";
  auto r = test::runCli({"run", dir + "/m.nn", "--limit", "600", "--iterations", "6", "--warmup", "2",
                         "--clip-grad-norm", "1.0", "--log-every", "1", "-q"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("optimizer adamw"));
  std::smatch m;
  REQUIRE(std::regex_search(r.out, m, std::regex("train loss ([0-9.]+)")));
  CHECK(std::isfinite(std::stod(m[1])));
  CHECK(std::stod(m[1]) < 3);

  auto bad = test::runCli({"run", dir + "/m.nn", "--clip-grad-norm", "-1"});
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("--clip-grad-norm takes the largest gradient norm, a positive number, got '-1'"));
  auto late = test::runCli({"run", dir + "/m.nn", "--warmup", "6"});
  CHECK(late.code == 1);
  CHECK_THAT(late.err, Catch::Contains("total must exceed warmup"));
  std::filesystem::remove_all(dir);
}
