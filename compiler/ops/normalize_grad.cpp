#include "compiler/ops/normalize_grad.h"

namespace nnc {

Expected<Normalized> normalizedOver(GradCtx& ctx, ValueId x, const Attrs& keep, double eps) {
  NNC_TRY(const ValueId mu, ctx.op("mean", {x}, keep));
  NNC_TRY(const ValueId xc, ctx.op("sub", {x, mu}));
  NNC_TRY(const ValueId sq, ctx.op("mul", {xc, xc}));
  NNC_TRY(const ValueId var, ctx.op("mean", {sq}, keep));
  NNC_TRY(const ValueId e, ctx.constant(eps));
  NNC_TRY(const ValueId varEps, ctx.op("add", {var, e}));
  NNC_TRY(const ValueId sigma, ctx.op("sqrt", {varEps}));
  NNC_TRY(const ValueId xhat, ctx.op("div", {xc, sigma}));
  return Normalized{xhat, sigma};
}

Expected<ValueId> normalizedInputGrad(GradCtx& ctx, ValueId g, ValueId gXhat, ValueId xhat, const Attrs& keep) {
  NNC_TRY(const ValueId meanG, ctx.op("mean", {g}, keep));
  NNC_TRY(const ValueId meanGXhat, ctx.op("mean", {gXhat}, keep));
  NNC_TRY(const ValueId centred, ctx.op("sub", {g, meanG}));
  NNC_TRY(const ValueId along, ctx.op("mul", {xhat, meanGXhat}));
  return ctx.op("sub", {centred, along});
}

}  // namespace nnc
