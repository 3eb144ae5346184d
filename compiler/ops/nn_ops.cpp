// Neural-network ops: convolutions, pooling, dropout masks, normal
// samples, batchnorm, and im2col/col2im, with their gradient rules and the
// ops those need (conv2d_grad_weight, maxpool2d_grad/_gather,
// avgpool2d_grad). Images
// are NCHW; spatial attributes (stride, pad, kernel, output_pad) take one
// value for both axes or [height, width].
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "compiler/autodiff/grad_ctx.h"
#include "compiler/lower/lower.h"
#include "compiler/ops/im2col.h"
#include "compiler/ops/lower_rules.h"
#include "compiler/ops/normalize_grad.h"
#include "compiler/ops/op_registry.h"

namespace nnc {

namespace {

using Pair = std::array<int64_t, 2>;
constexpr DType F32 = DType::F32;

// "x f32[1, 3, 8, 8], W f32[4, 3, 3, 3]": every operand, for error messages.
std::string describe(const std::vector<TensorType>& in, const std::vector<std::string_view>& names) {
  std::string s;
  for (size_t i = 0; i < in.size(); ++i)
    s += fmt::format("{}{} {}", i ? ", " : "", names[i], typeString(in[i]));
  return s;
}

Status requireF32(std::string_view op, const std::vector<TensorType>& in, const std::string& operands) {
  for (const TensorType& t : in)
    if (t.dtype != F32) return error("{}: operands must be f32: {}", op, operands);
  return ok();
}

// Unchecked: for use after the shape rule has accepted the attribute.
Pair pairOf(const std::vector<int64_t>& v) { return {v.front(), v.back()}; }

Expected<Pair> checkedPair(std::string_view op, const Attrs& a, std::string_view name, int64_t least) {
  const std::vector<int64_t>& v = a.ints(name);
  if (v.size() != 1 && v.size() != 2)
    return error("{}: {} must be one integer or two (height, width), got {}", op, name, attrString(v));
  if (v.front() < least || v.back() < least)
    return error("{}: {} must be at least {}, got {}", op, name, least, attrString(v));
  return pairOf(v);
}

PatchGeom geomOf(const Shape& x, Pair kernel, Pair stride, Pair pad) {
  return {.n = x[0], .c = x[1], .h = x[2], .w = x[3], .kh = kernel[0], .kw = kernel[1],
          .sh = stride[0], .sw = stride[1], .ph = pad[0], .pw = pad[1]};
}

Status windowFits(std::string_view op, const PatchGeom& g, const std::string& operands) {
  if (g.oh() >= 1 && g.ow() >= 1) return ok();
  return error("{}: a {}x{} window with stride [{}, {}] and pad [{}, {}] does not fit in the {}x{} image: {}", op,
               g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, g.h, g.w, operands);
}

int64_t at4(const Shape& s, int64_t a, int64_t b, int64_t c, int64_t d) {
  return ((a * s[1] + b) * s[2] + c) * s[3] + d;
}

bool inside(const PatchGeom& g, int64_t row, int64_t col) { return row >= 0 && row < g.h && col >= 0 && col < g.w; }

// ---- conv2d and conv_transpose2d -----------------------------------------

// Checks what both convolutions share: ranks, dtypes, stride, pad, groups
// dividing the input channels, and a bias of `filters` entries.
Status checkConvCommon(std::string_view op, const std::vector<TensorType>& in, const Attrs& a,
                       const std::string& operands, bool transposed) {
  NNC_CHECK(requireF32(op, in, operands));
  const TensorType &x = in[0], &w = in[1];
  if (x.rank() != 4) return error("{}: input must be [N, C, H, W]: {}", op, operands);
  if (w.rank() != 4)
    return error("{}: weight must be {}: {}", op, transposed ? "[C, F/groups, KH, KW]" : "[F, C/groups, KH, KW]",
                 operands);
  if (w.shape[2] < 1 || w.shape[3] < 1) return error("{}: empty kernel: {}", op, operands);
  NNC_CHECK(checkedPair(op, a, "stride", 1));
  NNC_CHECK(checkedPair(op, a, "pad", 0));
  const int64_t groups = a.i("groups"), c = x.shape[1];
  if (groups < 1) return error("{}: groups must be at least 1, got {}", op, groups);
  if (c % groups != 0) return error("{}: {} input channels do not split into {} groups: {}", op, c, groups, operands);
  if (in.size() > 2) {
    const int64_t filters = transposed ? w.shape[1] * groups : w.shape[0];
    if (in[2].shape != Shape{filters})
      return error("{}: bias must be [{}], one per output channel: {}", op, filters, operands);
  }
  return ok();
}

PatchGeom convGeom(const Shape& x, const Shape& w, const Attrs& a) {
  return geomOf(x, {w[2], w[3]}, pairOf(a.ints("stride")), pairOf(a.ints("pad")));
}

Expected<TensorType> conv2dShape(const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"x", "W", "b"});
  NNC_CHECK(checkConvCommon("conv2d", in, a, operands, false));
  const Shape &x = in[0].shape, &w = in[1].shape;
  const int64_t groups = a.i("groups");
  if (w[0] % groups != 0)
    return error("conv2d: {} filters do not split into {} groups: {}", w[0], groups, operands);
  if (w[1] * groups != x[1])
    return groups == 1 ? error("conv2d: weight takes {} input channels, the input has {}: {}", w[1], x[1], operands)
                       : error("conv2d: weight takes {} input channels ({} per group, {} groups), the input has {}: {}",
                               w[1] * groups, w[1], groups, x[1], operands);
  const PatchGeom g = convGeom(x, w, a);
  NNC_CHECK(windowFits("conv2d", g, operands));
  return TensorType{F32, {x[0], w[0], g.oh(), g.ow()}};
}

