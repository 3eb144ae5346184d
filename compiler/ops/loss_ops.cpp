// Softmax family, losses and metrics. Losses reduce to an f32 scalar; class
// ops take predictions f32[..., K] of any rank >= 1 (a language model's
// [batch, T, V]; f32[K] is one row) with targets either i32 class ids of the
// leading shape or f32 per-class values of the same shape, and average over
// every leading position, as torch does after reshaping to [N·T, K].
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/ops/lower_rules.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

const TensorType kScalar{DType::F32, {}};

Status requireF32(std::string_view op, std::string_view what, const TensorType& t) {
  if (t.dtype != DType::F32) return error("{}: {} must be f32, got {}", op, what, typeString(t));
  return ok();
}

Expected<int> normAxis(std::string_view op, int64_t axis, const TensorType& t) {
  int r = t.rank();
  if (axis < -r || axis >= r)
    return error("{}: axis {} is out of range for {} (rank {})", op, axis, typeString(t), r);
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

// A tensor viewed as [outer, n, inner] around one axis, so per-slice loops
// need no multi-index arithmetic.
struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
  AxisView(const Shape& s, int axis) {
    for (int d = 0; d < static_cast<int>(s.size()); ++d) {
      if (d < axis) outer *= s[d];
      else if (d == axis) n = s[d];
      else inner *= s[d];
    }
  }
  int64_t at(int64_t o, int64_t k, int64_t i) const { return (o * n + k) * inner + i; }
};

Expected<TensorType> softmaxFamilyShape(std::string_view op, const std::vector<TensorType>& in, const Attrs& a) {
  NNC_CHECK(requireF32(op, "x", in[0]));
  NNC_CHECK(normAxis(op, a.i("axis"), in[0]));
  return in[0];
}

// log_softmax along the axis; softmax is its exp. Subtracting the slice max
// keeps exp from overflowing (inputs like 1000) without changing the result.
void logSoftmax(const Tensor& x, int axis, Tensor& out) {
  AxisView v(x.shape(), axis);
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < v.inner; ++i) {
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t k = 0; k < v.n; ++k) mx = std::max(mx, x.data[v.at(o, k, i)]);
      double sum = 0;
      for (int64_t k = 0; k < v.n; ++k) sum += std::exp(x.data[v.at(o, k, i)] - mx);
      double lse = mx + std::log(sum);
      for (int64_t k = 0; k < v.n; ++k) out.data[v.at(o, k, i)] = x.data[v.at(o, k, i)] - lse;
    }
}

int axisOf(const EvalArgs& a) { return static_cast<int>(*normAxis("", a.attrs.i("axis"), a.in[0]->type)); }

// Predictions f32[..., K] (rank >= 1); targets class ids i32[...] of the
// leading shape or, unless `idsOnly`, f32 of the predictions' shape.
// Returns f32[].
Expected<TensorType> classShape(std::string_view op, std::string_view pred, const std::vector<TensorType>& in,
                                bool idsOnly = false) {
  const TensorType &y = in[0], &t = in[1];
  if (y.dtype != DType::F32 || y.rank() < 1)
    return error("{}: {} must be f32[..., K] (f32[N, K], f32[K], f32[N, T, K], ...), got {}", op, pred, typeString(y));
  if (y.shape.back() < 1) return error("{}: {} {} has no classes", op, pred, typeString(y));
  Shape lead(y.shape.begin(), y.shape.end() - 1);
  bool ids = t.dtype == DType::I32 && t.shape == lead;
  bool dense = !idsOnly && t.dtype == DType::F32 && t.shape == y.shape;
  if (idsOnly && !ids)
    return error("{}: targets {} do not match {} {}: expected class ids {}", op, typeString(t), pred, typeString(y),
                 typeString({DType::I32, lead}));
  if (!ids && !dense)
    return error("{}: targets {} do not match {} {}: expected class ids {} or per-class values {}", op,
                 typeString(t), pred, typeString(y), typeString({DType::I32, lead}), typeString(y));
  return kScalar;
}

// softmax_cross_entropy's label_smoothing ε: targets become (1 − ε)·t + ε/K.
Status checkSmoothing(std::string_view op, const Attrs& a) {
  const double e = a.f("label_smoothing");
  if (!(e >= 0 && e <= 1)) return error("{}: label_smoothing must be in [0, 1], got {}", op, e);
  return ok();
}

struct Rows {
  int64_t k, n;  // the shape rule guarantees k >= 1
  explicit Rows(const Tensor& y) : k(y.shape().back()), n(y.numel() / k) {}
};

Expected<int64_t> classId(std::string_view op, const Tensor& t, int64_t row, int64_t k) {
  double v = t.data[row];
  if (v < 0 || v >= static_cast<double>(k))
    return error("{}: label {} in row {} is out of range [0, {})", op, static_cast<int64_t>(v), row, k);
  return static_cast<int64_t>(v);
}

