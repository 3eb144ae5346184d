// The ops sequence models are built from: embedding (ids → rows, and its
// scatter-add gradient), causal_mask (what a decoder's attention may not
// see), layernorm (normalized over the last axes, with affine params) and
// attention (scaled dot-product attention in one kernel, and its gradient).
#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/ops/lower_rules.h"
#include "compiler/ops/normalize_grad.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

using namespace lx;
constexpr DType F32 = DType::F32;

Attr ints(std::vector<int64_t> v) { return Attr{std::move(v)}; }

// ---- embedding ------------------------------------------------------------

Expected<TensorType> embeddingShape(const std::vector<TensorType>& in, const Attrs&) {
  const TensorType &ids = in[0], &table = in[1];
  if (ids.dtype != DType::I32) return error("embedding: ids must be i32 token ids, got {}", typeString(ids));
  if (table.dtype != F32 || table.rank() != 2)
    return error("embedding: the table must be f32[rows, width], got {}", typeString(table));
  Shape s = ids.shape;
  s.push_back(table.shape[1]);
  return TensorType{F32, s};
}

// The row id `i` of `ids` names, or an error naming the id and its place.
Expected<int64_t> rowOf(std::string_view op, const Tensor& ids, int64_t i, int64_t rows) {
  const double id = ids.data[static_cast<size_t>(i)];
  if (!(id >= 0 && id < static_cast<double>(rows)))
    return error("{}: id {} at index {} of {} is outside the table's {} rows", op, id, i, typeString(ids.type), rows);
  return static_cast<int64_t>(id);
}

Status embeddingEval(const EvalArgs& e) {
  const Tensor &ids = *e.in[0], &table = *e.in[1];
  const int64_t rows = table.shape()[0], width = table.shape()[1];
  for (int64_t t = 0; t < ids.numel(); ++t) {
    NNC_TRY(const int64_t r, rowOf("embedding", ids, t, rows));
    for (int64_t j = 0; j < width; ++j) e.out.data[t * width + j] = table.data[r * width + j];
  }
  return ok();
}

Expected<std::vector<ValueId>> embeddingGrad(GradCtx& ctx) {
  NNC_TRY(const ValueId dt, ctx.op("embedding_grad", {ctx.in[0], ctx.dy}, {{"rows", ctx.inTypes[1].shape[0]}}));
  return std::vector<ValueId>{kNoValue, dt};
}

Status embeddingLower(LowerArgs& a) {
  const int64_t rows = a.inTypes[1].shape[0], width = a.inTypes[1].shape[1];
  a.k.body.push_back(loop::call("nnc_gather_rows", {{a.in[1], {}}, {a.in[0], {}}, {a.out, {}}},
                                {a.inTypes[0].numel(), width, rows}));
  return ok();
}

Expected<TensorType> embeddingGradShape(const std::vector<TensorType>& in, const Attrs& at) {
  const TensorType &ids = in[0], &dy = in[1];
  const int64_t rows = at.i("rows");
  if (rows < 1) return error("embedding_grad: rows must be positive, got {}", rows);
  Shape lead = dy.shape;
  if (!lead.empty()) lead.pop_back();
  if (ids.dtype != DType::I32 || dy.dtype != F32 || dy.rank() < 1 || lead != ids.shape)
    return error("embedding_grad: dy must be f32[..., width] over i32 ids [...]: ids {}, dy {}", typeString(ids),
                 typeString(dy));
  return TensorType{F32, {rows, dy.shape.back()}};
}

Status embeddingGradEval(const EvalArgs& e) {
  const Tensor &ids = *e.in[0], &dy = *e.in[1];
  const int64_t rows = e.out.shape()[0], width = e.out.shape()[1];
  for (int64_t t = 0; t < ids.numel(); ++t) {
    NNC_TRY(const int64_t r, rowOf("embedding_grad", ids, t, rows));
    for (int64_t j = 0; j < width; ++j) e.out.data[r * width + j] += dy.data[t * width + j];
  }
  return ok();
}

Status embeddingGradLower(LowerArgs& a) {
  const int64_t rows = a.outType().shape[0], width = a.outType().shape[1];
  a.k.body.push_back(loop::call("nnc_scatter_add_rows", {{a.in[0], {}}, {a.in[1], {}}, {a.out, {}}},
                                {a.inTypes[0].numel(), width, rows}));
  return ok();
}

