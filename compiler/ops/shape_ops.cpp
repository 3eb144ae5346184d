// Shape ops: move elements around without computing on them, so they take
// i32 as well as f32 and keep the dtype.
#include <algorithm>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/lower/lower.h"
#include "compiler/ops/broadcast.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

// Row-major data is unchanged by reshape and flatten: only the type differs.
Status copyEval(const EvalArgs& args) {
  args.out.data = args.in[0]->data;
  return ok();
}

Expected<TensorType> reshapeShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  const TensorType& x = in[0];
  Shape s = attrs.ints("shape");
  std::string want = shapeString(s);
  int inferred = -1;
  int64_t known = 1;
  for (size_t d = 0; d < s.size(); ++d) {
    if (s[d] == -1) {
      if (inferred >= 0) return error("reshape: at most one -1 in the target shape {} (for {})", want, typeString(x));
      inferred = static_cast<int>(d);
    } else if (s[d] < 1) {
      return error("reshape: dimension {} in the target shape {} must be positive or -1 (for {})", s[d], want,
                   typeString(x));
    } else {
      known *= s[d];
    }
  }
  if (inferred >= 0) {
    if (x.numel() % known != 0)
      return error("reshape: cannot reshape {} ({} elements) to {}: {} is not a multiple of {}", typeString(x),
                   x.numel(), want, x.numel(), known);
    s[static_cast<size_t>(inferred)] = x.numel() / known;
  } else if (known != x.numel()) {
    return error("reshape: cannot reshape {} ({} elements) to {} ({} elements)", typeString(x), x.numel(), want,
                 known);
  }
  return TensorType{x.dtype, std::move(s)};
}

Expected<TensorType> flattenShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  const TensorType& x = in[0];
  NNC_TRY(int64_t axis, normalizeAxis("flatten", attrs.i("axis"), x));
  Shape s(x.shape.begin(), x.shape.begin() + axis);
  s.push_back(numel(Shape(x.shape.begin() + axis, x.shape.end())));
  return TensorType{x.dtype, std::move(s)};
}

// The permutation with defaults applied (reverse) and axes normalized.
Expected<std::vector<int64_t>> transposePerm(const TensorType& x, const Attrs& attrs) {
  std::vector<int64_t> perm = attrs.ints("perm");
  if (perm.empty()) {
    for (int d = x.rank() - 1; d >= 0; --d) perm.push_back(d);
    return perm;
  }
  if (perm.size() != x.shape.size())
    return error("transpose: perm [{}] must list each of the {} axes of {} once", fmt::join(perm, ", "), x.rank(),
                 typeString(x));
  return normalizeAxes("transpose", perm, x);
}

Expected<TensorType> transposeShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  NNC_TRY(auto perm, transposePerm(in[0], attrs));
  Shape s;
  for (int64_t p : perm) s.push_back(in[0].shape[static_cast<size_t>(p)]);
  return TensorType{in[0].dtype, std::move(s)};
}

Status transposeEval(const EvalArgs& args) {
  const Tensor& x = *args.in[0];
  NNC_TRY(auto perm, transposePerm(x.type, args.attrs));
  const Shape& os = args.out.shape();
  std::vector<int64_t> xs = stridesOf(x.shape()), idx(os.size(), 0);
  // Walk the output in order with an odometer, tracking the input offset.
  int64_t src = 0;
  for (double& v : args.out.data) {
    v = x.data[static_cast<size_t>(src)];
    for (size_t d = os.size(); d-- > 0;) {
      int64_t st = xs[static_cast<size_t>(perm[d])];
      src += st;
      if (++idx[d] < os[d]) break;
      src -= st * os[d];
      idx[d] = 0;
    }
  }
  return ok();
}

std::string typeList(const std::vector<TensorType>& in) {
  std::vector<std::string> parts;
  for (const TensorType& t : in) parts.push_back(typeString(t));
  return fmt::format("{}", fmt::join(parts, ", "));
}

Expected<TensorType> concatShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  const TensorType& first = in[0];
  for (const TensorType& t : in) {
    if (t.dtype != first.dtype) return error("concat: operands must have one dtype, got {}", typeList(in));
    if (t.rank() != first.rank()) return error("concat: operands must have one rank, got {}", typeList(in));
  }
  NNC_TRY(int64_t axis, normalizeAxis("concat", attrs.i("axis"), first));
  Shape s = first.shape;
  s[static_cast<size_t>(axis)] = 0;
  for (const TensorType& t : in) {
    for (size_t d = 0; d < s.size(); ++d)
      if (static_cast<int64_t>(d) != axis && t.shape[d] != s[d])
        return error("concat: shapes must agree except on axis {}, got {}", axis, typeList(in));
    s[static_cast<size_t>(axis)] += t.shape[static_cast<size_t>(axis)];
  }
  return TensorType{first.dtype, std::move(s)};
}

