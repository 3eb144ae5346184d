// The fused ops the optimizer makes (compiler/passes/fuse_*.cpp) after
// differentiation. Each computes exactly what the unfused ops it replaces
// compute: its reference evaluation is theirs, composed, so the interpreter
// checks a fused graph against the original one. Lowerings call the
// runtime's fused kernels (runtime/conv.h, runtime/gemm.h) or the pooling
// sweeps with relu folded in.
#include <algorithm>

#include "compiler/ops/activation.h"
#include "compiler/ops/matmul.h"
#include "compiler/ops/conv_algo.h"
#include "compiler/ops/lower_rules.h"

namespace nnc {

namespace {

using namespace lx;

// The GEMM's epilogue applies every activation, the convolutions' relu,
// sigmoid and tanh.
Status checkAct(std::string_view op, const Attrs& a, bool conv = true) {
  const std::string& act = a.s("act");
  const auto parsed = parseActivation(act);
  if (!parsed) return error("{}: act must be one of {}, got \"{}\"", op, activationNames(), act);
  if (conv && !convActivation(*parsed)) return error("{}: act \"{}\" is not applied by convolutions", op, act);
  return ok();
}

// out = act(out), by the elementwise op's own reference rule.
Status applyActivation(Activation act, Tensor& out, const EvalEnv& env) {
  if (act == kActNone) return ok();
  const Tensor x = out;
  return activationOp(act).eval(EvalArgs{{&x}, activationAttrs(act), out, env});
}

Status applyAct(const EvalArgs& e) { return applyActivation(actAttr(e.attrs), e.out, e.env); }

std::vector<AttrSpec> attrsOf(const std::vector<OpDef>& r, std::string_view base, std::vector<AttrSpec> extra = {}) {
  auto it = std::find_if(r.begin(), r.end(), [&](const OpDef& d) { return d.name == base; });
  std::vector<AttrSpec> a = it->attrs;
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

const AttrSpec kAct{"act", AttrKind::String, Attr{std::string("none")}};
// The convolution algorithm (compiler/ops/conv_algo.h): "auto" leaves it to
// the runtime; the conv-algo pass writes a concrete one.
const AttrSpec kAlgo{"algo", AttrKind::String, Attr{std::string("auto")}};

loop::CallArg whole(int buf) { return {buf, {}}; }

// The forward convolution's geometry, as the runtime's conv calls take it:
// N, C, H, W of the image, F filters, KH, KW, SH, SW, PH, PW, groups.
std::vector<int64_t> convInts(const ConvGeom& g) {
  return {g.n, g.c, g.h, g.w, g.f, g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.groups};
}

// The runtime's view of the node being lowered (compiler/ops/conv_algo.h:
// the conv-algo pass chose its algorithm from the same geometry).
FusedConv fusedConv(const LowerArgs& a) { return *fusedConvOf(*a.node.op, a.inTypes, a.outType(), a.attrs()); }

int64_t algoInt(const LowerArgs& a) { return static_cast<int64_t>(convAlgoAttr(a.attrs())); }

Status checkAlgo(std::string_view op, const Attrs& a) {
  NNC_CHECK(parseConvAlgo(fmt::format("{}: algo", op), a.s("algo")));
  return ok();
}

Status lowerConvFused(LowerArgs& a) {
  const FusedConv c = fusedConv(a);
  const bool bias = a.in.size() > 2;
  std::vector<int64_t> ints = convInts(c.geom);
  ints.push_back(bias);
  ints.push_back(c.act);
  ints.push_back(c.pool);
  ints.push_back(algoInt(a));
  a.k.body.push_back(loop::call("nnc_conv2d", {whole(a.in[0]), whole(a.in[1]), whole(bias ? a.in[2] : a.in[1]), whole(a.out)},
                                std::move(ints)));
  return ok();
}

// conv2d_residual_fused(x, W, b, z) = act(conv2d(x, W, b) + z), act none or
// relu: z, a residual connection's other branch, has the convolution's type.
Expected<TensorType> convResidualShape(const std::vector<TensorType>& in, const Attrs& a) {
  NNC_CHECK(checkAct("conv2d_residual_fused", a));
  NNC_CHECK(checkAlgo("conv2d_residual_fused", a));
  if (actAttr(a) != kActNone && actAttr(a) != kActRelu)
    return error("conv2d_residual_fused: act must be none or relu, got \"{}\"", a.s("act"));
  NNC_TRY(TensorType t, findOp("conv2d")->shape({in[0], in[1], in[2]}, a));
  if (in[3] != t)
    return error("conv2d_residual_fused: z must have the convolution's type {}, got {}", typeString(t),
                 typeString(in[3]));
  return t;
}

// By conv2d's, add's and the activation's own rules.
Status convResidualEval(const EvalArgs& e) {
  NNC_CHECK(findOp("conv2d")->eval(EvalArgs{{e.in[0], e.in[1], e.in[2]}, e.attrs, e.out, e.env}));
  const Tensor y = e.out;
  const Attrs none;
  NNC_CHECK(findOp("add")->eval(EvalArgs{{&y, e.in[3]}, none, e.out, e.env}));
  return applyAct(e);
}

Status lowerConvResidualFused(LowerArgs& a) {
  const FusedConv c = fusedConv(a);
  std::vector<int64_t> ints = convInts(c.geom);
  ints.push_back(1);  // has_bias: the op always has one
  ints.push_back(c.act);
  ints.push_back(algoInt(a));
  a.k.body.push_back(loop::call("nnc_conv2d_residual",
                                {whole(a.in[0]), whole(a.in[1]), whole(a.in[2]), whole(a.in[3]), whole(a.out)},
                                std::move(ints)));
  return ok();
}

// conv_transpose2d_mask_fused(dy, W, y) = conv_transpose2d(dy, W) · step(y):
// an input gradient through the relu whose output y the convolution read
// (fuse-relu-grad). y has the gradient's type.
Expected<TensorType> convTransposeMaskShape(const std::vector<TensorType>& in, const Attrs& a) {
  NNC_CHECK(checkAlgo("conv_transpose2d_mask_fused", a));
  NNC_TRY(TensorType t, findOp("conv_transpose2d")->shape({in[0], in[1]}, a));
  if (in[2] != t)
    return error("conv_transpose2d_mask_fused: y must have the gradient's type {}, got {}", typeString(t),
                 typeString(in[2]));
  return t;
}

Status convTransposeMaskEval(const EvalArgs& e) {
  NNC_CHECK(findOp("conv_transpose2d")->eval(EvalArgs{{e.in[0], e.in[1]}, e.attrs, e.out, e.env}));
  for (size_t i = 0; i < e.out.data.size(); ++i) e.out.data[i] *= e.in[2]->data[i] > 0 ? 1.0 : 0.0;
  return ok();
}

Status lowerConvTransposeMaskFused(LowerArgs& a) {
  std::vector<int64_t> ints = convInts(fusedConv(a).geom);
  ints.push_back(algoInt(a));
  a.k.body.push_back(loop::call("nnc_conv_transpose2d_masked",
                                {whole(a.in[0]), whole(a.in[1]), whole(a.in[2]), whole(a.out)}, std::move(ints)));
  return ok();
}

// conv2d_grad_bias_fused(dy, dw) = sum(dy, axis = [0, 2, 3]): a
// convolution's bias gradient, which fuse-conv takes from the sum autodiff
// writes when dw = conv2d_grad_weight_fused(x, dy) reads the same dy.
// Lowering computes it in dw's kernel (fusion_groups.cpp, convBiasPairs):
// the runtime sums db beside dw, so dy is not read again by a reduction of
// its own. dw is an operand only so that the graph orders db after it.
Expected<TensorType> convGradBiasShape(const std::vector<TensorType>& in, const Attrs&) {
  if (in[0].dtype != DType::F32 || in[1].dtype != DType::F32 || in[0].rank() != 4 || in[1].rank() != 4 ||
      in[1].shape[0] != in[0].shape[1])
    return error("conv2d_grad_bias_fused: dy must be f32[N, F, OH, OW] and dw f32[F, C, KH, KW]: dy {}, dw {}",
                 typeString(in[0]), typeString(in[1]));
  return TensorType{DType::F32, {in[0].shape[1]}};
}

Status convGradBiasEval(const EvalArgs& e) {
  const Attrs sum{{"axis", std::vector<int64_t>{0, 2, 3}}, {"keepdims", int64_t{0}}};
  return findOp(OpId::Sum).eval(EvalArgs{{e.in[0]}, sum, e.out, e.env});
}

// Alone, outside dw's kernel (lowerNode): per filter, images and positions
// in order.
Status lowerConvGradBias(LowerArgs& a) {
  const Shape& dy = a.inTypes[0].shape;
  const int64_t s = dy[2] * dy[3];
  const int f = a.k.newVar(), n = a.k.newVar(), p = a.k.newVar();
  const loop::Affine at = loop::Affine::var(f);
  a.k.body.push_back(lx::loops(
      {{f, dy[1]}},
      {loop::store(a.out, at, loop::constant(0)),
       lx::loops({{n, dy[0]}, {p, s}},
                 {loop::store(a.out, at, lx::ld(a.in[0], lx::v(n, dy[1] * s) + lx::v(f, s) + lx::v(p)), loop::Combine::Add)})},
      true));
  return ok();
}

// Our result is the forward convolution's input image.
Status lowerConvTransposeFused(LowerArgs& a) {
  const bool bias = a.in.size() > 2;
  std::vector<int64_t> ints = convInts(fusedConv(a).geom);
  ints.push_back(bias);
  ints.push_back(algoInt(a));
  a.k.body.push_back(loop::call("nnc_conv_transpose2d",
                                {whole(a.in[0]), whole(a.in[1]), whole(bias ? a.in[2] : a.in[1]), whole(a.out)},
                                std::move(ints)));
  return ok();
}

// conv2d_pool_fused: the convolution's type, its spatial axes divided by
// the pool (the last partial window dropped, as maxpool2d's).
Expected<TensorType> convPoolShape(const std::vector<TensorType>& in, const Attrs& a) {
  NNC_CHECK(checkAct("conv2d_pool_fused", a));
  NNC_CHECK(checkAlgo("conv2d_pool_fused", a));
  if (actAttr(a) != kActNone && actAttr(a) != kActRelu)
    return error("conv2d_pool_fused: act must be none or relu, got \"{}\"", a.s("act"));
  const int64_t pool = a.i("pool");
  NNC_TRY(TensorType t, findOp("conv2d")->shape(in, a));
  if (pool < 1 || t.shape[2] < pool || t.shape[3] < pool)
    return error("conv2d_pool_fused: pool {} must be at least 1 and fit the convolution's result {}", pool,
                 typeString(t));
  t.shape[2] /= pool;
  t.shape[3] /= pool;
  return t;
}

// maxpool2d(act(conv2d(x, W) + b), kernel = stride = pool), by those ops' rules.
Status convPoolEval(const EvalArgs& e) {
  NNC_TRY(const TensorType zt, findOp("conv2d")->shape({e.in[0]->type, e.in[1]->type}, e.attrs));
  Tensor z(zt);
  NNC_CHECK(findOp("conv2d")->eval(EvalArgs{e.in, e.attrs, z, e.env}));
  NNC_CHECK(applyActivation(actAttr(e.attrs), z, e.env));
  const int64_t pool = e.attrs.i("pool");
  Attrs pa;
  pa.set("kernel", std::vector<int64_t>{pool, pool});
  pa.set("stride", std::vector<int64_t>{pool, pool});
  pa.set("pad", std::vector<int64_t>{0});
  return findOp("maxpool2d")->eval(EvalArgs{{&z}, pa, e.out, e.env});
}

// matmul's dims: op(a) is [M, K] (leading axes of a fold into M), op(b) [K, N].
Status lowerMatmulFused(LowerArgs& a) {
  const Shape &as = a.inTypes[0].shape, &out = a.outType().shape;
  const bool ta = a.attrs().i("transpose_a") != 0, tb = a.attrs().i("transpose_b") != 0;
  const int64_t n = out.back(), m = a.outType().numel() / std::max<int64_t>(n, 1), k = ta ? as[0] : as.back();
  const bool bias = a.in.size() > 2;
  auto ld = [](int64_t x) { return std::max<int64_t>(x, 1); };
  a.k.body.push_back(loop::call("nnc_sgemm_ep", {whole(a.in[0]), whole(a.in[1]), whole(a.out), whole(bias ? a.in[2] : a.in[1])},
                                {m, n, k, ld(ta ? m : k), ld(tb ? k : n), ld(n), ta, tb, int64_t{bias},
                                 actAttr(a.attrs())}));
  return ok();
}

Expected<TensorType> matmulFusedShape(const std::vector<TensorType>& in, const Attrs& a) {
  NNC_CHECK(checkAct("matmul_fused", a, false));
  if (matmulIsBatched(in[0], in[1], a)) return error("matmul_fused: fuses one GEMM, not a batched product");
  NNC_TRY(TensorType t, findOp("matmul")->shape({in[0], in[1]}, a));
  if (in.size() > 2 && in[2].shape != Shape{t.shape.back()})
    return error("matmul_fused: bias must be [{}], one per column: bias {}", t.shape.back(), typeString(in[2]));
  return t;
}

Status matmulFusedEval(const EvalArgs& e) {
  NNC_CHECK(findOp("matmul")->eval(EvalArgs{{e.in[0], e.in[1]}, e.attrs, e.out, e.env}));
  if (e.in.size() > 2) {
    const std::vector<double>& b = e.in[2]->data;
    for (size_t i = 0; i < e.out.data.size(); ++i) e.out.data[i] += b[i % b.size()];
  }
  return applyAct(e);
}

// matmul_update(W, lr, a, b) = W − lr·matmul(a, b): SGD's step in the GEMM.
Expected<TensorType> matmulUpdateShape(const std::vector<TensorType>& in, const Attrs& a) {
  if (matmulIsBatched(in[2], in[3], a)) return error("matmul_update: fuses one GEMM, not a batched product");
  NNC_TRY(TensorType t, findOp("matmul")->shape({in[2], in[3]}, a));
  if (t != in[0]) return error("matmul_update: W {} must have the product's type {}", typeString(in[0]), typeString(t));
  if (!in[1].shape.empty()) return error("matmul_update: lr must be a scalar, got {}", typeString(in[1]));
  return t;
}

Status matmulUpdateEval(const EvalArgs& e) {
  Tensor prod(e.out.type);
  NNC_CHECK(findOp("matmul")->eval(EvalArgs{{e.in[2], e.in[3]}, e.attrs, prod, e.env}));
  const double lr = e.in[1]->data[0];
  for (size_t i = 0; i < e.out.data.size(); ++i) e.out.data[i] = e.in[0]->data[i] - lr * prod.data[i];
  return ok();
}

Status lowerMatmulUpdate(LowerArgs& a) {
  const Shape &as = a.inTypes[2].shape, &out = a.outType().shape;
  const bool ta = a.attrs().i("transpose_a") != 0, tb = a.attrs().i("transpose_b") != 0;
  const int64_t n = out.back(), m = a.outType().numel() / std::max<int64_t>(n, 1), k = ta ? as[0] : as.back();
  auto ld = [](int64_t x) { return std::max<int64_t>(x, 1); };
  a.k.body.push_back(loop::call("nnc_sgemm_update", {whole(a.in[2]), whole(a.in[3]), whole(a.in[0]), whole(a.in[1]), whole(a.out)},
                                {m, n, k, ld(ta ? m : k), ld(tb ? k : n), ta, tb}));
  return ok();
}

}  // namespace

Status lowerConvGradWeightFused(LowerArgs& a, int db) {
  std::vector<int64_t> ints = convInts(fusedConv(a).geom);
  ints.push_back(db >= 0);
  ints.push_back(algoInt(a));
  a.k.body.push_back(loop::call("nnc_conv2d_grad_weight",
                                {whole(a.in[0]), whole(a.in[1]), whole(a.out), whole(db >= 0 ? db : a.out)},
                                std::move(ints)));
  return ok();
}

void addFusedOps(std::vector<OpDef>& r) {
  r.push_back({.name = "conv2d_fused",
               .operands = {"x", "W", "b"},
               .minOperands = 2,
               .attrs = attrsOf(r, "conv2d", {kAct, kAlgo}),
               .shape = [](const std::vector<TensorType>& in, const Attrs& a) -> Expected<TensorType> {
                 NNC_CHECK(checkAct("conv2d_fused", a));
                 NNC_CHECK(checkAlgo("conv2d_fused", a));
                 return findOp("conv2d")->shape(in, a);
               },
               .eval = [](const EvalArgs& e) -> Status {
                 NNC_CHECK(findOp("conv2d")->eval(e));
                 return applyAct(e);
               },
               .noGradient = true,
               .lower = lowerConvFused,
               .internal = true,
               .summary = "conv2d with im2col implicit (patches packed from the image) and a bias + act epilogue"});
  r.push_back({.name = "conv2d_pool_fused",
               .operands = {"x", "W", "b"},
               .minOperands = 2,
               .attrs = attrsOf(r, "conv2d", {kAct, {"pool", AttrKind::Int, std::nullopt}, kAlgo}),
               .shape = convPoolShape,
               .eval = convPoolEval,
               .noGradient = true,
               .lower = lowerConvFused,
               .internal = true,
               .summary = "conv2d_fused, then max-pooling over pool×pool windows at stride pool; the convolution's "
                          "result is never stored"});
  r.push_back({.name = "conv2d_residual_fused",
               .operands = {"x", "W", "b", "z"},
               .attrs = attrsOf(r, "conv2d", {kAct, kAlgo}),
               .shape = convResidualShape,
               .eval = convResidualEval,
               .noGradient = true,
               .lower = lowerConvResidualFused,
               .internal = true,
               .summary = "act(conv2d_fused(x, W, b) + z), z a residual connection's other branch: the sum is taken "
                          "while the convolution's result is in cache"});
  r.push_back({.name = "conv2d_grad_weight_fused",
               .operands = {"x", "dy"},
               .attrs = attrsOf(r, "conv2d_grad_weight", {kAlgo}),
               .shape = [](const std::vector<TensorType>& in, const Attrs& a) -> Expected<TensorType> {
                 NNC_CHECK(checkAlgo("conv2d_grad_weight_fused", a));
                 return findOp("conv2d_grad_weight")->shape(in, a);
               },
               .eval = [](const EvalArgs& e) -> Status { return findOp("conv2d_grad_weight")->eval(e); },
               .noGradient = true,
               .lower = [](LowerArgs& a) { return lowerConvGradWeightFused(a, -1); },
               .internal = true,
               .summary = "conv2d_grad_weight with im2col implicit"});
  r.push_back({.name = "conv2d_grad_bias_fused",
               .operands = {"dy", "dw"},
               .shape = convGradBiasShape,
               .eval = convGradBiasEval,
               .noGradient = true,
               .lower = lowerConvGradBias,
               .internal = true,
               .summary = "sum(dy, axis = [0, 2, 3]), a convolution's bias gradient, computed in the kernel of its "
                          "weight gradient dw"});
  r.push_back({.name = "conv_transpose2d_fused",
               .operands = {"x", "W", "b"},
               .minOperands = 2,
               .attrs = attrsOf(r, "conv_transpose2d", {kAlgo}),
               .shape = [](const std::vector<TensorType>& in, const Attrs& a) -> Expected<TensorType> {
                 NNC_CHECK(checkAlgo("conv_transpose2d_fused", a));
                 return findOp("conv_transpose2d")->shape(in, a);
               },
               .eval = [](const EvalArgs& e) -> Status { return findOp("conv_transpose2d")->eval(e); },
               .noGradient = true,
               .lower = lowerConvTransposeFused,
               .internal = true,
               .summary = "conv_transpose2d as band-wise GEMMs scattered into the image (no whole column matrix)"});
  r.push_back({.name = "conv_transpose2d_mask_fused",
               .operands = {"dy", "W", "y"},
               .attrs = attrsOf(r, "conv_transpose2d", {kAlgo}),
               .shape = convTransposeMaskShape,
               .eval = convTransposeMaskEval,
               .noGradient = true,
               .lower = lowerConvTransposeMaskFused,
               .internal = true,
               .summary = "conv_transpose2d_fused(dy, W) · step(y): an input gradient through the relu before the "
                          "convolution, multiplied while in cache"});
  r.push_back({.name = "matmul_fused",
               .operands = {"a", "b", "bias"},
               .minOperands = 2,
               .attrs = attrsOf(r, "matmul", {kAct}),
               .shape = matmulFusedShape,
               .eval = matmulFusedEval,
               .noGradient = true,
               .lower = lowerMatmulFused,
               .internal = true,
               .summary = "act(matmul(a, b) + bias): the bias and activation applied in the GEMM's epilogue"});
  r.push_back({.name = "matmul_update",
               .operands = {"W", "lr", "a", "b"},
               .attrs = attrsOf(r, "matmul"),
               .shape = matmulUpdateShape,
               .eval = matmulUpdateEval,
               .noGradient = true,
               .lower = lowerMatmulUpdate,
               .internal = true,
               .summary = "W - lr * matmul(a, b): SGD's step added by the GEMM to each finished tile, dW never stored"});
  r.push_back({.name = "maxpool2d_relu",
               .operands = {"x"},
               .attrs = attrsOf(r, "maxpool2d"),
               .shape = [](const std::vector<TensorType>& in, const Attrs& a) { return findOp("maxpool2d")->shape(in, a); },
               .eval = [](const EvalArgs& e) -> Status {
                 NNC_CHECK(findOp("maxpool2d")->eval(e));
                 return applyActivation(kActRelu, e.out, e.env);
               },
               .noGradient = true,
               .lower = [](LowerArgs& a) { return lowerMaxpool2d(a, poolWindows(a.inTypes[0].shape, a.attrs()), true); },
               .internal = true,
               .summary = "maxpool2d(relu(x)), as relu(maxpool2d(x)): the window maximum starting from 0"});
  r.push_back({.name = "maxpool2d_relu_grad",
               .operands = {"x", "dy"},
               .attrs = attrsOf(r, "maxpool2d_grad"),
               .shape = [](const std::vector<TensorType>& in, const Attrs& a) {
                 return findOp("maxpool2d_grad")->shape(in, a);
               },
               .eval = [](const EvalArgs& e) -> Status {
                 Tensor relu = *e.in[0];
                 NNC_CHECK(applyActivation(kActRelu, relu, e.env));
                 NNC_CHECK(findOp("maxpool2d_grad")->eval(EvalArgs{{&relu, e.in[1]}, e.attrs, e.out, e.env}));
                 // step(x) is 0 at NaN too: a window whose maximum is NaN
                 // (its first NaN wins) routes nothing, as the graph this
                 // op replaces computes.
                 for (size_t i = 0; i < e.out.data.size(); ++i)
                   if (!(e.in[0]->data[i] > 0)) e.out.data[i] = 0;
                 return ok();
               },
               .noGradient = true,
               .lower = [](LowerArgs& a) { return lowerMaxpool2dGrad(a, poolWindows(a.inTypes[0].shape, a.attrs()), true); },
               .internal = true,
               .summary = "step(x)·maxpool2d_grad(relu(x), dy): the input gradient through relu then max-pooling"});
}

}  // namespace nnc
