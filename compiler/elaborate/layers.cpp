#include "compiler/elaborate/layers.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "compiler/ops/op_registry.h"

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

// A convolution layer's `pad`: an int or [ph, pw], "valid" (0) or "same"
// (stride 1 only, as torch's padding='same': k − 1 in all, split evenly, the
// odd one at the end). Uneven "same" padding is a pad node before a
// convolution with pad 0.
struct ConvPadding {
  std::vector<int64_t> conv;       // the convolution's symmetric pad [ph, pw]
  std::vector<int64_t> explicitly; // pad's `pads` [left, right, top, bottom], or empty
};

Expected<ConvPadding> convPadding(const Args& a, const LayerCall& c, const std::vector<int64_t>& k,
                                  const std::vector<int64_t>& stride, bool allowSame) {
  const CtValue* v = a.get("pad");
  if (!v || v->kind != CtValue::Kind::String) {
    NNC_TRY(std::vector<int64_t> pad, a.pair("pad", 0));
    return ConvPadding{pad, {}};
  }
  if (v->s == "valid") return ConvPadding{{0, 0}, {}};
  if (v->s != "same" || !allowSame)
    return error(a.loc("pad"), "{}: pad must be an integer, a list of two{}, got \"{}\"", c.name,
                 allowSame ? ", \"valid\" or \"same\"" : " or \"valid\"", v->s);
  if (stride[0] != 1 || stride[1] != 1)
    return error(a.loc("pad"), "{}: pad = \"same\" needs stride 1 (as torch's padding='same'), got stride [{}, {}]",
                 c.name, stride[0], stride[1]);
  const int64_t th = k[0] - 1, tw = k[1] - 1;
  if (th % 2 == 0 && tw % 2 == 0) return ConvPadding{{th / 2, tw / 2}, {}};
  return ConvPadding{{0, 0}, {tw / 2, tw - tw / 2, th / 2, th - th / 2}};
}

Expected<ValueId> padInput(LayerContext& ctx, ValueId x, const ConvPadding& p, SourceLoc loc) {
  if (p.explicitly.empty()) return x;
  return ctx.graph().add("pad", {x}, {{"pads", p.explicitly}}, loc);
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
  NNC_TRY(int64_t groups, a.integer("groups", 1));
  if (filters <= 0 || groups <= 0 || k[0] <= 0 || k[1] <= 0)
    return error(c.loc, "{}: filters, kernel and groups must be positive", c.name);
  NNC_TRY(ConvPadding padding, convPadding(a, c, k, stride, !transposed));
  const std::vector<int64_t>& pad = padding.conv;
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
  NNC_TRY(ops[0], padInput(ctx, x, padding, c.loc));
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

// ---- sequence layers --------------------------------------------------------

// embedding(ids, vocab, dim, init = normal(1), name = ...): a table [vocab, dim]
// (torch.nn.Embedding's N(0, 1) unless init says otherwise) read by ids.
Expected<LayerResult> embeddingLayer(LayerContext& ctx, const LayerCall& c) {
  if (c.positional.size() >= 2 && c.positional[1].kind == CtValue::Kind::Tensor) return LayerResult{};
  Args a(c, {"ids", "vocab", "dim", "init", "name"});
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId ids, a.tensor("ids"));
  NNC_TRY(int64_t vocab, a.integer("vocab", std::nullopt));
  NNC_TRY(int64_t dim, a.integer("dim", std::nullopt));
  if (vocab <= 0) return error(a.loc("vocab"), "embedding: vocab must be positive, got {}", vocab);
  if (dim <= 0) return error(a.loc("dim"), "embedding: dim must be positive, got {}", dim);
  NNC_TRY(std::string p, a.prefix(ctx, "embedding"));
  NNC_TRY(InitSpec init, a.init("init", "normal"));
  if (init.kind == "normal" && init.args.empty()) init.args = {1.0};
  NNC_TRY(ValueId table, ctx.newParam(p + ".table", {DType::F32, {vocab, dim}}, init, true, c.loc));
  NNC_TRY(ValueId y, ctx.graph().add("embedding", {ids, table}, {}, c.loc));
  return LayerResult{true, y};
}

