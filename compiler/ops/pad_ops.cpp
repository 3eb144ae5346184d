// pad (torch.nn.functional.pad's constant, reflect and replicate modes) and
// its adjoint pad_grad, the scatter-add of each padded position back to the
// element it copies.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/lower/lower.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

enum class PadMode { Constant, Reflect, Replicate };

// Per axis of the unpadded tensor: elements added before (lo) and after (hi).
struct PadSpec {
  PadMode mode = PadMode::Constant;
  std::vector<int64_t> lo, hi;
};

Expected<PadMode> padMode(std::string_view op, const std::string& m) {
  if (m == "constant") return PadMode::Constant;
  if (m == "reflect") return PadMode::Reflect;
  if (m == "replicate") return PadMode::Replicate;
  return error("{}: mode must be \"constant\", \"reflect\" or \"replicate\", got \"{}\"", op, m);
}

// `pads` as torch's: pairs (before, after) from the last axis backwards,
// [left, right, top, bottom] for the last two; axes not named are not padded.
// `x` is the unpadded tensor (pad's operand, pad_grad's result).
Expected<PadSpec> padSpec(std::string_view op, const TensorType& x, const Attrs& attrs) {
  const std::vector<int64_t>& pads = attrs.ints("pads");
  NNC_TRY(PadMode mode, padMode(op, attrs.s("mode")));
  const auto r = static_cast<size_t>(x.rank());
  if (pads.empty() || pads.size() % 2 != 0 || pads.size() > 2 * r)
    return error("{}: pads [{}] must be pairs (before, after) for at most the {} axes of {}, last axis first", op,
                 fmt::join(pads, ", "), r, typeString(x));
  PadSpec s{mode, std::vector<int64_t>(r, 0), std::vector<int64_t>(r, 0)};
  for (size_t k = 0; k < pads.size() / 2; ++k) {
    const size_t d = r - 1 - k;
    s.lo[d] = pads[2 * k];
    s.hi[d] = pads[2 * k + 1];
    if (s.lo[d] < 0 || s.hi[d] < 0)
      return error("{}: pads [{}] must not be negative (for {})", op, fmt::join(pads, ", "), typeString(x));
    if (mode == PadMode::Reflect && (s.lo[d] >= x.shape[d] || s.hi[d] >= x.shape[d]))
      return error("{}: reflect pads ({}, {}) of axis {} must be less than its size {} (for {})", op, s.lo[d],
                   s.hi[d], d, x.shape[d], typeString(x));
  }
  return s;
}

Shape paddedShape(const Shape& x, const PadSpec& s) {
  Shape o = x;
  for (size_t d = 0; d < o.size(); ++d) o[d] += s.lo[d] + s.hi[d];
  return o;
}

// The element of an axis of size n that padded position o copies; -1 for
// the constant.
int64_t sourceIndex(PadMode mode, int64_t o, int64_t lo, int64_t n) {
  const int64_t i = o - lo;
  if (i >= 0 && i < n) return i;
  if (mode == PadMode::Constant) return -1;
  if (mode == PadMode::Replicate) return i < 0 ? 0 : n - 1;
  return i < 0 ? -i : 2 * (n - 1) - i;
}

Expected<TensorType> padShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  NNC_TRY(PadSpec s, padSpec("pad", in[0], attrs));
  return TensorType{in[0].dtype, paddedShape(in[0].shape, s)};
}

// The unpadded type of pad_grad's result, from the padded dy.
Expected<TensorType> padGradShape(const std::vector<TensorType>& in, const Attrs& attrs) {
  const std::vector<int64_t>& pads = attrs.ints("pads");
  Shape x = in[0].shape;
  for (size_t k = 0; k < pads.size() / 2 && k < x.size(); ++k) x[x.size() - 1 - k] -= pads[2 * k] + pads[2 * k + 1];
  for (int64_t d : x)
    if (d < 1)
      return error("pad_grad: pads [{}] leave nothing of {}", fmt::join(pads, ", "), typeString(in[0]));
  const TensorType xt{in[0].dtype, x};
  NNC_TRY(PadSpec s, padSpec("pad_grad", xt, attrs));
  (void)s;
  return xt;
}