// The product of the dims before and after `axis`: every op that works along
// one axis sees the tensor as [outer, dim, inner].
std::pair<int64_t, int64_t> outerInner(const Shape& s, int64_t axis) {
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < s.size(); ++d) {
    if (static_cast<int64_t>(d) < axis) outer *= s[d];
    if (static_cast<int64_t>(d) > axis) inner *= s[d];
  }
  return {outer, inner};
}

Status concatEval(const EvalArgs& args) {
  int64_t axis = args.attrs.i("axis");
  if (axis < 0) axis += args.out.type.rank();
  auto [outer, inner] = outerInner(args.out.shape(), axis);
  auto dst = args.out.data.begin();
  for (int64_t o = 0; o < outer; ++o)
    for (const Tensor* t : args.in) {
      int64_t chunk = t->shape()[static_cast<size_t>(axis)] * inner;
      auto src = t->data.begin() + o * chunk;
      dst = std::copy(src, src + chunk, dst);
    }
  return ok();
}

struct SliceRange {
  int64_t axis, start, step, count;
};

// NumPy's rules for a positive step: negative indices count from the end,
// then both ends are clamped to [0, n].
Expected<SliceRange> sliceRange(const TensorType& x, const Attrs& attrs) {
  NNC_TRY(int64_t axis, normalizeAxis("slice", attrs.i("axis"), x));
  int64_t start = attrs.i("start"), end = attrs.i("end"), step = attrs.i("step");
  if (step <= 0) return error("slice: step must be positive, got {} (for {})", step, typeString(x));
  int64_t n = x.shape[static_cast<size_t>(axis)];
  auto clamp = [n](int64_t i) { return std::clamp(i < 0 ? i + n : i, int64_t{0}, n); };
  int64_t b = clamp(start), e = clamp(end);
  int64_t count = e > b ? (e - b + step - 1) / step : 0;
  if (count == 0)
    return error("slice: start {}, end {} select nothing on axis {} (size {}) of {}", start, end, axis, n,
                 typeString(x));
  return SliceRange{axis, b, step, count};
}

Expected<TensorType> sliceShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  NNC_TRY(SliceRange r, sliceRange(in[0], attrs));
  Shape s = in[0].shape;
  s[static_cast<size_t>(r.axis)] = r.count;
  return TensorType{in[0].dtype, std::move(s)};
}

Status sliceEval(const EvalArgs& args) {
  const Tensor& x = *args.in[0];
  NNC_TRY(SliceRange r, sliceRange(x.type, args.attrs));
  auto [outer, inner] = outerInner(x.shape(), r.axis);
  int64_t n = x.shape()[static_cast<size_t>(r.axis)];
  auto dst = args.out.data.begin();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < r.count; ++j) {
      auto src = x.data.begin() + (o * n + r.start + j * r.step) * inner;
      dst = std::copy(src, src + inner, dst);
    }
  return ok();
}

// broadcast_to(x, shape): NumPy broadcasting to a given shape (the backward
// of reductions; its own backward sums back).
Expected<TensorType> broadcastToShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  const Shape& to = attrs.ints("shape");
  if (!broadcastsTo(in[0].shape, to))
    return error("broadcast_to: {} does not broadcast to {}", typeString(in[0]), shapeString(to));
  return TensorType{in[0].dtype, to};
}

Status broadcastToEval(const EvalArgs& args) {
  BroadcastIndex idx(args.in[0]->shape(), args.out.shape());
  for (int64_t i = 0; i < args.out.numel(); ++i)
    args.out.data[static_cast<size_t>(i)] = args.in[0]->data[static_cast<size_t>(idx(i))];
  return ok();
}

// unslice(dy): the slice's gradient, dy placed where the slice took its
// elements from in a zero tensor of the original shape.
Expected<TensorType> unsliceShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  const TensorType full{in[0].dtype, attrs.ints("shape")};
  NNC_TRY(TensorType sliced, sliceShape({full}, attrs));
  if (sliced.shape != in[0].shape)
    return error("unslice: {} is not the slice's shape {} of {}", typeString(in[0]), shapeString(sliced.shape),
                 typeString(full));
  return full;
}

Status unsliceEval(const EvalArgs& args) {
  NNC_TRY(SliceRange r, sliceRange(args.out.type, args.attrs));
  auto [outer, inner] = outerInner(args.out.shape(), r.axis);
  const int64_t n = args.out.shape()[static_cast<size_t>(r.axis)];
  auto src = args.in[0]->data.begin();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < r.count; ++j, src += inner)
      std::copy(src, src + inner, args.out.data.begin() + (o * n + r.start + j * r.step) * inner);
  return ok();
}