// layernorm(x, eps = 1e-5, name = ...): over the last axis, gamma = 1 and beta = 0.
Expected<LayerResult> layernormLayer(LayerContext& ctx, const LayerCall& c) {
  if (c.positional.size() >= 2 && c.positional[1].kind == CtValue::Kind::Tensor) return LayerResult{};
  Args a(c, {"x", "eps", "name"});
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId x, a.tensor("x"));
  const TensorType& xt = ctx.graph().type(x);
  if (xt.rank() < 1) return error(c.loc, "layernorm: input must have at least one axis, got {}", typeString(xt));
  NNC_TRY(double eps, a.number("eps", 1e-5));
  NNC_TRY(std::string p, a.prefix(ctx, "ln"));
  const TensorType pt{DType::F32, {xt.shape.back()}};
  NNC_TRY(ValueId gamma, ctx.newParam(p + ".gamma", pt, InitSpec{"constant", {1.0}}, true, c.loc));
  NNC_TRY(ValueId beta, ctx.newParam(p + ".beta", pt, InitSpec{"zeros", {}}, true, c.loc));
  NNC_TRY(ValueId y, ctx.graph().add("layernorm", {x, gamma, beta}, {{"eps", eps}}, c.loc));
  return LayerResult{true, y};
}

// A dense layer over the last axis with params p.W [in, out] and p.b, the
// weights drawn as torch.nn.Linear's (uniform ±1/√in) unless `init` is given.
Expected<ValueId> affine(LayerContext& ctx, const std::string& p, ValueId x, int64_t out, SourceLoc loc) {
  const int64_t in = ctx.graph().type(x).shape.back();
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  NNC_TRY(ValueId w, ctx.newParam(p + ".W", {DType::F32, {in, out}}, InitSpec{"uniform", {-bound, bound}}, true, loc));
  NNC_TRY(ValueId b, ctx.newParam(p + ".b", {DType::F32, {out}}, InitSpec{"uniform", {-bound, bound}}, true, loc));
  NNC_TRY(ValueId y, ctx.graph().add("matmul", {x, w}, {}, loc));
  return ctx.graph().add("add", {y, b}, {}, loc);
}

Expected<ValueId> op(LayerContext& ctx, std::string_view name, std::vector<ValueId> in, Attrs at, SourceLoc loc) {
  return ctx.graph().add(name, std::move(in), std::move(at), loc);
}

// multihead_attention(x, heads, causal = 1, name = ...): self-attention over
// x [B, T, D] as torch.nn.MultiheadAttention (one q/k/v projection p.qkv
// [D, 3D], then p.out [D, D]): softmax(q·kᵀ/√(D/heads) + mask)·v per head,
// one fused self_attention op (expand-attention spells it out when unfused).
Expected<LayerResult> attentionLayer(LayerContext& ctx, const LayerCall& c) {
  Args a(c, {"x", "heads", "causal", "name"});
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId x, a.tensor("x"));
  const TensorType xt = ctx.graph().type(x);
  if (xt.rank() != 3) return error(c.loc, "multihead_attention: input must be [batch, T, D], got {}", typeString(xt));
  NNC_TRY(int64_t heads, a.integer("heads", std::nullopt));
  const int64_t d = xt.shape[2];
  if (heads <= 0 || d % heads != 0)
    return error(a.loc("heads"), "multihead_attention: heads must divide D = {}, got {}", d, heads);
  NNC_TRY(int64_t causal, a.integer("causal", 1));
  NNC_TRY(std::string p, a.prefix(ctx, "attn"));
  const SourceLoc loc = c.loc;
  NNC_TRY(ValueId qkv, affine(ctx, p + ".qkv", x, 3 * d, loc));
  // [B, T, 3D] → [B, T, 3, heads, dh] → [3, B, heads, T, dh]: q, k and v
  // stacked, each head's features contiguous, in one copy.
  const int64_t b = xt.shape[0], t = xt.shape[1], dh = d / heads;
  NNC_TRY(ValueId split, op(ctx, "reshape", {qkv}, {{"shape", std::vector<int64_t>{b, t, 3, heads, dh}}}, loc));
  NNC_TRY(ValueId stacked, op(ctx, "transpose", {split}, {{"perm", std::vector<int64_t>{2, 0, 3, 1, 4}}}, loc));
  NNC_TRY(ValueId heads_out, op(ctx, "self_attention", {stacked}, {{"causal", int64_t{causal != 0}}}, loc));
  NNC_TRY(ValueId merged, op(ctx, "transpose", {heads_out}, {{"perm", std::vector<int64_t>{0, 2, 1, 3}}}, loc));
  NNC_TRY(merged, op(ctx, "reshape", {merged}, {{"shape", std::vector<int64_t>{xt.shape[0], xt.shape[1], d}}}, loc));
  NNC_TRY(ValueId y, affine(ctx, p + ".out", merged, d, loc));
  return LayerResult{true, y};
}

