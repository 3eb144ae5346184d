// matmul: one GEMM ([..., M, K] @ [K, N], a's leading axes folded into the
// rows) or a batch of them ([..., M, K] @ [..., K, N], batch axes
// broadcast by NumPy's rules, as torch.matmul), either operand read
// transposed in place (transpose_a, transpose_b: op(x) swaps the last two
// axes). The gradient rule writes the transposes as flags, never as nodes.
#include <algorithm>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/lower/lower.h"
#include "compiler/ops/broadcast.h"
#include "compiler/ops/matmul.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

bool matmulIsBatched(const TensorType& a, const TensorType& b, const Attrs& at) {
  return b.rank() > 2 || (at.i("transpose_a") != 0 && a.rank() > 2);
}

namespace {

constexpr DType F32 = DType::F32;

struct MatmulDims {
  bool ta = false, tb = false;
  int64_t m = 1, k = 1, n = 1;  // op(a) is [m, k] (unbatched: m counts every leading axis), op(b) [k, n]
  bool batched = false;
  bool vector = false;        // a is [K] (a row [1, K] whose axis the result drops)
  Shape aBatch, bBatch, batch;  // batched only: each operand's batch axes and their broadcast
};

// Unchecked: for shapes the shape rule accepted (batch may be left empty
// where the batch axes do not broadcast; the shape rule reports that).
MatmulDims matmulDims(const Shape& a, const Shape& b, const Attrs& at) {
  MatmulDims d{at.i("transpose_a") != 0, at.i("transpose_b") != 0};
  d.batched = b.size() > 2 || (d.ta && a.size() > 2);
  d.vector = a.size() == 1;
  const size_t ra = a.size(), rb = b.size();
  d.k = d.ta ? a[ra - 2] : a.back();
  d.n = d.tb ? b[rb - 2] : b.back();
  if (!d.batched) {
    if (d.ta) d.m = a[1];
    else
      for (size_t i = 0; i + 1 < ra; ++i) d.m *= a[i];
    return d;
  }
  d.m = d.vector ? 1 : (d.ta ? a.back() : a[ra - 2]);
  if (!d.vector) d.aBatch.assign(a.begin(), a.end() - 2);
  d.bBatch.assign(b.begin(), b.end() - 2);
  d.batch = broadcastShapes(d.aBatch, d.bBatch).value_or(Shape{});
  return d;
}

Expected<TensorType> matmulShape(const std::vector<TensorType>& in, const Attrs& at) {
  const TensorType &a = in[0], &b = in[1];
  const int64_t ta = at.i("transpose_a"), tb = at.i("transpose_b");
  const std::string both = typeString(a) + (ta ? "^T" : "") + " @ " + typeString(b) + (tb ? "^T" : "");
  for (const auto& [name, v] : {std::pair{"transpose_a", ta}, std::pair{"transpose_b", tb}})
    if (v != 0 && v != 1) return error("matmul: {} must be 0 or 1, got {}", name, v);
  if (a.dtype != F32 || b.dtype != F32) return error("matmul: operands must be f32: {}", both);
  if (b.rank() < 2) return error("matmul: the right operand must be [K, N] or [..., K, N]: {}", both);
  if (a.rank() < 1) return error("matmul: the left operand must be [K] or [..., M, K]: {}", both);
  if (ta && a.rank() < 2) return error("matmul: with transpose_a the left operand must be [..., K, M]: {}", both);
  const MatmulDims d = matmulDims(a.shape, b.shape, at);
  if (d.k != (tb ? b.shape.back() : b.shape[b.rank() - 2])) return error("matmul: inner dimensions differ: {}", both);
  if (!d.batched) {
    // [K] -> [N] and [..., M, K] -> [..., M, N] alike: only the last axis changes.
    Shape s = a.shape;
    if (ta) s = {d.m, d.n};
    s.back() = d.n;
    return TensorType{F32, s};
  }
  if (!broadcastShapes(d.aBatch, d.bBatch))
    return error("matmul: batch dimensions {} and {} do not broadcast: {}", shapeString(d.aBatch),
                 shapeString(d.bBatch), both);
  Shape s = d.batch;
  if (!d.vector) s.push_back(d.m);
  s.push_back(d.n);
  return TensorType{F32, s};
}

// Element offsets of each product's operands and result, batch entry `i`.
struct BatchOffsets {
  explicit BatchOffsets(const MatmulDims& d)
      : d_(d), a_(d.aBatch, d.batch), b_(d.bBatch, d.batch) {}
  int64_t a(int64_t i) const { return d_.batched ? a_(i) * d_.m * d_.k : 0; }
  int64_t b(int64_t i) const { return d_.batched ? b_(i) * d_.k * d_.n : 0; }
  int64_t c(int64_t i) const { return i * d_.m * d_.n; }

