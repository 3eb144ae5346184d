// The convolutions of an optimized graph as `nnc bench` lists them: which
// node, which direction of which forward convolution, and the algorithm
// the conv-algo pass gave it (compiler/passes/conv_algo.cpp).
#pragma once
#include <string>
#include <vector>

#include "compiler/graph/graph.h"
#include "compiler/ops/conv_algo.h"

namespace nnc::cli {

struct ConvLayer {
  std::string node;      // its name, else "%id"
  std::string op;        // conv2d_fused, conv_transpose2d_fused, ...
  std::string geometry;  // "100x1x28x28 -> 30, 5x5 s1 p0" (+ " g2", " pool2")
  FusedConv conv;
  ConvAlgo algo = ConvAlgo::Auto;  // its "algo" attribute
};

// Every fused convolution of `g`, in node order.
std::vector<ConvLayer> convLayers(const Graph& g);

// How many of `layers` algorithm `a` can compute (convAlgoFits).
int fittingLayers(const std::vector<ConvLayer>& layers, ConvAlgo a);

}  // namespace nnc::cli
