// Training-mode batchnorm as four fused ops (made by fuse-batchnorm,
// compiler/passes/fuse_batchnorm.cpp, after differentiation): one sweep for
// the statistics, one that normalizes (and applies a following relu), and
// for the gradient one sweep of per-channel sums and one for dx. The
// expanded form autodiff writes (mean, sub, mul, sqrt, div, ...) stays the
// differentiable one; these replace it in the final graph only. Statistics
// are [2, C]: row 0 the batch mean, row 1 the biased variance, as
// batchnorm's reference computes them. Lowerings: batchnorm_lower.cpp.
#include <cmath>

#include "compiler/ops/activation.h"
#include "compiler/ops/batchnorm_ops.h"

namespace nnc {

namespace {

// x as [N, C, S]; S is 1 for [N, C].
struct Nc {
  int64_t n, c, s;
  int64_t at(int64_t i, int64_t ch, int64_t k) const { return (i * c + ch) * s + k; }
  double count() const { return static_cast<double>(n * s); }
};

Nc ncOf(const Shape& x) { return {x[0], x[1], x.size() == 4 ? x[2] * x[3] : 1}; }

Status checkImage(std::string_view op, std::string_view what, const TensorType& t) {
  if (t.dtype != DType::F32 || (t.rank() != 2 && t.rank() != 4))
    return error("{}: {} must be f32 [N, C] or [N, C, H, W], got {}", op, what, typeString(t));
  return ok();
}

Status checkSame(std::string_view op, std::string_view what, const TensorType& t, const TensorType& want) {
  if (t != want) return error("{}: {} must be {}, got {}", op, what, typeString(want), typeString(t));
  return ok();
}

TensorType statsType(const TensorType& x) { return TensorType{DType::F32, {2, x.shape[1]}}; }

Expected<TensorType> statsShape(const std::vector<TensorType>& in, const Attrs&) {
  NNC_CHECK(checkImage("batchnorm_stats", "x", in[0]));
  return statsType(in[0]);
}

// Two passes per channel, mean then Σ(x − mean)², as batchnorm's reference.
Status statsEval(const EvalArgs& e) {
  const Tensor& x = *e.in[0];
  const Nc d = ncOf(x.shape());
  for (int64_t ch = 0; ch < d.c; ++ch) {
    double mean = 0, var = 0;
    for (int64_t i = 0; i < d.n; ++i)
      for (int64_t k = 0; k < d.s; ++k) mean += x.data[d.at(i, ch, k)];
    mean /= d.count();
    for (int64_t i = 0; i < d.n; ++i)
      for (int64_t k = 0; k < d.s; ++k) var += (x.data[d.at(i, ch, k)] - mean) * (x.data[d.at(i, ch, k)] - mean);
    e.out.data[ch] = mean;
    e.out.data[d.c + ch] = var / d.count();
  }
  return ok();
}

Status checkBnAct(std::string_view op, const Attrs& a) {
  const auto act = parseActivation(a.s("act"));
  if (!act || (*act != kActNone && *act != kActRelu))
    return error("{}: act must be none or relu, got \"{}\"", op, a.s("act"));
  return ok();
}

// batchnorm_fused(x, gamma, beta, running_mean, running_var[, stats]).
Expected<TensorType> fusedShape(const std::vector<TensorType>& in, const Attrs& a) {
  NNC_CHECK(checkBnAct("batchnorm_fused", a));
  NNC_TRY(TensorType t, findOp("batchnorm")->shape(std::vector<TensorType>(in.begin(), in.begin() + 5), a));
  if (in.size() > 5) NNC_CHECK(checkSame("batchnorm_fused", "stats", in[5], statsType(t)));
  return t;
}

// act(batchnorm(...)); in training with stats given, those are the batch's.
Status fusedEval(const EvalArgs& e) {
  const Tensor& x = *e.in[0];
  if (e.env.training && e.in.size() > 5) {
    const Nc d = ncOf(x.shape());
    const std::vector<double> &gamma = e.in[1]->data, &beta = e.in[2]->data, &st = e.in[5]->data;
    for (int64_t ch = 0; ch < d.c; ++ch) {
      const double inv = 1 / std::sqrt(st[d.c + ch] + e.attrs.f("eps"));
      for (int64_t i = 0; i < d.n; ++i)
        for (int64_t k = 0; k < d.s; ++k)
          e.out.data[d.at(i, ch, k)] = gamma[ch] * (x.data[d.at(i, ch, k)] - st[ch]) * inv + beta[ch];
    }
  } else {
    NNC_CHECK(findOp("batchnorm")->eval(EvalArgs{std::vector<const Tensor*>(e.in.begin(), e.in.begin() + 5), e.attrs, e.out, e.env}));
  }
  const Activation act = actAttr(e.attrs);
  if (act == kActNone) return ok();
  const Tensor pre = e.out;
  return activationOp(act).eval(EvalArgs{{&pre}, activationAttrs(act), e.out, e.env});
}

// dy·step(y) where the relu output y is given, else dy.
double masked(const EvalArgs& e, size_t yOperand, size_t i) {
  const double dy = e.in[0]->data[i];
  return e.in.size() > yOperand ? dy * (e.in[yOperand]->data[i] > 0 ? 1.0 : 0.0) : dy;
}

// batchnorm_grad_sums(dy, x, stats[, y]) and batchnorm_grad_input(dy, x,
// stats, gamma, sums[, y]) share dy, x and stats.
Status checkGradOperands(std::string_view op, const std::vector<TensorType>& in, size_t yOperand) {
  NNC_CHECK(checkImage(op, "dy", in[0]));
  NNC_CHECK(checkSame(op, "x", in[1], in[0]));
  NNC_CHECK(checkSame(op, "stats", in[2], statsType(in[0])));
  if (in.size() > yOperand) NNC_CHECK(checkSame(op, "y", in[yOperand], in[0]));
  return ok();
}

Expected<TensorType> gradSumsShape(const std::vector<TensorType>& in, const Attrs&) {
  NNC_CHECK(checkGradOperands("batchnorm_grad_sums", in, 3));
  return statsType(in[0]);
}

// Row 0: Σ dy; row 1: Σ dy·x̂ (dβ and dγ), dy masked by the relu.
Status gradSumsEval(const EvalArgs& e) {
  const Tensor& x = *e.in[1];
  const std::vector<double>& st = e.in[2]->data;
  const Nc d = ncOf(x.shape());
  for (int64_t ch = 0; ch < d.c; ++ch) {
    const double inv = 1 / std::sqrt(st[d.c + ch] + e.attrs.f("eps"));
    double sdy = 0, sdyx = 0;
    for (int64_t i = 0; i < d.n; ++i)
      for (int64_t k = 0; k < d.s; ++k) {
        const size_t at = static_cast<size_t>(d.at(i, ch, k));
        const double dy = masked(e, 3, at);
        sdy += dy;
        sdyx += dy * (x.data[at] - st[ch]) * inv;
      }
    e.out.data[ch] = sdy;
    e.out.data[d.c + ch] = sdyx;
  }
  return ok();
}

Expected<TensorType> gradInputShape(const std::vector<TensorType>& in, const Attrs&) {
  NNC_CHECK(checkGradOperands("batchnorm_grad_input", in, 5));
  const TensorType channel{DType::F32, {in[0].shape[1]}};
  NNC_CHECK(checkSame("batchnorm_grad_input", "gamma", in[3], channel));
  NNC_CHECK(checkSame("batchnorm_grad_input", "sums", in[4], statsType(in[0])));
  return in[0];
}

// dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)), batchnormGrad's formula.
Status gradInputEval(const EvalArgs& e) {
  const Tensor& x = *e.in[1];
  const std::vector<double> &st = e.in[2]->data, &gamma = e.in[3]->data, &sums = e.in[4]->data;
  const Nc d = ncOf(x.shape());
  for (int64_t ch = 0; ch < d.c; ++ch) {
    const double inv = 1 / std::sqrt(st[d.c + ch] + e.attrs.f("eps"));
    const double meanDy = sums[ch] / d.count(), meanDyXhat = sums[d.c + ch] / d.count();
    for (int64_t i = 0; i < d.n; ++i)
      for (int64_t k = 0; k < d.s; ++k) {
        const size_t at = static_cast<size_t>(d.at(i, ch, k));
        const double xhat = (x.data[at] - st[ch]) * inv;
        e.out.data[at] = gamma[ch] * inv * (masked(e, 5, at) - meanDy - xhat * meanDyXhat);
      }
  }
  return ok();
}

const AttrSpec kEps{"eps", AttrKind::Float, Attr{1e-5}};

}  // namespace

void addBatchnormOps(std::vector<OpDef>& r) {
  r.push_back({.name = "batchnorm_stats",
               .operands = {"x"},
               .shape = statsShape,
               .eval = statsEval,
               .noGradient = true,
               .lower = lowerBatchnormStats,
               .internal = true,
               .summary = "[2, C]: each channel's batch mean and biased variance (over all axes but 1)"});
  r.push_back({.name = "batchnorm_fused",
               .operands = {"x", "gamma", "beta", "running_mean", "running_var", "stats"},
               .minOperands = 5,
               .attrs = {kEps,
                         {"momentum", AttrKind::Float, Attr{0.1}},
                         {"act", AttrKind::String, Attr{std::string("none")}}},
               .shape = fusedShape,
               .eval = fusedEval,
               .noGradient = true,
               .lower = lowerBatchnormFused,
               .internal = true,
               .summary = "act(batchnorm(x, ...)), act none or relu; in training, the batch statistics from stats "
                          "when given (batchnorm_stats)"});
  r.push_back({.name = "batchnorm_grad_sums",
               .operands = {"dy", "x", "stats", "y"},
               .minOperands = 3,
               .attrs = {kEps},
               .shape = gradSumsShape,
               .eval = gradSumsEval,
               .noGradient = true,
               .lower = lowerBatchnormGradSums,
               .internal = true,
               .summary = "[2, C]: Σ dy and Σ dy·x̂ per channel (dbeta, dgamma), dy·step(y) when relu's output y "
                          "is given"});
  r.push_back({.name = "batchnorm_grad_input",
               .operands = {"dy", "x", "stats", "gamma", "sums", "y"},
               .minOperands = 5,
               .attrs = {kEps},
               .shape = gradInputShape,
               .eval = gradInputEval,
               .noGradient = true,
               .lower = lowerBatchnormGradInput,
               .internal = true,
               .summary = "batchnorm's input gradient from batchnorm_grad_sums' sums, dy·step(y) when y is given"});
}

}  // namespace nnc
