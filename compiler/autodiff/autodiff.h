// Reverse-mode differentiation as a graph-to-graph transformation: the
// backward pass is appended to the forward graph as ordinary nodes, built by
// each op's gradient rule in the registry, so later passes and backends treat
// it like any other graph.
#pragma once
#include <string>
#include <vector>

#include "compiler/graph/graph.h"

namespace nnc {

struct GradOptions {
  std::vector<std::string> wrt;  // names of params or inputs; empty: every trainable param
};

struct GradGraph {
  Graph graph;         // forward nodes [0, forwardSize), backward nodes after
  size_t forwardSize = 0;
  std::vector<std::pair<std::string, ValueId>> grads;  // d loss / d value, by name
};

Expected<GradGraph> differentiate(const Graph& forward, const GradOptions& opt = {});

// Weight decay as the course notes write it, in the graph: adds
// lambda * l2(W) (0.5·λ·ΣW², gradient λ·W) or lambda * l1(W) (λ·Σ|W|, gradient
// λ·sign(W)) to the loss for every trainable param of rank >= 2 (weights, not
// biases or batchnorm scales).
Status addWeightDecay(Graph& g, const std::string& kind, double lambda);

// `nnc grad`: the backward nodes and the gradients, in printGraph's format.
std::string printBackward(const GradGraph& gg);

}  // namespace nnc
