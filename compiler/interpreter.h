// The reference interpreter: the oracle every backend is checked against.
// It computes every op in double with plain loops; in f32 mode each value
// (params and inputs included) is rounded to float after it is produced, so
// the result is what a correctly-rounded-per-op f32 machine computes.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "compiler/graph.h"
#include "dsl/diagnostics.h"
#include "runtime/tensor.h"

namespace nnc {

using TensorMap = std::map<std::string, Tensor>;

struct EvalOptions {
  bool f64 = false;       // keep double precision throughout (gradient checks)
  bool training = false;  // dropout masks on, batchnorm on batch statistics
  uint64_t seed = 42;     // for parameter initialization and dropout
};

// Values for every param, from its initializer (seeded) or literal.
Expected<TensorMap> initParams(const Graph& g, uint64_t seed);

// Evaluates every node of `g`. `feeds` supplies inputs and labels by name
// (all required) and params (those missing are initialized from `seed`).
// Returns one tensor per node, indexed by ValueId.
Expected<std::vector<Tensor>> interpret(const Graph& g, const TensorMap& feeds, const EvalOptions& opt = {});

}  // namespace nnc