bool classIds(const EvalArgs& a) { return a.in[1]->type.dtype == DType::I32; }

// Index of the first maximum of n values at stride `step`; NaN counts as the
// maximum, as in numpy and PyTorch, so a diverged row never looks correct.
int64_t argmaxOf(const double* p, int64_t n, int64_t step) {
  int64_t best = 0;
  for (int64_t k = 1; k < n; ++k) {
    double b = p[best * step], v = p[k * step];
    if (std::isnan(b)) break;
    if (std::isnan(v) || v > b) best = k;
  }
  return best;
}

Expected<TensorType> sameShape(std::string_view op, std::string_view a, std::string_view b,
                               const std::vector<TensorType>& in) {
  NNC_CHECK(requireF32(op, a, in[0]));
  NNC_CHECK(requireF32(op, b, in[1]));
  if (in[0].shape != in[1].shape)
    return error("{}: {} {} and {} {} must have the same shape", op, a, typeString(in[0]), b, typeString(in[1]));
  return kScalar;
}

// Sums f(y, t) over paired elements.
template <class F>
double sumPairs(const EvalArgs& a, F f) {
  double s = 0;
  for (size_t i = 0; i < a.in[0]->data.size(); ++i) s += f(a.in[0]->data[i], a.in[1]->data[i]);
  return s;
}

std::string indexString(const Shape& s, int64_t flat) {
  std::vector<int64_t> idx(s.size());
  for (size_t d = s.size(); d-- > 0;) {
    idx[d] = flat % s[d];
    flat /= s[d];
  }
  return shapeString(idx);
}

Expected<TensorType> penaltyShape(std::string_view op, const std::vector<TensorType>& in) {
  NNC_CHECK(requireF32(op, "x", in[0]));
  return kScalar;
}

// PyTorch's BCELoss clamps each log at -100 so p = 0 or 1 gives a finite loss.
double clampedLog(double p) { return std::max(std::log(p), -100.0); }
bool logClamped(double p) { return std::log(p) < -100.0; }

// Where a bce log is clamped its gradient is 0, so a finite difference
// stepping across the clamp edge compares two different functions.
void bceBranches(const std::vector<const Tensor*>& in, const Attrs&, std::vector<int64_t>& pattern) {
  for (double p : in[0]->data) pattern.push_back(int64_t{logClamped(p)} + 2 * int64_t{logClamped(1 - p)});
}

// Builds a gradient rule's expression and keeps the first error: once a node
// fails every later call is skipped, so a rule reads as its formula and
// checks once, in done().
class Backward {
 public:
  explicit Backward(GradCtx& c) : c_(c) {}

  ValueId op(std::string_view name, std::vector<ValueId> ins, Attrs a = {}) {
    if (err_) return kNoValue;
    auto r = c_.op(name, std::move(ins), std::move(a));
    if (!r) {
      err_ = std::move(r.error());
      return kNoValue;
    }
    return *r;
  }
  ValueId k(double v) {
    if (err_) return kNoValue;
    auto r = c_.constant(v);
    if (!r) {
      err_ = std::move(r.error());
      return kNoValue;
    }
    return *r;
  }
  ValueId add(ValueId a, ValueId b) { return op("add", {a, b}); }
  ValueId sub(ValueId a, ValueId b) { return op("sub", {a, b}); }
  ValueId mul(ValueId a, ValueId b) { return op("mul", {a, b}); }
  ValueId div(ValueId a, ValueId b) { return op("div", {a, b}); }
  ValueId neg(ValueId a) { return op("neg", {a}); }
  ValueId scale(ValueId a, double f) { return mul(a, k(f)); }
  ValueId sumKeep(ValueId a, int64_t axis) {
    return op("sum", {a}, {{"axis", std::vector<int64_t>{axis}}, {"keepdims", int64_t{1}}});
  }
  // softmax's vector-Jacobian product: y·(dy − Σ dy·y) along the axis.
  ValueId softmaxBackward(ValueId y, ValueId dy, int64_t axis) { return mul(y, sub(dy, sumKeep(mul(dy, y), axis))); }
  // A not-clamped mask for clampedLog(x): 1 where log x > -100.
  ValueId logKept(ValueId x) { return op("step", {add(op("log", {x}), k(100.0))}); }

  Expected<std::vector<ValueId>> done(std::vector<ValueId> dx) {
    if (err_) return std::move(*err_);
    return dx;
  }

 private:
  GradCtx& c_;
  std::optional<Diagnostic> err_;
};

