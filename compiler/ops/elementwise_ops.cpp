// Elementwise ops: binary ones with NumPy broadcasting, and unary ones.
// Entries are stamped from two templates so each op is its name, its scalar
// function and a summary.
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/ops/broadcast.h"
#include "compiler/ops/op_registry.h"
#include "runtime/activation.h"  // erf's coefficients, gelu's constants

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

// ---- the activation zoo: torch.nn's definitions and constants ----

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1/√(2π)
constexpr double kTwoOverSqrtPi = 1.12837916709551257390;  // 2/√π, erf's slope at 0
constexpr double kSeluAlpha = 1.6732632423543772848170429916717;
constexpr double kSeluScale = 1.0507009873554804934193349852946;

bool geluTanh(const Attrs& a) { return a.s("approximate") == "tanh"; }

double geluExact(double x) { return 0.5 * x * (1 + std::erf(x * kSqrtHalf)); }
double geluTanhForm(double x) { return 0.5 * x * (1 + std::tanh(kGeluC * (x + kGeluK * x * x * x))); }
double elu(double x, double alpha) { return x > 0 ? x : alpha * std::expm1(x); }
// torch.clamp: NaN stays NaN (std::max/min would keep either operand).
double clamp(double x, double lo, double hi) { return std::isnan(x) ? x : std::min(std::max(x, lo), hi); }

Status geluEval(const EvalArgs& args) {
  const bool t = geluTanh(args.attrs);
  const Tensor& x = *args.in[0];
  std::transform(x.data.begin(), x.data.end(), args.out.data.begin(), t ? geluTanhForm : geluExact);
  return ok();
}
Status eluEval(const EvalArgs& args) {
  const double alpha = args.attrs.f("alpha");
  const Tensor& x = *args.in[0];
  for (size_t i = 0; i < x.data.size(); ++i) args.out.data[i] = elu(x.data[i], alpha);
  return ok();
}
// Linear above the threshold, as torch: log1p(exp(βx)) would overflow there.
Status softplusEval(const EvalArgs& args) {
  const double beta = args.attrs.f("beta"), threshold = args.attrs.f("threshold");
  const Tensor& x = *args.in[0];
  for (size_t i = 0; i < x.data.size(); ++i) {
    const double bx = beta * x.data[i];
    args.out.data[i] = bx > threshold ? x.data[i] : std::log1p(std::exp(bx)) / beta;
  }
  return ok();
}
Status clipEval(const EvalArgs& args) {
  const double lo = args.attrs.f("min"), hi = args.attrs.f("max");
  const Tensor& x = *args.in[0];
  for (size_t i = 0; i < x.data.size(); ++i) args.out.data[i] = clamp(x.data[i], lo, hi);
  return ok();
}

template <OpName Name>
Expected<TensorType> geluShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  const std::string& a = attrs.s("approximate");
  if (a != "none" && a != "tanh") return error("{}: approximate must be \"none\" or \"tanh\", got \"{}\"", Name.view(), a);
  return unaryShape<Name>(in, attrs);
}
Expected<TensorType> softplusShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  if (!(attrs.f("beta") > 0)) return error("softplus: beta must be positive, got {}", attrs.f("beta"));
  return unaryShape<"softplus">(in, attrs);
}
Expected<TensorType> clipShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  const double lo = attrs.f("min"), hi = attrs.f("max");
  if (!(lo <= hi)) return error("clip: min ({}) must not exceed max ({})", lo, hi);
  return unaryShape<"clip">(in, attrs);
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

// erf in f32 as x·P(x²)/Q(x²) on x clamped to [-4, 4] (Eigen's float erf,
// coefficients in runtime/activation.h, shared with the GEMM epilogue's gelu;
// erf is ±1 in f32 beyond): multiplies, adds, one division and the clamp's
// selects, so its loops vectorize in both printers, where a call to libm's
// erff would keep them scalar. Max abs error 4.5e-7 against std::erf on
// 1,600,001 points of [-8, 8] (tests/test_ops_activations.cpp measures it);
// NaN stays NaN (Op::Max/Min propagate it).