// Cross-correlation, as PyTorch: out[n, f, y, x] = b[f] + sum over the
// channels of f's group and the window of x[n, c, y·sh − ph + i, x·sw − pw + j]
// · W[f, c, i, j]. Deliberately direct rather than im2col + matmul, so that
// tests can check one path against the other.
Status conv2dEval(const EvalArgs& e) {
  const Tensor &x = *e.in[0], &w = *e.in[1];
  const Tensor* b = e.in.size() > 2 ? e.in[2] : nullptr;
  const PatchGeom g = convGeom(x.shape(), w.shape(), e.attrs);
  const int64_t filters = w.shape()[0], groups = e.attrs.i("groups");
  const int64_t perGroupIn = g.c / groups, perGroupOut = filters / groups;
  double* out = e.out.data.data();
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t f = 0; f < filters; ++f) {
      const int64_t c0 = f / perGroupOut * perGroupIn;  // first input channel of f's group
      for (int64_t y = 0; y < g.oh(); ++y)
        for (int64_t xo = 0; xo < g.ow(); ++xo) {
          double s = b ? b->data[f] : 0.0;
          for (int64_t c = 0; c < perGroupIn; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t row = y * g.sh - g.ph + i, col = xo * g.sw - g.pw + j;
                if (inside(g, row, col))
                  s += x.data[at4(x.shape(), n, c0 + c, row, col)] * w.data[at4(w.shape(), f, c, i, j)];
              }
          *out++ = s;
        }
    }
  return ok();
}

Expected<TensorType> convTransposeShape(const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"x", "W", "b"});
  NNC_CHECK(checkConvCommon("conv_transpose2d", in, a, operands, true));
  const Shape &x = in[0].shape, &w = in[1].shape;
  if (w[0] != x[1])
    return error("conv_transpose2d: weight takes {} input channels, but the input has {}: {}", w[0], x[1], operands);
  NNC_CHECK(checkedPair("conv_transpose2d", a, "output_pad", 0));
  const Pair stride = pairOf(a.ints("stride")), pad = pairOf(a.ints("pad")), extra = pairOf(a.ints("output_pad"));
  // As PyTorch: output_pad only picks among the input sizes that conv2d with
  // this stride maps to the same output size, so it must stay below stride.
  if (extra[0] >= stride[0] || extra[1] >= stride[1])
    return error("conv_transpose2d: output_pad {} must be smaller than stride {}", attrString(a.ints("output_pad")),
                 attrString(a.ints("stride")));
  const int64_t oh = (x[2] - 1) * stride[0] - 2 * pad[0] + w[2] + extra[0];
  const int64_t ow = (x[3] - 1) * stride[1] - 2 * pad[1] + w[3] + extra[1];
  if (oh < 1 || ow < 1)
    return error("conv_transpose2d: the output would be {}x{}, empty, with stride [{}, {}], pad [{}, {}], output_pad "
                 "[{}, {}]: {}", oh, ow, stride[0], stride[1], pad[0], pad[1], extra[0], extra[1], operands);
  return TensorType{F32, {x[0], w[1] * a.i("groups"), oh, ow}};
}

// The adjoint of conv2d's map from input to output: each input pixel
// scatters its weighted kernel into the output window conv2d would have read
// it through. Contributions landing in the (cropped) padding are dropped;
// output_pad rows and columns receive only the bias.
Status convTransposeEval(const EvalArgs& e) {
  const Tensor &x = *e.in[0], &w = *e.in[1];
  const Tensor* b = e.in.size() > 2 ? e.in[2] : nullptr;
  const Shape& os = e.out.shape();
  // The geometry of the conv2d this is the adjoint of: its input is our output.
  const PatchGeom g = geomOf(os, {w.shape()[2], w.shape()[3]}, pairOf(e.attrs.ints("stride")),
                             pairOf(e.attrs.ints("pad")));
  const int64_t groups = e.attrs.i("groups"), channels = x.shape()[1];
  const int64_t perGroupIn = channels / groups, perGroupOut = w.shape()[1];
  if (b)
    for (int64_t i = 0; i < e.out.numel(); ++i) e.out.data[i] = b->data[i / (os[2] * os[3]) % os[1]];
  for (int64_t n = 0; n < os[0]; ++n)
    for (int64_t c = 0; c < channels; ++c) {
      const int64_t f0 = c / perGroupIn * perGroupOut;  // first output channel of c's group
      for (int64_t y = 0; y < x.shape()[2]; ++y)
        for (int64_t xi = 0; xi < x.shape()[3]; ++xi) {
          const double v = x.data[at4(x.shape(), n, c, y, xi)];
          for (int64_t f = 0; f < perGroupOut; ++f)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t row = y * g.sh - g.ph + i, col = xi * g.sw - g.pw + j;
                if (inside(g, row, col))
                  e.out.data[at4(os, n, f0 + f, row, col)] += v * w.data[at4(w.shape(), c, f, i, j)];
              }
        }
    }
  return ok();
}