// ---- lowerings: copies with affine indices, one buffer per value ----

using loop::Affine;
using loop::Stmt;

void append(LowerArgs& a, std::vector<Stmt> stmts) {
  for (Stmt& s : stmts) a.k.body.push_back(std::move(s));
}

// Offset of the element at `vars` in a tensor with strides `st`, except that
// along `axis` the index is start + step·var (a slice's element).
Affine sliceOffset(const std::vector<int64_t>& st, const std::vector<int>& vars, const SliceRange& r) {
  Affine off = Affine::constant(r.start * st[static_cast<size_t>(r.axis)]);
  for (size_t d = 0; d < vars.size(); ++d)
    off = off + Affine::var(vars[d], st[d] * (static_cast<int64_t>(d) == r.axis ? r.step : 1));
  return off;
}

// reshape and flatten keep the row-major data.
Status copyLower(LowerArgs& a) {
  a.k.body.push_back(copy(a.k, a.out, a.in[0], a.outType().numel()));
  return ok();
}

// Loops over the output (stores contiguous), reading x through the permuted strides.
Status transposeLower(LowerArgs& a) {
  NNC_TRY(auto perm, transposePerm(a.inTypes[0], a.attrs()));
  const Shape& os = a.outType().shape;
  const std::vector<int64_t> xst = stridesOf(a.inTypes[0].shape);
  const std::vector<int> v = newVars(a.k, os.size());
  Affine src;
  for (size_t d = 0; d < os.size(); ++d) src = src + Affine::var(v[d], xst[static_cast<size_t>(perm[d])]);
  append(a, nest(v, os, {loop::store(a.out, rowMajor(os, v), loop::load(a.in[0], src))}));
  return ok();
}

// One loop nest per operand, each writing its own block of the output.
Status concatLower(LowerArgs& a) {
  const Shape& os = a.outType().shape;
  NNC_TRY(int64_t axis, normalizeAxis("concat", a.attrs().i("axis"), a.outType()));
  const std::vector<int64_t> ost = stridesOf(os);
  int64_t at = 0;
  for (size_t i = 0; i < a.in.size(); ++i) {
    const Shape& s = a.inTypes[i].shape;
    const std::vector<int> v = newVars(a.k, s.size());
    Affine dst = Affine::constant(at * ost[static_cast<size_t>(axis)]);
    for (size_t d = 0; d < s.size(); ++d) dst = dst + Affine::var(v[d], ost[d]);
    append(a, nest(v, s, {loop::store(a.out, dst, loop::load(a.in[i], rowMajor(s, v)))}));
    at += s[static_cast<size_t>(axis)];
  }
  return ok();
}

// sliceRange normalizes the attributes exactly as the shape rule did.
Status sliceLower(LowerArgs& a) {
  NNC_TRY(SliceRange r, sliceRange(a.inTypes[0], a.attrs()));
  const Shape& os = a.outType().shape;
  const std::vector<int> v = newVars(a.k, os.size());
  const Affine src = sliceOffset(stridesOf(a.inTypes[0].shape), v, r);
  append(a, nest(v, os, {loop::store(a.out, rowMajor(os, v), loop::load(a.in[0], src))}));
  return ok();
}

// Zeros, then the operand scattered to where the slice took its elements.
Status unsliceLower(LowerArgs& a) {
  NNC_TRY(SliceRange r, sliceRange(a.outType(), a.attrs()));
  const Shape& s = a.inTypes[0].shape;
  a.k.body.push_back(fill(a.k, a.out, a.outType().numel(), 0));
  const std::vector<int> v = newVars(a.k, s.size());
  const Affine dst = sliceOffset(stridesOf(a.outType().shape), v, r);
  append(a, nest(v, s, {loop::store(a.out, dst, loop::load(a.in[0], rowMajor(s, v)))}));
  return ok();
}

// broadcast_to is the identity formula under the generic broadcasting loops.
loop::ExprP passThrough(const std::vector<loop::ExprP>& x, const Attrs&) { return x[0]; }

using Grads = Expected<std::vector<ValueId>>;