// Calls f(padded offset, source offset or -1) for every padded element.
template <typename F>
void forEachPadded(const Shape& x, const PadSpec& s, F f) {
  const Shape o = paddedShape(x, s);
  const std::vector<int64_t> xs = stridesOf(x);
  std::vector<int64_t> idx(o.size(), 0);
  for (int64_t out = 0, total = numel(o); out < total; ++out) {
    int64_t src = 0;
    for (size_t d = 0; d < o.size() && src >= 0; ++d) {
      const int64_t i = sourceIndex(s.mode, idx[d], s.lo[d], x[d]);
      src = i < 0 ? -1 : src + i * xs[d];
    }
    f(out, src);
    for (size_t d = o.size(); d-- > 0;) {
      if (++idx[d] < o[d]) break;
      idx[d] = 0;
    }
  }
}

Status padEval(const EvalArgs& e) {
  NNC_TRY(PadSpec s, padSpec("pad", e.in[0]->type, e.attrs));
  const double value = e.attrs.f("value");
  forEachPadded(e.in[0]->shape(), s, [&](int64_t out, int64_t src) {
    e.out.data[static_cast<size_t>(out)] = src < 0 ? value : e.in[0]->data[static_cast<size_t>(src)];
  });
  return ok();
}

Status padGradEval(const EvalArgs& e) {
  NNC_TRY(PadSpec s, padSpec("pad_grad", e.out.type, e.attrs));
  forEachPadded(e.out.shape(), s, [&](int64_t out, int64_t src) {
    if (src >= 0) e.out.data[static_cast<size_t>(src)] += e.in[0]->data[static_cast<size_t>(out)];
  });
  return ok();
}

// ---- lowering: each axis splits into up to three segments (before, the
// copy, after) along which the source index is affine; a loop nest per
// combination of segments ----

struct Segment {
  int64_t start = 0, extent = 0;  // padded positions start .. start+extent-1
  int64_t coeff = 0, base = 0;    // source index = base + coeff·v; v in [0, extent)
  bool fill = false;              // the constant: no source
};

std::vector<Segment> segments(PadMode mode, int64_t lo, int64_t hi, int64_t n) {
  std::vector<Segment> r;
  const bool fill = mode == PadMode::Constant;
  const bool reflect = mode == PadMode::Reflect;
  if (lo > 0) r.push_back({0, lo, reflect ? -1 : 0, reflect ? lo : 0, fill});
  r.push_back({lo, n, 1, 0, false});
  if (hi > 0) r.push_back({lo + n, hi, reflect ? -1 : 0, reflect ? n - 2 : n - 1, fill});
  return r;
}

// Calls f(extents, padded offset, source offset, fill) once per combination of
// segments, the offsets affine in `vars`.
template <typename F>
void forEachRegion(const Shape& x, const PadSpec& s, const std::vector<int>& vars, F f) {
  const Shape o = paddedShape(x, s);
  const std::vector<int64_t> xs = stridesOf(x), os = stridesOf(o);
  std::vector<std::vector<Segment>> segs;
  for (size_t d = 0; d < x.size(); ++d) segs.push_back(segments(s.mode, s.lo[d], s.hi[d], x[d]));
  std::vector<size_t> pick(x.size(), 0);
  for (;;) {
    Shape ext;
    loop::Affine dst, src;
    bool fill = false;
    for (size_t d = 0; d < x.size(); ++d) {
      const Segment& g = segs[d][pick[d]];
      ext.push_back(g.extent);
      dst = dst + loop::Affine::constant(g.start * os[d]) + loop::Affine::var(vars[d], os[d]);
      src = src + loop::Affine::constant(g.base * xs[d]) + loop::Affine::var(vars[d], g.coeff * xs[d]);
      fill = fill || g.fill;
    }
    f(ext, dst, src, fill);
    size_t d = x.size();
    while (d-- > 0 && ++pick[d] == segs[d].size()) pick[d] = 0;
    if (d == static_cast<size_t>(-1)) return;
  }
}