// conv2d_grad_weight(x, dy): conv2d's weight gradient, the correlation of
// the input with the output gradient over the batch and every output
// position: dW[f, c, i, j] = sum over n, y, x of dy[n, f, y, x] ·
// x[n, c0(f) + c, y·sh − ph + i, x·sw − pw + j]. An op of its own because no
// conv2d computes it without moving the batch axis into the channels.
Expected<TensorType> convWeightGradShape(const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"x", "dy"});
  NNC_CHECK(requireF32("conv2d_grad_weight", in, operands));
  const TensorType &x = in[0], &dy = in[1];
  if (x.rank() != 4) return error("conv2d_grad_weight: x must be [N, C, H, W]: {}", operands);
  if (dy.rank() != 4) return error("conv2d_grad_weight: dy must be [N, F, OH, OW]: {}", operands);
  NNC_TRY(const Pair kernel, checkedPair("conv2d_grad_weight", a, "kernel", 1));
  NNC_TRY(const Pair stride, checkedPair("conv2d_grad_weight", a, "stride", 1));
  NNC_TRY(const Pair pad, checkedPair("conv2d_grad_weight", a, "pad", 0));
  const int64_t groups = a.i("groups");
  if (groups < 1) return error("conv2d_grad_weight: groups must be at least 1, got {}", groups);
  if (x.shape[0] != dy.shape[0]) return error("conv2d_grad_weight: batch sizes differ: {}", operands);
  if (x.shape[1] % groups != 0 || dy.shape[1] % groups != 0)
    return error("conv2d_grad_weight: {} input and {} output channels must both split into {} groups: {}",
                 x.shape[1], dy.shape[1], groups, operands);
  const PatchGeom g = geomOf(x.shape, kernel, stride, pad);
  NNC_CHECK(windowFits("conv2d_grad_weight", g, operands));
  if (dy.shape[2] != g.oh() || dy.shape[3] != g.ow())
    return error("conv2d_grad_weight: dy must be {}x{}, the output size of a {}x{} window with stride [{}, {}] and "
                 "pad [{}, {}] over x: {}", g.oh(), g.ow(), g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, operands);
  return TensorType{F32, {dy.shape[1], x.shape[1] / groups, kernel[0], kernel[1]}};
}

Status convWeightGradEval(const EvalArgs& e) {
  const Tensor &x = *e.in[0], &dy = *e.in[1];
  const PatchGeom g = geomOf(x.shape(), pairOf(e.attrs.ints("kernel")), pairOf(e.attrs.ints("stride")),
                             pairOf(e.attrs.ints("pad")));
  const int64_t filters = dy.shape()[1], groups = e.attrs.i("groups");
  const int64_t perGroupIn = g.c / groups, perGroupOut = filters / groups;
  const Shape& ws = e.out.shape();
  const double* d = dy.data.data();
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t f = 0; f < filters; ++f) {
      const int64_t c0 = f / perGroupOut * perGroupIn;
      for (int64_t y = 0; y < g.oh(); ++y)
        for (int64_t xo = 0; xo < g.ow(); ++xo, ++d)
          for (int64_t c = 0; c < perGroupIn; ++c)
            for (int64_t i = 0; i < g.kh; ++i)
              for (int64_t j = 0; j < g.kw; ++j) {
                const int64_t row = y * g.sh - g.ph + i, col = xo * g.sw - g.pw + j;
                if (inside(g, row, col))
                  e.out.data[at4(ws, f, c, i, j)] += *d * x.data[at4(x.shape(), n, c0 + c, row, col)];
              }
    }
  return ok();
}

// ---- pooling --------------------------------------------------------------

PatchGeom poolGeom(const Shape& x, const Attrs& a) {
  const Pair kernel = pairOf(a.ints("kernel"));
  const std::vector<int64_t>& stride = a.ints("stride");
  return geomOf(x, kernel, stride.empty() ? kernel : pairOf(stride), pairOf(a.ints("pad")));
}

// The window attributes every pooling op shares (the gradient ops included).
Status checkPoolAttrs(std::string_view op, const Attrs& a) {
  NNC_TRY(const Pair kernel, checkedPair(op, a, "kernel", 1));
  if (!a.ints("stride").empty()) NNC_CHECK(checkedPair(op, a, "stride", 1));
  NNC_TRY(const Pair pad, checkedPair(op, a, "pad", 0));
  // A pad of the kernel or more would allow windows made only of padding.
  // PyTorch stops at half the kernel; ONNX allows up to kernel - 1
  // (test_maxpool_2d_pads: kernel 3, pad 2), and the lowering's guards and
  // the reference's scans do not care.
  if (pad[0] >= kernel[0] || pad[1] >= kernel[1])
    return error("{}: pad {} must be less than the kernel {}", op, attrString(a.ints("pad")),
                 attrString(a.ints("kernel")));
  return ok();
}

Expected<TensorType> poolShape(std::string_view op, const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"x"});
  NNC_CHECK(requireF32(op, in, operands));
  if (in[0].rank() != 4) return error("{}: input must be [N, C, H, W]: {}", op, operands);
  NNC_CHECK(checkPoolAttrs(op, a));
  const PatchGeom g = poolGeom(in[0].shape, a);
  NNC_CHECK(windowFits(op, g, operands));
  return TensorType{F32, {g.n, g.c, g.oh(), g.ow()}};
}

// Calls f(window, pixel) for every pooling window in output order, with the
// flat index into x of the window's maximum: the first one in row-major
// window order on ties, the first NaN if there is one (so a NaN propagates,
// as in PyTorch's max_pool2d), -1 if nothing beats the -inf padding. Max-pooling,
// its gradient and its branch pattern all go through here, so the gradient
// is routed to exactly the element the forward pass picked.
template <class F>
void forEachWindowMax(const Tensor& x, const PatchGeom& g, F&& f) {
  constexpr double ninf = -std::numeric_limits<double>::infinity();
  int64_t window = 0;
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t y = 0; y < g.oh(); ++y)
        for (int64_t xo = 0; xo < g.ow(); ++xo, ++window) {
          double best = ninf;
          int64_t arg = -1;
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t row = y * g.sh - g.ph + i, col = xo * g.sw - g.pw + j;
              if (!inside(g, row, col)) continue;
              const int64_t at = at4(x.shape(), n, c, row, col);
              if (x.data[at] > best || (std::isnan(x.data[at]) && !std::isnan(best))) {
                best = x.data[at];
                arg = at;
              }
            }
          f(window, arg);
        }
}

