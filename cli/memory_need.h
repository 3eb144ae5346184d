// What a model holds in memory before it is allocated: `nnc check` and
// `nnc bench` print it, `nnc run` refuses a model that does not fit. The
// arenas are the compiler's own plan (compileProgram lowers and plans
// memory without generating code, which is cheap); params and optimizer
// state are counted from the graph.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/passes/pipeline.h"

namespace nnc::cli {

// Floats (4 bytes each) of what a JIT train run or inference holds.
struct MemoryNeed {
  bool training = false;         // a train step was planned
  int64_t paramFloats = 0;       // every param of the model (inside the arenas)
  int64_t stateFloats = 0;       // optimizer state (inside the train-step arena)
  std::string optimizer;         // its kind, for the label
  int64_t trainArenaFloats = 0;  // the train step's planned arena: params, state, a batch, every value of a step
  int64_t inferArenaFloats = 0;  // inference's planned arena: a copy of the params, a batch, its values
  int64_t hostCopyFloats = 0;    // nnc run's host copy of params and state, to replay a non-finite step
  int64_t batchFloats = 0;       // one batch of inputs and labels as read from the data (two such buffers)
  // The interpreter's (--backend interp) estimate instead, in bytes: every
  // value of a step in f64 plus three f64 copies of params and state.
  int64_t interpBytes = 0;

  int64_t trainBytes() const { return 4 * (trainArenaFloats + inferArenaFloats + hostCopyFloats + 2 * batchFloats); }
  int64_t inferBytes() const { return 4 * (inferArenaFloats + batchFloats); }
};

// The need of `g` (the model) and `step` (its train step, or null for
// inference alone) compiled with `passes`. `trainTargets` and
// `inferTargets` are what the programs compute (in step->grads.graph's and
// g's ids); empty: the loss and `lossScores` for training, every output and
// the loss for inference, as `nnc run` compiles them.
Expected<MemoryNeed> memoryNeed(const Graph& g, const TrainStep* step, const PassOptions& passes,
                                ValueId lossScores = kNoValue, std::vector<ValueId> trainTargets = {},
                                std::vector<ValueId> inferTargets = {});

// The lines `nnc check` and `nnc bench` print, each indented by `indent`.
std::string memoryLines(const MemoryNeed& m, const std::string& indent);

// "30.7 KiB", "8.90 GiB": binary units, as /usr/bin/time's kbytes are.
std::string humanBytes(int64_t bytes);

// The memory this process may still take: MemAvailable in /proc/meminfo,
// or the cgroup's limit less its usage (cgroup v2 memory.max) if lower.
struct MemoryLimit {
  int64_t bytes = 0;
  std::string source;  // "MemAvailable in /proc/meminfo", "--memory-limit", ...
};
std::optional<MemoryLimit> availableMemory();

// This process's resident memory now and at its peak (VmRSS and VmHWM in
// /proc/self/status), in bytes; 0 where unknown. For `nnc run -v`.
struct Resident {
  int64_t now = 0, peak = 0;
};
Resident residentMemory();

// --memory-limit SIZE: bytes with an optional K, M, G or T suffix (binary:
// 1K = 1024), "4G", "1.5G", "800M"; "off" gives nullopt (no check).
Expected<std::optional<int64_t>> parseMemorySize(const std::string& text);

}  // namespace nnc::cli