// Rows of a class op's predictions f32[..., K]: every leading position.
double rowsOf(const TensorType& pred) { return static_cast<double>(pred.numel() / pred.shape.back()); }
bool isIds(const GradCtx& c) { return c.inTypes[1].dtype == DType::I32; }

}  // namespace

namespace {

// ---- gradient rules ----------------------------------------------------

Expected<std::vector<ValueId>> softmaxGrad(GradCtx& c) {
  Backward b(c);
  return b.done({b.softmaxBackward(c.y(), c.dy, c.attrs.i("axis"))});
}

// d/dx (x − logsumexp x) = dy − softmax(x)·Σ dy, and softmax(x) = exp(y).
Expected<std::vector<ValueId>> logSoftmaxGrad(GradCtx& c) {
  Backward b(c);
  ValueId sm = b.op("exp", {c.y()});
  return b.done({b.sub(c.dy, b.mul(sm, b.sumKeep(c.dy, c.attrs.i("axis"))))});
}

// The course notes' SoftmaxWithLoss backward, (softmax − onehot(t)) / N, as
// one op scaled by the incoming scalar gradient.
Expected<std::vector<ValueId>> softmaxCrossEntropyGrad(GradCtx& c) {
  Backward b(c);
  const double eps = c.attrs.f("label_smoothing");
  ValueId dz = b.mul(b.op("softmax_cross_entropy_grad", {c.in[0], c.in[1]}, {{"label_smoothing", eps}}), c.dy);
  // Soft targets may come from a network (distillation), so they get a
  // gradient: −(1 − ε)·log_softmax(z)/N.
  ValueId dt = kNoValue;
  if (!isIds(c))
    dt = b.mul(b.neg(b.op("log_softmax", {c.in[0]}, {{"axis", int64_t{-1}}})),
               b.scale(c.dy, (1 - eps) / rowsOf(c.inTypes[0])));
  return b.done({dz, dt});
}

// Of softmax_cross_entropy_grad itself (second derivatives): each row is
// softmax(z)/N minus a constant in z, so dz is softmax's backward of dy/N.
Expected<std::vector<ValueId>> softmaxCrossEntropyGradGrad(GradCtx& c) {
  Backward b(c);
  ValueId g = b.scale(c.dy, 1 / rowsOf(c.inTypes[0]));
  ValueId dz = b.softmaxBackward(b.op("softmax", {c.in[0]}, {{"axis", int64_t{-1}}}), g, -1);
  return b.done({dz, isIds(c) ? kNoValue : b.scale(g, c.attrs.f("label_smoothing") - 1)});
}

Expected<std::vector<ValueId>> crossEntropyGrad(GradCtx& c) {
  Backward b(c);
  const TensorType& p = c.inTypes[0];
  ValueId t = isIds(c) ? b.op("one_hot", {c.in[1]}, {{"depth", p.shape.back()}}) : c.in[1];
  ValueId pe = b.add(c.in[0], b.k(1e-7));  // the forward's epsilon
  ValueId g = b.scale(c.dy, 1 / rowsOf(p));
  ValueId dp = b.mul(b.neg(b.div(t, pe)), g);
  ValueId dt = isIds(c) ? kNoValue : b.mul(b.neg(b.op("log", {pe})), g);
  return b.done({dp, dt});
}

// For mse and sse: d/dy = dy·f·(y − t), d/dt its negation.
Expected<std::vector<ValueId>> squaredErrorGrad(GradCtx& c, double f) {
  Backward b(c);
  ValueId dy = b.mul(b.sub(c.in[0], c.in[1]), b.scale(c.dy, f));
  return b.done({dy, b.neg(dy)});
}

Expected<std::vector<ValueId>> mseGrad(GradCtx& c) {
  return squaredErrorGrad(c, 2 / static_cast<double>(c.inTypes[0].numel()));
}
Expected<std::vector<ValueId>> sseGrad(GradCtx& c) { return squaredErrorGrad(c, 1.0); }

Expected<std::vector<ValueId>> bceGrad(GradCtx& c) {
  Backward b(c);
  ValueId dp = b.mul(b.op("bce_grad", {c.in[0], c.in[1]}), c.dy);
  // d/dt of −[t·clog(p) + (1 − t)·clog(1 − p)], with the forward's clamped logs.
  auto clog = [&](ValueId x) { return b.op("maximum", {b.op("log", {x}), b.k(-100.0)}); };
  ValueId q = b.sub(b.k(1.0), c.in[0]);
  ValueId dt = b.mul(b.sub(clog(q), clog(c.in[0])), b.scale(c.dy, 1 / static_cast<double>(c.inTypes[0].numel())));
  return b.done({dp, dt});
}

// Of bce_grad = (−t·kp/p + (1 − t)·kq/(1 − p)) / n, where kp, kq are the
// not-clamped masks (constant between kinks).
Expected<std::vector<ValueId>> bceGradGrad(GradCtx& c) {
  Backward b(c);
  ValueId p = c.in[0], t = c.in[1];
  ValueId q = b.sub(b.k(1.0), p);
  ValueId kp = b.logKept(p), kq = b.logKept(q);
  ValueId g = b.scale(c.dy, 1 / static_cast<double>(c.inTypes[0].numel()));
  ValueId overP = b.div(kp, p), overQ = b.div(kq, q);
  ValueId dp = b.mul(b.add(b.mul(t, b.div(overP, p)), b.mul(b.sub(b.k(1.0), t), b.div(overQ, q))), g);
  ValueId dt = b.mul(b.neg(b.add(overP, overQ)), g);
  return b.done({dp, dt});
}

Expected<std::vector<ValueId>> bceWithLogitsGrad(GradCtx& c) {
  Backward b(c);
  ValueId g = b.scale(c.dy, 1 / static_cast<double>(c.inTypes[0].numel()));
  ValueId dz = b.mul(b.sub(b.op("sigmoid", {c.in[0]}), c.in[1]), g);
  return b.done({dz, b.mul(b.neg(c.in[0]), g)});
}

Expected<std::vector<ValueId>> l1Grad(GradCtx& c) {
  Backward b(c);
  return b.done({b.mul(b.op("sign", {c.in[0]}), c.dy)});
}

void signBranches(const std::vector<const Tensor*>& in, const Attrs&, std::vector<int64_t>& pattern) {
  for (double v : in[0]->data) pattern.push_back(v > 0 ? 1 : v < 0 ? -1 : 0);
}

Expected<std::vector<ValueId>> l2Grad(GradCtx& c) {
  Backward b(c);
  return b.done({b.mul(c.in[0], c.dy)});
}

// d/dlogp of −Σ logp[i, t_i]/N: −onehot(t)/N.
Expected<std::vector<ValueId>> nllGrad(GradCtx& c) {
  Backward b(c);
  const TensorType& lp = c.inTypes[0];
  ValueId hot = b.op("one_hot", {c.in[1]}, {{"depth", lp.shape.back()}});
  return b.done({b.mul(hot, b.scale(c.dy, -1 / rowsOf(lp))), kNoValue});
}

// d/dy of huber = clamp(y − t, −δ, δ)/n; d/dt its negation. Huber is C¹, so
// the clamp's corners are no kinks of the loss itself.
Expected<std::vector<ValueId>> huberGrad(GradCtx& c) {
  Backward b(c);
  const double delta = c.attrs.f("delta");
  ValueId d = b.sub(c.in[0], c.in[1]);
  ValueId clamped = b.op("minimum", {b.op("maximum", {d, b.k(-delta)}), b.k(delta)});
  ValueId dy = b.mul(clamped, b.scale(c.dy, 1 / static_cast<double>(c.inTypes[0].numel())));
  return b.done({dy, b.neg(dy)});
}

// kl_div = Σ p·(log p − logq)/B: d/dlogq = −p/B, d/dp = (log p + 1 − logq)/B.
Expected<std::vector<ValueId>> klDivGrad(GradCtx& c) {
  Backward b(c);
  ValueId g = b.scale(c.dy, 1 / static_cast<double>(c.inTypes[0].shape[0]));
  ValueId dq = b.mul(b.neg(c.in[1]), g);
  ValueId dp = b.mul(b.add(b.sub(b.op("log", {c.in[1]}), c.in[0]), b.k(1.0)), g);
  return b.done({dq, dp});
}

// ---- shape rules and reference evaluations, op by op ------------------

// softmax
Expected<TensorType> softmaxShape(const std::vector<TensorType>& in, const Attrs& a) {
  return softmaxFamilyShape("softmax", in, a);
}

Status softmaxEval(const EvalArgs& a) {
  logSoftmax(*a.in[0], axisOf(a), a.out);
  for (double& v : a.out.data) v = std::exp(v);
  return ok();
}

// log_softmax
Expected<TensorType> logSoftmaxShape(const std::vector<TensorType>& in, const Attrs& a) {
  return softmaxFamilyShape("log_softmax", in, a);
}

Status logSoftmaxEval(const EvalArgs& a) {
  logSoftmax(*a.in[0], axisOf(a), a.out);
  return ok();
}

// softmax_cross_entropy
Expected<TensorType> softmaxCrossEntropyShape(const std::vector<TensorType>& in, const Attrs& a) {
  NNC_CHECK(checkSmoothing("softmax_cross_entropy", a));
  return classShape("softmax_cross_entropy", "logits", in);
}

// Row i's targets, label smoothing applied: (1 − ε)·t + ε/K, where t is the
// one-hot row of a class id or the given per-class values.
Status smoothedTargets(std::string_view op, const EvalArgs& a, int64_t i, const Rows& rows, std::vector<double>& q) {
  const double eps = a.attrs.f("label_smoothing");
  const Tensor& t = *a.in[1];
  q.assign(static_cast<size_t>(rows.k), 0.0);
  if (classIds(a)) {
    NNC_TRY(int64_t c, classId(op, t, i, rows.k));
    q[static_cast<size_t>(c)] = 1;
  } else {
    std::copy_n(&t.data[i * rows.k], rows.k, q.begin());
  }
  if (eps != 0)
    for (double& w : q) w = (1 - eps) * w + eps / static_cast<double>(rows.k);
  return ok();
}

Status softmaxCrossEntropyEval(const EvalArgs& a) {
  const Tensor& z = *a.in[0];
  Rows rows(z);
  Tensor ls(z.type);
  logSoftmax(z, z.type.rank() - 1, ls);
  double s = 0;
  std::vector<double> q;
  for (int64_t i = 0; i < rows.n; ++i) {
    const double* l = &ls.data[i * rows.k];
    NNC_CHECK(smoothedTargets("softmax_cross_entropy", a, i, rows, q));
    // Zero targets are skipped so a -inf (masked) logit adds 0, not NaN.
    for (int64_t c = 0; c < rows.k; ++c)
      if (double w = q[static_cast<size_t>(c)]; w != 0) s -= w * l[c];
  }
  a.out.data[0] = s / static_cast<double>(rows.n);
  return ok();
}

// softmax_cross_entropy_grad
Expected<TensorType> softmaxCrossEntropyGradShape(const std::vector<TensorType>& in, const Attrs& a) {
  NNC_CHECK(checkSmoothing("softmax_cross_entropy_grad", a));
  NNC_CHECK(classShape("softmax_cross_entropy_grad", "logits", in));
  return in[0];
}

Status softmaxCrossEntropyGradEval(const EvalArgs& a) {
  const Tensor& z = *a.in[0];
  Rows rows(z);
  logSoftmax(z, z.type.rank() - 1, a.out);
  const double n = static_cast<double>(rows.n);
  std::vector<double> q;
  for (int64_t i = 0; i < rows.n; ++i) {
    double* g = &a.out.data[i * rows.k];
    NNC_CHECK(smoothedTargets("softmax_cross_entropy_grad", a, i, rows, q));
    for (int64_t c = 0; c < rows.k; ++c) g[c] = (std::exp(g[c]) - q[static_cast<size_t>(c)]) / n;
  }
  return ok();
}

// cross_entropy
Expected<TensorType> crossEntropyShape(const std::vector<TensorType>& in, const Attrs&) {
  return classShape("cross_entropy", "p", in);
}

Status crossEntropyEval(const EvalArgs& a) {
  // The course notes' epsilon keeps log finite at p = 0.
  constexpr double eps = 1e-7;
  const Tensor &p = *a.in[0], &t = *a.in[1];
  Rows rows(p);
  double s = 0;
  for (int64_t i = 0; i < rows.n; ++i) {
    if (classIds(a)) {
      NNC_TRY(int64_t c, classId("cross_entropy", t, i, rows.k));
      s -= std::log(p.data[i * rows.k + c] + eps);
    } else {
      for (int64_t c = 0; c < rows.k; ++c)
        s -= t.data[i * rows.k + c] * std::log(p.data[i * rows.k + c] + eps);
    }
  }
  a.out.data[0] = s / static_cast<double>(rows.n);
  return ok();
}

// mse
Expected<TensorType> mseShape(const std::vector<TensorType>& in, const Attrs&) {
  return sameShape("mse", "y", "t", in);
}

Status mseEval(const EvalArgs& a) {
  double s = sumPairs(a, [](double y, double t) { return (y - t) * (y - t); });
  a.out.data[0] = s / static_cast<double>(a.in[0]->numel());
  return ok();
}

// sse
Expected<TensorType> sseShape(const std::vector<TensorType>& in, const Attrs&) {
  return sameShape("sse", "y", "t", in);
}

Status sseEval(const EvalArgs& a) {
  a.out.data[0] = 0.5 * sumPairs(a, [](double y, double t) { return (y - t) * (y - t); });
  return ok();
}

// bce
Expected<TensorType> bceShape(const std::vector<TensorType>& in, const Attrs&) {
  return sameShape("bce", "p", "t", in);
}

Status bceEval(const EvalArgs& a) {
  double s = sumPairs(a, [](double p, double t) {
    return t * clampedLog(p) + (1 - t) * clampedLog(1 - p);
  });
  a.out.data[0] = -s / static_cast<double>(a.in[0]->numel());
  return ok();
}

// bce_grad
Expected<TensorType> bceGradShape(const std::vector<TensorType>& in, const Attrs&) {
  NNC_CHECK(sameShape("bce_grad", "p", "t", in));
  return in[0];
}

Status bceGradEval(const EvalArgs& a) {
  // An op of its own because a clamped log must give exactly 0
  // at p = 0 or 1, where composing ops gives 0·inf = NaN.
  const double n = static_cast<double>(a.in[0]->numel());
  for (size_t i = 0; i < a.out.data.size(); ++i) {
    const double p = a.in[0]->data[i], t = a.in[1]->data[i];
    double g = 0;
    if (!logClamped(p)) g -= t / p;
    if (!logClamped(1 - p)) g += (1 - t) / (1 - p);
    a.out.data[i] = g / n;
  }
  return ok();
}

// bce_with_logits
Expected<TensorType> bceWithLogitsShape(const std::vector<TensorType>& in, const Attrs&) {
  return sameShape("bce_with_logits", "z", "t", in);
}

Status bceWithLogitsEval(const EvalArgs& a) {
  // Stable form of -[t log σ(z) + (1-t) log(1-σ(z))]: exp never sees a positive argument.
  double s = sumPairs(a, [](double z, double t) {
    return std::max(z, 0.0) - z * t + std::log1p(std::exp(-std::abs(z)));
  });
  a.out.data[0] = s / static_cast<double>(a.in[0]->numel());
  return ok();
}

// l1
Expected<TensorType> l1Shape(const std::vector<TensorType>& in, const Attrs&) { return penaltyShape("l1", in); }

Status l1Eval(const EvalArgs& a) {
  double s = 0;
  for (double v : a.in[0]->data) s += std::abs(v);
  a.out.data[0] = s;
  return ok();
}

// l2
Expected<TensorType> l2Shape(const std::vector<TensorType>& in, const Attrs&) { return penaltyShape("l2", in); }

Status l2Eval(const EvalArgs& a) {
  double s = 0;
  for (double v : a.in[0]->data) s += v * v;
  a.out.data[0] = 0.5 * s;
  return ok();
}

// nll
Expected<TensorType> nllShape(const std::vector<TensorType>& in, const Attrs&) {
  return classShape("nll", "logp", in, true);
}

Status nllEval(const EvalArgs& a) {
  const Tensor &lp = *a.in[0], &t = *a.in[1];
  Rows rows(lp);
  double s = 0;
  for (int64_t i = 0; i < rows.n; ++i) {
    NNC_TRY(int64_t c, classId("nll", t, i, rows.k));
    s -= lp.data[i * rows.k + c];
  }
  a.out.data[0] = s / static_cast<double>(rows.n);
  return ok();
}

// huber
Expected<TensorType> huberShape(const std::vector<TensorType>& in, const Attrs& a) {
  if (!(a.f("delta") > 0) || !std::isfinite(a.f("delta")))
    return error("huber: delta must be a positive number, got {}", a.f("delta"));
  return sameShape("huber", "y", "t", in);
}

// ½d² where |d| < δ, else δ·(|d| − ½δ): F.huber_loss's two pieces.
double huberTerm(double d, double delta) {
  return std::abs(d) < delta ? 0.5 * d * d : delta * (std::abs(d) - 0.5 * delta);
}

Status huberEval(const EvalArgs& a) {
  const double delta = a.attrs.f("delta");
  double s = sumPairs(a, [&](double y, double t) { return huberTerm(y - t, delta); });
  a.out.data[0] = s / static_cast<double>(a.in[0]->numel());
  return ok();
}

// kl_div
Expected<TensorType> klDivShape(const std::vector<TensorType>& in, const Attrs&) {
  NNC_CHECK(sameShape("kl_div", "logq", "p", in));
  if (in[0].rank() < 1)
    return error("kl_div: logq must have a batch axis to average over (batchmean), got {}", typeString(in[0]));
  return kScalar;
}

// Σ p·(log p − logq) / batch (torch's reduction='batchmean'); p = 0 adds 0
// (torch's xlogy), so a zero target with a -inf logq is 0, not NaN.
Status klDivEval(const EvalArgs& a) {
  double s = sumPairs(a, [](double lq, double p) { return p == 0 ? 0.0 : p * (std::log(p) - lq); });
  a.out.data[0] = s / static_cast<double>(a.in[0]->type.shape[0]);
  return ok();
}

// one_hot
Expected<TensorType> oneHotShape(const std::vector<TensorType>& in, const Attrs& a) {
  if (in[0].dtype != DType::I32) return error("one_hot: t must be i32 class ids, got {}", typeString(in[0]));
  if (a.i("depth") < 1) return error("one_hot: depth must be at least 1, got {}", a.i("depth"));
  Shape s = in[0].shape;
  s.push_back(a.i("depth"));
  return TensorType{DType::F32, s};
}

Status oneHotEval(const EvalArgs& a) {
  const Tensor& t = *a.in[0];
  int64_t depth = a.attrs.i("depth");
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.data[i];
    if (v < 0 || v >= static_cast<double>(depth))
      return error("one_hot: label {} at {} is out of range [0, {})", static_cast<int64_t>(v),
                   indexString(t.shape(), i), depth);
    a.out.data[i * depth + static_cast<int64_t>(v)] = 1.0;
  }
  return ok();
}

