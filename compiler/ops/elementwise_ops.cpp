// Elementwise ops: binary ones with NumPy broadcasting, and unary ones.
// Entries are stamped from two templates so each op is its name, its scalar
// function and a summary.
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/ops/broadcast.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

// An op name usable as a template argument: ShapeFn gets no op name, yet its
// errors must name the op.
template <size_t N>
struct OpName {
  char s[N];
  constexpr OpName(const char (&v)[N]) { std::copy_n(v, N, s); }
  constexpr std::string_view view() const { return {s, N - 1}; }
};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <OpName Name>
Expected<TensorType> binaryShape(const std::vector<TensorType>& in, const Attrs&) {
  const TensorType &a = in[0], &b = in[1];
  if (a.dtype != DType::F32 || b.dtype != DType::F32)
    return error("{}: operands must be f32, got {} and {}", Name.view(), typeString(a), typeString(b));
  NNC_TRY(Shape s, broadcastShape(Name.view(), a, b));
  return TensorType{DType::F32, std::move(s)};
}

template <auto F>
Status binaryEval(const EvalArgs& args) {
  const Tensor &a = *args.in[0], &b = *args.in[1];
  BroadcastIndex ia(a.shape(), args.out.shape()), ib(b.shape(), args.out.shape());
  for (int64_t i = 0; i < args.out.numel(); ++i)
    args.out.data[static_cast<size_t>(i)] = F(a.data[static_cast<size_t>(ia(i))], b.data[static_cast<size_t>(ib(i))]);
  return ok();
}

template <OpName Name, auto F>
OpDef binary(std::string_view summary, PointwiseFn lowered) {
  return {.name = Name.view(),
          .operands = {"a", "b"},
          .shape = binaryShape<Name>,
          .eval = binaryEval<F>,
          .pointwise = lowered,
          .summary = summary};
}

template <OpName Name>
Expected<TensorType> unaryShape(const std::vector<TensorType>& in, const Attrs&) {
  if (in[0].dtype != DType::F32) return error("{}: operand must be f32, got {}", Name.view(), typeString(in[0]));
  return in[0];
}

template <auto F>
Status unaryEval(const EvalArgs& args) {
  const Tensor& x = *args.in[0];
  std::transform(x.data.begin(), x.data.end(), args.out.data.begin(), F);
  return ok();
}

template <OpName Name, auto F>
OpDef unary(std::string_view summary, PointwiseFn lowered) {
  return {.name = Name.view(),
          .operands = {"x"},
          .shape = unaryShape<Name>,
          .eval = unaryEval<F>,
          .pointwise = lowered,
          .summary = summary};
}

// The one parameterized unary op: alpha is read once, not per element.
Status leakyReluEval(const EvalArgs& args) {
  double alpha = args.attrs.f("alpha");
  const Tensor& x = *args.in[0];
  for (size_t i = 0; i < x.data.size(); ++i) args.out.data[i] = x.data[i] > 0 ? x.data[i] : alpha * x.data[i];
  return ok();
}

// exp(-x) overflows for very negative x and 1/(1+inf) is fine, but
// exp(x)/(1+exp(x)) is inf/inf there; pick the form whose exp argument is <= 0.
double sigmoid(double x) {
  if (x >= 0) return 1.0 / (1.0 + std::exp(-x));
  double e = std::exp(x);
  return e / (1.0 + e);
}

// ---- lowerings: each op's formula in f32 over its loaded operands ----
// The formulas follow the reference's comparisons exactly, so NaN, ties and
// -0.0 come out as in `eval` (Select tests `> 0`, which is false for NaN).

using loop::ExprP;
using loop::Op;
using Operands = std::vector<ExprP>;

ExprP bin(Op op, ExprP a, ExprP b) { return loop::apply(op, {std::move(a), std::move(b)}); }
ExprP select(ExprP cond, ExprP a, ExprP b) {
  return loop::apply(Op::Select, {std::move(cond), std::move(a), std::move(b)});
}
ExprP num(double v) { return loop::constant(static_cast<float>(v)); }
// 1 unless x is NaN. (Op::Max/Min propagate NaN too, but keep their first
// operand on ties, where maximum/minimum follow std::max/min's.)
ExprP notNaN(const ExprP& x) { return bin(Op::Equal, x, x); }

