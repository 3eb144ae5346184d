// The fused batchnorm ops' lowerings (compiler/ops/batchnorm_lower.cpp),
// which their registry entries (compiler/ops/batchnorm_ops.cpp) name.
#pragma once
#include "compiler/ops/lower_rules.h"

namespace nnc {

Status lowerBatchnormStats(LowerArgs& a);
Status lowerBatchnormFused(LowerArgs& a);
Status lowerBatchnormGradSums(LowerArgs& a);
Status lowerBatchnormGradInput(LowerArgs& a);

}  // namespace nnc
