#include "compiler/elaborate/layers.h"

#include <algorithm>
#include <map>
#include <optional>

namespace nnc {

namespace {

// Binds a layer call's arguments to parameter names, positionally or by name.
class Args {
 public:
  Args(const LayerCall& c, std::vector<std::string> names) : call_(c), names_(std::move(names)) {}

  Status bind() {
    if (call_.positional.size() > names_.size())
      return error(call_.loc, "too many arguments to '{}'", call_.name);
    for (size_t k = 0; k < call_.positional.size(); ++k) vals_[names_[k]] = call_.positional[k];
    for (const auto& [n, v] : call_.named) {
      if (std::find(names_.begin(), names_.end(), n) == names_.end()) {
        std::string known;
        for (const auto& k : names_) known += (known.empty() ? "" : ", ") + k;
        return error(v.loc.valid() ? v.loc : call_.loc, "'{}' has no argument '{}' (it takes: {})", call_.name, n, known);
      }
      if (vals_.count(n)) return error(v.loc.valid() ? v.loc : call_.loc, "'{}' given twice", n);
      vals_[n] = v;
    }
    return ok();
  }
  const CtValue* get(const std::string& n) const {
    auto it = vals_.find(n);
    return it == vals_.end() ? nullptr : &it->second;
  }
  SourceLoc loc(const std::string& n) const {
    const CtValue* v = get(n);
    return v && v->loc.valid() ? v->loc : call_.loc;
  }
  Expected<ValueId> tensor(const std::string& n) const {
    const CtValue* v = get(n);
    if (!v) return error(call_.loc, "'{}' needs its input '{}'", call_.name, n);
    if (v->kind != CtValue::Kind::Tensor) return error(loc(n), "'{}' of '{}' must be a tensor", n, call_.name);
    return v->tensor;
  }
  Expected<int64_t> integer(const std::string& n, std::optional<int64_t> dflt) const {
    const CtValue* v = get(n);
    if (!v) {
      if (!dflt) return error(call_.loc, "'{}' needs '{}'", call_.name, n);
      return *dflt;
    }
    if (v->kind != CtValue::Kind::Int) return error(loc(n), "'{}' of '{}' must be an integer", n, call_.name);
    return v->i;
  }
  Expected<double> number(const std::string& n, double dflt) const {
    const CtValue* v = get(n);
    if (!v) return dflt;
    if (v->kind == CtValue::Kind::Int) return static_cast<double>(v->i);
    if (v->kind == CtValue::Kind::Float) return v->f;
    return error(loc(n), "'{}' of '{}' must be a number", n, call_.name);
  }
  // An int or a list of two ints (kernel=5, stride=[2, 1]) as attribute ints.
  Expected<std::vector<int64_t>> pair(const std::string& n, std::optional<int64_t> dflt) const {
    const CtValue* v = get(n);
    if (!v) {
      if (!dflt) return error(call_.loc, "'{}' needs '{}'", call_.name, n);
      return std::vector<int64_t>{*dflt, *dflt};
    }
    if (v->kind == CtValue::Kind::Int) return std::vector<int64_t>{v->i, v->i};
    if (v->kind == CtValue::Kind::List && v->list.size() == 2 && v->list[0].kind == CtValue::Kind::Int &&
        v->list[1].kind == CtValue::Kind::Int)
      return std::vector<int64_t>{v->list[0].i, v->list[1].i};
    return error(loc(n), "'{}' of '{}' must be an integer or a list of two", n, call_.name);
  }
  Expected<InitSpec> init(const std::string& n, const char* dflt) const {
    const CtValue* v = get(n);
    if (!v) return InitSpec{dflt, {}};
    if (v->kind != CtValue::Kind::Init)
      return error(loc(n), "'{}' of '{}' must be an initializer such as he() or normal(0.01)", n, call_.name);
    return v->init;
  }
  Expected<std::string> prefix(LayerContext& ctx, const std::string& kind) const {
    const CtValue* v = get("name");
    if (!v) return ctx.freshPrefix(kind);
    if (v->kind != CtValue::Kind::String) return error(loc("name"), "name= takes a string");
    return v->s;
  }