// argmax
Expected<TensorType> argmaxShape(const std::vector<TensorType>& in, const Attrs& a) {
  NNC_TRY(int ax, normAxis("argmax", a.i("axis"), in[0]));
  if (in[0].shape[ax] < 1)
    return error("argmax: axis {} of {} is empty", a.i("axis"), typeString(in[0]));
  Shape s = in[0].shape;
  s.erase(s.begin() + ax);
  return TensorType{DType::I32, s};
}

Status argmaxEval(const EvalArgs& a) {
  AxisView v(a.in[0]->shape(), axisOf(a));
  for (int64_t o = 0; o < v.outer; ++o)
    for (int64_t i = 0; i < v.inner; ++i)
      a.out.data[o * v.inner + i] =
          static_cast<double>(argmaxOf(&a.in[0]->data[v.at(o, 0, i)], v.n, v.inner));
  return ok();
}

// accuracy
Expected<TensorType> accuracyShape(const std::vector<TensorType>& in, const Attrs&) {
  return classShape("accuracy", "y", in);
}

Status accuracyEval(const EvalArgs& a) {
  const Tensor &y = *a.in[0], &t = *a.in[1];
  Rows rows(y);
  int64_t hits = 0;
  for (int64_t i = 0; i < rows.n; ++i) {
    int64_t label;
    if (classIds(a)) {
      // A bad label is a data bug; counting it as a miss would hide it.
      NNC_TRY(label, classId("accuracy", t, i, rows.k));
    } else {
      label = argmaxOf(&t.data[i * rows.k], rows.k, 1);
    }
    hits += argmaxOf(&y.data[i * rows.k], rows.k, 1) == label;
  }
  a.out.data[0] = static_cast<double>(hits) / static_cast<double>(rows.n);
  return ok();
}