 private:
  const MatmulDims& d_;
  BroadcastIndex a_, b_;
};

Status matmulEval(const EvalArgs& e) {
  const Tensor &a = *e.in[0], &b = *e.in[1];
  const MatmulDims d = matmulDims(a.shape(), b.shape(), e.attrs);
  const int64_t count = d.batched ? numel(d.batch) : 1;
  const BatchOffsets off(d);
  for (int64_t q = 0; q < count; ++q) {
    const double* pa = a.data.data() + off.a(q);
    const double* pb = b.data.data() + off.b(q);
    double* pc = e.out.data.data() + off.c(q);
    for (int64_t i = 0; i < d.m; ++i)
      for (int64_t j = 0; j < d.n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < d.k; ++p)
          s += pa[d.ta ? p * d.m + i : i * d.k + p] * pb[d.tb ? j * d.k + p : p * d.n + j];
        pc[i * d.n + j] = s;
      }
  }
  return ok();
}

// One GEMM, or one per batch entry in a loop nest over the batch axes (the
// outer loop threaded; each GEMM then runs on its worker alone).
Status matmulLower(LowerArgs& a) {
  const MatmulDims d = matmulDims(a.inTypes[0].shape, a.inTypes[1].shape, a.attrs());
  const int64_t lda = std::max<int64_t>(d.ta ? d.m : d.k, 1), ldb = std::max<int64_t>(d.tb ? d.k : d.n, 1);
  const std::vector<int64_t> ints{d.m, d.n, d.k, lda, ldb, std::max<int64_t>(d.n, 1), d.ta, d.tb, 0};
  if (!d.batched) {
    a.k.body.push_back(loop::call("nnc_sgemm", {{a.in[0], {}}, {a.in[1], {}}, {a.out, {}}}, ints));
    return ok();
  }
  const std::vector<int> vars = newVars(a.k, d.batch.size());
  loop::Stmt gemm = loop::call("nnc_sgemm",
                               {{a.in[0], broadcastIndex(d.aBatch, d.batch, vars) * (d.m * d.k)},
                                {a.in[1], broadcastIndex(d.bBatch, d.batch, vars) * (d.k * d.n)},
                                {a.out, rowMajor(d.batch, vars) * (d.m * d.n)}},
                               ints);
  for (loop::Stmt& s : nest(vars, d.batch, {std::move(gemm)})) a.k.body.push_back(std::move(s));
  return ok();
}

using Grads = Expected<std::vector<ValueId>>;

Expected<ValueId> matmulOp(GradCtx& ctx, ValueId a, ValueId b, bool ta, bool tb) {
  return ctx.op("matmul", {a, b}, {{"transpose_a", int64_t{ta}}, {"transpose_b", int64_t{tb}}});
}

Attr ints(std::vector<int64_t> v) { return Attr{std::move(v)}; }