// ---- causal_mask ----------------------------------------------------------

// Over the last two axes [T, S] (queries, keys): key j is hidden from query
// i when j > i + (S − T), torch's triu(ones(T, S), diagonal = S − T + 1):
// with S = T, each position sees itself and the ones before it.
Expected<TensorType> causalMaskShape(const std::vector<TensorType>& in, const Attrs&) {
  if (in[0].dtype != F32 || in[0].rank() < 2)
    return error("causal_mask: x must be f32[..., T, S] (scores of T queries over S keys), got {}",
                 typeString(in[0]));
  if (in[0].shape.back() < in[0].shape[in[0].rank() - 2])
    return error("causal_mask: fewer keys than queries in {}: the last axis must be at least the one before it",
                 typeString(in[0]));
  return in[0];
}

Status causalMaskEval(const EvalArgs& e) {
  const Shape& s = e.in[0]->shape();
  const int64_t t = s[s.size() - 2], keys = s.back(), shift = keys - t;
  const double hidden = e.attrs.f("value");
  for (int64_t i = 0; i < e.out.numel(); ++i) {
    const int64_t col = i % keys, row = (i / keys) % t;
    e.out.data[static_cast<size_t>(i)] = col > row + shift ? hidden : e.in[0]->data[static_cast<size_t>(i)];
  }
  return ok();
}

// The kept entries pass dy; the hidden ones are constants.
Expected<std::vector<ValueId>> causalMaskGrad(GradCtx& ctx) {
  NNC_TRY(const ValueId dx, ctx.op("causal_mask", {ctx.dy}, {{"value", 0.0}}));
  return std::vector<ValueId>{dx};
}

Status causalMaskLower(LowerArgs& a) {
  const Shape& s = a.outType().shape;
  const size_t r = s.size();
  const std::vector<int> vars = newVars(a.k, r);
  const int64_t shift = s[r - 1] - s[r - 2];
  const Affine at = rowMajor(s, vars);
  // hidden when col − row − shift > 0
  const ExprP past = gt(loop::indexOf(vars[r - 1]), add(loop::indexOf(vars[r - 2]), num(static_cast<double>(shift))));
  const ExprP value = select(past, num(a.attrs().f("value")), ld(a.in[0], at));
  for (Stmt& st : nest(vars, s, {loop::store(a.out, at, value)})) a.k.body.push_back(std::move(st));
  return ok();
}

// ---- layernorm ------------------------------------------------------------

// x [..., D1..Dr] normalized over its last r axes, r = gamma's rank:
// (x − mean) / sqrt(var + eps) · gamma + beta, var biased (torch.nn.LayerNorm).
Expected<TensorType> layernormShape(const std::vector<TensorType>& in, const Attrs& at) {
  const TensorType &x = in[0], &gamma = in[1], &beta = in[2];
  const std::string all =
      fmt::format("x {}, gamma {}, beta {}", typeString(x), typeString(gamma), typeString(beta));
  if (x.dtype != F32 || gamma.dtype != F32 || beta.dtype != F32) return error("layernorm: operands must be f32: {}", all);
  if (gamma.rank() < 1 || gamma.rank() > x.rank() ||
      !std::equal(gamma.shape.begin(), gamma.shape.end(), x.shape.end() - gamma.rank()))
    return error("layernorm: gamma's shape must be x's last axes (the normalized ones): {}", all);
  if (beta.shape != gamma.shape) return error("layernorm: beta must have gamma's shape: {}", all);
  if (!(at.f("eps") > 0)) return error("layernorm: eps must be positive, got {}", at.f("eps"));
  return x;
}

struct Rows {
  int64_t rows = 1, n = 1;  // the normalized groups and their size
  Rows(const Shape& x, size_t r) {
    for (size_t d = 0; d < x.size(); ++d) (d + r < x.size() ? rows : n) *= x[d];
  }
};

