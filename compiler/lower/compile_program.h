// The back end's common front half: optimize a graph, follow its values
// through the optimizer's renaming, lower it to loop IR with memory planned.
// The JIT (compiler/jit/compiled.cpp), emit-cpp (compiler/emit/emit_cpp.cpp)
// and `nnc graph --dump-after=lower` all compile through this one function,
// so the three cannot drift apart: what emit-cpp prints is what the JIT runs.
#pragma once
#include <vector>

#include "compiler/graph/graph.h"
#include "compiler/lower/lower.h"
#include "compiler/passes/pipeline.h"

namespace nnc {

struct LoweredProgram {
  Graph graph;               // after the passes: what was lowered
  std::vector<ValueId> map;  // the given graph's ids -> graph's (kNoValue: fused away or dead)
  Program program;           // over graph's ids
  double passesMs = 0;       // wall time of the graph passes
  double lowerMs = 0;        // of lowering, memory planning included
};

// Runs the passes `passes` enables over `g`, keeping `targets` and the
// commits of `lower` (both in g's ids), then lowers `targets` with `lower`
// adjusted by loweringFor. With passes.dumpAfter "lower" or "all" the
// program's text goes to passes.dump after the passes' own dumps.
Expected<LoweredProgram> compileProgram(const Graph& g, const std::vector<ValueId>& targets, const LowerOptions& lower,
                                        const PassOptions& passes);

}  // namespace nnc