// Max pads with −inf; the first maximum in row-major window order wins ties,
// which the gradient (routing to one input) must agree with. Average divides
// by the whole window, padding included (PyTorch's count_include_pad=True).
Status poolEval(const EvalArgs& e, bool max) {
  const Tensor& x = *e.in[0];
  const PatchGeom g = poolGeom(x.shape(), e.attrs);
  double* out = e.out.data.data();
  if (max) {
    forEachWindowMax(x, g, [&](int64_t window, int64_t arg) {
      out[window] = arg >= 0 ? x.data[arg] : -std::numeric_limits<double>::infinity();
    });
    return ok();
  }
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t y = 0; y < g.oh(); ++y)
        for (int64_t xo = 0; xo < g.ow(); ++xo) {
          double sum = 0;
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t row = y * g.sh - g.ph + i, col = xo * g.sw - g.pw + j;
              if (inside(g, row, col)) sum += x.data[at4(x.shape(), n, c, row, col)];
            }
          *out++ = sum / static_cast<double>(g.kh * g.kw);
        }
  return ok();
}

// The branch of a max-pooling window is its arg-max: a finite difference
// that changes it straddles a kink. Used by every op that routes through the
// arg-max (its x operand is always the pooled image).
void maxpoolBranches(const std::vector<const Tensor*>& in, const Attrs& a, std::vector<int64_t>& pattern) {
  forEachWindowMax(*in[0], poolGeom(in[0]->shape(), a), [&](int64_t, int64_t arg) { pattern.push_back(arg); });
}

// maxpool2d_grad(x, dy): each dy goes to its window's arg-max in x, summed
// where overlapping windows pick the same element.
Expected<TensorType> maxpoolGradShape(const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"x", "dy"});
  NNC_CHECK(requireF32("maxpool2d_grad", in, operands));
  NNC_TRY(const TensorType pooled, poolShape("maxpool2d_grad", {in[0]}, a));
  if (in[1].shape != pooled.shape)
    return error("maxpool2d_grad: dy must be {}, the shape max-pooling x gives: {}", shapeString(pooled.shape),
                 operands);
  return in[0];
}

Status maxpoolGradEval(const EvalArgs& e) {
  const Tensor &x = *e.in[0], &dy = *e.in[1];
  forEachWindowMax(x, poolGeom(x.shape(), e.attrs), [&](int64_t window, int64_t arg) {
    if (arg >= 0) e.out.data[arg] += dy.data[window];
  });
  return ok();
}

// maxpool2d_gather(x, g): g read at each window's arg-max in x; the adjoint
// of maxpool2d_grad in its dy operand, so it is that op's gradient.
Expected<TensorType> maxpoolGatherShape(const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"x", "g"});
  NNC_CHECK(requireF32("maxpool2d_gather", in, operands));
  if (in[1].shape != in[0].shape) return error("maxpool2d_gather: g must have the shape of x: {}", operands);
  return poolShape("maxpool2d_gather", {in[0]}, a);
}

Status maxpoolGatherEval(const EvalArgs& e) {
  const Tensor &x = *e.in[0], &g = *e.in[1];
  forEachWindowMax(x, poolGeom(x.shape(), e.attrs), [&](int64_t window, int64_t arg) {
    e.out.data[window] = arg >= 0 ? g.data[arg] : 0.0;
  });
  return ok();
}

// avgpool2d_grad(dy) with attribute shape = the pooled input's shape: each dy
// spread evenly over its window, padding included as in the forward pass
// (the share that falls on padding is dropped).
Expected<TensorType> avgpoolGradShape(const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"dy"});
  NNC_CHECK(requireF32("avgpool2d_grad", in, operands));
  const Shape& image = a.ints("shape");
  if (image.size() != 4 || std::any_of(image.begin(), image.end(), [](int64_t d) { return d < 1; }))
    return error("avgpool2d_grad: shape must be a positive [N, C, H, W], got {}", attrString(image));
  NNC_CHECK(checkPoolAttrs("avgpool2d_grad", a));
  const PatchGeom g = poolGeom(image, a);
  const std::string what = fmt::format("image {}: {}", shapeString(image), operands);
  NNC_CHECK(windowFits("avgpool2d_grad", g, what));
  if (in[0].shape != Shape{g.n, g.c, g.oh(), g.ow()})
    return error("avgpool2d_grad: dy must be {}, the shape average-pooling image {} gives: {}",
                 shapeString(Shape{g.n, g.c, g.oh(), g.ow()}), shapeString(image), operands);
  return TensorType{F32, image};
}

Status avgpoolGradEval(const EvalArgs& e) {
  const Tensor& dy = *e.in[0];
  const PatchGeom g = poolGeom(e.out.shape(), e.attrs);
  const double share = 1.0 / static_cast<double>(g.kh * g.kw);
  const double* d = dy.data.data();
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t y = 0; y < g.oh(); ++y)
        for (int64_t xo = 0; xo < g.ow(); ++xo, ++d)
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t row = y * g.sh - g.ph + i, col = xo * g.sw - g.pw + j;
              if (inside(g, row, col)) e.out.data[at4(e.out.shape(), n, c, row, col)] += *d * share;
            }
  return ok();
}

// ---- dropout_mask ---------------------------------------------------------

Expected<TensorType> dropoutMaskShape(const std::vector<TensorType>& in, const Attrs& a) {
  const double rate = a.f("rate");
  if (!(rate >= 0 && rate < 1)) return error("dropout_mask: rate must be in [0, 1), got {}", rate);
  return TensorType{F32, in[0].shape};
}