// transformer_block(x, heads, ff = 4·D, activation = "gelu", causal = 1, name):
// a pre-norm (GPT-2) block, x + attn(ln1(x)), then + mlp(ln2(·)).
Expected<LayerResult> transformerBlock(LayerContext& ctx, const LayerCall& c) {
  Args a(c, {"x", "heads", "ff", "activation", "causal", "name"});
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId x, a.tensor("x"));
  const TensorType xt = ctx.graph().type(x);
  if (xt.rank() != 3) return error(c.loc, "transformer_block: input must be [batch, T, D], got {}", typeString(xt));
  const int64_t d = xt.shape[2];
  NNC_TRY(int64_t heads, a.integer("heads", std::nullopt));
  NNC_TRY(int64_t ff, a.integer("ff", 4 * d));
  if (ff <= 0) return error(a.loc("ff"), "transformer_block: ff must be positive, got {}", ff);
  NNC_TRY(int64_t causal, a.integer("causal", 1));
  NNC_TRY(std::string p, a.prefix(ctx, "block"));
  const SourceLoc loc = c.loc;
  auto sub = [&](const std::string& name, std::vector<std::pair<std::string, CtValue>> named, ValueId in) {
    LayerCall call{name, loc, {CtValue::tensorValue(in, loc)}, std::move(named)};
    return expandLayer(ctx, call);
  };
  auto str = [&](const std::string& s) {
    CtValue v;
    v.kind = CtValue::Kind::String;
    v.s = s;
    v.loc = loc;
    return v;
  };
  NNC_TRY(LayerResult ln1, sub("layernorm", {{"name", str(p + ".ln1")}}, x));
  NNC_TRY(LayerResult att, sub("multihead_attention", {{"heads", CtValue::intValue(heads, loc)},
                                                      {"causal", CtValue::intValue(causal, loc)},
                                                      {"name", str(p + ".attn")}}, ln1.value));
  NNC_TRY(ValueId h, op(ctx, "add", {x, att.value}, {}, loc));
  NNC_TRY(LayerResult ln2, sub("layernorm", {{"name", str(p + ".ln2")}}, h));
  NNC_TRY(ValueId f, affine(ctx, p + ".fc1", ln2.value, ff, loc));
  if (a.get("activation")) {
    NNC_TRY(f, activate(ctx, c, a, f));
  } else {
    NNC_TRY(f, ctx.graph().add("gelu", {f}, {}, loc));
  }
  NNC_TRY(f, affine(ctx, p + ".fc2", f, d, loc));
  NNC_TRY(ValueId y, op(ctx, "add", {h, f}, {}, loc));
  return LayerResult{true, y};
}

