// nnc graph: the graph IR as text or Graphviz, optionally after the train
// step's construction (--train), the passes (--optimized) or with a stage's
// dump (--dump-after).
#include <ostream>

#include "cli/commands.h"
#include "cli/run_parallel.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/lower/compile_program.h"

namespace nnc::cli {

int runGraph(const Options& o, std::ostream& out, std::ostream& err) {
  auto l = loadFor(o, err);
  if (!l) return 1;
  auto fail = reporter(*l, err);
  auto passes = passOptions(o, &out);
  if (!passes) return fail(passes.error());
  // Graphviz reads the dumps' "# after PASS" lines as comments; the loop IR
  // is no graph and has no Graphviz form.
  passes->dot = o.flag("dot");
  if (passes->dot && passes->dumpAfter == "lower")
    return fail(error("--dot --dump-after=lower: the loop IR has no Graphviz form (leave out --dot to print it)"));
  Graph g = l->model.graph;
  std::vector<ValueId> roots;
  for (const auto& [_, v] : g.outputs) roots.push_back(v);
  if (g.loss != kNoValue) roots.push_back(g.loss);
  LowerOptions lo;
  if (o.flag("train")) {
    auto parallel = ranksOption(o);
    if (!parallel) return fail(parallel.error());
    auto step = buildTrainStep(g, l->model.train, *parallel ? &**parallel : nullptr);
    if (!step) return fail(step.error());
    g = step->grads.graph;
    lo = step->lowering();
    roots = rootsOf({g.loss}, lo);
  }
  passes->inference = !lo.training;
  if (o.flag("optimized") || !passes->dumpAfter.empty()) {
    // Lowered only for its dump: --optimized alone prints the optimized graph.
    Graph optimized;
    // With --dot, "all" is every graph pass: the loop IR has no Graphviz form.
    if (passes->dumpAfter == "lower" || (passes->dumpAfter == "all" && !passes->dot)) {
      auto prog = compileProgram(g, roots, lo, *passes);
      if (!prog) return fail(prog.error());
      optimized = std::move(prog->graph);
    } else {
      auto opt = optimizeGraph(g, roots, *passes);
      if (!opt) return fail(opt.error());
      optimized = std::move(opt->graph);
    }
    if (!o.flag("optimized")) return 0;
    g = std::move(optimized);
  }
  out << (o.flag("dot") ? printDot(g) : printGraph(g));
  return 0;
}

}  // namespace nnc::cli