// Inverted dropout: kept elements are scaled by 1/(1 − rate) in training so
// that inference needs no rescaling.
Status dropoutMaskEval(const EvalArgs& e) {
  if (!e.env.training) {
    std::fill(e.out.data.begin(), e.out.data.end(), 1.0);
    return ok();
  }
  if (!e.env.rng) return error("dropout_mask: training mode needs a random generator");
  const double keep = 1 - e.attrs.f("rate"), scale = 1 / keep;
  for (double& m : e.out.data) m = e.env.rng->uniform() < keep ? scale : 0.0;
  return ok();
}

// ---- normal ---------------------------------------------------------------

Expected<TensorType> normalShape(const std::vector<TensorType>& in, const Attrs& a) {
  const double mean = a.f("mean"), stddev = a.f("std");
  if (!std::isfinite(mean)) return error("normal: mean must be finite, got {}", mean);
  if (!(stddev > 0 && std::isfinite(stddev)))
    return error("normal: std must be positive and finite, got {}", stddev);
  return TensorType{F32, in[0].shape};
}

// Samples of N(mean, std²) in training; the distribution's mean in inference,
// so that a VAE's encoder is deterministic when evaluated. The draw is
// nnc_normal's (runtime/random_calls.cpp), pair by pair, so a seeded
// compiled run takes the same samples.
Status normalEval(const EvalArgs& e) {
  const double mean = e.attrs.f("mean"), stddev = e.attrs.f("std");
  if (!e.env.training) {
    std::fill(e.out.data.begin(), e.out.data.end(), mean);
    return ok();
  }
  if (!e.env.rng) return error("normal: training mode needs a random generator");
  std::vector<double>& out = e.out.data;
  for (size_t i = 0; i < out.size(); i += 2) {
    double a, b;
    e.env.rng->normalPair(a, b);
    out[i] = mean + stddev * a;
    if (i + 1 < out.size()) out[i + 1] = mean + stddev * b;
  }
  return ok();
}

// ---- batchnorm ------------------------------------------------------------

Expected<TensorType> batchnormShape(const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"x", "gamma", "beta", "running_mean", "running_var"});
  NNC_CHECK(requireF32("batchnorm", in, operands));
  const TensorType& x = in[0];
  if (x.rank() != 2 && x.rank() != 4) return error("batchnorm: input must be [N, C] or [N, C, H, W]: {}", operands);
  for (size_t i = 1; i < in.size(); ++i)
    if (in[i].shape != Shape{x.shape[1]})
      return error("batchnorm: gamma, beta, running_mean and running_var must be [{}], one per channel: {}",
                   x.shape[1], operands);
  if (!(a.f("eps") >= 0)) return error("batchnorm: eps must not be negative, got {}", a.f("eps"));
  if (!(a.f("momentum") >= 0 && a.f("momentum") <= 1))
    return error("batchnorm: momentum must be in [0, 1], got {}", a.f("momentum"));
  return x;
}

// Statistics run over every axis but the channel axis 1: x is viewed as
// [N, C, S] with S the spatial size (1 for [N, C]). Training uses the batch
// mean and biased variance, as PyTorch normalizes; updating the running
// statistics is the runtime's business, not this pure function's.
Status batchnormEval(const EvalArgs& e) {
  const Tensor &x = *e.in[0], &gamma = *e.in[1], &beta = *e.in[2], &rmean = *e.in[3], &rvar = *e.in[4];
  const int64_t n = x.shape()[0], channels = x.shape()[1];
  const int64_t s = x.type.rank() == 4 ? x.shape()[2] * x.shape()[3] : 1, count = n * s;
  const auto elem = [&](int64_t i, int64_t c, int64_t k) { return (i * channels + c) * s + k; };
  for (int64_t c = 0; c < channels; ++c) {
    double mean = rmean.data[c], var = rvar.data[c];
    if (e.env.training && count > 0) {
      mean = var = 0;
      for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < s; ++k) mean += x.data[elem(i, c, k)];
      mean /= static_cast<double>(count);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < s; ++k) var += (x.data[elem(i, c, k)] - mean) * (x.data[elem(i, c, k)] - mean);
      var /= static_cast<double>(count);
    }
    const double inv = 1 / std::sqrt(var + e.attrs.f("eps"));
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < s; ++k)
        e.out.data[elem(i, c, k)] = gamma.data[c] * (x.data[elem(i, c, k)] - mean) * inv + beta.data[c];
  }
  return ok();
}

// ---- im2col and col2im ----------------------------------------------------

PatchGeom windowGeom(const Shape& image, const Attrs& a) {
  return geomOf(image, pairOf(a.ints("kernel")), pairOf(a.ints("stride")), pairOf(a.ints("pad")));
}

Status checkWindowAttrs(std::string_view op, const Attrs& a) {
  NNC_CHECK(checkedPair(op, a, "kernel", 1));
  NNC_CHECK(checkedPair(op, a, "stride", 1));
  NNC_CHECK(checkedPair(op, a, "pad", 0));
  return ok();
}

Expected<TensorType> im2colShape(const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"x"});
  NNC_CHECK(requireF32("im2col", in, operands));
  if (in[0].rank() != 4) return error("im2col: input must be [N, C, H, W]: {}", operands);
  NNC_CHECK(checkWindowAttrs("im2col", a));
  const PatchGeom g = windowGeom(in[0].shape, a);
  NNC_CHECK(windowFits("im2col", g, operands));
  return TensorType{F32, {g.colRows(), g.colCols()}};
}

Status im2colEval(const EvalArgs& e) {
  e.out.data = im2col(e.in[0]->data, windowGeom(e.in[0]->shape(), e.attrs));
  return ok();
}