Status layernormEval(const EvalArgs& e) {
  const Tensor &x = *e.in[0], &gamma = *e.in[1], &beta = *e.in[2];
  const Rows g(x.shape(), gamma.shape().size());
  const double eps = e.attrs.f("eps");
  for (int64_t r = 0; r < g.rows; ++r) {
    const double* row = x.data.data() + r * g.n;
    double mean = 0, var = 0;
    for (int64_t k = 0; k < g.n; ++k) mean += row[k];
    mean /= static_cast<double>(g.n);
    for (int64_t k = 0; k < g.n; ++k) var += (row[k] - mean) * (row[k] - mean);
    const double rstd = 1 / std::sqrt(var / static_cast<double>(g.n) + eps);
    for (int64_t k = 0; k < g.n; ++k) e.out.data[r * g.n + k] = (row[k] - mean) * rstd * gamma.data[k] + beta.data[k];
  }
  return ok();
}

// One parallel loop over rows: the mean, the centred sum of squares (two
// passes, as the reference), then the affine normalization.
Status layernormLower(LowerArgs& a) {
  const Rows g(a.inTypes[0].shape, a.inTypes[1].rank());
  const int mean = a.temp(g.rows, "mean"), rstd = a.temp(g.rows, "rstd");
  const int r = a.k.newVar(), k1 = a.k.newVar(), k2 = a.k.newVar(), k3 = a.k.newVar();
  const int x = a.in[0];
  auto el = [&](int k) { return v(r, g.n) + v(k); };
  const ExprP centred2 = sub(ld(x, el(k2)), ld(mean, v(r)));
  std::vector<Stmt> body{
      loop::store(mean, v(r), num(0)),
      loops({{k1, g.n}}, {loop::store(mean, v(r), ld(x, el(k1)), loop::Combine::Add)}),
      loop::store(mean, v(r), mul(ld(mean, v(r)), num(1.0 / static_cast<double>(g.n)))),
      loop::store(rstd, v(r), num(0)),
      loops({{k2, g.n}}, {loop::store(rstd, v(r), mul(centred2, centred2), loop::Combine::Add)}),
      loop::store(rstd, v(r),
                  div(num(1), un(Op::Sqrt, add(mul(ld(rstd, v(r)), num(1.0 / static_cast<double>(g.n))),
                                               num(a.attrs().f("eps")))))),
      loops({{k3, g.n}}, {loop::store(a.out, el(k3),
                                      add(mul(mul(sub(ld(x, el(k3)), ld(mean, v(r))), ld(rstd, v(r))),
                                              ld(a.in[1], v(k3))),
                                          ld(a.in[2], v(k3))))})};
  a.k.body.push_back(loops({{r, g.rows}}, std::move(body), true));
  return ok();
}

// With x̂ = (x − μ)·rstd and g = dy·gamma: dx = rstd·(g − mean(g) − x̂·mean(g·x̂)),
// dgamma = Σ dy·x̂ and dbeta = Σ dy over the leading axes.
Expected<std::vector<ValueId>> layernormGrad(GradCtx& ctx) {
  const ValueId x = ctx.in[0], gamma = ctx.in[1], dy = ctx.dy;
  const int64_t rank = ctx.inTypes[0].rank(), r = ctx.inTypes[1].rank();
  std::vector<int64_t> normAxes, leadAxes;
  for (int64_t d = 0; d < rank; ++d) (d >= rank - r ? normAxes : leadAxes).push_back(d);
  const Attrs keep{{"axis", ints(normAxes)}, {"keepdims", int64_t{1}}};
  NNC_TRY(const Normalized n, normalizedOver(ctx, x, keep, ctx.attrs.f("eps")));
  const ValueId xhat = n.xhat, sigma = n.sigma;
  NNC_TRY(const ValueId dyXhat, ctx.op("mul", {dy, xhat}));
  ValueId dgamma = dyXhat, dbeta = dy;
  if (!leadAxes.empty()) {
    const Attrs drop{{"axis", ints(leadAxes)}};
    NNC_TRY(dgamma, ctx.op("sum", {dyXhat}, drop));
    NNC_TRY(dbeta, ctx.op("sum", {dy}, drop));
  }
  NNC_TRY(const ValueId gdy, ctx.op("mul", {dy, gamma}));
  NNC_TRY(const ValueId gXhat, ctx.op("mul", {gdy, xhat}));
  NNC_TRY(const ValueId inner, normalizedInputGrad(ctx, gdy, gXhat, xhat, keep));
  NNC_TRY(const ValueId dx, ctx.op("div", {inner, sigma}));
  return std::vector<ValueId>{dx, dgamma, dbeta};
}