 private:
  const LayerCall& call_;
  std::vector<std::string> names_;
  std::map<std::string, CtValue> vals_;
};

// activation = "relu" on dense and the convolutions: the unary op of that
// name applied to the layer's result, the very graph `relu(dense(...))`
// gives, so the epilogue fusions apply alike. "none" (and "identity") add
// nothing.
constexpr std::string_view kLayerActivations[] = {"none",    "identity", "relu", "relu6",    "gelu", "silu",
                                                  "elu",     "selu",     "softplus", "sigmoid", "tanh",
                                                  "leaky_relu"};

Expected<ValueId> activate(LayerContext& ctx, const LayerCall& c, const Args& a, ValueId y) {
  const CtValue* v = a.get("activation");
  if (!v) return y;
  const bool known = v->kind == CtValue::Kind::String &&
                     std::find(std::begin(kLayerActivations), std::end(kLayerActivations), v->s) !=
                         std::end(kLayerActivations);
  if (!known) {
    std::string names;
    for (std::string_view n : kLayerActivations) names += fmt::format("{}\"{}\"", names.empty() ? "" : ", ", n);
    return error(a.loc("activation"), "activation of '{}' must be one of {}", c.name, names);
  }
  if (v->s == "none" || v->s == "identity") return y;
  return ctx.graph().add(v->s, {y}, {}, c.loc);
}

// dense(x, units, init=he(), bias=1, bias_init=zeros(), activation="none", name="fc1"): x @ W + b, W: [in, units].
Expected<LayerResult> dense(LayerContext& ctx, const LayerCall& c) {
  Args a(c, {"x", "units", "init", "bias", "bias_init", "activation", "name"});
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId x, a.tensor("x"));
  NNC_TRY(int64_t units, a.integer("units", std::nullopt));
  if (units <= 0) return error(a.loc("units"), "dense: units must be positive, got {}", units);
  const TensorType& xt = ctx.graph().type(x);
  if (xt.rank() < 1) return error(c.loc, "dense: input must have at least one axis, got {}", typeString(xt));
  NNC_TRY(std::string p, a.prefix(ctx, "dense"));
  NNC_TRY(InitSpec wi, a.init("init", "he"));
  NNC_TRY(ValueId w, ctx.newParam(p + ".W", {DType::F32, {xt.shape.back(), units}}, wi, true, c.loc));
  NNC_TRY(ValueId y, ctx.graph().add("matmul", {x, w}, {}, c.loc));
  NNC_TRY(int64_t bias, a.integer("bias", 1));
  if (bias) {
    NNC_TRY(InitSpec bi, a.init("bias_init", "zeros"));
    NNC_TRY(ValueId b, ctx.newParam(p + ".b", {DType::F32, {units}}, bi, true, c.loc));
    NNC_TRY(y, ctx.graph().add("add", {y, b}, {}, c.loc));
  }
  NNC_TRY(y, activate(ctx, c, a, y));
  return LayerResult{true, y};
}

// conv2d(x, filters, kernel, stride=1, pad=0, groups=1, bias=1, init=he(), name=...)
// conv_transpose2d(x, filters, kernel, stride=1, pad=0, output_pad=0, groups=1, ...)
Expected<LayerResult> conv(LayerContext& ctx, const LayerCall& c, bool transposed) {
  if (c.positional.size() >= 2 && c.positional[1].kind == CtValue::Kind::Tensor) return LayerResult{};
  for (const auto& [n, v] : c.named)
    if (n == "W") return LayerResult{};
  std::vector<std::string> names = {"x", "filters", "kernel", "stride", "pad"};
  if (transposed) names.push_back("output_pad");
  for (const char* n : {"groups", "bias", "init", "bias_init", "activation", "name"}) names.push_back(n);
  Args a(c, names);
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId x, a.tensor("x"));
  const TensorType& xt = ctx.graph().type(x);
  if (xt.rank() != 4) return error(c.loc, "{}: input must be [N, C, H, W], got {}", c.name, typeString(xt));
  NNC_TRY(int64_t filters, a.integer("filters", std::nullopt));
  NNC_TRY(std::vector<int64_t> k, a.pair("kernel", std::nullopt));
  NNC_TRY(std::vector<int64_t> stride, a.pair("stride", 1));
  NNC_TRY(std::vector<int64_t> pad, a.pair("pad", 0));
  NNC_TRY(int64_t groups, a.integer("groups", 1));
  if (filters <= 0 || groups <= 0 || k[0] <= 0 || k[1] <= 0)
    return error(c.loc, "{}: filters, kernel and groups must be positive", c.name);
  const int64_t ch = xt.shape[1];
  if (ch % groups || filters % groups)
    return error(c.loc, "{}: groups={} must divide the input channels ({}) and filters ({})", c.name, groups, ch, filters);
  NNC_TRY(std::string p, a.prefix(ctx, transposed ? "deconv" : "conv"));
  NNC_TRY(InitSpec wi, a.init("init", "he"));
  Shape ws = transposed ? Shape{ch, filters / groups, k[0], k[1]} : Shape{filters, ch / groups, k[0], k[1]};
  NNC_TRY(ValueId w, ctx.newParam(p + ".W", {DType::F32, ws}, wi, true, c.loc));
  std::vector<ValueId> ops = {x, w};
  NNC_TRY(int64_t bias, a.integer("bias", 1));
  if (bias) {
    NNC_TRY(InitSpec bi, a.init("bias_init", "zeros"));
    NNC_TRY(ValueId b, ctx.newParam(p + ".b", {DType::F32, {filters}}, bi, true, c.loc));
    ops.push_back(b);
  }
  Attrs at{{"stride", stride}, {"pad", pad}, {"groups", groups}};
  if (transposed) {
    NNC_TRY(std::vector<int64_t> op, a.pair("output_pad", 0));
    at.set("output_pad", op);
  }
  NNC_TRY(ValueId y, ctx.graph().add(transposed ? "conv_transpose2d" : "conv2d", ops, at, c.loc));
  NNC_TRY(y, activate(ctx, c, a, y));
  return LayerResult{true, y};
}