template <Op O>
ExprP binaryFormula(const Operands& x, const Attrs&) {
  return bin(O, x[0], x[1]);
}
template <Op O>
ExprP unaryFormula(const Operands& x, const Attrs&) {
  return loop::apply(O, {x[0]});
}
// b NaN: b; else std::max's `a < b ? b : a`, which keeps a NaN a.
ExprP maximumFormula(const Operands& x, const Attrs&) {
  return select(notNaN(x[1]), select(bin(Op::Greater, x[1], x[0]), x[1], x[0]), x[1]);
}
// b NaN: b; else std::min's `b < a ? b : a`.
ExprP minimumFormula(const Operands& x, const Attrs&) {
  return select(notNaN(x[1]), select(bin(Op::Greater, x[0], x[1]), x[1], x[0]), x[1]);
}
ExprP squareFormula(const Operands& x, const Attrs&) { return bin(Op::Mul, x[0], x[0]); }
// 1 if x > 0, -1 if x < 0, else x itself (0, -0 or NaN).
ExprP signFormula(const Operands& x, const Attrs&) {
  return select(x[0], num(1), select(loop::apply(Op::Neg, {x[0]}), num(-1), x[0]));
}
// Max(0, x) = x > 0 or x NaN ? x : 0: NaN propagates and -0 gives +0, as the
// reference (and PyTorch's relu).
ExprP reluFormula(const Operands& x, const Attrs&) { return bin(Op::Max, num(0), x[0]); }
ExprP leakyReluFormula(const Operands& x, const Attrs& attrs) {
  return select(x[0], x[0], bin(Op::Mul, num(attrs.f("alpha")), x[0]));
}
// e = exp(-|x|) <= 1 never overflows: 1/(1+e) for x > 0, e/(1+e) otherwise,
// the reference's two forms in one division.
ExprP sigmoidFormula(const Operands& x, const Attrs&) {
  ExprP e = loop::apply(Op::Exp, {loop::apply(Op::Neg, {loop::apply(Op::Abs, {x[0]})})});
  return bin(Op::Div, select(x[0], num(1), e), bin(Op::Add, num(1), e));
}
ExprP stepFormula(const Operands& x, const Attrs&) { return bin(Op::Greater, x[0], num(0)); }
ExprP identityFormula(const Operands& x, const Attrs&) { return x[0]; }

// ---- gradient rules: d loss / d operand from dy = d loss / d output ----

using Grads = Expected<std::vector<ValueId>>;

OpDef withGrad(OpDef d, GradFn grad, BranchFn branches = nullptr) {
  d.grad = grad;
  d.branches = branches;
  return d;
}

OpDef noGrad(OpDef d, BranchFn branches = nullptr) {
  d.noGradient = true;
  d.branches = branches;
  return d;
}

// Gradients of both operands of a broadcasting op, from the full-size
// contributions; skipped where an operand needs none.
Grads both(GradCtx& c, Expected<ValueId> (*fa)(GradCtx&), Expected<ValueId> (*fb)(GradCtx&)) {
  std::vector<ValueId> r(2, kNoValue);
  if (c.need(0)) {
    NNC_TRY(ValueId a, fa(c));
    NNC_TRY(r[0], c.reduceTo(a, c.inTypes[0].shape));
  }
  if (c.need(1)) {
    NNC_TRY(ValueId b, fb(c));
    NNC_TRY(r[1], c.reduceTo(b, c.inTypes[1].shape));
  }
  return r;
}

Expected<ValueId> passDy(GradCtx& c) { return c.dy; }
Expected<ValueId> negDy(GradCtx& c) { return c.op("neg", {c.dy}); }

Grads addGrad(GradCtx& c) { return both(c, passDy, passDy); }
Grads subGrad(GradCtx& c) { return both(c, passDy, negDy); }
Grads mulGrad(GradCtx& c) {
  return both(c, [](GradCtx& c) { return c.mul(c.dy, c.in[1]); }, [](GradCtx& c) { return c.mul(c.dy, c.in[0]); });
}
// d(a/b)/da = 1/b; d(a/b)/db = -a/b^2 = -y/b.
Grads divGrad(GradCtx& c) {
  return both(
      c, [](GradCtx& c) { return c.op("div", {c.dy, c.in[1]}); },
      [](GradCtx& c) -> Expected<ValueId> {
        NNC_TRY(ValueId q, c.op("div", {c.dy, c.in[1]}));
        NNC_TRY(ValueId t, c.mul(q, c.y()));
        return c.op("neg", {t});
      });
}
// d(a^b)/da = b·a^(b−1); d(a^b)/db = a^b·log a.
Grads powGrad(GradCtx& c) {
  return both(
      c,
      [](GradCtx& c) -> Expected<ValueId> {
        NNC_TRY(ValueId one, c.constant(1));
        NNC_TRY(ValueId bm1, c.op("sub", {c.in[1], one}));
        NNC_TRY(ValueId p, c.op("pow", {c.in[0], bm1}));
        NNC_TRY(ValueId t, c.mul(p, c.in[1]));
        return c.mul(c.dy, t);
      },
      [](GradCtx& c) -> Expected<ValueId> {
        NNC_TRY(ValueId l, c.op("log", {c.in[0]}));
        NNC_TRY(ValueId t, c.mul(c.y(), l));
        return c.mul(c.dy, t);
      });
}
// maximum: the gradient goes to a where a > b, else to b (ties go to b);
// minimum likewise with a < b. `first` is then step(a − b) or step(b − a).
template <bool Max>
Grads extremumGrad(GradCtx& c) {
  NNC_TRY(ValueId diff, Max ? c.op("sub", {c.in[0], c.in[1]}) : c.op("sub", {c.in[1], c.in[0]}));
  NNC_TRY(ValueId first, c.op("step", {diff}));
  NNC_TRY(ValueId toA, c.mul(c.dy, first));
  NNC_TRY(ValueId toB, c.op("sub", {c.dy, toA}));
  std::vector<ValueId> r(2, kNoValue);
  if (c.need(0)) {
    NNC_TRY(r[0], c.reduceTo(toA, c.inTypes[0].shape));
  }
  if (c.need(1)) {
    NNC_TRY(r[1], c.reduceTo(toB, c.inTypes[1].shape));
  }
  return r;
}

