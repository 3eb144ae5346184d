// A lowered program compiled by the JIT into one native function over one
// arena: `infer` and `train_step` are both this, for different programs.
// No LLVM header here: callers (CLI, tests, benchmarks) stay fast to build.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "compiler/lower/lower.h"
#include "compiler/passes/pipeline.h"

namespace nnc::jit {

struct CompileOptions {
  int optLevel = 3;
  std::string entry = "nnc_step";
  bool keepIR = false;   // keep the optimized IR for `nnc emit-llvm`
  bool profile = false;  // also compile a thunk per kernel, for profile()
  // Compile one function for kernels identical but for their buffers and
  // launch it on each one's (off: one function per kernel, for comparing).
  bool dedupe = true;
  PassOptions passes;    // the graph passes and fusions (all on by default)
};

// Wall time of each stage, for `nnc run -v`. Optimization and code
// generation run together, module by module on the thread pool
// (optimizeMs); codegenMs is what is left: linking and symbol lookup.
struct CompileTimes {
  double passesMs = 0, lowerMs = 0, irMs = 0, optimizeMs = 0, codegenMs = 0;
  double engineMs = 0;  // creating the LLJIT instance
  double totalMs = 0;   // all of create(), the arena included
  int kernelsCompiled = 0;  // functions given to LLVM: the kernels less those identical to an earlier one
};

class CompiledProgram {
 public:
  // Lowers `targets` of `g` (see lowerGraph), builds the LLVM module, runs
  // the O-level pipeline and JIT-compiles it. Consts are filled here; inputs,
  // labels and params are the caller's to fill through data().
  static Expected<std::unique_ptr<CompiledProgram>> create(const Graph& g, const std::vector<ValueId>& targets,
                                                           const LowerOptions& lower, const CompileOptions& opt = {});
  ~CompiledProgram();
  CompiledProgram(const CompiledProgram&) = delete;
  CompiledProgram& operator=(const CompiledProgram&) = delete;

  // The value's floats in the arena (i32 values held as floats), or null if
  // the program does not hold it. Ids are those of the graph given to
  // create(); the optimized graph's are internal.
  float* data(ValueId v);
  const float* data(ValueId v) const;
  int64_t size(ValueId v) const;

  // Runs every kernel in order, then the commits: one native call.
  void run();

  // Runs the kernels one by one (as run() does, commits included) and
  // returns each launch's wall time in ms: where a step's time goes.
  Expected<std::vector<double>> profile();

  const Program& program() const { return program_; }
  const Graph& optimizedGraph() const { return graph_; }
  const std::string& optimizedIR() const { return ir_; }
  const CompileTimes& times() const { return times_; }
  int64_t arenaBytes() const { return program_.arenaFloats * 4; }

  struct Impl;

 private:
  CompiledProgram() = default;
  Graph graph_;                   // after the passes: what was lowered
  std::vector<ValueId> valueMap_;  // create()'s graph ids -> graph_'s
  Program program_;
  std::string ir_;
  CompileTimes times_;
  std::unique_ptr<Impl> impl_;
  void* arenaBlock_ = nullptr;  // what calloc returned
  float* arena_ = nullptr;       // 64-byte aligned within it
  bool profiling_ = false;
  void (*entry_)(float*) = nullptr;
};

// Each kernel of `p`, then `void entry(float* arena)` that runs them on
// their slots and performs the commits.
class Module;
Status addProgram(Module& m, const Program& p, const std::string& entry);

}  // namespace nnc::jit
