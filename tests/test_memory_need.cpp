// The memory nnc check and nnc bench print and nnc run checks before it
// allocates (cli/memory_need.h), and the JIT run path's params held only
// as f32 in the arena (cli/run_stepper.h: initStepperValues).
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "cli/memory_need.h"
#include "cli/run_stepper.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/graph/graph_util.h"
#include "compiler/lower/compile_program.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::runCli;
using nnc::test::tempDir;

namespace {

// Dense 784 -> 10 with Adam, batch 100.
const char* kDense = R"(model dense10(batch = 100) {
    input  x: f32[batch, 784]
    label  t: i32[batch]
    param  W: f32[784, 10] = he()
    param  b: f32[10]      = zeros()
    logits = x @ W + b
    loss   = softmax_cross_entropy(logits, t)
    output probs = softmax(logits)
}
train dense10 {
    optimizer = adam(lr = 0.001)
}
)";

std::string writeModel(const std::string& dir, const std::string& text) {
  std::ofstream(dir + "/m.nn") << text;
  return dir + "/m.nn";
}

}  // namespace

TEST_CASE("nnc check prints the memory a train run and inference need", "[cli][memory]") {
  const std::string dir = tempDir("memcheck");
  auto r = runCli({"check", writeModel(dir, kDense)});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // params: 784·10 + 10. Adam's state: m and v per param, and the step count.
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*\n    params +7,850 +30.7 KiB\n(.|\n)*"));
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*\n    optimizer state \\(adam\\) +15,701 +61.3 KiB\n(.|\n)*"));
  // The host copy nnc run keeps to replay a non-finite step: params + state.
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*\n    host copy of params, state +23,551 +92.0 KiB  (.|\n)*"));
  // Two host batches of x (100·784) and t (100).
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*\n    host batches \\(2\\) +157,000 +613.3 KiB  (.|\n)*"));
  // Inference (probs and the loss), slots rounded up to 16 floats (64
  // bytes): x 78,400, t 100 -> 112, W 7,840, b 10 -> 16, loss 1 -> 16, probs
  // 1,000 -> 1,008, logits 1,008, and softmax_cross_entropy's three row
  // temporaries of 100 -> 112 (softmax's two reuse them): all live at once
  // around the loss kernel, so the plan is their sum.
  const int64_t infer = 78400 + 112 + 7840 + 16 + 16 + 1008 + 1008 + 3 * 112;
  CHECK(infer == 88736);
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*\n    inference arena +88,736 +346.6 KiB  (.|\n)*"));
  // The train step's arena is the compiler's plan for what nnc run compiles
  // (the loss and the logits it counts right answers from).
  auto c = nnc::test::compile(kDense);
  REQUIRE(c.model);
  auto step = buildTrainStep(c.model->graph, c.model->train);
  REQUIRE(step);
  auto lp = compileProgram(step->grads.graph, {step->grads.graph.loss, c.model->lossScores}, step->lowering(), {});
  REQUIRE(lp);
  CHECK(lp->program.arenaFloats == 112240);
  CHECK_THAT(r.out, Catch::Matches("(.|\n)*\n    train-step arena +112,240 +438.4 KiB  (.|\n)*"));
  // The total: both arenas, the host copy and two batches, 4 bytes a float.
  CHECK(4 * (112240 + infer + 23551 + 157000) == 1526108);
  CHECK_THAT(r.out, Catch::Contains("a train run (JIT) needs 1.46 MiB (1,526,108 bytes), inference 653.3 KiB (668,944 bytes),"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("nnc run refuses a model that needs more than --memory-limit, before allocating it", "[cli][memory]") {
  const std::string dir = tempDir("memrun");
  const std::string m = writeModel(dir, kDense);
  auto r = runCli({"run", m, "--limit", "200", "--memory-limit", "1M"});
  INFO(r.out << r.err);
  CHECK(r.code == 1);
  CHECK(r.out.find("training") == std::string::npos);  // refused before the programs were compiled
  CHECK_THAT(r.err, Catch::Contains("model 'dense10' needs "));
  CHECK_THAT(r.err, Catch::Contains("to train with --backend jit, more than the 1.00 MiB (1,048,576 bytes) available "
                                    "(--memory-limit): params 30.7 KiB, optimizer state 61.3 KiB"));
  CHECK_THAT(r.err, Catch::Contains("host copy of params and state 92.0 KiB, host batches 613.3 KiB, the data set "));
  CHECK_THAT(r.err, Catch::Contains("--memory-limit SIZE (or 'off') overrides the check"));
  // Within the limit, or with the check off, it trains.
  auto ok = runCli({"run", m, "--limit", "200", "--iterations", "1", "--memory-limit", "off", "-q"});
  CHECK(ok.code == 0);
  auto bad = runCli({"run", m, "--memory-limit", "lots"});
  CHECK(bad.code == 1);
  CHECK_THAT(bad.err, Catch::Contains("--memory-limit: expected a size such as 4G"));

  // 19 GB of params (no tensor may exceed 2^31 elements, so three branches):
  // refused in words; allocating them would fail or swap.
  const std::string big = writeModel(dir, R"(model huge(batch = 10) {
    input  x: f32[batch, 784]
    label  t: i32[batch]
    param  A1: f32[784, 2000000] = he()
    param  B1: f32[2000000, 10] = he()
    param  A2: f32[784, 2000000] = he()
    param  B2: f32[2000000, 10] = he()
    param  A3: f32[784, 2000000] = he()
    param  B3: f32[2000000, 10] = he()
    logits = relu(x @ A1) @ B1 + relu(x @ A2) @ B2 + relu(x @ A3) @ B3
    loss   = softmax_cross_entropy(logits, t)
}
)");
  auto h = runCli({"run", big, "--limit", "100", "--memory-limit", "16G"});
  INFO(h.err);
  CHECK(h.code == 1);
  CHECK(h.out.find("training") == std::string::npos);
  CHECK_THAT(h.err, Catch::Contains("model 'huge' needs "));
  CHECK_THAT(h.err, Catch::Contains("more than the 16.0 GiB (17,179,869,184 bytes) available (--memory-limit): params 17.7 GiB"));
  // 3 · (784 · 2,000,000 + 2,000,000 · 10) floats.
  auto hc = runCli({"check", big});
  CHECK(hc.code == 0);
  CHECK_THAT(hc.out, Catch::Matches("(.|\n)*\n    params +4,764,000,000 +17.7 GiB\n(.|\n)*"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("memory sizes parse with binary suffixes", "[cli][memory]") {
  CHECK(cli::parseMemorySize("4G").take().value() == int64_t(4) << 30);
  CHECK(cli::parseMemorySize("1.5G").take().value() == int64_t(3) << 29);
  CHECK(cli::parseMemorySize("800M").take().value() == int64_t(800) << 20);
  CHECK(cli::parseMemorySize("2KiB").take().value() == 2048);
  CHECK(cli::parseMemorySize("12345").take().value() == 12345);
  CHECK(!cli::parseMemorySize("off").take().has_value());
  CHECK(!cli::parseMemorySize("4X"));
  CHECK(!cli::parseMemorySize("-1G"));
  CHECK(cli::humanBytes(1000) == "1000 bytes");
  CHECK(cli::humanBytes(int64_t(9) << 30) == "9.00 GiB");
  auto avail = cli::availableMemory();
  REQUIRE(avail);  // Linux: /proc/meminfo
  CHECK(avail->bytes > 0);
}

TEST_CASE("the JIT run path initializes params straight into the arena, keeping no f64 copy", "[cli][memory][jit]") {
  auto c = nnc::test::compile(kDense);
  REQUIRE(c.model);
  const Graph& g = c.model->graph;
  auto step = buildTrainStep(g, c.model->train);
  REQUIRE(step);
  cli::StepGraphs graphs{g, &*step, kNoValue, c.model->lossScores, 100};
  auto j = cli::jitStepper(graphs, {}, {}, cli::JitSetup{});
  REQUIRE(j);
  cli::Stepper& s = **j;
  TensorMap kept, keptState;
  REQUIRE(cli::initStepperValues(s, g, *step, 7, kept, keptState));
  // The stepper holds every param and all of Adam's state: nothing is kept on the host.
  CHECK(kept.empty());
  CHECK(keptState.empty());
  CHECK(s.holds("W"));
  CHECK(s.holds("W.m"));
  CHECK(s.holds("train.step"));
  // What it holds is each initializer's value in f32.
  auto want = initParams(g, 7);
  REQUIRE(want);
  const TensorMap got = s.params();
  for (const auto& [name, t] : *want) {
    REQUIRE(got.count(name));
    const Tensor& h = got.at(name);
    REQUIRE(h.data.size() == t.data.size());
    bool same = true;
    for (size_t i = 0; i < t.data.size(); ++i) same = same && h.data[i] == double(float(t.data[i]));
    CHECK(same);
  }
  // remember() and rewind() return to the remembered values.
  s.remember();
  TensorMap w;
  w["W"] = Tensor(g.type(g.findByName("W")));
  s.set(w);
  CHECK(s.params().at("W").data[0] == 0);
  s.rewind();
  CHECK(s.params().at("W").data == got.at("W").data);
}
