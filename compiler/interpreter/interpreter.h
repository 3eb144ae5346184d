// The reference interpreter: the oracle every backend is checked against.
// It computes every op in double with plain loops; in f32 mode each value
// (params and inputs included) is rounded to float after it is produced, so
// the result is what a correctly-rounded-per-op f32 machine computes.
#pragma once
#include <vector>

#include "base/diagnostics.h"
#include "base/tensor.h"
#include "compiler/graph/graph.h"
#include "compiler/graph/graph_util.h"

namespace nnc {

inline constexpr double kMaxInterpreterBytes = 8.0 * (1 << 30);

struct EvalOptions {
  bool f64 = false;       // keep double precision throughout (gradient checks)
  bool training = false;  // dropout masks on, batchnorm on batch statistics
  uint64_t seed = 42;     // for parameter initialization and dropout
};

// Evaluates every node of `g`. `feeds` supplies inputs and labels by name
// (all required) and params (those missing are initialized from `seed`).
// Inputs without a feed take their example value (`input x: f32[2] = [2, 3]`).
// Returns one tensor per node, indexed by ValueId. With `targets`, only the
// nodes those depend on are evaluated (the others stay empty), so a forward
// pass needs no labels.
Expected<std::vector<Tensor>> interpret(const Graph& g, const TensorMap& feeds, const EvalOptions& opt = {},
                                        const std::vector<ValueId>& targets = {});

}  // namespace nnc
