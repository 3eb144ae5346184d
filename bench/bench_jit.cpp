// The JIT backend: compile time of a whole train step, and the time of one
// train step and one inference batch (batch 100) as native calls.
//   build/bench/bench_jit --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "cli/frontend.h"
#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "runtime/parallel.h"

namespace {

nnc::Elaborated load(const char* name) {
  std::ifstream f(std::string(NNC_SOURCE_DIR) + "/examples/" + name);
  std::stringstream s;
  s << f.rdbuf();
  nnc::SourceManager sm;
  auto r = nnc::cli::compileSource(sm, name, s.str());
  if (!r) throw std::runtime_error(sm.render(r.error()));
  return r.take();
}

struct Step {
  nnc::TrainStep step;
  nnc::LowerOptions lower;
};

Step trainStep(const nnc::Elaborated& m) {
  auto s = nnc::buildTrainStep(m.graph, m.train);
  if (!s) throw std::runtime_error(s.error().message);
  const nnc::LowerOptions lower = s->lowering();
  return Step{s.take(), lower};
}

std::unique_ptr<nnc::jit::CompiledProgram> compileOrDie(const nnc::Graph& g, std::vector<nnc::ValueId> targets,
                                                        const nnc::LowerOptions& lo) {
  auto cp = nnc::jit::CompiledProgram::create(g, targets, lo);
  if (!cp) throw std::runtime_error(cp.error().message);
  return cp.take();
}

// Random params and data in every source slot, so that the step computes on
// realistic values (no denormals from zeros, no NaN).
void fill(nnc::jit::CompiledProgram& p, const nnc::Graph& g) {
  nnc::TensorMap feeds = nnc::randomFeeds(g, 1);
  auto params = nnc::initParams(g, 42);
  if (params) feeds.merge(*params);
  for (const auto& [name, t] : feeds)
    if (float* d = p.data(g.findByName(name)))
      for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
}

void BM_CompileTrainStep(benchmark::State& state, const char* file) {
  nnc::setThreadCount(static_cast<int>(state.range(0)));
  const nnc::Elaborated m = load(file);
  const Step s = trainStep(m);
  const nnc::Graph& g = s.step.grads.graph;
  for (auto _ : state) benchmark::DoNotOptimize(compileOrDie(g, {g.loss}, s.lower));
}
BENCHMARK_CAPTURE(BM_CompileTrainStep, mnist_mlp, "mnist_mlp.nn")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_CompileTrainStep, simple_convnet, "simple_convnet.nn")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_TrainStep(benchmark::State& state, const char* file) {
  nnc::setThreadCount(static_cast<int>(state.range(0)));
  const nnc::Elaborated m = load(file);
  const Step s = trainStep(m);
  const nnc::Graph& g = s.step.grads.graph;
  auto p = compileOrDie(g, {g.loss}, s.lower);
  fill(*p, g);
  p->data(s.step.lr)[0] = 0.01f;
  for (auto _ : state) p->run();
  state.SetItemsProcessed(state.iterations() * g.type(g.inputs[0]).shape[0]);
}
BENCHMARK_CAPTURE(BM_TrainStep, mnist_mlp, "mnist_mlp.nn")->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, simple_convnet, "simple_convnet.nn")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Infer(benchmark::State& state, const char* file) {
  nnc::setThreadCount(static_cast<int>(state.range(0)));
  const nnc::Elaborated m = load(file);
  std::vector<nnc::ValueId> targets;
  for (const auto& [_, v] : m.graph.outputs) targets.push_back(v);
  auto p = compileOrDie(m.graph, targets, {});
  fill(*p, m.graph);
  for (auto _ : state) p->run();
  state.SetItemsProcessed(state.iterations() * m.graph.type(m.graph.inputs[0]).shape[0]);
}
BENCHMARK_CAPTURE(BM_Infer, mnist_mlp, "mnist_mlp.nn")->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Infer, simple_convnet, "simple_convnet.nn")->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