// ---- registry entries ---------------------------------------------------

void addSoftmaxFamily(std::vector<OpDef>& r) {
  const AttrSpec axisLast{"axis", AttrKind::Int, Attr{int64_t{-1}}};

  r.push_back({.name = "softmax",
               .operands = {"x"},
               .attrs = {axisLast},
               .shape = softmaxShape,
               .eval = softmaxEval,
               .grad = softmaxGrad,
               .lower = lowerSoftmax,
               .summary = "exp(x) / sum(exp(x)) along an axis (default last), max-subtracted"});

  r.push_back({.name = "log_softmax",
               .operands = {"x"},
               .attrs = {axisLast},
               .shape = logSoftmaxShape,
               .eval = logSoftmaxEval,
               .grad = logSoftmaxGrad,
               .lower = lowerLogSoftmax,
               .summary = "x - logsumexp(x) along an axis (default last), max-subtracted"});

  const AttrSpec smoothing{"label_smoothing", AttrKind::Float, Attr{0.0}};

  r.push_back({.name = "softmax_cross_entropy",
               .operands = {"logits", "t"},
               .attrs = {smoothing},
               .shape = softmaxCrossEntropyShape,
               .eval = softmaxCrossEntropyEval,
               .grad = softmaxCrossEntropyGrad,
               .lower = lowerSoftmaxCrossEntropy,
               .summary = "mean over rows of -sum(t * log_softmax(logits)); t: class ids or probabilities; "
                          "label_smoothing e: t -> (1 - e) t + e/K (F.cross_entropy)"});

  r.push_back({.name = "softmax_cross_entropy_grad",
               .operands = {"logits", "t"},
               .attrs = {smoothing},
               .shape = softmaxCrossEntropyGradShape,
               .eval = softmaxCrossEntropyGradEval,
               .grad = softmaxCrossEntropyGradGrad,
               .lower = lowerSoftmaxCrossEntropyGrad,
               .summary = "(softmax(logits) - onehot(t)) / N: softmax_cross_entropy's gradient for logits (targets "
                          "smoothed as its label_smoothing)"});
}

