// The parts of a normalization's gradient that batchnorm and layernorm
// share, built from elementwise ops and reductions so they can be
// differentiated again. Both reduce over the axes of `keep` (an "axis" list
// with keepdims = 1).
#pragma once
#include "compiler/autodiff/grad_ctx.h"

namespace nnc {

struct Normalized {
  ValueId xhat;   // (x − μ)/σ
  ValueId sigma;  // √(var + eps), the biased variance
};
Expected<Normalized> normalizedOver(GradCtx& ctx, ValueId x, const Attrs& keep, double eps);

// g − mean(g) − x̂·mean(g·x̂), with gXhat = g·x̂ given (the caller's dγ
// needs it too): dx is this over σ, times γ where g does not include it.
Expected<ValueId> normalizedInputGrad(GradCtx& ctx, ValueId g, ValueId gXhat, ValueId xhat, const Attrs& keep);

}  // namespace nnc