// conv1d(x, filters, kernel, stride=1, pad=0, dilation=1, groups=1, bias=1, init=he(), name=...)
// or conv1d(x, W, b, stride, pad, groups) with explicit tensors, on x [N, C, L]
// and W [F, C/groups, K] (torch.nn.Conv1d's layout): conv2d on the views
// [N, C, 1, L] and [F, C/groups, 1, K], so that the convolution passes and
// kernels (fuse-conv, the algorithm choice, fold-batchnorm) apply unchanged.
Expected<LayerResult> conv1d(LayerContext& ctx, const LayerCall& c) {
  bool plain = c.positional.size() >= 2 && c.positional[1].kind == CtValue::Kind::Tensor;
  for (const auto& [n, v] : c.named) plain = plain || n == "W";
  const std::vector<std::string> names =
      plain ? std::vector<std::string>{"x", "W", "b", "stride", "pad", "groups"}
            : std::vector<std::string>{"x", "filters", "kernel", "stride", "pad", "dilation", "groups", "bias", "init",
                                       "bias_init", "name"};
  Args a(c, names);
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId x, a.tensor("x"));
  const TensorType xt = ctx.graph().type(x);
  if (xt.rank() != 3) return error(c.loc, "conv1d: input must be [N, C, L], got {}", typeString(xt));
  NNC_TRY(int64_t stride, a.integer("stride", 1));
  NNC_TRY(int64_t groups, a.integer("groups", 1));
  if (!plain) {
    NNC_TRY(int64_t dilation, a.integer("dilation", 1));
    if (dilation != 1)
      return error(a.loc("dilation"), "conv1d: dilation {} is not supported (conv2d has no dilation); only 1", dilation);
  }
  std::vector<ValueId> ops;
  int64_t kernel = 0;
  if (plain) {
    NNC_TRY(ValueId w, a.tensor("W"));
    const TensorType wt = ctx.graph().type(w);
    if (wt.rank() != 3)
      return error(a.loc("W"), "conv1d: W must be [F, C/groups, K], got {} (x {})", typeString(wt), typeString(xt));
    kernel = wt.shape[2];
    NNC_TRY(ValueId w4, ctx.graph().add("reshape", {w}, {{"shape", Shape{wt.shape[0], wt.shape[1], 1, kernel}}}, c.loc));
    ops = {x, w4};
    if (a.get("b")) {
      NNC_TRY(ValueId b, a.tensor("b"));
      ops.push_back(b);
    }
  } else {
    NNC_TRY(int64_t filters, a.integer("filters", std::nullopt));
    NNC_TRY(kernel, a.integer("kernel", std::nullopt));
    if (filters <= 0 || groups <= 0 || kernel <= 0)
      return error(c.loc, "conv1d: filters, kernel and groups must be positive");
    if (xt.shape[1] % groups || filters % groups)
      return error(c.loc, "conv1d: groups={} must divide the input channels ({}) and filters ({})", groups,
                   xt.shape[1], filters);
    NNC_TRY(std::string p, a.prefix(ctx, "conv1d_"));
    NNC_TRY(InitSpec wi, a.init("init", "he"));
    NNC_TRY(ValueId w, ctx.newParam(p + ".W", {DType::F32, {filters, xt.shape[1] / groups, kernel}}, wi, true, c.loc));
    NNC_TRY(ValueId w4, ctx.graph().add("reshape", {w}, {{"shape", Shape{filters, xt.shape[1] / groups, 1, kernel}}}, c.loc));
    ops = {x, w4};
    NNC_TRY(int64_t bias, a.integer("bias", 1));
    if (bias) {
      NNC_TRY(InitSpec bi, a.init("bias_init", "zeros"));
      NNC_TRY(ValueId b, ctx.newParam(p + ".b", {DType::F32, {filters}}, bi, true, c.loc));
      ops.push_back(b);
    }
  }
  const CtValue* pv = a.get("pad");
  if (pv && pv->kind != CtValue::Kind::Int && pv->kind != CtValue::Kind::String)
    return error(a.loc("pad"), "conv1d: pad must be an integer, \"valid\" or \"same\"");
  NNC_TRY(ConvPadding padding, convPadding(a, c, {1, kernel}, {1, stride}, true));
  NNC_TRY(ops[0], ctx.graph().add("reshape", {x}, {{"shape", Shape{xt.shape[0], xt.shape[1], 1, xt.shape[2]}}}, c.loc));
  NNC_TRY(ops[0], padInput(ctx, ops[0], padding, c.loc));
  const Attrs at{{"stride", std::vector<int64_t>{1, stride}}, {"pad", std::vector<int64_t>{0, padding.conv[1]}}, {"groups", groups}};
  NNC_TRY(ValueId y, ctx.graph().add("conv2d", ops, at, c.loc));
  const Shape ys = ctx.graph().type(y).shape;
  NNC_TRY(y, ctx.graph().add("reshape", {y}, {{"shape", Shape{ys[0], ys[1], ys[3]}}}, c.loc));
  return LayerResult{true, y};
}

