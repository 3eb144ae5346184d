// Facts about a graph that several stages need: which nodes some values
// depend on (the interpreter, dce, lowering) and the params' starting values
// (the interpreter, the JIT's callers, emit-cpp). They live with the graph,
// not with the reference interpreter, so that the passes, lowering and the
// emitter do not depend on the interpreter.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "base/tensor.h"
#include "compiler/graph/graph.h"

namespace nnc {

// Values by their graph names: params, optimizer state, feeds.
using TensorMap = std::map<std::string, Tensor>;

// The value of one param node from its initializer.
Expected<Tensor> initParam(const Node& param, uint64_t seed);

// Values for every param, from its initializer (seeded) or literal.
Expected<TensorMap> initParams(const Graph& g, uint64_t seed);

// The nodes `targets` depend on, themselves included (all when `targets` is empty).
std::vector<bool> liveNodes(const Graph& g, const std::vector<ValueId>& targets);

}  // namespace nnc
