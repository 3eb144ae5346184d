// Elementwise ops: binary ones with NumPy broadcasting, and unary ones.
// Entries are stamped from two templates so each op is its name, its scalar
// function and a summary.
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/op_registry.h"
#include "compiler/ops/broadcast.h"

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
OpDef binary(std::string_view summary) {
  return {.name = Name.view(),
          .operands = {"a", "b"},
          .shape = binaryShape<Name>,
          .eval = binaryEval<F>,
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
OpDef unary(std::string_view summary) {
  return {.name = Name.view(), .operands = {"x"}, .shape = unaryShape<Name>, .eval = unaryEval<F>, .summary = summary};
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

}  // namespace

// A lambda whose body has a `>` goes in parentheses: GCC otherwise takes it
// for the end of the template argument list.
void addElementwiseOps(std::vector<OpDef>& r) {
  r.push_back(binary<"add", [](double a, double b) { return a + b; }>("a + b, with broadcasting"));
  r.push_back(binary<"sub", [](double a, double b) { return a - b; }>("a - b, with broadcasting"));
  r.push_back(binary<"mul", [](double a, double b) { return a * b; }>("a * b, with broadcasting"));
  r.push_back(binary<"div", [](double a, double b) { return a / b; }>("a / b, with broadcasting"));
  // NaN propagates, as in NumPy, rather than being dropped as by fmax.
  r.push_back(binary<"maximum", [](double a, double b) {
    return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b);
  }>("elementwise max(a, b), with broadcasting"));
  r.push_back(binary<"minimum", [](double a, double b) {
    return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b);
  }>("elementwise min(a, b), with broadcasting"));
  r.push_back(binary<"pow", [](double a, double b) { return std::pow(a, b); }>("a ** b, with broadcasting"));

  r.push_back(unary<"neg", [](double x) { return -x; }>("-x"));
  r.push_back(unary<"exp", [](double x) { return std::exp(x); }>("e ** x"));
  r.push_back(unary<"log", [](double x) { return std::log(x); }>("natural logarithm"));
  r.push_back(unary<"sqrt", [](double x) { return std::sqrt(x); }>("square root"));
  r.push_back(unary<"square", [](double x) { return x * x; }>("x * x"));
  r.push_back(unary<"abs", [](double x) { return std::abs(x); }>("|x|"));
  r.push_back(unary<"sign", ([](double x) { return x > 0 ? 1.0 : x < 0 ? -1.0 : x; })>("-1, 0 or 1 by the sign of x"));
  r.push_back(unary<"relu", ([](double x) { return x > 0 ? x : 0.0; })>("max(x, 0)"));
  r.push_back({.name = "leaky_relu",
               .operands = {"x"},
               .attrs = {{"alpha", AttrKind::Float, Attr{0.01}}},
               .shape = unaryShape<"leaky_relu">,
               .eval = leakyReluEval,
               .summary = "x if x > 0, else alpha * x"});
  r.push_back(unary<"sigmoid", sigmoid>("1 / (1 + e ** -x), stable for large |x|"));
  r.push_back(unary<"tanh", [](double x) { return std::tanh(x); }>("hyperbolic tangent"));
  r.push_back(unary<"step", ([](double x) { return x > 0 ? 1.0 : 0.0; })>("1 if x > 0, else 0"));
  r.push_back(unary<"identity", [](double x) { return x; }>("x unchanged"));
}

}  // namespace nnc