// groupnorm(x, groups, eps=1e-5, name=...): group_norm with gamma (ones) and
// beta (zeros) per channel, as torch.nn.GroupNorm(affine=True).
Expected<LayerResult> groupnorm(LayerContext& ctx, const LayerCall& c) {
  Args a(c, {"x", "groups", "eps", "name"});
  NNC_CHECK(a.bind());
  NNC_TRY(ValueId x, a.tensor("x"));
  const TensorType xt = ctx.graph().type(x);
  if (xt.rank() < 2) return error(c.loc, "groupnorm: input must be [N, C, ...], got {}", typeString(xt));
  NNC_TRY(int64_t groups, a.integer("groups", std::nullopt));
  NNC_TRY(double eps, a.number("eps", 1e-5));
  NNC_TRY(std::string p, a.prefix(ctx, "gn"));
  const TensorType ct{DType::F32, {xt.shape[1]}};
  NNC_TRY(ValueId gamma, ctx.newParam(p + ".gamma", ct, InitSpec{"constant", {1.0}}, true, c.loc));
  NNC_TRY(ValueId beta, ctx.newParam(p + ".beta", ct, InitSpec{"zeros", {}}, true, c.loc));
  NNC_TRY(ValueId y, ctx.graph().add("group_norm", {x, gamma, beta}, {{"groups", groups}, {"eps", eps}}, c.loc));
  return LayerResult{true, y};
}

// ---- recurrent layers, unrolled over the T steps of x [batch, T, features] ----

// Builds one recurrent layer's nodes at the call's location.
class Recurrence {
 public:
  Recurrence(LayerContext& ctx, SourceLoc loc) : g_(ctx.graph()), loc_(loc) {}

  Expected<ValueId> op(std::string_view name, std::vector<ValueId> ins, Attrs a = {}) {
    return g_.add(name, std::move(ins), std::move(a), loc_);
  }
  // Gate k (of width h) along the last axis.
  Expected<ValueId> gate(ValueId v, int64_t k, int64_t h) {
    const int64_t axis = g_.type(v).rank() - 1;
    return op("slice", {v}, {{"axis", axis}, {"start", k * h}, {"end", (k + 1) * h}});
  }
  // v @ Wᵀ for W in torch's [gates·H, in] layout, read transposed in place.
  Expected<ValueId> project(ValueId v, ValueId w) { return op("matmul", {v, w}, {{"transpose_b", int64_t{1}}}); }
  // x's step t as [batch, F]. Where x is the steps of an earlier recurrent
  // layer joined by concat, its piece itself: a slice's gradient is a
  // zero tensor of x's size, and T of them summed would cost T² in the
  // backward pass.
  Expected<ValueId> step(ValueId x, int64_t t) {
    const Shape s = g_.type(x).shape;
    const Node& n = g_.node(x);
    if (n.op->name == "concat" && n.attrs.i("axis") == 1 && static_cast<int64_t>(n.inputs.size()) == s[1])
      return op("reshape", {n.inputs[static_cast<size_t>(t)]}, {{"shape", Shape{s[0], s[2]}}});
    NNC_TRY(ValueId r, op("slice", {x}, {{"axis", int64_t{1}}, {"start", t}, {"end", t + 1}}));
    return op("reshape", {r}, {{"shape", Shape{s[0], s[2]}}});
  }
  Expected<ValueId> add(ValueId a, ValueId b) { return op("add", {a, b}); }
  Expected<ValueId> mul(ValueId a, ValueId b) { return op("mul", {a, b}); }
  // All steps' outputs [batch, H] as [batch, T, H], or the last one.
  Expected<ValueId> result(const std::vector<ValueId>& hs, bool sequences) {
    if (!sequences) return hs.back();
    std::vector<ValueId> parts;
    const Shape s = g_.type(hs[0]).shape;
    for (ValueId h : hs) {
      NNC_TRY(ValueId r, op("reshape", {h}, {{"shape", Shape{s[0], 1, s[1]}}}));
      parts.push_back(r);
    }
    if (parts.size() == 1) return parts[0];
    return op("concat", parts, {{"axis", int64_t{1}}});
  }