// With C = op(A)·op(B): d op(A) = dy·op(B)ᵀ and d op(B) = op(A)ᵀ·dy, each
// written with the transpose flags so that no transpose is materialized.
// Unbatched and untransposed, a's leading axes (or a vector a) are flattened
// into the rows of both a and dy for db; a transposed a is a matrix, and so
// is dy.
Grads matmulGrad1(GradCtx& ctx) {
  const ValueId a = ctx.in[0], b = ctx.in[1], dy = ctx.dy;
  const bool ta = ctx.attrs.i("transpose_a") != 0, tb = ctx.attrs.i("transpose_b") != 0;
  if (ta) {
    NNC_TRY(const ValueId da, matmulOp(ctx, b, dy, tb, true));  // op(B)·dyᵀ
    NNC_TRY(const ValueId db, tb ? matmulOp(ctx, dy, a, true, true) : matmulOp(ctx, a, dy, false, false));
    return std::vector<ValueId>{da, db};
  }
  const MatmulDims d = matmulDims(ctx.inTypes[0].shape, ctx.inTypes[1].shape, ctx.attrs);
  NNC_TRY(const ValueId da, matmulOp(ctx, dy, b, false, !tb));
  ValueId rows = a, dyRows = dy;
  if (ctx.inTypes[0].rank() != 2) {
    NNC_TRY(rows, ctx.op("reshape", {a}, {{"shape", ints({-1, d.k})}}));
    NNC_TRY(dyRows, ctx.op("reshape", {dy}, {{"shape", ints({-1, d.n})}}));
  }
  NNC_TRY(const ValueId db, tb ? matmulOp(ctx, dyRows, rows, true, false) : matmulOp(ctx, rows, dyRows, true, false));
  return std::vector<ValueId>{da, db};
}

// Batched: the same products per batch entry, then each gradient summed
// over the batch axes its operand was broadcast along. A vector a is the
// row [1, K] (and dy the rows [..., 1, N]).
Grads matmulGradBatched(GradCtx& ctx) {
  const TensorType &at = ctx.inTypes[0], &bt = ctx.inTypes[1];
  const MatmulDims d = matmulDims(at.shape, bt.shape, ctx.attrs);
  ValueId a = ctx.in[0], dy = ctx.dy;
  const ValueId b = ctx.in[1];
  if (d.vector) {
    Shape rowDy = d.batch;
    rowDy.insert(rowDy.end(), {1, d.n});
    NNC_TRY(a, ctx.op("reshape", {a}, {{"shape", ints({1, d.k})}}));
    NNC_TRY(dy, ctx.op("reshape", {dy}, {{"shape", ints(rowDy)}}));
  }
  // d a = dy·op(B)ᵀ, or for a transposed a, op(B)·dyᵀ; d b = op(A)ᵀ·dy, or
  // for a transposed b, dyᵀ·op(A).
  NNC_TRY(ValueId da, d.ta ? matmulOp(ctx, b, dy, d.tb, true) : matmulOp(ctx, dy, b, false, !d.tb));
  NNC_TRY(ValueId db, d.tb ? matmulOp(ctx, dy, a, true, d.ta) : matmulOp(ctx, a, dy, !d.ta, false));
  NNC_TRY(da, ctx.reduceTo(da, d.vector ? Shape{1, d.k} : at.shape));
  if (d.vector) {
    NNC_TRY(da, ctx.op("reshape", {da}, {{"shape", ints({d.k})}}));
  }
  NNC_TRY(db, ctx.reduceTo(db, bt.shape));
  return std::vector<ValueId>{da, db};
}

Grads matmulGrad(GradCtx& ctx) {
  return matmulIsBatched(ctx.inTypes[0], ctx.inTypes[1], ctx.attrs) ? matmulGradBatched(ctx) : matmulGrad1(ctx);
}

}  // namespace

void addMatmulOps(std::vector<OpDef>& r) {
  r.push_back({.name = "matmul",
               .operands = {"a", "b"},
               .attrs = {{"transpose_a", AttrKind::Int, Attr{int64_t{0}}},
                         {"transpose_b", AttrKind::Int, Attr{int64_t{0}}}},
               .shape = matmulShape,
               .eval = matmulEval,
               .grad = matmulGrad,
               .lower = matmulLower,
               .summary = "matrix product: [M, K] @ [K, N] (a's leading axes are rows), or batched [..., M, K] @ "
                          "[..., K, N] with broadcast batch axes; transpose_a / transpose_b read an operand with its "
                          "last two axes swapped"});
}

}  // namespace nnc