// Losses from probabilities or values, and the weight penalties.
void addLossesAndPenalties(std::vector<OpDef>& r) {
  r.push_back({.name = "cross_entropy",
               .operands = {"p", "t"},
               .shape = crossEntropyShape,
               .eval = crossEntropyEval,
               .grad = crossEntropyGrad,
               .lower = lowerCrossEntropy,
               .summary = "-sum(t * log(p + 1e-7)) / N from probabilities; t: class ids or per-class"});

  r.push_back({.name = "nll",
               .operands = {"logp", "t"},
               .shape = nllShape,
               .eval = nllEval,
               .grad = nllGrad,
               .lower = lowerNll,
               .summary = "mean over rows of -logp[t] from log-probabilities; t: i32 class ids (F.nll_loss)"});

  r.push_back({.name = "mse",
               .operands = {"y", "t"},
               .shape = mseShape,
               .eval = mseEval,
               .grad = mseGrad,
               .lower = lowerMse,
               .summary = "mean((y - t)^2)"});

  r.push_back({.name = "huber",
               .operands = {"y", "t"},
               .attrs = {{"delta", AttrKind::Float, Attr{1.0}}},
               .shape = huberShape,
               .eval = huberEval,
               .grad = huberGrad,
               .lower = lowerHuber,
               .summary = "mean of 0.5 d^2 where |d| < delta, else delta (|d| - delta/2), d = y - t (F.huber_loss)"});

  r.push_back({.name = "kl_div",
               .operands = {"logq", "p"},
               .shape = klDivShape,
               .eval = klDivEval,
               .grad = klDivGrad,
               .lower = lowerKlDiv,
               .summary = "sum(p * (log p - logq)) / batch from log-probabilities logq (F.kl_div, batchmean)"});

  r.push_back({.name = "sse",
               .operands = {"y", "t"},
               .shape = sseShape,
               .eval = sseEval,
               .grad = sseGrad,
               .lower = lowerSse,
               .summary = "0.5 * sum((y - t)^2), the course notes' mean_squared_error"});

  r.push_back({.name = "bce",
               .operands = {"p", "t"},
               .shape = bceShape,
               .eval = bceEval,
               .grad = bceGrad,
               .branches = bceBranches,
               .lower = lowerBce,
               .summary = "binary cross-entropy from probabilities, logs clamped at -100 (PyTorch BCELoss)"});

  r.push_back({.name = "bce_grad",
               .operands = {"p", "t"},
               .shape = bceGradShape,
               .eval = bceGradEval,
               .grad = bceGradGrad,
               .branches = bceBranches,
               .lower = lowerBceGrad,
               .summary = "bce's gradient for p: (p - t) / (p (1 - p)) / numel, 0 where a log is clamped"});

  r.push_back({.name = "bce_with_logits",
               .operands = {"z", "t"},
               .shape = bceWithLogitsShape,
               .eval = bceWithLogitsEval,
               .grad = bceWithLogitsGrad,
               .lower = lowerBceWithLogits,
               .summary = "binary cross-entropy from logits: mean(max(z,0) - z*t + log(1+exp(-|z|)))"});

  r.push_back({.name = "l1",
               .operands = {"x"},
               .shape = l1Shape,
               .eval = l1Eval,
               .grad = l1Grad,
               .branches = signBranches,
               .lower = lowerL1,
               .summary = "sum(|x|), an L1 weight penalty (the caller scales by lambda)"});

  r.push_back({.name = "l2",
               .operands = {"x"},
               .shape = l2Shape,
               .eval = l2Eval,
               .grad = l2Grad,
               .lower = lowerL2,
               .summary = "0.5 * sum(x^2), weight decay (the caller scales by lambda)"});
}