// ---- attention --------------------------------------------------------------

// q [..., T, dh], k [..., S, dh], v [..., S, dv] with the same leading axes:
// each leading index is one head, softmax(scale·q·kᵀ + mask)·v.
struct AttnDims {
  int64_t heads = 1, t = 0, s = 0, dh = 0, dv = 0;
  bool causal = false;
  double scale = 1;
  AttnDims(const Shape& q, const Shape& k, const Shape& v, const Attrs& at) {
    const size_t r = q.size();
    for (size_t d = 0; d + 2 < r; ++d) heads *= q[d];
    t = q[r - 2], dh = q[r - 1], s = k[r - 2], dv = v[r - 1];
    causal = at.i("causal") != 0;
    scale = at.f("scale") > 0 ? at.f("scale") : 1 / std::sqrt(static_cast<double>(dh));
  }
};

Expected<TensorType> attentionShape(const std::vector<TensorType>& in, const Attrs& at) {
  const TensorType &q = in[0], &k = in[1], &v = in[2];
  const std::string all = fmt::format("q {}, k {}, v {}", typeString(q), typeString(k), typeString(v));
  if (q.dtype != F32 || k.dtype != F32 || v.dtype != F32) return error("attention: operands must be f32: {}", all);
  const int64_t r = q.rank();
  if (r < 2 || k.rank() != r || v.rank() != r)
    return error("attention: q, k and v must be [..., T, dh], [..., S, dh], [..., S, dv] of one rank: {}", all);
  if (!std::equal(q.shape.begin(), q.shape.end() - 2, k.shape.begin()) ||
      !std::equal(q.shape.begin(), q.shape.end() - 2, v.shape.begin()))
    return error("attention: q, k and v must have the same leading (batch, head) axes: {}", all);
  if (k.shape[r - 1] != q.shape[r - 1]) return error("attention: q and k must have the same feature size: {}", all);
  if (v.shape[r - 2] != k.shape[r - 2]) return error("attention: k and v must have the same length: {}", all);
  if (at.i("causal") != 0 && at.i("causal") != 1) return error("attention: causal must be 0 or 1, got {}", at.i("causal"));
  if (at.i("causal") && k.shape[r - 2] < q.shape[r - 2])
    return error("attention: a causal attention needs at least as many keys as queries: {}", all);
  if (at.f("scale") < 0) return error("attention: scale must be positive (0: 1/sqrt(dh)), got {}", at.f("scale"));
  Shape out = q.shape;
  out.back() = v.shape.back();
  return TensorType{F32, out};
}

// Per head: probabilities p [T, S] of softmax(scale·q·kᵀ) with hidden keys at 0.
void attentionProbs(const AttnDims& d, const double* q, const double* k, std::vector<double>& p) {
  p.assign(static_cast<size_t>(d.t * d.s), 0.0);
  for (int64_t i = 0; i < d.t; ++i) {
    const int64_t seen = d.causal ? std::min(d.s, i + 1 + d.s - d.t) : d.s;
    double mx = -std::numeric_limits<double>::infinity(), sum = 0;
    for (int64_t j = 0; j < seen; ++j) {
      double dot = 0;
      for (int64_t c = 0; c < d.dh; ++c) dot += q[i * d.dh + c] * k[j * d.dh + c];
      p[i * d.s + j] = d.scale * dot;
      mx = std::max(mx, p[i * d.s + j]);
    }
    for (int64_t j = 0; j < seen; ++j) sum += p[i * d.s + j] = std::exp(p[i * d.s + j] - mx);
    for (int64_t j = 0; j < seen; ++j) p[i * d.s + j] /= sum;
  }
}