// Unary rules: dx = dy · f'(x), written with graph ops.
Grads negGrad(GradCtx& c) {
  NNC_TRY(ValueId d, c.op("neg", {c.dy}));
  return std::vector<ValueId>{d};
}
Grads expGrad(GradCtx& c) {
  NNC_TRY(ValueId d, c.mul(c.dy, c.y()));
  return std::vector<ValueId>{d};
}
Grads logGrad(GradCtx& c) {
  NNC_TRY(ValueId d, c.op("div", {c.dy, c.in[0]}));
  return std::vector<ValueId>{d};
}
Grads sqrtGrad(GradCtx& c) {  // 1 / (2 sqrt x)
  NNC_TRY(ValueId h, c.mul(c.dy, 0.5));
  NNC_TRY(ValueId d, c.op("div", {h, c.y()}));
  return std::vector<ValueId>{d};
}
Grads squareGrad(GradCtx& c) {
  NNC_TRY(ValueId t, c.mul(c.in[0], 2.0));
  NNC_TRY(ValueId d, c.mul(c.dy, t));
  return std::vector<ValueId>{d};
}
Grads absGrad(GradCtx& c) {
  NNC_TRY(ValueId s, c.op("sign", {c.in[0]}));
  NNC_TRY(ValueId d, c.mul(c.dy, s));
  return std::vector<ValueId>{d};
}
Grads reluGrad(GradCtx& c) {
  NNC_TRY(ValueId m, c.op("step", {c.in[0]}));
  NNC_TRY(ValueId d, c.mul(c.dy, m));
  return std::vector<ValueId>{d};
}
Grads leakyReluGrad(GradCtx& c) {  // slope 1 where x > 0, alpha elsewhere
  const double alpha = c.attrs.f("alpha");
  NNC_TRY(ValueId m, c.op("step", {c.in[0]}));
  NNC_TRY(ValueId scaled, c.mul(m, 1 - alpha));
  NNC_TRY(ValueId a, c.constant(alpha));
  NNC_TRY(ValueId slope, c.op("add", {scaled, a}));
  NNC_TRY(ValueId d, c.mul(c.dy, slope));
  return std::vector<ValueId>{d};
}
Grads sigmoidGrad(GradCtx& c) {  // y (1 − y)
  NNC_TRY(ValueId one, c.constant(1));
  NNC_TRY(ValueId omy, c.op("sub", {one, c.y()}));
  NNC_TRY(ValueId t, c.mul(c.y(), omy));
  NNC_TRY(ValueId d, c.mul(c.dy, t));
  return std::vector<ValueId>{d};
}
Grads tanhGrad(GradCtx& c) {  // 1 − y²
  NNC_TRY(ValueId one, c.constant(1));
  NNC_TRY(ValueId y2, c.op("square", {c.y()}));
  NNC_TRY(ValueId t, c.op("sub", {one, y2}));
  NNC_TRY(ValueId d, c.mul(c.dy, t));
  return std::vector<ValueId>{d};
}
Grads identityGrad(GradCtx& c) { return std::vector<ValueId>{c.dy}; }

// Branch patterns: which side of 0 each element's input lies.
void signBranches(const std::vector<const Tensor*>& in, const Attrs&, std::vector<int64_t>& p) {
  for (double v : in[0]->data) p.push_back(v > 0 ? 1 : v < 0 ? -1 : 0);
}
template <bool Max>
void extremumBranches(const std::vector<const Tensor*>& in, const Attrs&, std::vector<int64_t>& p) {
  const Tensor &a = *in[0], &b = *in[1];
  auto out = broadcastShapes(a.shape(), b.shape());
  if (!out) return;
  BroadcastIndex ia(a.shape(), *out), ib(b.shape(), *out);
  for (int64_t i = 0; i < numel(*out); ++i) {
    const double d = a.data[static_cast<size_t>(ia(i))] - b.data[static_cast<size_t>(ib(i))];
    p.push_back(Max ? d > 0 : d < 0);
  }
}

}  // namespace

