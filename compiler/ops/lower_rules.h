// Loop-IR lowerings of the NN family (compiler/ops/nn_lower.cpp) and of the
// loss family (compiler/ops/loss_lower.cpp), with the small expression
// helpers both share. The op files keep the registry entries and pass the
// window geometry their shape rules already know.
#pragma once
#include <utility>
#include <vector>

#include "compiler/lower/lower.h"
#include "compiler/ops/im2col.h"

namespace nnc {

// ---- NN family ----

// col[N·OH·OW, C·KH·KW] in im2col's layout (compiler/ops/im2col.h).
Status lowerIm2col(LowerArgs& a, const PatchGeom& g);
// g: the image (the result) and its windows.
Status lowerCol2im(LowerArgs& a, const PatchGeom& g);
// g: the input image and the kernel windows.
Status lowerConv2d(LowerArgs& a, const PatchGeom& g, int64_t groups);
// g: the conv2d this is the adjoint of, whose input image is our result.
Status lowerConvTranspose2d(LowerArgs& a, const PatchGeom& g, int64_t groups);
// g: the input x and the kernel windows.
Status lowerConv2dGradWeight(LowerArgs& a, const PatchGeom& g, int64_t groups);
// g: the pooled image (x, or the result for avgpool2d_grad).
// relu: relu(maxpool2d(x)) and step(x)·maxpool2d_grad(relu(x), dy).
Status lowerMaxpool2d(LowerArgs& a, const PatchGeom& g, bool relu = false);
Status lowerMaxpool2dGrad(LowerArgs& a, const PatchGeom& g, bool relu = false);
Status lowerMaxpool2dGather(LowerArgs& a, const PatchGeom& g);
Status lowerAvgpool2d(LowerArgs& a, const PatchGeom& g);
Status lowerAvgpool2dGrad(LowerArgs& a, const PatchGeom& g);
Status lowerDropoutMask(LowerArgs& a);
Status lowerNormal(LowerArgs& a);
Status lowerBatchnorm(LowerArgs& a);

// The windows of a pooling op (stride defaulting to the kernel) and of a
// convolution, from their attributes (compiler/ops/nn_ops.cpp).
PatchGeom poolWindows(const Shape& x, const Attrs& a);
PatchGeom convWindows(const Shape& x, const Shape& w, const Attrs& a);

// ---- fused ops (compiler/ops/fused_ops.cpp) ----

// conv2d_grad_weight_fused; db >= 0: the buffer of the bias gradient the
// runtime sums beside dw (conv2d_grad_bias_fused), else none.
Status lowerConvGradWeightFused(LowerArgs& a, int db);

// ---- loss family ----

Status lowerSoftmax(LowerArgs& a);
Status lowerLogSoftmax(LowerArgs& a);
Status lowerSoftmaxCrossEntropy(LowerArgs& a);
Status lowerSoftmaxCrossEntropyGrad(LowerArgs& a);
// Both at once: a.out is the loss, `grad` the gradient's buffer.
Status lowerSoftmaxCrossEntropyFused(LowerArgs& a, int grad);
Status lowerCrossEntropy(LowerArgs& a);
Status lowerNll(LowerArgs& a);
Status lowerHuber(LowerArgs& a);
Status lowerKlDiv(LowerArgs& a);
Status lowerMse(LowerArgs& a);
Status lowerSse(LowerArgs& a);
Status lowerBce(LowerArgs& a);
Status lowerBceGrad(LowerArgs& a);
Status lowerBceWithLogits(LowerArgs& a);
Status lowerL1(LowerArgs& a);
Status lowerL2(LowerArgs& a);
Status lowerOneHot(LowerArgs& a);
Status lowerArgmax(LowerArgs& a);
Status lowerAccuracy(LowerArgs& a);

// ---- expression and loop shorthands for the rules ----
namespace lx {

using loop::Affine;
using loop::ExprP;
using loop::Op;
using loop::Stmt;

inline Affine v(int var, int64_t coeff = 1) { return Affine::var(var, coeff); }
inline ExprP num(double x) { return loop::constant(static_cast<float>(x)); }
inline ExprP ld(int buf, Affine at) { return loop::load(buf, std::move(at)); }
inline ExprP bin(Op op, ExprP a, ExprP b) { return loop::apply(op, {std::move(a), std::move(b)}); }
inline ExprP un(Op op, ExprP a) { return loop::apply(op, {std::move(a)}); }
inline ExprP add(ExprP a, ExprP b) { return bin(Op::Add, std::move(a), std::move(b)); }
inline ExprP sub(ExprP a, ExprP b) { return bin(Op::Sub, std::move(a), std::move(b)); }
inline ExprP mul(ExprP a, ExprP b) { return bin(Op::Mul, std::move(a), std::move(b)); }
inline ExprP div(ExprP a, ExprP b) { return bin(Op::Div, std::move(a), std::move(b)); }
inline ExprP eq(ExprP a, ExprP b) { return bin(Op::Equal, std::move(a), std::move(b)); }
inline ExprP gt(ExprP a, ExprP b) { return bin(Op::Greater, std::move(a), std::move(b)); }
// cond > 0 ? a : b
inline ExprP select(ExprP cond, ExprP a, ExprP b) {
  return loop::apply(Op::Select, {std::move(cond), std::move(a), std::move(b)});
}
// 1 if x is NaN, else 0.
inline ExprP isNaN(const ExprP& x) { return sub(num(1), eq(x, x)); }
// 1 where x takes over a running maximum m as the reference's scans do:
// x > m, or x is the first NaN (m not NaN yet); then max(m, x) is x.
inline ExprP beats(const ExprP& x, const ExprP& m) { return add(gt(x, m), mul(isNaN(x), eq(m, m))); }
// The value of an affine function of loop variables, as a float (exact for
// the small window positions and class ids it is used for).
inline ExprP valueOf(const Affine& a) {
  ExprP e;
  for (const auto& [var, k] : a.terms) {
    ExprP t = k == 1 ? loop::indexOf(var) : mul(loop::indexOf(var), num(static_cast<double>(k)));
    e = e ? add(e, t) : t;
  }
  if (!e) return num(static_cast<double>(a.c));
  return a.c ? add(e, num(static_cast<double>(a.c))) : e;
}

// Loops over (variable, extent) pairs, outermost first; the outermost is
// marked parallel when `parallel`.
inline Stmt loops(const std::vector<std::pair<int, int64_t>>& dims, std::vector<Stmt> body, bool parallel = false) {
  for (size_t d = dims.size(); d-- > 1;) {
    std::vector<Stmt> inner;
    inner.push_back(loop::loopOver(dims[d].first, dims[d].second, std::move(body)));
    body = std::move(inner);
  }
  return loop::loopOver(dims[0].first, dims[0].second, std::move(body), parallel);
}

}  // namespace lx
}  // namespace nnc