template <size_t N>
ExprP horner(const double (&c)[N], const ExprP& x2) {
  ExprP r = num(c[N - 1]);
  for (size_t i = N - 1; i-- > 0;) r = bin(Op::Add, bin(Op::Mul, r, x2), num(c[i]));
  return r;
}
ExprP erfOf(const ExprP& arg) {
  ExprP x = bin(Op::Min, bin(Op::Max, arg, num(-4)), num(4));
  ExprP x2 = bin(Op::Mul, x, x);
  return bin(Op::Div, bin(Op::Mul, x, horner(kErfP, x2)), horner(kErfQ, x2));
}
ExprP erfFormula(const Operands& x, const Attrs&) { return erfOf(x[0]); }
// 0.5·x·(1 + erf(x/√2)), or the tanh form 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
ExprP geluFormula(const Operands& x, const Attrs& attrs) {
  ExprP inner;
  if (geluTanh(attrs)) {
    ExprP cube = bin(Op::Mul, bin(Op::Mul, x[0], x[0]), x[0]);
    ExprP u = bin(Op::Mul, num(kGeluC), bin(Op::Add, x[0], bin(Op::Mul, num(kGeluK), cube)));
    inner = loop::apply(Op::Tanh, {u});
  } else {
    inner = erfOf(bin(Op::Mul, x[0], num(kSqrtHalf)));
  }
  return bin(Op::Mul, bin(Op::Mul, num(0.5), x[0]), bin(Op::Add, num(1), inner));
}
ExprP siluFormula(const Operands& x, const Attrs& attrs) { return bin(Op::Mul, x[0], sigmoidFormula(x, attrs)); }
// Both branches are evaluated; exp(x) may be inf for large x, but Select
// takes x there.
ExprP eluOf(const ExprP& x, double alpha) {
  return select(x, x, bin(Op::Mul, num(alpha), bin(Op::Sub, loop::apply(Op::Exp, {x}), num(1))));
}
ExprP eluFormula(const Operands& x, const Attrs& attrs) { return eluOf(x[0], attrs.f("alpha")); }
ExprP seluFormula(const Operands& x, const Attrs&) { return bin(Op::Mul, num(kSeluScale), eluOf(x[0], kSeluAlpha)); }
ExprP softplusFormula(const Operands& x, const Attrs& attrs) {
  const double beta = attrs.f("beta");
  ExprP bx = bin(Op::Mul, num(beta), x[0]);
  ExprP soft = bin(Op::Div, loop::apply(Op::Log, {bin(Op::Add, num(1), loop::apply(Op::Exp, {bx}))}), num(beta));
  return select(bin(Op::Sub, bx, num(attrs.f("threshold"))), x[0], soft);
}
// Op::Max and Op::Min keep a NaN x, as the reference's clamp.
ExprP clipOf(const ExprP& x, double lo, double hi) { return bin(Op::Min, bin(Op::Max, x, num(lo)), num(hi)); }
ExprP clipFormula(const Operands& x, const Attrs& attrs) { return clipOf(x[0], attrs.f("min"), attrs.f("max")); }
ExprP relu6Formula(const Operands& x, const Attrs&) { return clipOf(x[0], 0, 6); }
ExprP preluFormula(const Operands& x, const Attrs&) { return select(x[0], x[0], bin(Op::Mul, x[1], x[0])); }
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

Expected<ValueId> addScalar(GradCtx& c, ValueId v, double k) {
  NNC_TRY(ValueId kc, c.constant(k));
  return c.op("add", {v, kc});
}
Expected<ValueId> oneMinus(GradCtx& c, ValueId v) {
  NNC_TRY(ValueId one, c.constant(1));
  return c.op("sub", {one, v});
}
Grads times(GradCtx& c, Expected<ValueId> slope) {
  if (!slope) return std::move(slope.error());
  NNC_TRY(ValueId d, c.mul(c.dy, *slope));
  return std::vector<ValueId>{d};
}