// batchnorm(x, eps=1e-5, momentum=0.1, name=...): gamma, beta and the running
// statistics (not trained: the runtime updates them) per channel, axis 1.
Expected<LayerResult> batchnorm(LayerContext& ctx, const LayerCall& c) {
  if (c.positional.size() >= 2) return LayerResult{};
  Args a(c, {"x", "eps", "momentum", "name"});
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId x, a.tensor("x"));
  const TensorType& xt = ctx.graph().type(x);
  if (xt.rank() != 2 && xt.rank() != 4)
    return error(c.loc, "batchnorm: input must be [N, C] or [N, C, H, W], got {}", typeString(xt));
  NNC_TRY(double eps, a.number("eps", 1e-5));
  NNC_TRY(double momentum, a.number("momentum", 0.1));
  NNC_TRY(std::string p, a.prefix(ctx, "bn"));
  const TensorType ct{DType::F32, {xt.shape[1]}};
  NNC_TRY(ValueId gamma, ctx.newParam(p + ".gamma", ct, InitSpec{"constant", {1.0}}, true, c.loc));
  NNC_TRY(ValueId beta, ctx.newParam(p + ".beta", ct, InitSpec{"zeros", {}}, true, c.loc));
  NNC_TRY(ValueId mean, ctx.newParam(p + ".running_mean", ct, InitSpec{"zeros", {}}, false, c.loc));
  NNC_TRY(ValueId var, ctx.newParam(p + ".running_var", ct, InitSpec{"constant", {1.0}}, false, c.loc));
  NNC_TRY(ValueId y, ctx.graph().add("batchnorm", {x, gamma, beta, mean, var}, {{"eps", eps}, {"momentum", momentum}}, c.loc));
  return LayerResult{true, y};
}

// dropout(x, rate=0.5) = x * dropout_mask(x, rate): the mask is a graph value,
// so the backward pass multiplies by the very same mask.
Expected<LayerResult> dropout(LayerContext& ctx, const LayerCall& c) {
  Args a(c, {"x", "rate"});
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId x, a.tensor("x"));
  NNC_TRY(double rate, a.number("rate", 0.5));
  NNC_TRY(ValueId m, ctx.graph().add("dropout_mask", {x}, {{"rate", rate}}, c.loc));
  NNC_TRY(ValueId y, ctx.graph().add("mul", {x, m}, {}, c.loc));
  return LayerResult{true, y};
}

}  // namespace

bool isLayer(std::string_view n) {
  return n == "dense" || n == "conv2d" || n == "conv_transpose2d" || n == "batchnorm" || n == "dropout";
}

Expected<LayerResult> expandLayer(LayerContext& ctx, const LayerCall& c) {
  if (c.name == "dense") return dense(ctx, c);
  if (c.name == "conv2d") return conv(ctx, c, false);
  if (c.name == "conv_transpose2d") return conv(ctx, c, true);
  if (c.name == "batchnorm") return batchnorm(ctx, c);
  if (c.name == "dropout") return dropout(ctx, c);
  return LayerResult{};
}

}  // namespace nnc