Status attentionEval(const EvalArgs& e) {
  const AttnDims d(e.in[0]->shape(), e.in[1]->shape(), e.in[2]->shape(), e.attrs);
  std::vector<double> p;
  for (int64_t h = 0; h < d.heads; ++h) {
    attentionProbs(d, e.in[0]->data.data() + h * d.t * d.dh, e.in[1]->data.data() + h * d.s * d.dh, p);
    const double* v = e.in[2]->data.data() + h * d.s * d.dv;
    double* o = e.out.data.data() + h * d.t * d.dv;
    for (int64_t i = 0; i < d.t; ++i)
      for (int64_t j = 0; j < d.s; ++j)
        for (int64_t c = 0; c < d.dv; ++c) o[i * d.dv + c] += p[i * d.s + j] * v[j * d.dv + c];
  }
  return ok();
}

Attrs attentionAttrs(const Attrs& at) { return Attrs{{"scale", at.f("scale")}, {"causal", at.i("causal")}}; }

// attention_grad gives dq, dk, dv one after another in one buffer; each is a
// slice of it, viewed in its operand's shape.
Expected<std::vector<ValueId>> attentionGrad(GradCtx& ctx) {
  NNC_TRY(const ValueId g, ctx.op("attention_grad", {ctx.in[0], ctx.in[1], ctx.in[2], ctx.dy}, attentionAttrs(ctx.attrs)));
  std::vector<ValueId> out;
  int64_t at = 0;
  for (size_t i = 0; i < 3; ++i) {
    const int64_t n = ctx.inTypes[i].numel();
    NNC_TRY(const ValueId part, ctx.op("slice", {g}, {{"axis", int64_t{0}}, {"start", at}, {"end", at + n}}));
    NNC_TRY(const ValueId shaped, ctx.op("reshape", {part}, {{"shape", ints(ctx.inTypes[i].shape)}}));
    out.push_back(shaped);
    at += n;
  }
  return out;
}

std::vector<int64_t> attentionInts(const AttnDims& d) { return {d.heads, d.t, d.s, d.dh, d.dv, int64_t{d.causal}}; }

Status attentionLower(LowerArgs& a) {
  const AttnDims d(a.inTypes[0].shape, a.inTypes[1].shape, a.inTypes[2].shape, a.attrs());
  a.k.body.push_back(loop::call("nnc_attention", {{a.in[0], {}}, {a.in[1], {}}, {a.in[2], {}}, {a.out, {}}},
                                attentionInts(d), {static_cast<float>(d.scale)}));
  return ok();
}

Expected<TensorType> attentionGradShape(const std::vector<TensorType>& in, const Attrs& at) {
  NNC_TRY(const TensorType o, attentionShape({in[0], in[1], in[2]}, at));
  if (in[3] != o) return error("attention_grad: dy must have the output's type {}, got {}", typeString(o), typeString(in[3]));
  return TensorType{F32, {in[0].numel() + in[1].numel() + in[2].numel()}};
}

Status attentionGradEval(const EvalArgs& e) {
  const AttnDims d(e.in[0]->shape(), e.in[1]->shape(), e.in[2]->shape(), e.attrs);
  double* dq = e.out.data.data();
  double* dk = dq + d.heads * d.t * d.dh;
  double* dv = dk + d.heads * d.s * d.dh;
  std::vector<double> p, dp(static_cast<size_t>(d.t * d.s));
  for (int64_t h = 0; h < d.heads; ++h) {
    const double* q = e.in[0]->data.data() + h * d.t * d.dh;
    const double* k = e.in[1]->data.data() + h * d.s * d.dh;
    const double* v = e.in[2]->data.data() + h * d.s * d.dv;
    const double* dy = e.in[3]->data.data() + h * d.t * d.dv;
    attentionProbs(d, q, k, p);
    for (int64_t i = 0; i < d.t; ++i) {
      double dot = 0;
      for (int64_t j = 0; j < d.s; ++j) {
        double g = 0;
        for (int64_t c = 0; c < d.dv; ++c) g += dy[i * d.dv + c] * v[j * d.dv + c];
        dp[i * d.s + j] = g;
        dot += g * p[i * d.s + j];
      }
      for (int64_t j = 0; j < d.s; ++j) dp[i * d.s + j] = d.scale * p[i * d.s + j] * (dp[i * d.s + j] - dot);
    }
    for (int64_t i = 0; i < d.t; ++i)
      for (int64_t j = 0; j < d.s; ++j) {
        for (int64_t c = 0; c < d.dh; ++c) {
          dq[h * d.t * d.dh + i * d.dh + c] += dp[i * d.s + j] * k[j * d.dh + c];
          dk[h * d.s * d.dh + j * d.dh + c] += dp[i * d.s + j] * q[i * d.dh + c];
        }
        for (int64_t c = 0; c < d.dv; ++c) dv[h * d.s * d.dv + j * d.dv + c] += p[i * d.s + j] * dy[i * d.dv + c];
      }
  }
  return ok();
}

