// Which graph nodes share a kernel: lowering's three fusions, decided in one
// step (fusionGroups) before any kernel is built. Why these are lowering's
// and not graph passes is at the top of fusion_groups.cpp.
#pragma once
#include <string>
#include <vector>

#include "compiler/graph/graph.h"
#include "compiler/lower/lower.h"

namespace nnc {

// Multi-output groups (see multiOutputGroups in fusion_groups.cpp).
struct Groups {
  std::vector<ValueId> root;  // per value: the root of its group, kNoValue if not in one
  std::vector<bool> stored;   // per member: keeps its slot and a store
};

struct FusionGroups {
  // Elementwise chains: per value, computed inside its one reader's loop
  // (no kernel, no slot).
  std::vector<bool> inlined;
  // Softmax cross-entropy: ceGrad[loss] is the gradient computed in the
  // loss's kernel, ceLoss[grad] the loss whose kernel computes it.
  std::vector<ValueId> ceGrad, ceLoss;
  // A convolution's bias gradient (conv2d_grad_bias_fused, made by fuse-conv):
  // biasGrad[dw] is computed in its weight gradient dw's kernel, weightGrad[db]
  // the weight gradient whose kernel computes it.
  std::vector<ValueId> biasGrad, weightGrad;
  // Multi-output groups, and per group root its members in id order.
  Groups groups;
  std::vector<std::vector<ValueId>> members;
};

// The fusions `opt` switches on, over the live nodes of `g`; `external`
// values (what the caller reads) are never computed inline.
FusionGroups fusionGroups(const Graph& g, const std::vector<bool>& live, const std::vector<bool>& external,
                          const LowerOptions& opt);

// -v's lines: one per fusion, what it grouped.
std::string fusionLog(const FusionGroups& f, const LowerOptions& opt);

}  // namespace nnc
