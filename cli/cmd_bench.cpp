// nnc bench: what fusion buys. The train step and inference are compiled
// twice, with the optimizer's fusions (as `nnc run` compiles them) and with
// every fusion off (each op lowered by its own rule: im2col buffers, a
// separate softmax, bias and activation as their own loops), then run in
// one process, taking turns in blocks of consecutive runs, on the same
// random params and data. Then each
// convolution of the fused programs with the algorithm the conv-algo pass
// chose, and with --conv-algos the fused programs once per algorithm forced,
// timed the same way.
#include <algorithm>
#include <chrono>
#include <ostream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/conv_layers.h"
#include "cli/frontend.h"
#include "cli/memory_need.h"
#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/jit/compiled.h"
#include "runtime/gemm.h"
#include "runtime/parallel.h"

namespace nnc::cli {

namespace {

using Clock = std::chrono::steady_clock;

struct Variant {
  std::string program, variant;
  std::unique_ptr<jit::CompiledProgram> compiled;
  std::vector<double> ms;  // one per timed run
  double median() const {
    std::vector<double> s = ms;
    std::sort(s.begin(), s.end());
    return s.empty() ? 0 : s.size() % 2 ? s[s.size() / 2] : (s[s.size() / 2 - 1] + s[s.size() / 2]) / 2;
  }
  double min() const { return ms.empty() ? 0 : *std::min_element(ms.begin(), ms.end()); }
};

// Params from their initializers, inputs and labels random, the learning
// rate 0: every timed step then computes on the same values, and no run
// drifts into denormals or NaN.
void fill(jit::CompiledProgram& p, const Graph& g, const TensorMap& params, ValueId lr) {
  TensorMap feeds = randomFeeds(g, 1);
  for (const auto& [name, t] : params) feeds[name] = t;
  for (const auto& [name, t] : feeds)
    if (float* d = p.data(g.findByName(name)))
      for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
  if (lr != kNoValue)
    if (float* d = p.data(lr)) d[0] = 0;
}

// Warm up, then take turns in blocks: each variant runs kBlock times in a
// row and all but the first of them are timed. Consecutive runs are what a
// training loop does (and what bench/torch_reference.py times on PyTorch's
// side); switching programs evicts the caches (an unfused arena is several
// times the fused one), so the run after a switch is not counted. Taking
// turns keeps every variant on the same machine (the other load on a shared
// host, the clock): minTime seconds each, at least 10 timed runs each.
constexpr int kBlock = 4;

void timeTogether(const std::vector<Variant*>& group, double minTime) {
  for (Variant* r : group)
    for (int i = 0; i < 3; ++i) r->compiled->run();
  const auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < double(group.size()) * minTime ||
         group[0]->ms.size() < 10)
    for (Variant* r : group)
      for (int i = 0; i < kBlock; ++i) {
        const auto t0 = Clock::now();
        r->compiled->run();
        if (i > 0) r->ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
}

// The algorithms --conv-algos forces: auto (the pass's own choice), then
// each that computes at least one of `layers`.
std::vector<ConvAlgo> algosToForce(const std::vector<ConvLayer>& layers) {
  std::vector<ConvAlgo> algos{ConvAlgo::Auto};
  for (int a = 1; a < kConvAlgoCount; ++a)
    if (fittingLayers(layers, ConvAlgo(a)) > 0) algos.push_back(ConvAlgo(a));
  return algos;
}

}  // namespace

int runBench(const Options& o, std::ostream& out, std::ostream& err) {
  auto l = loadFor(o, err);
  if (!l) return 1;
  auto fail = reporter(*l, err);
  if (auto st = applyThreads(o); !st) return fail(st.error());
  auto level = optLevelOption(o);
  if (!level) return fail(level.error());
  auto fusedPasses = passOptions(o, &out);
  if (!fusedPasses) return fail(fusedPasses.error());
  PassOptions unfused = PassOptions::unfused();
  unfused.optimize = fusedPasses->optimize;
  double minTime = 2;
  if (o.flag("min-time")) {
    const std::string v = o.value("min-time");
    size_t used = 0;
    try {
      minTime = std::stod(v, &used);
    } catch (...) {
      used = 0;
    }
    if (used == 0 || used != v.size() || !(minTime > 0))
      return fail(error("--min-time: expected a positive number of seconds, got '{}'", v));
  }

  const Graph& g = l->model.graph;
  auto step = buildTrainStep(g, l->model.train);
  const bool trainable = g.loss != kNoValue && step;
  auto params = initParams(g, 42);
  if (!params) return fail(params.error());

  std::vector<Variant> runs;
  auto compile = [&](const std::string& program, const std::string& variant, const Graph& graph,
                     const std::vector<ValueId>& targets, const LowerOptions& lo, const PassOptions& passes,
                     ValueId lr, std::vector<Variant>& into) -> Status {
    jit::CompileOptions co;
    co.optLevel = *level;
    co.passes = passes;
    co.entry = program;
    NNC_TRY(auto cp, jit::CompiledProgram::create(graph, targets, lo, co));
    fill(*cp, graph, *params, lr);
    into.push_back(Variant{program, variant, std::move(cp), {}});
    return ok();
  };
  if (trainable) {
    const Graph& sg = step->grads.graph;
    for (int v = 0; v < 2; ++v)
      if (auto st = compile("train_step", v ? "unfused" : "fused", sg, {sg.loss}, step->lowering(),
                            v ? unfused : *fusedPasses, step->lr, runs);
          !st)
        return fail(st.error());
  }
  std::vector<ValueId> outs;
  for (const auto& [_, v] : g.outputs) outs.push_back(v);
  if (outs.empty() && g.loss != kNoValue) outs.push_back(g.loss);
  if (!outs.empty())
    for (int v = 0; v < 2; ++v)
      if (auto st = compile("infer", v ? "unfused" : "fused", g, outs, LowerOptions{}, v ? unfused : *fusedPasses,
                            kNoValue, runs);
          !st)
        return fail(st.error());
  if (runs.empty()) return fail(error("model '{}' has no outputs and no loss: nothing to benchmark", g.name));

  for (size_t pair = 0; pair < runs.size(); pair += 2) {
    std::vector<Variant*> group;
    for (size_t v = pair; v < std::min(pair + 2, runs.size()); ++v) group.push_back(&runs[v]);
    timeTogether(group, minTime);
  }

  // The convolutions of each fused program, and with --conv-algos that
  // program again per algorithm forced, each where it fits (the pass keeps
  // the runtime's choice elsewhere).
  struct Layers {
    std::string program;
    std::vector<ConvLayer> layers;
  };
  std::vector<Layers> convs;
  for (size_t i = 0; i < runs.size(); i += 2) convs.push_back({runs[i].program, convLayers(runs[i].compiled->optimizedGraph())});
  struct Forced {
    ConvAlgo algo;
    int layers;  // that run it
    size_t run;  // in algoRuns
  };
  std::vector<Variant> algoRuns;
  std::vector<std::vector<Forced>> forced(convs.size());
  if (o.flag("conv-algos")) {
    for (size_t p = 0; p < convs.size(); ++p) {
      if (convs[p].layers.empty()) continue;
      const bool train = convs[p].program == "train_step";
      for (ConvAlgo a : algosToForce(convs[p].layers)) {
        PassOptions po = *fusedPasses;
        po.convAlgo = convAlgoName(a);
        const Graph& graph = train ? step->grads.graph : g;
        if (auto st = compile(convs[p].program, convAlgoName(a), graph, train ? std::vector<ValueId>{graph.loss} : outs,
                              train ? step->lowering() : LowerOptions{}, po, train ? step->lr : kNoValue, algoRuns);
            !st)
          return fail(st.error());
        const int n = a == ConvAlgo::Auto ? int(convs[p].layers.size()) : fittingLayers(convs[p].layers, a);
        forced[p].push_back({a, n, algoRuns.size() - 1});
      }
    }
    for (const std::vector<Forced>& f : forced) {
      std::vector<Variant*> group;
      for (const Forced& x : f) group.push_back(&algoRuns[x.run]);
      if (!group.empty()) timeTogether(group, minTime);
    }
  }

  // What nnc run would hold with the fused programs (cli/memory_need.h).
  auto need = memoryNeed(g, trainable ? &*step : nullptr, *fusedPasses, l->model.lossScores);
  if (!need) return fail(need.error());
  const int64_t batch = std::max<int64_t>(l->model.batch, 1);
  auto speedup = [&](size_t i) { return runs[i].median() / std::max(runs[i - 1].median(), 1e-9); };
  if (o.flag("json")) {
    out << fmt::format("{{\"model\": \"{}\", \"batch\": {}, \"threads\": {}, \"gemm\": \"{}\", \"results\": [", g.name, batch,
                       threadCount(), sgemmIsa());
    for (size_t i = 0; i < runs.size(); ++i) {
      const Variant& r = runs[i];
      out << fmt::format(
          "{}\n  {{\"program\": \"{}\", \"variant\": \"{}\", \"median_ms\": {:.4f}, \"min_ms\": {:.4f}, \"runs\": {}, "
          "\"samples_per_s\": {:.1f}, \"arena_bytes\": {}, \"kernels\": {}, \"compile_ms\": {:.1f}}}",
          i ? "," : "", r.program, r.variant, r.median(), r.min(), r.ms.size(), 1e3 * double(batch) / r.median(),
          r.compiled->arenaBytes(), r.compiled->program().kernels.size(), r.compiled->times().totalMs);
    }
    out << "],\n \"speedup\": {";
    for (size_t i = 1; i < runs.size(); i += 2)
      out << fmt::format("{}\"{}\": {:.3f}", i > 1 ? ", " : "", runs[i].program, speedup(i));
    out << "},\n \"conv_layers\": [";
    bool first = true;
    for (const Layers& p : convs)
      for (const ConvLayer& c : p.layers) {
        out << fmt::format("{}\n  {{\"program\": \"{}\", \"node\": \"{}\", \"op\": \"{}\", \"direction\": \"{}\", "
                           "\"geometry\": \"{}\", \"algo\": \"{}\"}}",
                           first ? "" : ",", p.program, c.node, c.op, convDirName(c.conv.dir), c.geometry,
                           convAlgoName(c.algo));
        first = false;
      }
    out << "]";
    if (o.flag("conv-algos")) {
      out << ",\n \"conv_algos\": [";
      first = true;
      for (size_t p = 0; p < convs.size(); ++p)
        for (const Forced& f : forced[p]) {
          const Variant& r = algoRuns[f.run];
          out << fmt::format("{}\n  {{\"program\": \"{}\", \"algo\": \"{}\", \"layers\": {}, \"of\": {}, "
                             "\"median_ms\": {:.4f}, \"min_ms\": {:.4f}, \"runs\": {}}}",
                             first ? "" : ",", r.program, r.variant, f.layers, convs[p].layers.size(), r.median(),
                             r.min(), r.ms.size());
          first = false;
        }
      out << "]";
    }
    out << fmt::format(",\n \"memory_bytes\": {{\"params\": {}, \"optimizer_state\": {}, \"train_arena\": {}, "
                       "\"infer_arena\": {}, \"train_run\": {}, \"inference\": {}}}}}\n",
                       4 * need->paramFloats, 4 * need->stateFloats, 4 * need->trainArenaFloats,
                       4 * need->inferArenaFloats, need->training ? need->trainBytes() : 0, need->inferBytes());
    return 0;
  }
  out << fmt::format("nnc bench {}: batch {}, {} thread{}, GEMM {}, -O{}{}; timed in turns of {} consecutive runs, "
                     "the first of each not counted\n",
                     g.name, batch, threadCount(), threadCount() == 1 ? "" : "s", sgemmIsa(), *level,
                     trainable ? "; train steps at lr 0 (params stay fixed)" : "", kBlock);
  out << fmt::format("{:<11} {:<8} {:>10} {:>9} {:>6} {:>10} {:>12} {:>8} {:>11}\n", "program", "variant", "median ms",
                     "min ms", "runs", "samples/s", "arena bytes", "kernels", "compile ms");
  for (size_t i = 0; i < runs.size(); ++i) {
    const Variant& r = runs[i];
    out << fmt::format("{:<11} {:<8} {:>10.3f} {:>9.3f} {:>6} {:>10.0f} {:>12} {:>8} {:>11.1f}\n", r.program, r.variant,
                       r.median(), r.min(), r.ms.size(), 1e3 * double(batch) / r.median(), groupThousands(r.compiled->arenaBytes()),
                       r.compiled->program().kernels.size(), r.compiled->times().totalMs);
    if (i % 2 == 1)
      out << fmt::format("{:<11} {:<8} {:>9.2f}x {:>8.2f}x   (unfused / fused; arena {:.2f}x)\n", r.program, "speedup",
                         speedup(i), runs[i].min() / std::max(runs[i - 1].min(), 1e-9),
                         double(runs[i].compiled->arenaBytes()) / double(std::max<int64_t>(runs[i - 1].compiled->arenaBytes(), 1)));
  }
  size_t layers = 0;
  for (const Layers& p : convs) layers += p.layers.size();
  if (layers) {
    out << "\nconvolutions of the fused programs (the conv-algo pass's choice; --conv-algo=NAME forces one):\n";
    out << fmt::format("{:<11} {:<18} {:<24} {:<12} {:<34} {}\n", "program", "node", "op", "direction", "geometry",
                       "algo");
    for (const Layers& p : convs)
      for (const ConvLayer& c : p.layers)
        out << fmt::format("{:<11} {:<18} {:<24} {:<12} {:<34} {}\n", p.program, c.node, c.op, convDirName(c.conv.dir),
                           c.geometry, convAlgoName(c.algo));
  }
  if (o.flag("conv-algos") && layers) {
    out << "\nconvolution algorithms forced (--conv-algos: each where it fits, elsewhere the runtime's choice):\n";
    out << fmt::format("{:<11} {:<10} {:>7} {:>10} {:>9} {:>6} {:>10} {:>8}\n", "program", "algo", "layers",
                       "median ms", "min ms", "runs", "samples/s", "vs auto");
    for (size_t p = 0; p < convs.size(); ++p)
      for (const Forced& f : forced[p]) {
        const Variant& r = algoRuns[f.run];
        const double autoMs = algoRuns[forced[p][0].run].median();
        out << fmt::format("{:<11} {:<10} {:>7} {:>10.3f} {:>9.3f} {:>6} {:>10.0f} {:>7.2f}x\n", r.program, r.variant,
                           fmt::format("{}/{}", f.layers, convs[p].layers.size()), r.median(), r.min(), r.ms.size(),
                           1e3 * double(batch) / r.median(), autoMs / std::max(r.median(), 1e-9));
      }
  } else if (o.flag("conv-algos")) {
    out << "\n--conv-algos: the fused programs have no convolutions\n";
  }
  out << "\n" << memoryLines(*need, "");
  return 0;
}

}  // namespace nnc::cli