Grads erfGrad(GradCtx& c) {  // 2/√π · exp(−x²)
  NNC_TRY(ValueId x2, c.op("square", {c.in[0]}));
  NNC_TRY(ValueId nx2, c.op("neg", {x2}));
  NNC_TRY(ValueId e, c.op("exp", {nx2}));
  return times(c, c.mul(e, kTwoOverSqrtPi));
}
// Exact: Φ(x) + x·φ(x), with Φ = ½(1 + erf(x/√2)) and φ = exp(−x²/2)/√(2π).
Expected<ValueId> geluExactSlope(GradCtx& c) {
  NNC_TRY(ValueId xs, c.mul(c.in[0], kSqrtHalf));
  NNC_TRY(ValueId e, c.op("erf", {xs}));
  NNC_TRY(ValueId halfE, c.mul(e, 0.5));
  NNC_TRY(ValueId cdf, addScalar(c, halfE, 0.5));
  NNC_TRY(ValueId x2, c.op("square", {c.in[0]}));
  NNC_TRY(ValueId h, c.mul(x2, -0.5));
  NNC_TRY(ValueId g, c.op("exp", {h}));
  NNC_TRY(ValueId pdf, c.mul(g, kInvSqrt2Pi));
  NNC_TRY(ValueId xpdf, c.mul(c.in[0], pdf));
  return c.op("add", {cdf, xpdf});
}
// tanh form, t = tanh(u), u = c·x·(1 + k·x²): ½(1 + t) + ½·x·(1 − t²)·c·(1 + 3k·x²).
Expected<ValueId> geluTanhSlope(GradCtx& c) {
  NNC_TRY(ValueId x2, c.op("square", {c.in[0]}));
  NNC_TRY(ValueId kx2, c.mul(x2, kGeluK));
  NNC_TRY(ValueId poly, addScalar(c, kx2, 1));
  NNC_TRY(ValueId xp, c.mul(c.in[0], poly));
  NNC_TRY(ValueId u, c.mul(xp, kGeluC));
  NNC_TRY(ValueId t, c.op("tanh", {u}));
  NNC_TRY(ValueId ht, c.mul(t, 0.5));
  NNC_TRY(ValueId left, addScalar(c, ht, 0.5));
  NNC_TRY(ValueId t2, c.op("square", {t}));
  NNC_TRY(ValueId sech2, oneMinus(c, t2));
  NNC_TRY(ValueId k3, c.mul(x2, 3 * kGeluK * kGeluC));
  NNC_TRY(ValueId du, addScalar(c, k3, kGeluC));
  NNC_TRY(ValueId hx, c.mul(c.in[0], 0.5));
  NNC_TRY(ValueId r1, c.mul(hx, sech2));
  NNC_TRY(ValueId right, c.mul(r1, du));
  return c.op("add", {left, right});
}
Grads geluGrad(GradCtx& c) { return times(c, geluTanh(c.attrs) ? geluTanhSlope(c) : geluExactSlope(c)); }
// With s = sigmoid(x) and y = x·s: s + x·s·(1 − s) = s + y·(1 − s).
Grads siluGrad(GradCtx& c) {
  NNC_TRY(ValueId s, c.op("sigmoid", {c.in[0]}));
  NNC_TRY(ValueId oms, oneMinus(c, s));
  NNC_TRY(ValueId t, c.mul(c.y(), oms));
  return times(c, c.op("add", {s, t}));
}
// scale where x > 0, else scale·alpha·exp(x): exp of min(x, 0), so that a
// large positive x, masked out, gives 0·finite rather than 0·inf = NaN.
// At 0 the x < 0 side (alpha·scale), as torch.
Expected<ValueId> eluSlope(GradCtx& c, double alpha, double scale) {
  NNC_TRY(ValueId m, c.op("step", {c.in[0]}));
  NNC_TRY(ValueId zero, c.constant(0));
  NNC_TRY(ValueId xn, c.op("minimum", {c.in[0], zero}));
  NNC_TRY(ValueId e, c.op("exp", {xn}));
  NNC_TRY(ValueId ae, c.mul(e, alpha * scale));
  NNC_TRY(ValueId off, oneMinus(c, m));
  NNC_TRY(ValueId neg, c.mul(off, ae));
  NNC_TRY(ValueId pos, c.mul(m, scale));
  return c.op("add", {pos, neg});
}
Grads eluGrad(GradCtx& c) { return times(c, eluSlope(c, c.attrs.f("alpha"), 1)); }
Grads seluGrad(GradCtx& c) { return times(c, eluSlope(c, kSeluAlpha, kSeluScale)); }
// sigmoid(βx) up to the threshold, 1 above it: s + above·(1 − s).
Grads softplusGrad(GradCtx& c) {
  NNC_TRY(ValueId bx, c.mul(c.in[0], c.attrs.f("beta")));
  NNC_TRY(ValueId over, addScalar(c, bx, -c.attrs.f("threshold")));
  NNC_TRY(ValueId above, c.op("step", {over}));
  NNC_TRY(ValueId s, c.op("sigmoid", {bx}));
  NNC_TRY(ValueId oms, oneMinus(c, s));
  NNC_TRY(ValueId t, c.mul(above, oms));
  return times(c, c.op("add", {s, t}));
}
// 1 where lo <= x <= hi (the bounds included, as torch.clamp), else 0:
// 1 − step(lo − x) − step(x − hi), an infinite bound's term left out.
Expected<ValueId> clipSlope(GradCtx& c, double lo, double hi) {
  NNC_TRY(ValueId mask, c.constant(1));
  if (std::isfinite(lo)) {
    NNC_TRY(ValueId nx, c.op("neg", {c.in[0]}));
    NNC_TRY(ValueId below, addScalar(c, nx, lo));
    NNC_TRY(ValueId out, c.op("step", {below}));
    NNC_TRY(mask, c.op("sub", {mask, out}));
  }
  if (std::isfinite(hi)) {
    NNC_TRY(ValueId above, addScalar(c, c.in[0], -hi));
    NNC_TRY(ValueId out, c.op("step", {above}));
    NNC_TRY(mask, c.op("sub", {mask, out}));
  }
  // The mask is a scalar if both bounds are infinite: broadcast it.
  NNC_TRY(ValueId d, c.mul(c.dy, mask));
  return d;
}
Grads clipGrad(GradCtx& c) {
  NNC_TRY(ValueId d, clipSlope(c, c.attrs.f("min"), c.attrs.f("max")));
  return std::vector<ValueId>{d};
}
// 1 where 0 < x < 6, the bounds excluded: torch's relu6 (hardtanh), and
// relu's relu′(0) = 0. step(x)·step(6 − x).
Grads relu6Grad(GradCtx& c) {
  NNC_TRY(ValueId above0, c.op("step", {c.in[0]}));
  NNC_TRY(ValueId nx, c.op("neg", {c.in[0]}));
  NNC_TRY(ValueId room, addScalar(c, nx, 6));
  NNC_TRY(ValueId below6, c.op("step", {room}));
  NNC_TRY(ValueId mask, c.mul(above0, below6));
  return times(c, mask);
}
// d/da: 1 where a > 0, else slope (slope at 0, as relu's convention);
// d/dslope: a where a <= 0, else 0.
Grads preluGrad(GradCtx& c) {
  return both(
      c,
      [](GradCtx& c) -> Expected<ValueId> {
        NNC_TRY(ValueId m, c.op("step", {c.in[0]}));
        NNC_TRY(ValueId oms, oneMinus(c, c.in[1]));
        NNC_TRY(ValueId t, c.mul(m, oms));
        NNC_TRY(ValueId slope, c.op("add", {c.in[1], t}));
        return c.mul(c.dy, slope);
      },
      [](GradCtx& c) -> Expected<ValueId> {
        NNC_TRY(ValueId m, c.op("step", {c.in[0]}));
        NNC_TRY(ValueId off, oneMinus(c, m));
        NNC_TRY(ValueId neg, c.mul(off, c.in[0]));
        return c.mul(c.dy, neg);
      });
}