void append(LowerArgs& a, std::vector<loop::Stmt> stmts) {
  for (loop::Stmt& s : stmts) a.k.body.push_back(std::move(s));
}

Status padLower(LowerArgs& a) {
  NNC_TRY(PadSpec s, padSpec("pad", a.inTypes[0], a.attrs()));
  const auto value = static_cast<float>(a.attrs().f("value"));
  const Shape& x = a.inTypes[0].shape;
  const std::vector<int> v = newVars(a.k, x.size());
  forEachRegion(x, s, v, [&](const Shape& ext, const loop::Affine& dst, const loop::Affine& src, bool fill) {
    append(a, nest(v, ext, {loop::store(a.out, dst, fill ? loop::constant(value) : loop::load(a.in[0], src))}));
  });
  return ok();
}

// Zeros, then each padded element added to its source. Replicate sends a
// whole edge to one element, so the loops are not parallel.
Status padGradLower(LowerArgs& a) {
  NNC_TRY(PadSpec s, padSpec("pad_grad", a.outType(), a.attrs()));
  const Shape& x = a.outType().shape;
  a.k.body.push_back(fill(a.k, a.out, a.outType().numel(), 0));
  const std::vector<int> v = newVars(a.k, x.size());
  forEachRegion(x, s, v, [&](const Shape& ext, const loop::Affine& dst, const loop::Affine& src, bool fill) {
    if (fill) return;
    append(a, nest(v, ext, {loop::store(a.out, src, loop::load(a.in[0], dst), loop::Combine::Add)}, false));
  });
  return ok();
}

using Grads = Expected<std::vector<ValueId>>;

// Constant padding's gradient is the copied block: a slice per padded axis.
// The other modes add the copies back (pad_grad).
Grads padGrad(GradCtx& c) {
  NNC_TRY(PadSpec s, padSpec("pad", c.inTypes[0], c.attrs));
  if (s.mode != PadMode::Constant) {
    NNC_TRY(ValueId d, c.op("pad_grad", {c.dy}, {{"pads", c.attrs.ints("pads")}, {"mode", c.attrs.s("mode")}}));
    return std::vector<ValueId>{d};
  }
  ValueId d = c.dy;
  for (size_t ax = 0; ax < s.lo.size(); ++ax) {
    if (s.lo[ax] == 0 && s.hi[ax] == 0) continue;
    const int64_t start = s.lo[ax], end = s.lo[ax] + c.inTypes[0].shape[ax];
    NNC_TRY(d, c.op("slice", {d}, {{"axis", static_cast<int64_t>(ax)}, {"start", start}, {"end", end}}));
  }
  return std::vector<ValueId>{d};
}

// pad_grad is pad's adjoint, so its own adjoint is pad (with zeros).
Grads padGradGrad(GradCtx& c) {
  NNC_TRY(ValueId d, c.op("pad", {c.dy}, {{"pads", c.attrs.ints("pads")}, {"mode", c.attrs.s("mode")}}));
  return std::vector<ValueId>{d};
}

}  // namespace

void addPadOps(std::vector<OpDef>& r) {
  r.push_back({.name = "pad",
               .operands = {"x"},
               .attrs = {{"pads", AttrKind::Ints, std::nullopt},
                         {"mode", AttrKind::String, Attr{std::string("constant")}},
                         {"value", AttrKind::Float, Attr{0.0}}},
               .shape = padShape,
               .eval = padEval,
               .grad = padGrad,
               .lower = padLower,
               .summary = "torch's F.pad: pads [left, right, top, bottom, ...] from the last axis; mode constant, "
                          "reflect or replicate"});
  r.push_back({.name = "pad_grad",
               .operands = {"dy"},
               .attrs = {{"pads", AttrKind::Ints, std::nullopt},
                         {"mode", AttrKind::String, Attr{std::string("constant")}}},
               .shape = padGradShape,
               .eval = padGradEval,
               .grad = padGradGrad,
               .lower = padGradLower,
               .summary = "the gradient of pad: each padded element added back to the one it copies"});
}

}  // namespace nnc