 private:
  Graph& g_;
  SourceLoc loc_;
};

struct RecurrentParams {
  int64_t batch = 0, steps = 0, features = 0, units = 0;
  bool sequences = true;
  ValueId x = kNoValue, wih = kNoValue, whh = kNoValue, bih = kNoValue, bhh = kNoValue;
};

// lstm/gru(x, units, return_sequences=1, name=...): torch's params
// (weight_ih_l0 [gates·H, F] as W_ih, weight_hh_l0 [gates·H, H] as W_hh,
// bias_ih_l0 as b_ih, bias_hh_l0 as b_hh), each uniform(±1/√H) as torch.
Expected<RecurrentParams> recurrentParams(LayerContext& ctx, const LayerCall& c, int64_t gates) {
  Args a(c, {"x", "units", "return_sequences", "name"});
  NNC_CHECK(a.bind());
  RecurrentParams r;
  NNC_TRY(r.x, a.tensor("x"));
  const TensorType xt = ctx.graph().type(r.x);
  if (xt.rank() != 3) return error(c.loc, "{}: input must be [batch, T, features], got {}", c.name, typeString(xt));
  NNC_TRY(r.units, a.integer("units", std::nullopt));
  if (r.units <= 0) return error(a.loc("units"), "{}: units must be positive, got {}", c.name, r.units);
  NNC_TRY(int64_t seq, a.integer("return_sequences", 1));
  if (seq != 0 && seq != 1) return error(a.loc("return_sequences"), "{}: return_sequences must be 0 or 1, got {}", c.name, seq);
  r.sequences = seq == 1;
  r.batch = xt.shape[0];
  r.steps = xt.shape[1];
  r.features = xt.shape[2];
  NNC_TRY(std::string p, a.prefix(ctx, c.name));
  const double k = 1 / std::sqrt(static_cast<double>(r.units));
  const InitSpec init{"uniform", {-k, k}};
  const int64_t gh = gates * r.units;
  NNC_TRY(r.wih, ctx.newParam(p + ".W_ih", {DType::F32, {gh, r.features}}, init, true, c.loc));
  NNC_TRY(r.whh, ctx.newParam(p + ".W_hh", {DType::F32, {gh, r.units}}, init, true, c.loc));
  NNC_TRY(r.bih, ctx.newParam(p + ".b_ih", {DType::F32, {gh}}, init, true, c.loc));
  NNC_TRY(r.bhh, ctx.newParam(p + ".b_hh", {DType::F32, {gh}}, init, true, c.loc));
  return r;
}

// torch.nn.LSTM: gates i, f, g, o; c' = f·c + i·g, h' = o·tanh(c'); zero
// initial state (so step 0 has no h @ W_hh and no f·c). Both biases are
// added as one. Each step projects its own input: one matmul over all steps
// would be sliced per step, and each slice's gradient is as big as all of them.
Expected<LayerResult> lstm(LayerContext& ctx, const LayerCall& c) {
  NNC_TRY(RecurrentParams r, recurrentParams(ctx, c, 4));
  Recurrence rc(ctx, c.loc);
  NNC_TRY(ValueId bias, rc.add(r.bih, r.bhh));
  const int64_t H = r.units;
  std::vector<ValueId> hs;
  ValueId h = kNoValue, cell = kNoValue;
  for (int64_t t = 0; t < r.steps; ++t) {
    NNC_TRY(ValueId xt, rc.step(r.x, t));
    NNC_TRY(ValueId z, rc.project(xt, r.wih));
    if (t > 0) {
      NNC_TRY(ValueId hw, rc.project(h, r.whh));
      NNC_TRY(z, rc.add(z, hw));
    }
    NNC_TRY(z, rc.add(z, bias));
    std::vector<ValueId> gate(4);
    for (int64_t k = 0; k < 4; ++k) {
      NNC_TRY(ValueId s, rc.gate(z, k, H));
      NNC_TRY(gate[static_cast<size_t>(k)], rc.op(k == 2 ? "tanh" : "sigmoid", {s}));
    }
    NNC_TRY(ValueId ig, rc.mul(gate[0], gate[2]));
    if (t > 0) {
      NNC_TRY(ValueId fc, rc.mul(gate[1], cell));
      NNC_TRY(ig, rc.add(fc, ig));
    }
    cell = ig;
    NNC_TRY(ValueId tc, rc.op("tanh", {cell}));
    NNC_TRY(h, rc.mul(gate[3], tc));
    hs.push_back(h);
  }
  NNC_TRY(ValueId y, rc.result(hs, r.sequences));
  return LayerResult{true, y};
}

