// Neural-network ops: matmul, convolutions, pooling, dropout masks,
// batchnorm, and im2col/col2im. Images are NCHW; spatial attributes (stride,
// pad, kernel, output_pad) take one value for both axes or [height, width].
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "compiler/op_registry.h"
#include "compiler/ops/im2col.h"

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

// ---- matmul ---------------------------------------------------------------

Expected<TensorType> matmulShape(const std::vector<TensorType>& in, const Attrs&) {
  const TensorType &a = in[0], &b = in[1];
  const std::string both = typeString(a) + " @ " + typeString(b);
  if (a.dtype != F32 || b.dtype != F32) return error("matmul: operands must be f32: {}", both);
  if (b.rank() != 2) return error("matmul: the right operand must be a matrix [K, N]: {}", both);
  if (a.rank() < 1) return error("matmul: the left operand must be [K] or [..., M, K]: {}", both);
  if (a.shape.back() != b.shape[0]) return error("matmul: inner dimensions differ: {}", both);
  // [K] -> [N] and [..., M, K] -> [..., M, N] alike: only the last axis changes.
  Shape s = a.shape;
  s.back() = b.shape[1];
  return TensorType{F32, s};
}

Status matmulEval(const EvalArgs& e) {
  const Tensor &a = *e.in[0], &b = *e.in[1];
  const int64_t k = b.shape()[0], n = b.shape()[1], m = e.out.numel() / std::max<int64_t>(n, 1);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += a.data[i * k + p] * b.data[p * n + j];
      e.out.data[i * n + j] = s;
    }
  return ok();
}

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

// ---- pooling --------------------------------------------------------------

PatchGeom poolGeom(const Shape& x, const Attrs& a) {
  const Pair kernel = pairOf(a.ints("kernel"));
  const std::vector<int64_t>& stride = a.ints("stride");
  return geomOf(x, kernel, stride.empty() ? kernel : pairOf(stride), pairOf(a.ints("pad")));
}

Expected<TensorType> poolShape(std::string_view op, const std::vector<TensorType>& in, const Attrs& a) {
  const std::string operands = describe(in, {"x"});
  NNC_CHECK(requireF32(op, in, operands));
  if (in[0].rank() != 4) return error("{}: input must be [N, C, H, W]: {}", op, operands);
  NNC_TRY(const Pair kernel, checkedPair(op, a, "kernel", 1));
  if (!a.ints("stride").empty()) NNC_CHECK(checkedPair(op, a, "stride", 1));
  NNC_TRY(const Pair pad, checkedPair(op, a, "pad", 0));
  // As PyTorch: a larger pad would allow windows made only of padding.
  if (2 * pad[0] > kernel[0] || 2 * pad[1] > kernel[1])
    return error("{}: pad {} must be at most half the kernel {}", op, attrString(a.ints("pad")),
                 attrString(a.ints("kernel")));
  const PatchGeom g = poolGeom(in[0].shape, a);
  NNC_CHECK(windowFits(op, g, operands));
  return TensorType{F32, {g.n, g.c, g.oh(), g.ow()}};
}

// Max pads with −inf; the first maximum in row-major window order wins ties,
// which the gradient (routing to one input) must agree with. Average divides
// by the whole window, padding included (PyTorch's count_include_pad=True).
Status poolEval(const EvalArgs& e, bool max) {
  const Tensor& x = *e.in[0];
  const PatchGeom g = poolGeom(x.shape(), e.attrs);
  constexpr double ninf = -std::numeric_limits<double>::infinity();
  double* out = e.out.data.data();
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t c = 0; c < g.c; ++c)
      for (int64_t y = 0; y < g.oh(); ++y)
        for (int64_t xo = 0; xo < g.ow(); ++xo) {
          double best = ninf, sum = 0;
          for (int64_t i = 0; i < g.kh; ++i)
            for (int64_t j = 0; j < g.kw; ++j) {
              const int64_t row = y * g.sh - g.ph + i, col = xo * g.sw - g.pw + j;
              if (!inside(g, row, col)) continue;
              const double v = x.data[at4(x.shape(), n, c, row, col)];
              if (v > best) best = v;
              sum += v;
            }
          *out++ = max ? best : sum / static_cast<double>(g.kh * g.kw);
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

}  // namespace

void addNNOps(std::vector<OpDef>& r) {
  r.push_back({.name = "matmul",
               .operands = {"a", "b"},
               .shape = matmulShape,
               .eval = matmulEval,
               .summary = "matrix product: [M, K] @ [K, N], [K] @ [K, N], or [..., M, K] @ [K, N]"});
  r.push_back({.name = "conv2d",
               .operands = {"x", "W", "b"},
               .minOperands = 2,
               .attrs = {{"stride", AttrKind::Ints, ints({1})},
                         {"pad", AttrKind::Ints, ints({0})},
                         {"groups", AttrKind::Int, Attr{int64_t{1}}}},
               .shape = conv2dShape,
               .eval = conv2dEval,
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
               .summary = "transposed convolution (conv2d's input gradient): W [C, F/groups, KH, KW]"});
  r.push_back({.name = "maxpool2d",
               .operands = {"x"},
               .attrs = {{"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = [](const std::vector<TensorType>& in, const Attrs& a) { return poolShape("maxpool2d", in, a); },
               .eval = [](const EvalArgs& e) { return poolEval(e, true); },
               .summary = "max over each window; stride defaults to the kernel, padding is -inf"});
  r.push_back({.name = "avgpool2d",
               .operands = {"x"},
               .attrs = {{"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = [](const std::vector<TensorType>& in, const Attrs& a) { return poolShape("avgpool2d", in, a); },
               .eval = [](const EvalArgs& e) { return poolEval(e, false); },
               .summary = "mean over each window, padded zeros counted; stride defaults to the kernel"});
  r.push_back({.name = "dropout_mask",
               .operands = {"x"},
               .attrs = {{"rate", AttrKind::Float, Attr{0.5}}},
               .shape = dropoutMaskShape,
               .eval = dropoutMaskEval,
               .summary = "training: 1/(1-rate) with probability 1-rate, else 0; inference: all ones"});
  r.push_back({.name = "batchnorm",
               .operands = {"x", "gamma", "beta", "running_mean", "running_var"},
               .attrs = {{"eps", AttrKind::Float, Attr{1e-5}}, {"momentum", AttrKind::Float, Attr{0.1}}},
               .shape = batchnormShape,
               .eval = batchnormEval,
               .summary = "batch normalization over all axes but 1 (batch statistics in training)"});
  r.push_back({.name = "im2col",
               .operands = {"x"},
               .attrs = {{"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({1})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = im2colShape,
               .eval = im2colEval,
               .summary = "image windows as rows: [N, C, H, W] -> [N*OH*OW, C*KH*KW]"});
  r.push_back({.name = "col2im",
               .operands = {"col"},
               .attrs = {{"shape", AttrKind::Ints, std::nullopt},
                         {"kernel", AttrKind::Ints, std::nullopt},
                         {"stride", AttrKind::Ints, ints({1})},
                         {"pad", AttrKind::Ints, ints({0})}},
               .shape = col2imShape,
               .eval = col2imEval,
               .summary = "im2col's adjoint: rows back to an image of the given shape, overlaps summed"});
}

}  // namespace nnc