Status attentionGradLower(LowerArgs& a) {
  const AttnDims d(a.inTypes[0].shape, a.inTypes[1].shape, a.inTypes[2].shape, a.attrs());
  a.k.body.push_back(loop::call("nnc_attention_grad",
                                {{a.in[0], {}}, {a.in[1], {}}, {a.in[2], {}}, {a.in[3], {}}, {a.out, {}}},
                                attentionInts(d), {static_cast<float>(d.scale)}));
  return ok();
}

// self_attention(qkv): q, k and v stacked on a leading axis of 3, as one
// projection makes them ([3, ..., T, dh]); its gradient is then one tensor
// of qkv's shape, which nnc_attention_grad writes in place of the three.
Shape thirdOf(const Shape& qkv) { return Shape(qkv.begin() + 1, qkv.end()); }

Expected<TensorType> selfAttentionShape(const std::vector<TensorType>& in, const Attrs& at) {
  const TensorType& x = in[0];
  if (x.dtype != F32 || x.rank() < 3 || x.shape[0] != 3)
    return error("self_attention: qkv must be f32[3, ..., T, dh] (q, k and v stacked), got {}", typeString(x));
  const TensorType one{F32, thirdOf(x.shape)};
  return attentionShape({one, one, one}, at);
}

// The three operands of attention as views of qkv's data.
struct Thirds {
  Tensor q, k, v;
  explicit Thirds(const Tensor& qkv) : q(TensorType{F32, thirdOf(qkv.shape())}), k(q.type), v(q.type) {
    const auto n = static_cast<std::ptrdiff_t>(q.data.size());
    std::copy(qkv.data.begin(), qkv.data.begin() + n, q.data.begin());
    std::copy(qkv.data.begin() + n, qkv.data.begin() + 2 * n, k.data.begin());
    std::copy(qkv.data.begin() + 2 * n, qkv.data.end(), v.data.begin());
  }
};

Status selfAttentionEval(const EvalArgs& e) {
  const Thirds t(*e.in[0]);
  return attentionEval(EvalArgs{{&t.q, &t.k, &t.v}, e.attrs, e.out, e.env});
}

Expected<std::vector<ValueId>> selfAttentionGrad(GradCtx& ctx) {
  NNC_TRY(const ValueId g, ctx.op("self_attention_grad", {ctx.in[0], ctx.dy}, attentionAttrs(ctx.attrs)));
  return std::vector<ValueId>{g};
}

// q, k, v: pointers one third apart into qkv.
std::vector<loop::CallArg> thirds(int buf, int64_t n) {
  return {{buf, {}}, {buf, Affine::constant(n)}, {buf, Affine::constant(2 * n)}};
}

Status selfAttentionLower(LowerArgs& a) {
  const Shape one = thirdOf(a.inTypes[0].shape);
  const AttnDims d(one, one, one, a.attrs());
  std::vector<loop::CallArg> ptrs = thirds(a.in[0], numel(one));
  ptrs.push_back({a.out, {}});
  a.k.body.push_back(loop::call("nnc_attention", std::move(ptrs), attentionInts(d), {static_cast<float>(d.scale)}));
  return ok();
}

Expected<TensorType> selfAttentionGradShape(const std::vector<TensorType>& in, const Attrs& at) {
  NNC_TRY(const TensorType o, selfAttentionShape({in[0]}, at));
  if (in[1] != o)
    return error("self_attention_grad: dy must have the output's type {}, got {}", typeString(o), typeString(in[1]));
  return in[0];
}