// Branch patterns: which side of 0 each element's input lies.
void signBranches(const std::vector<const Tensor*>& in, const Attrs&, std::vector<int64_t>& p) {
  for (double v : in[0]->data) p.push_back(v > 0 ? 1 : v < 0 ? -1 : 0);
}
// softplus: which side of the threshold βx lies.
void softplusBranches(const std::vector<const Tensor*>& in, const Attrs& attrs, std::vector<int64_t>& p) {
  const double beta = attrs.f("beta"), threshold = attrs.f("threshold");
  for (double v : in[0]->data) p.push_back(beta * v > threshold);
}
// clip and relu6: below, inside or above the bounds.
void boundBranches(const std::vector<const Tensor*>& in, double lo, double hi, std::vector<int64_t>& p) {
  for (double v : in[0]->data) p.push_back(v < lo ? -1 : v > hi ? 1 : 0);
}
void clipBranches(const std::vector<const Tensor*>& in, const Attrs& attrs, std::vector<int64_t>& p) {
  boundBranches(in, attrs.f("min"), attrs.f("max"), p);
}
void relu6Branches(const std::vector<const Tensor*>& in, const Attrs&, std::vector<int64_t>& p) {
  boundBranches(in, 0, 6, p);
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

// torch.nn's activations beyond relu/sigmoid/tanh, and erf (which gelu's
// gradient uses).
void addActivationZoo(std::vector<OpDef>& r) {
  r.push_back(withGrad(unary<"erf", [](double x) { return std::erf(x); }>("the error function, 2/√π ∫₀ˣ exp(−t²) dt",
                                                                            erfFormula),
                       erfGrad));
  r.push_back({.name = "gelu",
               .operands = {"x"},
               .attrs = {{"approximate", AttrKind::String, Attr{std::string("none")}}},
               .shape = geluShape<"gelu">,
               .eval = geluEval,
               .grad = geluGrad,
               .pointwise = geluFormula,
               .summary = "x * Φ(x) (approximate = \"tanh\": torch's tanh form)"});
  r.push_back(withGrad(unary<"silu", [](double x) { return x * sigmoid(x); }>("x * sigmoid(x) (swish)", siluFormula),
                       siluGrad));
  r.push_back({.name = "elu",
               .operands = {"x"},
               .attrs = {{"alpha", AttrKind::Float, Attr{1.0}}},
               .shape = unaryShape<"elu">,
               .eval = eluEval,
               .grad = eluGrad,
               .branches = signBranches,
               .pointwise = eluFormula,
               .summary = "x if x > 0, else alpha * (e ** x - 1)"});
  r.push_back(withGrad(unary<"selu", [](double x) { return kSeluScale * elu(x, kSeluAlpha); }>(
                           "scale * elu(x, alpha) with torch's self-normalizing constants", seluFormula),
                       seluGrad, signBranches));
  r.push_back({.name = "softplus",
               .operands = {"x"},
               .attrs = {{"beta", AttrKind::Float, Attr{1.0}}, {"threshold", AttrKind::Float, Attr{20.0}}},
               .shape = softplusShape,
               .eval = softplusEval,
               .grad = softplusGrad,
               .branches = softplusBranches,
               .pointwise = softplusFormula,
               .summary = "log(1 + e ** (beta * x)) / beta; x where beta * x > threshold"});
  r.push_back({.name = "clip",
               .operands = {"x"},
               .attrs = {{"min", AttrKind::Float, Attr{-kInf}}, {"max", AttrKind::Float, Attr{kInf}}},
               .shape = clipShape,
               .eval = clipEval,
               .grad = clipGrad,
               .branches = clipBranches,
               .pointwise = clipFormula,
               .summary = "x limited to [min, max] (torch.clamp); NaN stays NaN"});
  r.push_back(withGrad(unary<"relu6", [](double x) { return clamp(x, 0, 6); }>("clip(x, 0, 6)", relu6Formula),
                       relu6Grad, relu6Branches));
  OpDef prelu = withGrad(binary<"prelu", ([](double a, double b) { return a > 0 ? a : b * a; })>(
                              "x if x > 0, else slope * x; slope broadcasts (a [C, 1, 1] slope is per channel)",
                              preluFormula),
                          preluGrad, signBranches);
  prelu.operands = {"x", "slope"};
  r.push_back(std::move(prelu));
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
  addActivationZoo(r);
}

}  // namespace nnc
