// What each fusion buys, fused against unfused in one process:
//   conv forward + backward (weight, bias and input gradients), simple_convnet's
//     conv (N=100, C=1, 28×28, F=30, 5×5; no input gradient: x is data) and a
//     ResNet-style layer (N=64, C=F=64, 56×56, 3×3, pad 1);
//   softmax cross-entropy forward + backward, 100×10 and 1024×1000;
//   whole train steps of simple_convnet and mnist_mlp.
// Arg: threads. Unfused = PassOptions::unfused() (every fusion off).
//   build/bench/bench_fusion --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "cli/frontend.h"
#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "runtime/parallel.h"

namespace {

nnc::Elaborated compile(const std::string& name, const std::string& text) {
  nnc::SourceManager sm;
  auto r = nnc::cli::compileSource(sm, name, text);
  if (!r) throw std::runtime_error(sm.render(r.error()));
  return r.take();
}

std::string example(const char* file) {
  std::ifstream f(std::string(NNC_SOURCE_DIR) + "/examples/" + file);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

nnc::PassOptions variant(bool fused) { return fused ? nnc::PassOptions{} : nnc::PassOptions::unfused(); }

std::unique_ptr<nnc::jit::CompiledProgram> build(const nnc::Graph& g, const std::vector<nnc::ValueId>& targets,
                                                 const nnc::LowerOptions& lo, bool fused) {
  nnc::jit::CompileOptions co;
  co.passes = variant(fused);
  auto cp = nnc::jit::CompiledProgram::create(g, targets, lo, co);
  if (!cp) throw std::runtime_error(cp.error().message);
  nnc::TensorMap feeds = nnc::randomFeeds(g, 1);
  if (auto params = nnc::initParams(g, 42)) feeds.merge(*params);
  for (const auto& [name, t] : feeds)
    if (float* d = (*cp)->data(g.findByName(name)))
      for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
  return cp.take();
}

// Forward and the gradients `wrt` of a one-op model, as one program.
void gradientsOf(benchmark::State& state, const std::string& text, std::vector<std::string> wrt, bool fused) {
  nnc::setThreadCount(static_cast<int>(state.range(0)));
  const nnc::Elaborated m = compile("bench.nn", text);
  auto gg = nnc::differentiate(m.graph, nnc::GradOptions{std::move(wrt)});
  if (!gg) throw std::runtime_error(gg.error().message);
  std::vector<nnc::ValueId> targets = {gg->graph.loss};
  for (const auto& [_, v] : gg->grads) targets.push_back(v);
  auto p = build(gg->graph, targets, nnc::LowerOptions{.training = true}, fused);
  for (auto _ : state) p->run();
}

std::string convModel(int n, int c, int hw, int f, int k, int pad) {
  return fmt::format(R"(model conv {{
    input x: f32[{}, {}, {}, {}]
    loss = l2(conv2d(x, filters = {}, kernel = {}, pad = {}, name = "conv"))
  }})",
                     n, c, hw, hw, f, k, pad);
}

void BM_ConvSimple(benchmark::State& s, bool fused) {
  gradientsOf(s, convModel(100, 1, 28, 30, 5, 0), {"conv.W", "conv.b"}, fused);
}
void BM_Conv64(benchmark::State& s, bool fused) {
  gradientsOf(s, convModel(64, 64, 56, 64, 3, 1), {"x", "conv.W", "conv.b"}, fused);
}
BENCHMARK_CAPTURE(BM_ConvSimple, fused, true)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvSimple, unfused, false)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv64, fused, true)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv64, unfused, false)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_SoftmaxCe(benchmark::State& s, int rows, int classes, bool fused) {
  gradientsOf(s,
              fmt::format(R"(model sce {{
    input z: f32[{}, {}]
    label t: i32[{}]
    loss = softmax_cross_entropy(z, t)
  }})",
                          rows, classes, rows),
              {"z"}, fused);
}
BENCHMARK_CAPTURE(BM_SoftmaxCe, 100x10_fused, 100, 10, true)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SoftmaxCe, 100x10_unfused, 100, 10, false)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SoftmaxCe, 1024x1000_fused, 1024, 1000, true)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SoftmaxCe, 1024x1000_unfused, 1024, 1000, false)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_TrainStep(benchmark::State& state, const char* file, bool fused) {
  nnc::setThreadCount(static_cast<int>(state.range(0)));
  const nnc::Elaborated m = compile(file, example(file));
  auto step = nnc::buildTrainStep(m.graph, m.train);
  if (!step) throw std::runtime_error(step.error().message);
  const nnc::Graph& g = step->grads.graph;
  auto p = build(g, {g.loss}, step->lowering(), fused);
  p->data(step->lr)[0] = 0;  // params stay fixed: every step computes on the same values
  for (auto _ : state) p->run();
  state.SetItemsProcessed(state.iterations() * g.type(g.inputs[0]).shape[0]);
}
BENCHMARK_CAPTURE(BM_TrainStep, simple_convnet_fused, "simple_convnet.nn", true)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, simple_convnet_unfused, "simple_convnet.nn", false)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, mnist_mlp_fused, "mnist_mlp.nn", true)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, mnist_mlp_unfused, "mnist_mlp.nn", false)->Arg(1)->Arg(2)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