Expected<TensorType> col2imShape(const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"col"});
  NNC_CHECK(requireF32("col2im", in, operands));
  const Shape& image = a.ints("shape");
  if (image.size() != 4 || std::any_of(image.begin(), image.end(), [](int64_t d) { return d < 1; }))
    return error("col2im: shape must be a positive [N, C, H, W], got {}", attrString(image));
  NNC_CHECK(checkWindowAttrs("col2im", a));
  const PatchGeom g = windowGeom(image, a);
  const std::string what = fmt::format("image {}: {}", shapeString(image), operands);
  NNC_CHECK(windowFits("col2im", g, what));
  if (in[0].shape != Shape{g.colRows(), g.colCols()})
    return error("col2im: col must be [{}, {}] for a {}x{} window with stride [{}, {}] and pad [{}, {}] over image "
                 "{}: {}",
                 g.colRows(), g.colCols(), g.kh, g.kw, g.sh, g.sw, g.ph, g.pw, shapeString(image), operands);
  return TensorType{F32, image};
}

Status col2imEval(const EvalArgs& e) {
  e.out.data = col2im(e.in[0]->data, windowGeom(e.out.shape(), e.attrs));
  return ok();
}

Attr ints(std::vector<int64_t> v) { return Attr{std::move(v)}; }

// ---- gradient rules -------------------------------------------------------

using Grads = Expected<std::vector<ValueId>>;

// conv2d's input gradient is conv_transpose2d with the same weight, whose
// output size is ambiguous when stride > 1 (several input sizes pool to one
// output size); output_pad picks the input's.
Attrs inputGradAttrs(const Attrs& a, const Shape& x, Pair kernel) {
  const Pair stride = pairOf(a.ints("stride")), pad = pairOf(a.ints("pad"));
  return {{"stride", a.ints("stride")},
          {"pad", a.ints("pad")},
          {"groups", a.i("groups")},
          {"output_pad",
           ints({(x[2] + 2 * pad[0] - kernel[0]) % stride[0], (x[3] + 2 * pad[1] - kernel[1]) % stride[1]})}};
}

Attrs convAttrs(const Attrs& a) {
  return {{"stride", a.ints("stride")}, {"pad", a.ints("pad")}, {"groups", a.i("groups")}};
}

Attrs weightGradAttrs(const Attrs& a, const Shape& w) {
  Attrs r = convAttrs(a);
  r.set("kernel", ints({w[2], w[3]}));
  return r;
}

// The bias gradient of both convolutions: dy summed over all but channels.
Status addBiasGrad(GradCtx& ctx, std::vector<ValueId>& grads) {
  if (ctx.in.size() < 3) return ok();
  NNC_TRY(const ValueId db, ctx.op("sum", {ctx.dy}, {{"axis", ints({0, 2, 3})}}));
  grads.push_back(db);
  return ok();
}

Grads conv2dGrad(GradCtx& ctx) {
  const Shape &x = ctx.inTypes[0].shape, &w = ctx.inTypes[1].shape;
  NNC_TRY(const ValueId dx,
          ctx.op("conv_transpose2d", {ctx.dy, ctx.in[1]}, inputGradAttrs(ctx.attrs, x, {w[2], w[3]})));
  NNC_TRY(const ValueId dw, ctx.op("conv2d_grad_weight", {ctx.in[0], ctx.dy}, weightGradAttrs(ctx.attrs, w)));
  std::vector<ValueId> grads{dx, dw};
  NNC_CHECK(addBiasGrad(ctx, grads));
  return grads;
}

// conv_transpose2d(x, W) is the adjoint of z ↦ conv2d(z, W) (W read as a
// conv2d weight [C, F/groups, KH, KW] from F channels to C), so the roles
// swap: dx = conv2d(dy, W) and dW = conv2d_grad_weight(dy, x).
Grads convTransposeGrad(GradCtx& ctx) {
  const Shape& w = ctx.inTypes[1].shape;
  NNC_TRY(const ValueId dx, ctx.op("conv2d", {ctx.dy, ctx.in[1]}, convAttrs(ctx.attrs)));
  NNC_TRY(const ValueId dw, ctx.op("conv2d_grad_weight", {ctx.dy, ctx.in[0]}, weightGradAttrs(ctx.attrs, w)));
  std::vector<ValueId> grads{dx, dw};
  NNC_CHECK(addBiasGrad(ctx, grads));
  return grads;
}

// conv2d_grad_weight(x, dy) is bilinear: with dy fixed it is the weight
// gradient of conv2d(x, ·), whose adjoint in x is conv2d's input gradient;
// with x fixed its adjoint in dy is conv2d(x, ·).
Grads convWeightGradGrad(GradCtx& ctx) {
  const Attrs inputGrad = inputGradAttrs(ctx.attrs, ctx.inTypes[0].shape, pairOf(ctx.attrs.ints("kernel")));
  NNC_TRY(const ValueId dx, ctx.op("conv_transpose2d", {ctx.in[1], ctx.dy}, inputGrad));
  NNC_TRY(const ValueId ddy, ctx.op("conv2d", {ctx.in[0], ctx.dy}, convAttrs(ctx.attrs)));
  return std::vector<ValueId>{dx, ddy};
}

Attrs windowAttrs(const Attrs& a) {
  return {{"kernel", a.ints("kernel")}, {"stride", a.ints("stride")}, {"pad", a.ints("pad")}};
}

Grads maxpoolGrad(GradCtx& ctx) {
  NNC_TRY(const ValueId dx, ctx.op("maxpool2d_grad", {ctx.in[0], ctx.dy}, windowAttrs(ctx.attrs)));
  return std::vector<ValueId>{dx};
}

// Both ops below depend on x only through which element is each window's
// maximum, a piecewise-constant choice: x gets no gradient.
Grads maxpoolGradGrad(GradCtx& ctx) {
  NNC_TRY(const ValueId ddy, ctx.op("maxpool2d_gather", {ctx.in[0], ctx.dy}, windowAttrs(ctx.attrs)));
  return std::vector<ValueId>{kNoValue, ddy};
}

