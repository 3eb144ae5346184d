// Front-end and reference-interpreter costs: how long parsing, elaboration,
// differentiation and one interpreted forward pass take on the examples.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "cli/frontend.h"
#include "compiler/autodiff/autodiff.h"
#include "compiler/autodiff/gradcheck.h"
#include "compiler/interpreter/interpreter.h"

namespace {

std::string example(const char* name) {
  std::ifstream f(std::string(NNC_SOURCE_DIR) + "/examples/" + name);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

nnc::Graph compileOrDie(const std::string& src, nnc::ElaborateOptions opt = {}) {
  nnc::SourceManager sm;
  auto r = nnc::cli::compileSource(sm, "bench.nn", src, opt);
  if (!r) throw std::runtime_error(sm.render(r.error()));
  return r->graph;
}

void BM_ParseAndElaborate(benchmark::State& state, const char* file) {
  const std::string src = example(file);
  for (auto _ : state) benchmark::DoNotOptimize(compileOrDie(src));
}
BENCHMARK_CAPTURE(BM_ParseAndElaborate, mnist_mlp, "mnist_mlp.nn")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ParseAndElaborate, simple_convnet, "simple_convnet.nn")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_ParseAndElaborate, multilayer, "multilayer.nn")->Unit(benchmark::kMicrosecond);

void BM_Differentiate(benchmark::State& state, const char* file) {
  const nnc::Graph g = compileOrDie(example(file));
  for (auto _ : state) benchmark::DoNotOptimize(nnc::differentiate(g));
}
BENCHMARK_CAPTURE(BM_Differentiate, mnist_mlp, "mnist_mlp.nn")->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Differentiate, simple_convnet, "simple_convnet.nn")->Unit(benchmark::kMicrosecond);

// One forward pass of the reference interpreter at batch 100 (f32 mode).
void BM_InterpretForward(benchmark::State& state, const char* file) {
  const nnc::Graph g = compileOrDie(example(file));
  const nnc::TensorMap feeds = nnc::randomFeeds(g, 1);
  std::vector<nnc::ValueId> targets = {g.loss};
  for (auto _ : state) benchmark::DoNotOptimize(nnc::interpret(g, feeds, {}, targets));
  state.SetItemsProcessed(state.iterations() * g.type(g.inputs[0]).shape[0]);
}
BENCHMARK_CAPTURE(BM_InterpretForward, mnist_mlp, "mnist_mlp.nn")->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_InterpretForward, simple_convnet, "simple_convnet.nn")->Unit(benchmark::kMillisecond);

}  // namespace