// torch.nn.GRU: gates r, z, n; n = tanh(x W_inᵀ + b_in + r·(h W_hnᵀ + b_hn)),
// h' = (1 − z)·n + z·h = n + z·(h − n); zero initial state (step 0's
// hidden projection is b_hh alone and h' = n − z·n).
Expected<LayerResult> gru(LayerContext& ctx, const LayerCall& c) {
  NNC_TRY(RecurrentParams r, recurrentParams(ctx, c, 3));
  Recurrence rc(ctx, c.loc);
  const int64_t H = r.units;
  std::vector<ValueId> hs;
  ValueId h = kNoValue;
  for (int64_t t = 0; t < r.steps; ++t) {
    NNC_TRY(ValueId xt, rc.step(r.x, t));
    NNC_TRY(ValueId xw, rc.project(xt, r.wih));
    NNC_TRY(ValueId xs, rc.add(xw, r.bih));
    ValueId hp = r.bhh;
    if (t > 0) {
      NNC_TRY(ValueId hw, rc.project(h, r.whh));
      NNC_TRY(hp, rc.add(hw, r.bhh));
    }
    std::vector<ValueId> xg(3), hg(3);
    for (int64_t k = 0; k < 3; ++k) {
      NNC_TRY(xg[static_cast<size_t>(k)], rc.gate(xs, k, H));
      NNC_TRY(hg[static_cast<size_t>(k)], rc.gate(hp, k, H));
    }
    NNC_TRY(ValueId rs, rc.add(xg[0], hg[0]));
    NNC_TRY(ValueId rg, rc.op("sigmoid", {rs}));
    NNC_TRY(ValueId zs, rc.add(xg[1], hg[1]));
    NNC_TRY(ValueId zg, rc.op("sigmoid", {zs}));
    NNC_TRY(ValueId rh, rc.mul(rg, hg[2]));
    NNC_TRY(ValueId ns, rc.add(xg[2], rh));
    NNC_TRY(ValueId n, rc.op("tanh", {ns}));
    NNC_TRY(ValueId d, t > 0 ? rc.op("sub", {h, n}) : rc.op("neg", {n}));
    NNC_TRY(ValueId zd, rc.mul(zg, d));
    NNC_TRY(h, rc.add(n, zd));
    hs.push_back(h);
  }
  NNC_TRY(ValueId y, rc.result(hs, r.sequences));
  return LayerResult{true, y};
}

}  // namespace

bool isLayer(std::string_view n) {
  return n == "dense" || n == "conv2d" || n == "conv_transpose2d" || n == "batchnorm" || n == "dropout" ||
         n == "embedding" || n == "layernorm" || n == "multihead_attention" || n == "transformer_block" ||
         n == "conv1d" || n == "groupnorm" || n == "lstm" || n == "gru";
}

Expected<LayerResult> expandLayer(LayerContext& ctx, const LayerCall& c) {
  if (c.name == "dense") return dense(ctx, c);
  if (c.name == "conv2d") return conv(ctx, c, false);
  if (c.name == "conv_transpose2d") return conv(ctx, c, true);
  if (c.name == "batchnorm") return batchnorm(ctx, c);
  if (c.name == "dropout") return dropout(ctx, c);
  if (c.name == "embedding") return embeddingLayer(ctx, c);
  if (c.name == "layernorm") return layernormLayer(ctx, c);
  if (c.name == "multihead_attention") return attentionLayer(ctx, c);
  if (c.name == "transformer_block") return transformerBlock(ctx, c);
  if (c.name == "conv1d") return conv1d(ctx, c);
  if (c.name == "groupnorm") return groupnorm(ctx, c);
  if (c.name == "lstm") return lstm(ctx, c);
  if (c.name == "gru") return gru(ctx, c);
  return LayerResult{};
}

}  // namespace nnc