// Class ids and the metrics on them; none has a gradient.
void addClassMetrics(std::vector<OpDef>& r) {
  const AttrSpec axisLast{"axis", AttrKind::Int, Attr{int64_t{-1}}};

  r.push_back({.name = "one_hot",
               .operands = {"t"},
               .attrs = {{"depth", AttrKind::Int, std::nullopt}},
               .shape = oneHotShape,
               .eval = oneHotEval,
               .noGradient = true,
               .lower = lowerOneHot,
               .summary = "i32 class ids -> f32 one-hot rows of the given depth"});

  r.push_back({.name = "argmax",
               .operands = {"x"},
               .attrs = {axisLast},
               .shape = argmaxShape,
               .eval = argmaxEval,
               .noGradient = true,
               .lower = lowerArgmax,
               .summary = "i32 index of the first maximum along an axis (default last), axis removed"});

  r.push_back({.name = "accuracy",
               .operands = {"y", "t"},
               .shape = accuracyShape,
               .eval = accuracyEval,
               .noGradient = true,
               .lower = lowerAccuracy,
               .summary = "fraction of rows whose argmax(y) equals the label (class id or argmax of t)"});
}

}  // namespace

void addLossOps(std::vector<OpDef>& r) {
  addSoftmaxFamily(r);
  addLossesAndPenalties(r);
  addClassMetrics(r);
}

}  // namespace nnc