Grads maxpoolGatherGrad(GradCtx& ctx) {
  NNC_TRY(const ValueId dg, ctx.op("maxpool2d_grad", {ctx.in[0], ctx.dy}, windowAttrs(ctx.attrs)));
  return std::vector<ValueId>{kNoValue, dg};
}

Grads avgpoolGrad(GradCtx& ctx) {
  Attrs a = windowAttrs(ctx.attrs);
  a.set("shape", ctx.inTypes[0].shape);
  NNC_TRY(const ValueId dx, ctx.op("avgpool2d_grad", {ctx.dy}, std::move(a)));
  return std::vector<ValueId>{dx};
}

// avgpool2d_grad is linear and its adjoint is average pooling itself.
Grads avgpoolGradGrad(GradCtx& ctx) {
  NNC_TRY(const ValueId ddy, ctx.op("avgpool2d", {ctx.dy}, windowAttrs(ctx.attrs)));
  return std::vector<ValueId>{ddy};
}

Grads im2colGrad(GradCtx& ctx) {
  Attrs a = windowAttrs(ctx.attrs);
  a.set("shape", ctx.inTypes[0].shape);
  NNC_TRY(const ValueId dx, ctx.op("col2im", {ctx.dy}, std::move(a)));
  return std::vector<ValueId>{dx};
}

Grads col2imGrad(GradCtx& ctx) {
  NNC_TRY(const ValueId dcol, ctx.op("im2col", {ctx.dy}, windowAttrs(ctx.attrs)));
  return std::vector<ValueId>{dcol};
}

// Training-mode batchnorm, built from elementwise ops and reductions so it
// can be differentiated again: with x̂ = (x − μ)/σ, σ = √(var + eps), and
// means over every axis but 1,
//   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = (γ/σ)·(dy − mean(dy) − x̂·mean(dy·x̂)).
// dx is not just γ/σ·dy because μ and σ depend on every x of the channel.
// The running statistics are not differentiated: training does not read them.
Grads batchnormGrad(GradCtx& ctx) {
  const ValueId x = ctx.in[0], dy = ctx.dy;
  const bool image = ctx.inTypes[0].rank() == 4;
  const Attr axes = image ? ints({0, 2, 3}) : ints({0});
  const Attrs keep{{"axis", axes}, {"keepdims", int64_t{1}}}, drop{{"axis", axes}};
  const int64_t channels = ctx.inTypes[0].shape[1];
  NNC_TRY(const Normalized n, normalizedOver(ctx, x, keep, ctx.attrs.f("eps")));
  const ValueId xhat = n.xhat, sigma = n.sigma;

  NNC_TRY(const ValueId dbeta, ctx.op("sum", {dy}, drop));
  NNC_TRY(const ValueId dyXhat, ctx.op("mul", {dy, xhat}));
  NNC_TRY(const ValueId dgamma, ctx.op("sum", {dyXhat}, drop));

  NNC_TRY(const ValueId inner, normalizedInputGrad(ctx, dy, dyXhat, xhat, keep));
  const Attr gammaShape = image ? ints({1, channels, 1, 1}) : ints({1, channels});
  NNC_TRY(const ValueId gamma, ctx.op("reshape", {ctx.in[1]}, {{"shape", gammaShape}}));
  NNC_TRY(const ValueId scale, ctx.op("div", {gamma, sigma}));
  NNC_TRY(const ValueId dx, ctx.op("mul", {scale, inner}));
  return std::vector<ValueId>{dx, dgamma, dbeta, kNoValue, kNoValue};
}

}  // namespace

PatchGeom poolWindows(const Shape& x, const Attrs& a) { return poolGeom(x, a); }
PatchGeom convWindows(const Shape& x, const Shape& w, const Attrs& a) { return convGeom(x, w, a); }

