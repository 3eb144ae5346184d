// expand-attention: with the attention fusion off (--no-fuse=attention, and
// in nnc bench's unfused program), each fused attention(q, k, v) or
// self_attention(qkv) and its gradient become the ops they fuse, so the same
// model runs both ways:
//   s = scale·q·kᵀ (causal_mask), p = softmax(s), o = p·v
//   dv = pᵀ·dy, dp = dy·vᵀ, ds = scale·p∘(dp − Σ p∘dp), dq = ds·k, dk = dsᵀ·q
// The gradient recomputes p from the same nodes, which cse then shares with
// the forward's: the unfused program stores every [T, S] score buffer.
#include <cmath>

#include "compiler/passes/passes.h"

namespace nnc::passes {

namespace {

Attr ints(std::vector<int64_t> v) { return Attr{std::move(v)}; }

struct Expander {
  Rewriter& r;
  ValueId at;  // the old node the helpers stand for

  Expected<ValueId> op(std::string_view name, std::vector<ValueId> in, Attrs a = {}) {
    return r.add(at, name, std::move(in), std::move(a));
  }
  Expected<ValueId> matmul(ValueId a, ValueId b, int64_t ta, int64_t tb) {
    return op("matmul", {a, b}, {{"transpose_a", ta}, {"transpose_b", tb}});
  }
  Expected<ValueId> scalar(double v) {
    return r.out().addSource("const", "", TensorType{DType::F32, {}}, Attrs{{"value", std::vector<double>{v}}});
  }
  double scale(const Node& n) const {  // dh: q's last axis, or qkv's
    const double s = n.attrs.f("scale");
    return s > 0 ? s : 1 / std::sqrt(static_cast<double>(r.in.type(n.inputs[0]).shape.back()));
  }
  // softmax(scale·q·kᵀ) with the causal keys hidden.
  Expected<ValueId> probs(const Node& n, ValueId q, ValueId k) {
    NNC_TRY(ValueId s, matmul(q, k, 0, 1));
    NNC_TRY(const ValueId c, scalar(scale(n)));
    NNC_TRY(s, op("mul", {s, c}));
    if (n.attrs.i("causal")) {
      NNC_TRY(s, op("causal_mask", {s}));
    }
    return op("softmax", {s}, {{"axis", int64_t{-1}}});
  }
};

}  // namespace

Expected<Optimized> expandAttention(const Graph& g, const std::vector<bool>&, const PassOptions& opt) {
  Rewriter r(g);
  const bool expand = opt.disabled.count("attention") > 0;
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const Node& n = g.node(id);
    const std::string_view op = n.op->name;
    const bool stacked = op == "self_attention" || op == "self_attention_grad";
    const bool fwd = op == "attention" || op == "self_attention";
    if (!expand || (!fwd && op != "attention_grad" && op != "self_attention_grad")) {
      r.copy(id);
      continue;
    }
    Expander x{r, id};
    ValueId q = r[n.inputs[0]], k = kNoValue, v = kNoValue, dy = kNoValue;
    if (stacked) {
      // q, k, v: the three slices of qkv [3, ...], each viewed without the axis of 3.
      const Shape& all = g.type(n.inputs[0]).shape;
      const std::vector<int64_t> one(all.begin() + 1, all.end());
      ValueId* parts[] = {&q, &k, &v};
      const ValueId qkv = q;
      for (int64_t i = 0; i < 3; ++i) {
        NNC_TRY(const ValueId s, x.op("slice", {qkv}, {{"axis", int64_t{0}}, {"start", i}, {"end", i + 1}}));
        NNC_TRY(*parts[i], x.op("reshape", {s}, {{"shape", ints(one)}}));
      }
      if (!fwd) dy = r[n.inputs[1]];
    } else {
      k = r[n.inputs[1]], v = r[n.inputs[2]];
      if (!fwd) dy = r[n.inputs[3]];
    }
    NNC_TRY(const ValueId p, x.probs(n, q, k));
    if (fwd) {
      NNC_TRY(const ValueId o, x.matmul(p, v, 0, 0));
      r.alias(id, o);
      continue;
    }
    NNC_TRY(const ValueId dv, x.matmul(p, dy, 1, 0));
    NNC_TRY(const ValueId dp, x.matmul(dy, v, 0, 1));
    NNC_TRY(const ValueId pdp, x.op("mul", {p, dp}));
    NNC_TRY(const ValueId dot, x.op("sum", {pdp}, {{"axis", ints({-1})}, {"keepdims", int64_t{1}}}));
    NNC_TRY(const ValueId centred, x.op("sub", {dp, dot}));
    NNC_TRY(const ValueId c, x.scalar(x.scale(n)));
    NNC_TRY(const ValueId pc, x.op("mul", {p, centred}));
    NNC_TRY(const ValueId ds, x.op("mul", {pc, c}));
    NNC_TRY(const ValueId dq, x.matmul(ds, k, 0, 0));
    NNC_TRY(const ValueId dk, x.matmul(ds, q, 1, 0));
    // attention_grad's layout: dq, dk, dv one after another, flat or stacked.
    std::vector<int64_t> shape{-1};
    if (stacked) {
      const Shape& all = g.type(n.inputs[0]).shape;
      shape.assign(all.begin(), all.end());
      shape[0] = 1;
    }
    std::vector<ValueId> pieces;
    for (ValueId part : {dq, dk, dv}) {
      NNC_TRY(const ValueId f, x.op("reshape", {part}, {{"shape", ints(shape)}}));
      pieces.push_back(f);
    }
    NNC_TRY(const ValueId all, r.replace(id, "concat", pieces, {{"axis", int64_t{0}}}));
    (void)all;
  }
  return r.finish();
}

}  // namespace nnc::passes