// A lambda whose body has a `>` goes in parentheses: GCC otherwise takes it
// for the end of the template argument list.
void addElementwiseOps(std::vector<OpDef>& r) {
  r.push_back(withGrad(binary<"add", [](double a, double b) { return a + b; }>("a + b, with broadcasting",
                                                                               binaryFormula<Op::Add>),
                       addGrad));
  r.push_back(withGrad(binary<"sub", [](double a, double b) { return a - b; }>("a - b, with broadcasting",
                                                                               binaryFormula<Op::Sub>),
                       subGrad));
  r.push_back(withGrad(binary<"mul", [](double a, double b) { return a * b; }>("a * b, with broadcasting",
                                                                               binaryFormula<Op::Mul>),
                       mulGrad));
  r.push_back(withGrad(binary<"div", [](double a, double b) { return a / b; }>("a / b, with broadcasting",
                                                                               binaryFormula<Op::Div>),
                       divGrad));
  // NaN propagates, as in NumPy, rather than being dropped as by fmax.
  r.push_back(withGrad(binary<"maximum", [](double a, double b) {
                         return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b);
                       }>("elementwise max(a, b), with broadcasting", maximumFormula),
                       extremumGrad<true>, extremumBranches<true>));
  r.push_back(withGrad(binary<"minimum", [](double a, double b) {
                         return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b);
                       }>("elementwise min(a, b), with broadcasting", minimumFormula),
                       extremumGrad<false>, extremumBranches<false>));
  r.push_back(withGrad(binary<"pow", [](double a, double b) { return std::pow(a, b); }>("a ** b, with broadcasting",
                                                                                        binaryFormula<Op::Pow>),
                       powGrad));

  r.push_back(withGrad(unary<"neg", [](double x) { return -x; }>("-x", unaryFormula<Op::Neg>), negGrad));
  r.push_back(withGrad(unary<"exp", [](double x) { return std::exp(x); }>("e ** x", unaryFormula<Op::Exp>), expGrad));
  r.push_back(withGrad(unary<"log", [](double x) { return std::log(x); }>("natural logarithm", unaryFormula<Op::Log>),
                       logGrad));
  r.push_back(withGrad(unary<"sqrt", [](double x) { return std::sqrt(x); }>("square root", unaryFormula<Op::Sqrt>),
                       sqrtGrad));
  r.push_back(withGrad(unary<"square", [](double x) { return x * x; }>("x * x", squareFormula), squareGrad));
  r.push_back(withGrad(unary<"abs", [](double x) { return std::abs(x); }>("|x|", unaryFormula<Op::Abs>), absGrad,
                       signBranches));
  r.push_back(noGrad(unary<"sign", ([](double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x; })>(
                         "-1, 0 or 1 by the sign of x", signFormula),
                     signBranches));
  // NaN stays NaN, as in PyTorch and NumPy: a NaN made upstream must reach
  // the loss (and the non-finite-loss guard) rather than turn into 0.
  r.push_back(withGrad(unary<"relu", ([](double x) { return x > 0 || std::isnan(x) ? x : 0.0; })>(
                           "max(x, 0); NaN stays NaN", reluFormula),
                       reluGrad,
                       signBranches));
  r.push_back({.name = "leaky_relu",
               .operands = {"x"},
               .attrs = {{"alpha", AttrKind::Float, Attr{0.01}}},
               .shape = unaryShape<"leaky_relu">,
               .eval = leakyReluEval,
               .grad = leakyReluGrad,
               .branches = signBranches,
               .pointwise = leakyReluFormula,
               .summary = "x if x > 0, else alpha * x"});
  r.push_back(withGrad(unary<"sigmoid", sigmoid>("1 / (1 + e ** -x), stable for large |x|", sigmoidFormula),
                       sigmoidGrad));
  r.push_back(withGrad(unary<"tanh", [](double x) { return std::tanh(x); }>("hyperbolic tangent",
                                                                              unaryFormula<Op::Tanh>),
                       tanhGrad));
  r.push_back(noGrad(unary<"step", ([](double x) { return x > 0 ? 1.0 : 0.0; })>("1 if x > 0, else 0", stepFormula),
                     signBranches));
  r.push_back(withGrad(unary<"identity", [](double x) { return x; }>("x unchanged", identityFormula), identityGrad));
}

}  // namespace nnc