void addNNOps(std::vector<OpDef>& r) {
  r.push_back({.name = "conv2d",
               .operands = {"x", "W", "b"},
               .minOperands = 2,
               .attrs = {{"stride", AttrKind::Ints, ints({1})},
                         {"pad", AttrKind::Ints, ints({0})},
                         {"groups", AttrKind::Int, Attr{int64_t{1}}}},
               .shape = conv2dShape,
               .eval = conv2dEval,
               .grad = conv2dGrad,
               .lower = [](LowerArgs& a) {
                 return lowerConv2d(a, convGeom(a.inTypes[0].shape, a.inTypes[1].shape, a.attrs()), a.attrs().i("groups"));
               },
               .summary = "2-D cross-correlation: x [N, C, H, W], W [F, C/groups, KH, KW], optional bias [F]"});
  r.push_back({.name = "conv_transpose2d",
               .operands = {"x", "W", "b"},
               .minOperands = 2,
               .attrs = {{"stride", AttrKind::Ints, ints({1})},
                         {"pad", AttrKind::Ints, ints({0})},
                         {"output_pad", AttrKind::Ints, ints({0})},
                         {"groups", AttrKind::Int, Attr{int64_t{1}}}},
               .shape = convTransposeShape,
               .eval = convTransposeEval,
               .grad = convTransposeGrad,
               .lower = [](LowerArgs& a) {
                 const Shape& w = a.inTypes[1].shape;
                 const PatchGeom g = geomOf(a.outType().shape, {w[2], w[3]}, pairOf(a.attrs().ints("stride")),
                                            pairOf(a.attrs().ints("pad")));
                 return lowerConvTranspose2d(a, g, a.attrs().i("groups"));
               },
               .summary = "transposed convolution (conv2d's input gradient): W [C, F/groups, KH, KW]"});
  r.push_back({.name = "conv2d_grad_weight",
               .operands = {"x", "dy"},
               .attrs = {{"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({1})},
                         {"pad", AttrKind::Ints, ints({0})},
                         {"groups", AttrKind::Int, Attr{int64_t{1}}}},
               .shape = convWeightGradShape,
               .eval = convWeightGradEval,
               .grad = convWeightGradGrad,
               .lower = [](LowerArgs& a) {
                 const PatchGeom g = geomOf(a.inTypes[0].shape, pairOf(a.attrs().ints("kernel")),
                                            pairOf(a.attrs().ints("stride")), pairOf(a.attrs().ints("pad")));
                 return lowerConv2dGradWeight(a, g, a.attrs().i("groups"));
               },
               .summary = "conv2d's weight gradient from its input x and output gradient dy: [F, C/groups, KH, KW]"});
  r.push_back({.name = "maxpool2d",
               .operands = {"x"},
               .attrs = {{"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = [](const std::vector<TensorType>& in, const Attrs& a) { return poolShape("maxpool2d", in, a); },
               .eval = [](const EvalArgs& e) { return poolEval(e, true); },
               .grad = maxpoolGrad,
               .branches = maxpoolBranches,
               .lower = [](LowerArgs& a) { return lowerMaxpool2d(a, poolGeom(a.inTypes[0].shape, a.attrs())); },
               .summary = "max over each window; stride defaults to the kernel, padding is -inf"});
  r.push_back({.name = "maxpool2d_grad",
               .operands = {"x", "dy"},
               .attrs = {{"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = maxpoolGradShape,
               .eval = maxpoolGradEval,
               .grad = maxpoolGradGrad,
               .branches = maxpoolBranches,
               .lower = [](LowerArgs& a) { return lowerMaxpool2dGrad(a, poolGeom(a.inTypes[0].shape, a.attrs())); },
               .summary = "maxpool2d's input gradient: each dy added at its window's (first) max in x"});
  r.push_back({.name = "maxpool2d_gather",
               .operands = {"x", "g"},
               .attrs = {{"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = maxpoolGatherShape,
               .eval = maxpoolGatherEval,
               .grad = maxpoolGatherGrad,
               .branches = maxpoolBranches,
               .lower = [](LowerArgs& a) { return lowerMaxpool2dGather(a, poolGeom(a.inTypes[0].shape, a.attrs())); },
               .summary = "g read at each window's (first) max in x: maxpool2d_grad's gradient"});
  r.push_back({.name = "avgpool2d",
               .operands = {"x"},
               .attrs = {{"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = [](const std::vector<TensorType>& in, const Attrs& a) { return poolShape("avgpool2d", in, a); },
               .eval = [](const EvalArgs& e) { return poolEval(e, false); },
               .grad = avgpoolGrad,
               .lower = [](LowerArgs& a) { return lowerAvgpool2d(a, poolGeom(a.inTypes[0].shape, a.attrs())); },
               .summary = "mean over each window, padded zeros counted; stride defaults to the kernel"});
  r.push_back({.name = "avgpool2d_grad",
               .operands = {"dy"},
               .attrs = {{"shape", AttrKind::Ints, std::nullopt},
                         {"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = avgpoolGradShape,
               .eval = avgpoolGradEval,
               .grad = avgpoolGradGrad,
               .lower = [](LowerArgs& a) { return lowerAvgpool2dGrad(a, poolGeom(a.outType().shape, a.attrs())); },
               .summary = "avgpool2d's input gradient for an input of the given shape: dy spread over each window"});
  r.push_back({.name = "dropout_mask",
               .operands = {"x"},
               .attrs = {{"rate", AttrKind::Float, Attr{0.5}}},
               .shape = dropoutMaskShape,
               .eval = dropoutMaskEval,
               // The mask is a constant of the step; the mul applying it carries the gradient.
               .noGradient = true,
               .random = true,
               .lower = lowerDropoutMask,
               .summary = "training: 1/(1-rate) with probability 1-rate, else 0; inference: all ones"});
  r.push_back({.name = "normal",
               .operands = {"x"},
               .attrs = {{"mean", AttrKind::Float, Attr{0.0}}, {"std", AttrKind::Float, Attr{1.0}}},
               .shape = normalShape,
               .eval = normalEval,
               // Noise, a constant of the step (the reparameterization trick):
               // the mul applying it carries the gradient.
               .noGradient = true,
               .random = true,
               .lower = lowerNormal,
               .summary = "f32 of x's shape: training: samples of N(mean, std^2); inference: all mean"});
  r.push_back({.name = "batchnorm",
               .operands = {"x", "gamma", "beta", "running_mean", "running_var"},
               .attrs = {{"eps", AttrKind::Float, Attr{1e-5}}, {"momentum", AttrKind::Float, Attr{0.1}}},
               .shape = batchnormShape,
               .eval = batchnormEval,
               .grad = batchnormGrad,
               .lower = lowerBatchnorm,
               .summary = "batch normalization over all axes but 1 (batch statistics in training)"});
  r.push_back({.name = "im2col",
               .operands = {"x"},
               .attrs = {{"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({1})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = im2colShape,
               .eval = im2colEval,
               .grad = im2colGrad,
               .lower = [](LowerArgs& a) { return lowerIm2col(a, windowGeom(a.inTypes[0].shape, a.attrs())); },
               .summary = "image windows as rows: [N, C, H, W] -> [N*OH*OW, C*KH*KW]"});
  r.push_back({.name = "col2im",
               .operands = {"col"},
               .attrs = {{"shape", AttrKind::Ints, std::nullopt},
                         {"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({1})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = col2imShape,
               .eval = col2imEval,
               .grad = col2imGrad,
               .lower = [](LowerArgs& a) { return lowerCol2im(a, windowGeom(a.outType().shape, a.attrs())); },
               .summary = "im2col's adjoint: rows back to an image of the given shape, overlaps summed"});
}

}  // namespace nnc
