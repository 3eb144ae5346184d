// nnc emit-llvm: the optimized LLVM IR of a model's train step (forward,
// backward and update in one function) or of its inference.
#include <ostream>

#include "cli/commands.h"
#include "cli/run_parallel.h"
#include "cli/frontend.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/jit/compiled.h"
#include "io/file_io.h"
#include "io/npy.h"

namespace nnc::cli {

int runEmitLlvm(const Options& o, std::ostream& out, std::ostream& err) {
  auto l = loadFor(o, err);
  if (!l) return 1;
  auto fail = reporter(*l, err);
  auto level = optLevelOption(o);
  if (!level) return fail(level.error());
  const Graph& g = l->model.graph;
  auto passes = passOptions(o, &out);
  if (!passes) return fail(passes.error());
  // With --dump-after the dumps are the output, not the LLVM IR.
  const bool dumping = !passes->dumpAfter.empty();
  jit::CompileOptions co;
  co.optLevel = *level;
  co.passes = *passes;
  co.keepIR = true;
  std::unique_ptr<jit::CompiledProgram> p;
  if (o.flag("infer") || g.loss == kNoValue) {
    std::vector<ValueId> targets;
    for (const auto& [_, v] : g.outputs) targets.push_back(v);
    if (g.loss != kNoValue) targets.push_back(g.loss);
    if (targets.empty()) return fail(error("model '{}' has no outputs and no loss: nothing to compile", g.name));
    co.entry = "infer";
    auto cp = jit::CompiledProgram::create(g, targets, LowerOptions{}, co);
    if (!cp) return fail(cp.error());
    p = cp.take();
  } else {
    auto parallel = ranksOption(o);
    if (!parallel) return fail(parallel.error());
    auto step = buildTrainStep(g, l->model.train, *parallel ? &**parallel : nullptr);
    if (!step) return fail(step.error());
    const LowerOptions lo = step->lowering();
    co.entry = "train_step";
    auto cp = jit::CompiledProgram::create(step->grads.graph, {step->grads.graph.loss}, lo, co);
    if (!cp) return fail(cp.error());
    p = cp.take();
  }
  if (dumping) return 0;
  // One module, whatever the threads compiled (llvm-as, opt and llc take it).
  if (auto st = writeOutput(o.value("output"), p->optimizedIR(), out); !st) return fail(st.error());
  return 0;
}

}  // namespace nnc::cli