Grads reshapeGrad(GradCtx& c) {
  NNC_TRY(ValueId d, c.op("reshape", {c.dy}, {{"shape", c.inTypes[0].shape}}));
  return std::vector<ValueId>{d};
}
Grads transposeGrad(GradCtx& c) {
  NNC_TRY(auto perm, transposePerm(c.inTypes[0], c.attrs));
  std::vector<int64_t> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
  NNC_TRY(ValueId d, c.op("transpose", {c.dy}, {{"perm", inverse}}));
  return std::vector<ValueId>{d};
}
Grads concatGrad(GradCtx& c) {
  NNC_TRY(int64_t axis, normalizeAxis("concat", c.attrs.i("axis"), c.inTypes[0]));
  std::vector<ValueId> r;
  int64_t at = 0;
  for (size_t k = 0; k < c.in.size(); ++k) {
    const int64_t len = c.inTypes[k].shape[static_cast<size_t>(axis)];
    if (c.need(k)) {
      NNC_TRY(ValueId d, c.op("slice", {c.dy}, {{"axis", axis}, {"start", at}, {"end", at + len}}));
      r.push_back(d);
    } else {
      r.push_back(kNoValue);
    }
    at += len;
  }
  return r;
}
Grads sliceGrad(GradCtx& c) {
  Attrs a = c.attrs;
  a.set("shape", c.inTypes[0].shape);
  NNC_TRY(ValueId d, c.op("unslice", {c.dy}, a));
  return std::vector<ValueId>{d};
}
Grads unsliceGrad(GradCtx& c) {
  Attrs a;
  for (const char* k : {"axis", "start", "end", "step"}) a.set(k, *c.attrs.find(k));
  NNC_TRY(ValueId d, c.op("slice", {c.dy}, a));
  return std::vector<ValueId>{d};
}
Grads broadcastToGrad(GradCtx& c) {
  NNC_TRY(ValueId d, c.reduceTo(c.dy, c.inTypes[0].shape));
  return std::vector<ValueId>{d};
}

}  // namespace

void addShapeOps(std::vector<OpDef>& r) {
  r.push_back({.name = "reshape",
               .operands = {"x"},
               .attrs = {{"shape", AttrKind::Ints, std::nullopt}},
               .shape = reshapeShape,
               .eval = copyEval,
               .grad = reshapeGrad,
               .lower = copyLower,
               .view = true,
               .summary = "same elements, new shape (one -1 is inferred)"});
  r.push_back({.name = "flatten",
               .operands = {"x"},
               .attrs = {{"axis", AttrKind::Int, Attr{int64_t{1}}}},
               .shape = flattenShape,
               .eval = copyEval,
               .grad = reshapeGrad,
               .lower = copyLower,
               .view = true,
               .summary = "keep dims before axis, merge the rest into one: [N, C, H, W] -> [N, C*H*W]"});
  r.push_back({.name = "transpose",
               .operands = {"x"},
               .attrs = {{"perm", AttrKind::Ints, Attr{std::vector<int64_t>{}}}},
               .shape = transposeShape,
               .eval = transposeEval,
               .grad = transposeGrad,
               .lower = transposeLower,
               .summary = "permute axes (default: reverse them)"});
  r.push_back({.name = "concat",
               .operands = {"xs"},
               .variadic = true,
               .attrs = {{"axis", AttrKind::Int, Attr{int64_t{0}}}},
               .shape = concatShape,
               .eval = concatEval,
               .grad = concatGrad,
               .lower = concatLower,
               .summary = "join tensors along an axis"});
  r.push_back({.name = "slice",
               .operands = {"x"},
               .attrs = {{"axis", AttrKind::Int, std::nullopt},
                         {"start", AttrKind::Int, std::nullopt},
                         {"end", AttrKind::Int, std::nullopt},
                         {"step", AttrKind::Int, Attr{int64_t{1}}}},
               .shape = sliceShape,
               .eval = sliceEval,
               .grad = sliceGrad,
               .lower = sliceLower,
               .summary = "x[start:end:step] along one axis, with NumPy's negative indices and clamping"});
  r.push_back({.name = "unslice",
               .operands = {"x"},
               .attrs = {{"shape", AttrKind::Ints, std::nullopt},
                         {"axis", AttrKind::Int, std::nullopt},
                         {"start", AttrKind::Int, std::nullopt},
                         {"end", AttrKind::Int, std::nullopt},
                         {"step", AttrKind::Int, Attr{int64_t{1}}}},
               .shape = unsliceShape,
               .eval = unsliceEval,
               .grad = unsliceGrad,
               .lower = unsliceLower,
               .summary = "the gradient of slice: x placed into zeros of the given shape"});
  r.push_back({.name = "broadcast_to",
               .operands = {"x"},
               .attrs = {{"shape", AttrKind::Ints, std::nullopt}},
               .shape = broadcastToShape,
               .eval = broadcastToEval,
               .grad = broadcastToGrad,
               .pointwise = passThrough,
               .summary = "NumPy broadcasting to a given shape"});
}

}  // namespace nnc
