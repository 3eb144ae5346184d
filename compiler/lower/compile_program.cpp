#include "compiler/lower/compile_program.h"

#include <chrono>
#include <ostream>

namespace nnc {

namespace {

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Expected<LoweredProgram> compileProgram(const Graph& g, const std::vector<ValueId>& targets, const LowerOptions& lower,
                                        const PassOptions& passes) {
  LoweredProgram out;
  auto t0 = std::chrono::steady_clock::now();
  // The mode is the lowering's; the passes take it from there, so that no
  // caller can fold batchnorm into a train step.
  PassOptions forMode = passes;
  forMode.inference = !lower.training;
  NNC_TRY(Optimized optimized, optimizeGraph(g, rootsOf(targets, lower), forMode));
  out.graph = std::move(optimized.graph);
  out.map = std::move(optimized.map);
  out.passesMs = msSince(t0);
  t0 = std::chrono::steady_clock::now();
  std::vector<ValueId> mapped;
  for (ValueId t : targets) mapped.push_back(out.map[static_cast<size_t>(t)]);
  const LowerOptions lo = mapCommits(loweringFor(lower, passes), out.map);
  NNC_TRY(out.program, lowerGraph(out.graph, mapped, lo));
  out.lowerMs = msSince(t0);
  if (passes.dump && (passes.dumpAfter == "lower" || passes.dumpAfter == "all"))
    *passes.dump << "# after lower\n" << printProgram(out.program);
  return out;
}

}  // namespace nnc