Status selfAttentionGradEval(const EvalArgs& e) {
  const Thirds t(*e.in[0]);
  return attentionGradEval(EvalArgs{{&t.q, &t.k, &t.v, e.in[1]}, e.attrs, e.out, e.env});
}

Status selfAttentionGradLower(LowerArgs& a) {
  const Shape one = thirdOf(a.inTypes[0].shape);
  const AttnDims d(one, one, one, a.attrs());
  std::vector<loop::CallArg> ptrs = thirds(a.in[0], numel(one));
  ptrs.push_back({a.in[1], {}});
  ptrs.push_back({a.out, {}});
  a.k.body.push_back(loop::call("nnc_attention_grad", std::move(ptrs), attentionInts(d), {static_cast<float>(d.scale)}));
  return ok();
}

}  // namespace

void addSequenceOps(std::vector<OpDef>& r) {
  r.push_back({.name = "embedding",
               .operands = {"ids", "table"},
               .shape = embeddingShape,
               .eval = embeddingEval,
               .grad = embeddingGrad,
               .lower = embeddingLower,
               .summary = "rows of table [V, D] picked by i32 ids [...]: f32[..., D] (torch.nn.Embedding)"});
  r.push_back({.name = "embedding_grad",
               .operands = {"ids", "dy"},
               .attrs = {{"rows", AttrKind::Int, std::nullopt}},
               .shape = embeddingGradShape,
               .eval = embeddingGradEval,
               .noGradient = true,
               .lower = embeddingGradLower,
               .summary = "embedding's table gradient: each row of dy [..., D] added to the row its id names"});
  r.push_back({.name = "causal_mask",
               .operands = {"x"},
               .attrs = {{"value", AttrKind::Float, Attr{-std::numeric_limits<double>::infinity()}}},
               .shape = causalMaskShape,
               .eval = causalMaskEval,
               .grad = causalMaskGrad,
               .lower = causalMaskLower,
               .summary = "scores [..., T, S] with the keys after each query set to value (-inf): a decoder's "
                          "attention mask"});
  r.push_back({.name = "layernorm",
               .operands = {"x", "gamma", "beta"},
               .attrs = {{"eps", AttrKind::Float, Attr{1e-5}}},
               .shape = layernormShape,
               .eval = layernormEval,
               .grad = layernormGrad,
               .lower = layernormLower,
               .summary = "(x - mean) / sqrt(var + eps) * gamma + beta over x's last axes (gamma's shape), as "
                          "torch.nn.LayerNorm"});
  const std::vector<AttrSpec> attnAttrs{{"scale", AttrKind::Float, Attr{0.0}}, {"causal", AttrKind::Int, Attr{int64_t{0}}}};
  r.push_back({.name = "attention",
               .operands = {"q", "k", "v"},
               .attrs = attnAttrs,
               .shape = attentionShape,
               .eval = attentionEval,
               .grad = attentionGrad,
               .lower = attentionLower,
               .summary = "softmax(scale * q @ k^T, causal: later keys hidden) @ v per head, fused: the scores are never "
                          "stored (scale 0: 1/sqrt(dh))"});
  r.push_back({.name = "attention_grad",
               .operands = {"q", "k", "v", "dy"},
               .attrs = attnAttrs,
               .shape = attentionGradShape,
               .eval = attentionGradEval,
               .noGradient = true,
               .lower = attentionGradLower,
               .summary = "attention's dq, dk, dv one after another (flat), the scores recomputed block by block"});
  r.push_back({.name = "self_attention",
               .operands = {"qkv"},
               .attrs = attnAttrs,
               .shape = selfAttentionShape,
               .eval = selfAttentionEval,
               .grad = selfAttentionGrad,
               .lower = selfAttentionLower,
               .summary = "attention(q, k, v) of qkv [3, ..., T, dh] stacked (one projection's q, k, v): its gradient "
                          "is one tensor, no slices"});
  r.push_back({.name = "self_attention_grad",
               .operands = {"qkv", "dy"},
               .attrs = attnAttrs,
               .shape = selfAttentionGradShape,
               .eval = selfAttentionGradEval,
               .noGradient = true,
               .lower = selfAttentionGradLower,
               .summary = "self_attention's gradient: dq, dk, dv stacked as qkv is"});
}

}  // namespace nnc
