// One translator per ONNX op: the .nn expression it becomes, its output
// shape, and every attribute whose value nnc cannot honour reported as a
// problem (never silently dropped). Constants fold here.
#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "onnx/import_ctx.h"

namespace nnc::onnxio {

namespace {

using N = onnx::NodeProto;
using I = Importer;

// Attributes a translator reads; any other makes the node unsupported.
bool onlyAttrs(I& im, const N& n, std::initializer_list<const char*> known) {
  for (const auto& a : n.attribute()) {
    bool ok = false;
    for (const char* k : known) ok |= a.name() == k;
    if (!ok) {
      im.unsupported(n, fmt::format("attribute '{}' is not supported", a.name()));
      return false;
    }
  }
  return true;
}

int64_t normAxis(int64_t axis, size_t rank) { return axis < 0 ? axis + static_cast<int64_t>(rank) : axis; }

bool axisOk(I& im, const N& n, int64_t axis, size_t rank) {
  if (axis < 0 || axis >= static_cast<int64_t>(std::max<size_t>(rank, 1))) {
    im.unsupported(n, fmt::format("axis out of range for rank {}", rank));
    return false;
  }
  return true;
}

// ---- elementwise ----

template <const char* OP>
void unary(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  const Value& x = im.in(n, 0);
  const std::string e = im.tensor(n, 0);
  im.emit(n, 0, fmt::format("{}({})", OP, e), x.shape);
}
constexpr char kRelu[] = "relu", kSigmoid[] = "sigmoid", kTanh[] = "tanh", kExp[] = "exp", kLog[] = "log",
               kSqrt[] = "sqrt", kAbs[] = "abs", kNeg[] = "neg", kSign[] = "sign";

// An expression of x alone, `{0}` standing for x.
void composite(I& im, const N& n, const std::string& pattern) {
  const Value& x = im.in(n, 0);
  const std::string e = im.tensor(n, 0);
  im.emit(n, 0, fmt::format(fmt::runtime(pattern), e), x.shape);
}

void leakyRelu(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"alpha"})) return;
  composite(im, n, "leaky_relu({0}, alpha = " + numberText(I::attrFloat(n, "alpha", 0.01)) + ")");
}
void elu(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"alpha"})) return;
  // exp of min(x, 0) never overflows.
  composite(im, n, "maximum({0}, 0) + " + numberText(I::attrFloat(n, "alpha", 1.0)) + " * (exp(minimum({0}, 0)) - 1)");
}
void selu(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"alpha", "gamma"})) return;
  const std::string a = numberText(I::attrFloat(n, "alpha", 1.67326319217681884765625));
  const std::string g = numberText(I::attrFloat(n, "gamma", 1.05070102214813232421875));
  composite(im, n, g + " * (maximum({0}, 0) + " + a + " * (exp(minimum({0}, 0)) - 1))");
}
void softplus(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  composite(im, n, "maximum({0}, 0) + log(1 + exp(neg(abs({0}))))");  // stable for large |x|
}
void softsign(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  composite(im, n, "{0} / (1 + abs({0}))");
}
void hardSigmoid(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"alpha", "beta"})) return;
  composite(im, n, "maximum(minimum({0} * " + numberText(I::attrFloat(n, "alpha", 0.2)) + " + " +
                       numberText(I::attrFloat(n, "beta", 0.5)) + ", 1), 0)");
}
void thresholdedRelu(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"alpha"})) return;
  composite(im, n, "{0} * step({0} - " + numberText(I::attrFloat(n, "alpha", 1.0)) + ")");
}

// Comparisons as 1.0 / 0.0 (nnc has no bool type): exact, NaN compares false.
template <int KIND>
void compare(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  const Value& a = im.in(n, 0);
  const Value& b = im.in(n, 1);
  auto shape = broadcastShapes(a.shape, b.shape);
  if (!shape || a.isInt() || b.isInt()) {
    im.unsupported(n, !shape ? "shapes do not broadcast" : "integer operands (nnc computes in f32)");
    return;
  }
  const std::string x = im.tensor(n, 0), y = im.tensor(n, 1);
  const char* pattern = KIND == 0 ? "step({0} - {1})" : KIND == 1 ? "step({1} - {0})"
                      : KIND == 2 ? "1 - step({1} - {0})" : "1 - step({0} - {1})";
  im.emit(n, 0, fmt::format(fmt::runtime(pattern), x, y), *shape, 9);
}

void reciprocal(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  composite(im, n, "1 / {0}");
}

void clip(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"min", "max"})) return;
  const Value& x = im.in(n, 0);
  std::string e = im.tensor(n, 0);
  std::optional<std::string> lo, hi;
  if (im.opset() < 11) {
    if (I::attr(n, "min")) lo = numberText(I::attrFloat(n, "min", 0));
    if (I::attr(n, "max")) hi = numberText(I::attrFloat(n, "max", 0));
  } else {
    for (int i : {1, 2}) {
      if (!im.has(n, i)) continue;
      if (im.in(n, i).shape.size() > 0 && !(im.in(n, i).shape.size() == 1 && im.in(n, i).shape[0] == Dim::of(1))) {
        im.unsupported(n, "min and max must be scalars");
        return;
      }
      (i == 1 ? lo : hi) = im.tensor(n, i);
    }
  }
  if (hi) e = fmt::format("minimum({}, {})", e, *hi);
  if (lo) e = fmt::format("maximum({}, {})", e, *lo);
  if (!lo && !hi) e = fmt::format("identity({})", e);
  im.emit(n, 0, e, x.shape);
}

// Folds a binary op over constants (integers as sizes where linear).
bool foldBinary(I& im, const N& n, const std::string& op) {
  const Value& a = im.in(n, 0);
  const Value& b = im.in(n, 1);
  if (!a.constant || !b.constant) return false;
  auto shape = broadcastShapes(a.shape, b.shape);
  if (!shape) return false;
  int64_t total = 1;
  for (const Dim& d : *shape)
    if (!d.known() || __builtin_mul_overflow(total, d.c, &total) || total > 1 << 16) return false;
  Value out;
  out.elem = a.elem;
  out.shape = *shape;
  const bool ints = a.isInt() && b.isInt();
  // Index of element i of the output in an operand (broadcasting).
  auto at = [&](const Value& v, int64_t i) {
    int64_t idx = 0, stride = 1, rest = i;
    const size_t r = shape->size(), vr = v.shape.size();
    std::vector<int64_t> coord(r);
    for (size_t d = r; d-- > 0;) {
      coord[d] = rest % (*shape)[d].c;
      rest /= (*shape)[d].c;
    }
    for (size_t d = vr; d-- > 0;) {
      const int64_t size = v.shape[d].c;
      idx += (size == 1 ? 0 : coord[d + (r - vr)]) * stride;
      stride *= size;
    }
    return idx;
  };
  for (int64_t i = 0; i < total; ++i) {
    if (ints) {
      const Dim x = a.ints[static_cast<size_t>(at(a, i))], y = b.ints[static_cast<size_t>(at(b, i))];
      std::optional<Dim> r;
      if (op == "add") r = addDims(x, y);
      else if (op == "sub") {
        if (auto m = mulDims(y, Dim::of(-1))) r = addDims(x, *m);
      }
      else if (op == "mul") r = mulDims(x, y);
      else if (op == "div" && y.known() && y.c != 0 && x.k % y.c == 0 && (x.k == 0 || x.c % y.c == 0))
        r = Dim{x.k / y.c, x.k == 0 ? static_cast<int64_t>(std::floor(double(x.c) / double(y.c))) : x.c / y.c};
      if (!r) return false;
      out.ints.push_back(*r);
    } else {
      auto f = [](const Value& v, int64_t j) {
        return v.isInt() ? static_cast<double>(v.ints[static_cast<size_t>(j)].c) : v.floats[static_cast<size_t>(j)];
      };
      if ((a.isInt() && !a.ints[0].known()) || (b.isInt() && !b.ints[0].known())) return false;
      const double x = f(a, at(a, i)), y = f(b, at(b, i));
      const float r = op == "add" ? float(x) + float(y) : op == "sub" ? float(x) - float(y)
                    : op == "mul" ? float(x) * float(y) : op == "div" ? float(x) / float(y)
                    : std::pow(float(x), float(y));
      out.floats.push_back(r);
      out.elem = 1;
    }
  }
  im.setConst(n, 0, std::move(out));
  return true;
}

template <const char* OP>
void binary(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"broadcast", "axis"})) return;
  if (foldBinary(im, n, OP)) return;
  Value a = im.in(n, 0), b = im.in(n, 1);
  std::string eb;
  // Opset < 7: B broadcast from `axis` of A (a legacy form).
  if (im.opset() < 7 && I::attrInt(n, "broadcast", 0) != 0 && b.shape.size() < a.shape.size()) {
    const int64_t axis = normAxis(I::attrInt(n, "axis", int64_t(a.shape.size() - b.shape.size())), a.shape.size());
    std::vector<Dim> s = b.shape;
    while (static_cast<int64_t>(s.size()) + axis < static_cast<int64_t>(a.shape.size())) s.push_back(Dim::of(1));
    const std::string raw = im.tensor(n, 1);
    b.shape = s;
    eb = b.constant ? im.tensorOf(b, n.name()) : fmt::format("reshape({}, {})", raw, dimsText(s));
  } else {
    eb = im.tensor(n, 1);
  }
  auto shape = broadcastShapes(a.shape, b.shape);
  if (!shape) {
    im.unsupported(n, fmt::format("shapes {} and {} do not broadcast", dimsText(a.shape), dimsText(b.shape)));
    return;
  }
  const std::string ea = im.tensor(n, 0);
  im.emit(n, 0, fmt::format("{}({}, {})", OP, ea, eb), *shape);
}
constexpr char kAdd[] = "add", kSub[] = "sub", kMul[] = "mul", kDiv[] = "div", kPow[] = "pow";

// Max, Min, Sum, Mean: any number of operands.
template <const char* OP>
void variadic(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  std::string e = im.tensor(n, 0);
  std::vector<Dim> shape = im.in(n, 0).shape;
  const std::string op = std::string(OP) == "mean" ? "add" : OP;
  for (int i = 1; i < n.input_size(); ++i) {
    auto s = broadcastShapes(shape, im.in(n, i).shape);
    if (!s) {
      im.unsupported(n, "operand shapes do not broadcast");
      return;
    }
    shape = *s;
    e = fmt::format("{}({}, {})", op, e, im.tensor(n, i));
  }
  if (std::string(OP) == "mean" && n.input_size() > 1) e = fmt::format("{} / {}", e, numberText(n.input_size()));
  if (n.input_size() == 1) e = fmt::format("identity({})", e);
  im.emit(n, 0, e, shape);
}
constexpr char kMaximum[] = "maximum", kMinimum[] = "minimum", kSumOp[] = "add", kMeanOp[] = "mean";

void prelu(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  const Value& x = im.in(n, 0);
  Value s = im.in(n, 1);
  // Opset < 9 and PyTorch's 1-D slope [C] on [N, C, ...]: per channel.
  if (s.shape.size() == 1 && x.shape.size() > 2 && s.shape[0] == x.shape[1] && !(s.shape[0] == x.shape.back())) {
    std::vector<Dim> t = {s.shape[0]};
    for (size_t d = 2; d < x.shape.size(); ++d) t.push_back(Dim::of(1));
    s.shape = t;
  }
  if (!broadcastShapes(x.shape, s.shape)) {
    im.unsupported(n, "the slope does not broadcast to the input");
    return;
  }
  const std::string e = im.tensor(n, 0), es = s.constant ? im.tensorOf(s, n.name()) : im.tensor(n, 1);
  im.emit(n, 0, fmt::format("maximum({0}, 0) + {1} * minimum({0}, 0)", e, es), x.shape);
}

// ---- linear algebra ----

void matmul(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  const Value& a = im.in(n, 0);
  const Value& b = im.in(n, 1);
  if (b.shape.size() != 2 || a.shape.empty()) {
    im.unsupported(n, fmt::format("{} @ {}: nnc's matmul takes [..., M, K] @ [K, N]", dimsText(a.shape), dimsText(b.shape)));
    return;
  }
  if (!(a.shape.back() == b.shape[0])) {
    im.unsupported(n, "inner dimensions differ");
    return;
  }
  std::vector<Dim> s(a.shape.begin(), a.shape.end() - 1);
  s.push_back(b.shape[1]);
  const std::string ea = im.tensor(n, 0), eb = im.tensor(n, 1);
  im.emit(n, 0, fmt::format("{} @ {}", ea, eb), s);
}

void gemm(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"alpha", "beta", "transA", "transB", "broadcast"})) return;
  const Value& a = im.in(n, 0);
  const Value& b = im.in(n, 1);
  const bool ta = I::attrInt(n, "transA", 0) != 0, tb = I::attrInt(n, "transB", 0) != 0;
  if (a.shape.size() != 2 || b.shape.size() != 2) {
    im.unsupported(n, "A and B must be matrices");
    return;
  }
  const Dim m = ta ? a.shape[1] : a.shape[0], k = ta ? a.shape[0] : a.shape[1];
  const Dim k2 = tb ? b.shape[1] : b.shape[0], nn = tb ? b.shape[0] : b.shape[1];
  if (!(k == k2)) {
    im.unsupported(n, "inner dimensions differ");
    return;
  }
  const std::string ea = im.tensor(n, 0), eb = im.tensor(n, 1);
  std::string e = fmt::format("matmul({}, {}{}{})", ea, eb, ta ? ", transpose_a = 1" : "", tb ? ", transpose_b = 1" : "");
  const double alpha = I::attrFloat(n, "alpha", 1.0), beta = I::attrFloat(n, "beta", 1.0);
  if (alpha != 1.0) e = fmt::format("{} * {}", e, numberText(alpha));
  if (im.has(n, 2) && beta != 0.0) {
    const Value& c = im.in(n, 2);
    if (!broadcastShapes({m, nn}, c.shape)) {
      im.unsupported(n, "C does not broadcast to [M, N]");
      return;
    }
    std::string ec = im.tensor(n, 2);
    if (beta != 1.0) ec = fmt::format("{} * {}", ec, numberText(beta));
    e = fmt::format("{} + {}", e, ec);
  }
  im.emit(n, 0, e, {m, nn});
}

// ---- convolution and pooling ----

// A 2-D window as nnc computes it: symmetric pads `pad`, then (where ONNX's
// pads are not symmetric, or ceil_mode adds a window) the outputs `size`
// from `offset` on, cut out of nnc's larger result.
struct Window {
  std::vector<int64_t> kernel, stride, pad, offset{0, 0}, size{0, 0}, full{0, 0}, lo{0, 0};
  bool cropped() const { return offset[0] || offset[1] || size[0] != full[0] || size[1] != full[1]; }
};

std::string crop(const Window& w, std::string e) {
  for (int a = 0; a < 2; ++a)
    if (w.offset[a] || w.size[a] != w.full[a])
      e = fmt::format("slice({}, axis = {}, start = {}, end = {})", e, 2 + a, w.offset[a], w.offset[a] + w.size[a]);
  return e;
}

// kernel_shape, strides, pads, dilations, auto_pad, ceil_mode of a 2-D
// window op on x [N, C, H, W]; the output size; false (a problem recorded)
// where nnc has no equivalent.
bool window(I& im, const N& n, const std::vector<Dim>& x, std::vector<int64_t> kernel, Window& w,
            std::vector<Dim>& out, bool ceil = false) {
  if (x.size() != 4) {
    im.unsupported(n, fmt::format("input of rank {}: nnc's convolutions and pooling are 2-D (NCHW)", x.size()));
    return false;
  }
  if (!x[2].known() || !x[3].known()) {
    im.unsupported(n, "spatial sizes depend on the batch");
    return false;
  }
  // Sizes from the file stay far from overflow: no real window is this large.
  for (const char* a : {"kernel_shape", "strides", "pads"})
    for (int64_t v : I::attrInts(n, a))
      if (v < 0 || v > (int64_t{1} << 20)) {
        im.unsupported(n, fmt::format("attribute {} holds {}", a, v));
        return false;
      }
  for (int64_t v : kernel)
    if (v <= 0 || v > (int64_t{1} << 20)) {
      im.unsupported(n, fmt::format("kernel size {}", v));
      return false;
    }
  w.kernel = kernel;
  w.stride = I::attrInts(n, "strides");
  if (w.stride.empty()) w.stride = {1, 1};
  std::vector<int64_t> dil = I::attrInts(n, "dilations");
  for (int64_t d : dil)
    if (d != 1) {
      im.unsupported(n, fmt::format("attribute dilations = {}: nnc has no dilated convolution or pooling", intsText(dil)));
      return false;
    }
  std::vector<int64_t> pads = I::attrInts(n, "pads");
  const std::string autoPad = I::attrString(n, "auto_pad", "NOTSET");
  const int64_t H = x[2].c, W = x[3].c;
  if (w.stride.size() != 2 || kernel.size() != 2) {
    im.unsupported(n, "kernel and strides must be 2-D");
    return false;
  }
  for (int64_t st : w.stride)
    if (st <= 0) {
      im.unsupported(n, "strides must be positive");
      return false;
    }
  if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
    pads.assign(4, 0);
    for (int a = 0; a < 2; ++a) {
      const int64_t in = a == 0 ? H : W, o = (in + w.stride[a] - 1) / w.stride[a];
      const int64_t total = std::max<int64_t>(0, (o - 1) * w.stride[a] + kernel[a] - in);
      pads[a] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[a + 2] = total - pads[a];
    }
  } else if (autoPad == "VALID" || pads.empty()) {
    pads.assign(4, 0);
  } else if (autoPad != "NOTSET") {
    im.unsupported(n, fmt::format("auto_pad = {}", autoPad));
    return false;
  }
  if (pads.size() != 4) {
    im.unsupported(n, "pads must be 2-D");
    return false;
  }
  w.pad = {0, 0};
  out = {x[0], Dim::of(0), Dim::of(0), Dim::of(0)};
  for (int a = 0; a < 2; ++a) {
    const int64_t in = a == 0 ? H : W, lo = pads[a], hi = pads[a + 2], k = kernel[a], st = w.stride[a];
    const int64_t span = in + lo + hi - k;
    if (span < 0) {
      im.unsupported(n, "the window is larger than the padded input");
      return false;
    }
    int64_t o = span / st + 1;
    if (ceil && span % st != 0) {
      ++o;
      if ((o - 1) * st >= in + lo) --o;  // the last window starts inside the image or its first pads
    }
    // Where ONNX's pads differ, nnc pads both sides by the larger and the
    // windows wanted are a slice of its output: one whose first window
    // starts where ONNX's does.
    const int64_t hiNeeded = std::max(hi, (o - 1) * st + k - in - lo);
    int64_t m = std::max(lo, hiNeeded);
    m = lo + (m - lo + st - 1) / st * st;  // whole strides more than ONNX's first pad
    w.pad[a] = m;
    w.lo[a] = lo;
    w.offset[a] = (m - lo) / st;
    w.size[a] = o;
    w.full[a] = (in + 2 * m - k) / st + 1;
    out[2 + a] = Dim::of(o);
  }
  return true;
}

void conv(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"})) return;
  const Value& x = im.in(n, 0);
  const Value& wt = im.in(n, 1);
  if (wt.shape.size() != 4) {
    im.unsupported(n, fmt::format("weight of rank {}: nnc's convolutions are 2-D", wt.shape.size()));
    return;
  }
  std::vector<int64_t> k = I::attrInts(n, "kernel_shape");
  if (k.empty()) k = {wt.shape[2].c, wt.shape[3].c};
  Window w;
  std::vector<Dim> out;
  if (!window(im, n, x.shape, k, w, out)) return;
  const int64_t groups = I::attrInt(n, "group", 1);
  const auto channels = mulDims(wt.shape[1], Dim::of(groups));
  if (groups <= 0 || !channels || !(x.shape[1] == *channels)) {
    im.unsupported(n, "input channels do not match the weight and group");
    return;
  }
  out[1] = wt.shape[0];
  std::string e = fmt::format("conv2d({}, {}", im.tensor(n, 0), im.tensor(n, 1));
  if (im.has(n, 2)) e += ", " + im.tensor(n, 2);
  e += fmt::format(", stride = {}, pad = {}", intsText(w.stride), intsText(w.pad));
  if (groups != 1) e += fmt::format(", groups = {}", groups);
  im.emit(n, 0, crop(w, e + ")"), out);
}

void convTranspose(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad", "output_padding",
                         "output_shape"}))
    return;
  const Value& x = im.in(n, 0);
  const Value& wt = im.in(n, 1);
  if (x.shape.size() != 4 || wt.shape.size() != 4 || !x.shape[2].known() || !x.shape[3].known()) {
    im.unsupported(n, "nnc's transposed convolution is 2-D (NCHW)");
    return;
  }
  for (int64_t d : I::attrInts(n, "dilations"))
    if (d != 1) {
      im.unsupported(n, "attribute dilations: nnc has no dilated transposed convolution");
      return;
    }
  for (const char* a : {"strides", "pads", "output_padding", "output_shape"})
    for (int64_t v : I::attrInts(n, a))
      if (v < 0 || v > (int64_t{1} << 20)) {
        im.unsupported(n, fmt::format("attribute {} holds {}", a, v));
        return;
      }
  if (wt.shape[2].c > (1 << 20) || wt.shape[3].c > (1 << 20) || x.shape[2].c > (1 << 20) || x.shape[3].c > (1 << 20)) {
    im.unsupported(n, "sizes beyond 2^20");
    return;
  }
  const int64_t groups = I::attrInt(n, "group", 1);
  std::vector<int64_t> stride = I::attrInts(n, "strides"), pads = I::attrInts(n, "pads"),
                       op = I::attrInts(n, "output_padding"), os = I::attrInts(n, "output_shape");
  if (stride.empty()) stride = {1, 1};
  if (op.empty()) op = {0, 0};
  const int64_t k[2] = {wt.shape[2].c, wt.shape[3].c}, in[2] = {x.shape[2].c, x.shape[3].c};
  const std::string autoPad = I::attrString(n, "auto_pad", "NOTSET");
  if (!os.empty() || autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
    if (os.size() > 2) os.erase(os.begin(), os.end() - 2);
    pads.assign(4, 0);
    for (int a = 0; a < 2; ++a) {
      const int64_t want = os.empty() ? in[a] * stride[a] : os[a];
      int64_t total = stride[a] * (in[a] - 1) + op[a] + k[a] - want;
      if (total < 0 && -total < stride[a]) {
        // Larger than the padding-free result: the rest is output padding.
        op[a] -= total;
        total = 0;
      }
      if (total < 0) {
        im.unsupported(n, "output_shape larger than the transposed convolution makes");
        return;
      }
      pads[a] = autoPad == "SAME_UPPER" ? total / 2 : total - total / 2;
      pads[a + 2] = total - pads[a];
    }
  }
  if (pads.empty()) pads.assign(4, 0);
  if (pads.size() != 4) {
    im.unsupported(n, "pads must be 2-D");
    return;
  }
  if (!(x.shape[1] == wt.shape[0])) {
    im.unsupported(n, "input channels do not match the weight");
    return;
  }
  const auto filters = mulDims(wt.shape[1], Dim::of(groups));
  if (groups <= 0 || !filters) {
    im.unsupported(n, fmt::format("group = {}", groups));
    return;
  }
  // Asymmetric pads: nnc crops the smaller of each pair, a slice the rest.
  std::vector<Dim> out = {x.shape[0], *filters, Dim::of(0), Dim::of(0)};
  int64_t p[2], from[2], size[2], full[2];
  for (int a = 0; a < 2; ++a) {
    p[a] = std::min(pads[a], pads[a + 2]);
    full[a] = stride[a] * (in[a] - 1) + op[a] + k[a] - 2 * p[a];
    from[a] = pads[a] - p[a];
    size[a] = full[a] - (pads[a] - p[a]) - (pads[a + 2] - p[a]);
    if (size[a] <= 0) {
      im.unsupported(n, "the pads leave no output");
      return;
    }
    out[2 + a] = Dim::of(size[a]);
  }
  std::string e = fmt::format("conv_transpose2d({}, {}", im.tensor(n, 0), im.tensor(n, 1));
  if (im.has(n, 2)) e += ", " + im.tensor(n, 2);
  e += fmt::format(", stride = {}, pad = {}", intsText(stride), intsText({p[0], p[1]}));
  if (op[0] != 0 || op[1] != 0) e += fmt::format(", output_pad = {}", intsText(op));
  if (groups != 1) e += fmt::format(", groups = {}", groups);
  e += ")";
  for (int a = 0; a < 2; ++a)
    if (size[a] != full[a]) e = fmt::format("slice({}, axis = {}, start = {}, end = {})", e, 2 + a, from[a], from[a] + size[a]);
  im.emit(n, 0, e, out);
}

void maxPool(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"kernel_shape", "strides", "pads", "dilations", "auto_pad", "ceil_mode", "storage_order"}))
    return;
  if (n.output_size() > 1 && !n.output(1).empty()) {
    im.unsupported(n, "the Indices output is not supported");
    return;
  }
  Window w;
  std::vector<Dim> out;
  const Value& x = im.in(n, 0);
  if (!window(im, n, x.shape, I::attrInts(n, "kernel_shape"), w, out, I::attrInt(n, "ceil_mode", 0) != 0)) return;
  out[1] = x.shape[1];
  if (w.pad[0] >= w.kernel[0] || w.pad[1] >= w.kernel[1]) {
    im.unsupported(n, "a pad as large as the kernel (windows of padding only)");
    return;
  }
  // Padding is -inf: the extra pads nnc adds are never the maximum.
  im.emit(n, 0, crop(w, fmt::format("maxpool2d({}, kernel = {}, stride = {}, pad = {})", im.tensor(n, 0),
                                    intsText(w.kernel), intsText(w.stride), intsText(w.pad))),
          out);
}

void avgPool(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"kernel_shape", "strides", "pads", "auto_pad", "ceil_mode", "count_include_pad"})) return;
  Window w;
  std::vector<Dim> out;
  const Value& x = im.in(n, 0);
  if (!window(im, n, x.shape, I::attrInts(n, "kernel_shape"), w, out, I::attrInt(n, "ceil_mode", 0) != 0)) return;
  out[1] = x.shape[1];
  const bool includePad = I::attrInt(n, "count_include_pad", 0) != 0;
  if (w.pad[0] >= w.kernel[0] || w.pad[1] >= w.kernel[1] ||
      (includePad && I::attrInt(n, "ceil_mode", 0) != 0 && w.cropped())) {
    im.unsupported(n, w.pad[0] >= w.kernel[0] || w.pad[1] >= w.kernel[1]
                          ? "a pad as large as the kernel (windows of padding only)"
                          : "count_include_pad = 1 with ceil_mode = 1 where it adds windows");
    return;
  }
  std::string e = crop(w, fmt::format("avgpool2d({}, kernel = {}, stride = {}, pad = {})", im.tensor(n, 0),
                                      intsText(w.kernel), intsText(w.stride), intsText(w.pad)));
  if ((w.pad[0] || w.pad[1]) && !includePad) {
    // nnc counts the padded zeros; ONNX by default does not: rescale each
    // output by window size ÷ the window's cells inside the image.
    const int64_t OH = out[2].c, OW = out[3].c, H = x.shape[2].c, W = x.shape[3].c;
    Value f;
    f.constant = true;
    f.shape = {Dim::of(OH), Dim::of(OW)};
    for (int64_t i = 0; i < OH; ++i)
      for (int64_t j = 0; j < OW; ++j) {
        auto inside = [](int64_t start, int64_t k, int64_t size) {
          return std::min(start + k, size) - std::max<int64_t>(start, 0);
        };
        const int64_t cnt = inside(i * w.stride[0] - w.lo[0], w.kernel[0], H) * inside(j * w.stride[1] - w.lo[1], w.kernel[1], W);
        f.floats.push_back(double(w.kernel[0] * w.kernel[1]) / double(cnt));
      }
    e = fmt::format("{} * {}", e, im.tensorOf(f, (n.name().empty() ? "avgpool" : n.name()) + "_count"));
  }
  im.emit(n, 0, e, out);
}

void globalPool(I& im, const N& n, const char* op) {
  if (!onlyAttrs(im, n, {})) return;
  const Value& x = im.in(n, 0);
  if (x.shape.size() < 3) {
    im.unsupported(n, "input of rank below 3");
    return;
  }
  std::vector<int64_t> axes;
  std::vector<Dim> out = {x.shape[0], x.shape[1]};
  for (size_t d = 2; d < x.shape.size(); ++d) {
    axes.push_back(static_cast<int64_t>(d));
    out.push_back(Dim::of(1));
  }
  im.emit(n, 0, fmt::format("{}({}, axis = {}, keepdims = 1)", op, im.tensor(n, 0), intsText(axes)), out);
}
void globalAvgPool(I& im, const N& n) { globalPool(im, n, "mean"); }
void globalMaxPool(I& im, const N& n) { globalPool(im, n, "max"); }

void batchNorm(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"epsilon", "momentum", "spatial", "is_test", "consumed_inputs", "training_mode"})) return;
  for (int i = 1; i < n.output_size(); ++i)
    if (!n.output(i).empty()) {
      im.unsupported(n, "the training outputs (running statistics) are not supported: nnc keeps them itself");
      return;
    }
  if (I::attrInt(n, "training_mode", 0) != 0 || I::attrInt(n, "spatial", 1) != 1) {
    im.unsupported(n, I::attrInt(n, "training_mode", 0) ? "training_mode = 1" : "spatial = 0");
    return;
  }
  const Value& x = im.in(n, 0);
  if (x.shape.size() != 2 && x.shape.size() != 4) {
    im.unsupported(n, fmt::format("input of rank {}: nnc's batchnorm takes [N, C] or [N, C, H, W]", x.shape.size()));
    return;
  }
  bool weights = true;
  for (int i = 1; i < 5; ++i) weights &= im.in(n, i).constant;
  if (!weights) {
    // Computed statistics (a graph input, say): the inference formula, each
    // [C] operand broadcast over the axes after the channels.
    std::vector<Dim> cs = {x.shape[1]};
    for (size_t d = 2; d < x.shape.size(); ++d) cs.push_back(Dim::of(1));
    std::string op[5];
    for (int i = 1; i < 5; ++i) {
      const Value& v = im.in(n, i);
      if (v.shape.size() != 1 || !(v.shape[0] == x.shape[1])) {
        im.unsupported(n, fmt::format("input {} is not of the channels' size", i));
        return;
      }
      op[i] = x.shape.size() == 2 ? im.tensor(n, i) : fmt::format("reshape({}, {})", im.tensor(n, i), dimsText(cs));
    }
    im.emit(n, 0, fmt::format("({} - {}) / sqrt({} + {}) * {} + {}", im.tensor(n, 0), op[3], op[4],
                              numberText(I::attrFloat(n, "epsilon", 1e-5)), op[1], op[2]),
            x.shape);
    return;
  }
  std::string e = fmt::format("batchnorm({}, {}, {}, {}, {}, eps = {}, momentum = {})", im.tensor(n, 0),
                              im.tensor(n, 1), im.tensor(n, 2), im.tensor(n, 3), im.tensor(n, 4),
                              numberText(I::attrFloat(n, "epsilon", 1e-5)),
                              // ONNX's 0.9 as an f32 is 0.899999976: PyTorch's 0.1, not 0.100000024.
                              numberText(std::round((1.0 - I::attrFloat(n, "momentum", 0.9)) * 1e6) / 1e6));
  im.emit(n, 0, e, x.shape);
}

void dropout(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"ratio", "is_test", "seed"})) return;
  if (n.output_size() > 1 && !n.output(1).empty()) {
    im.unsupported(n, "the mask output is not supported");
    return;
  }
  double ratio = I::attrFloat(n, "ratio", 0.5);
  if (im.opset() >= 12 && im.has(n, 1)) {
    const Value& r = im.in(n, 1);
    if (!r.constant || r.floats.size() != 1) {
      im.unsupported(n, "ratio must be a constant");
      return;
    }
    ratio = r.floats[0];
  }
  if (im.has(n, 2)) {
    im.unsupported(n, "the training_mode input is not supported (nnc's dropout is on in training, off in inference)");
    return;
  }
  const Value& x = im.in(n, 0);
  // Inverted dropout in training, the identity in inference: as ONNX's.
  if (ratio <= 0) im.alias(n, 0, x);
  else im.emit(n, 0, fmt::format("dropout({}, rate = {})", im.tensor(n, 0), numberText(ratio)), x.shape);
}

// ---- softmax ----

template <bool LOG>
void softmax(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axis"})) return;
  const Value& x = im.in(n, 0);
  const size_t r = x.shape.size();
  const int64_t axis = normAxis(I::attrInt(n, "axis", im.opset() < 13 ? 1 : -1), r);
  if (!axisOk(im, n, axis, r)) return;
  const char* op = LOG ? "log_softmax" : "softmax";
  const std::string e = im.tensor(n, 0);
  if (im.opset() >= 13 || axis == static_cast<int64_t>(r) - 1) {
    im.emit(n, 0, fmt::format("{}({}, axis = {})", op, e, axis), x.shape);
    return;
  }
  // Opsets < 13: over all axes from `axis` on, as one.
  Dim inner = Dim::of(1);
  for (size_t d = static_cast<size_t>(axis); d < r; ++d) {
    auto m = mulDims(inner, x.shape[d]);
    if (!m || !m->known()) {
      im.unsupported(n, "the softmax axes depend on the batch size");
      return;
    }
    inner = *m;
  }
  im.emit(n, 0, fmt::format("reshape({}({}, [-1, {}]), axis = -1), {})", op, "reshape(" + e, inner.c, dimsText(x.shape)),
          x.shape);
}

// ---- shapes ----

// The product of dims [from, to) (nullopt where nonlinear in the batch).
std::optional<Dim> product(const std::vector<Dim>& s, size_t from, size_t to) {
  Dim p = Dim::of(1);
  for (size_t d = from; d < to; ++d) {
    auto m = mulDims(p, s[d]);
    if (!m) return std::nullopt;
    p = *m;
  }
  return p;
}

// x (a tensor or a constant) with a new shape of the same elements.
void reshapeTo(I& im, const N& n, const Value& x, std::vector<Dim> shape) {
  if (x.constant) {
    Value c = x;
    c.shape = std::move(shape);
    im.setConst(n, 0, std::move(c));
    return;
  }
  if (shape == x.shape) {
    im.alias(n, 0, x);
    return;
  }
  const std::string e = fmt::format("reshape({}, {})", x.expr, dimsText(shape));
  im.emit(n, 0, e, std::move(shape));
}

bool sameCount(const std::vector<Dim>& a, const std::vector<Dim>& b) {
  auto x = product(a, 0, a.size()), y = product(b, 0, b.size());
  return x && y && *x == *y;
}

void reshape(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"shape", "allowzero"})) return;
  const Value& x = im.in(n, 0);
  std::vector<Dim> target;
  if (im.opset() < 5 || !im.has(n, 1)) {
    for (int64_t v : I::attrInts(n, "shape")) target.push_back(Dim::of(v));
  } else {
    const Value& s = im.in(n, 1);
    if (!s.constant || !s.isInt()) {
      im.unsupported(n, "the shape must be known at import time (a constant, or folded from Shape)");
      return;
    }
    target = s.ints;
  }
  const bool allowZero = I::attrInt(n, "allowzero", 0) != 0;
  int infer = -1;
  for (size_t d = 0; d < target.size(); ++d) {
    if (target[d] == Dim::of(0) && !allowZero) {
      if (d >= x.shape.size()) {
        im.unsupported(n, "shape copies a dimension the input does not have");
        return;
      }
      target[d] = x.shape[d];
    } else if (target[d] == Dim::of(-1)) {
      if (infer >= 0) {
        im.unsupported(n, "shape has more than one -1");
        return;
      }
      infer = static_cast<int>(d);
    } else if (target[d].known() && target[d].c <= 0) {
      im.unsupported(n, fmt::format("shape {} has a size of {}", dimsText(target), target[d].c));
      return;
    }
  }
  auto total = product(x.shape, 0, x.shape.size());
  if (infer >= 0) {
    Dim rest = Dim::of(1);
    for (size_t d = 0; d < target.size(); ++d)
      if (static_cast<int>(d) != infer) {
        auto m = mulDims(rest, target[d]);
        if (!m) {
          im.unsupported(n, "the shape is nonlinear in the batch size");
          return;
        }
        rest = *m;
      }
    // total = rest · inferred, with rest a known number or k·batch.
    if (!total || (rest.known() && (rest.c == 0 || total->k % rest.c || total->c % rest.c)) ||
        (!rest.known() && (rest.c != 0 || total->c != 0 || total->k % rest.k))) {
      im.unsupported(n, fmt::format("cannot reshape {} to {}", dimsText(x.shape), dimsText(target)));
      return;
    }
    target[static_cast<size_t>(infer)] = rest.known() ? Dim{total->k / rest.c, total->c / rest.c} : Dim::of(total->k / rest.k);
  }
  if (!sameCount(x.shape, target)) {
    im.unsupported(n, fmt::format("cannot reshape {} to {}", dimsText(x.shape), dimsText(target)));
    return;
  }
  reshapeTo(im, n, x, target);
}

void flatten(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axis"})) return;
  const Value& x = im.in(n, 0);
  const int64_t axis = normAxis(I::attrInt(n, "axis", 1), x.shape.size());
  if (axis < 0 || axis > static_cast<int64_t>(x.shape.size())) {
    im.unsupported(n, "axis out of range");
    return;
  }
  auto a = product(x.shape, 0, static_cast<size_t>(axis)), b = product(x.shape, static_cast<size_t>(axis), x.shape.size());
  if (!a || !b) {
    im.unsupported(n, "the flattened size is nonlinear in the batch size");
    return;
  }
  if (axis == 1 && !x.constant && x.shape.size() > 2) {
    im.emit(n, 0, fmt::format("flatten({})", x.expr), {*a, *b});
    return;
  }
  reshapeTo(im, n, x, {*a, *b});
}

// Axes from the attribute (older opsets) or the second input.
std::optional<std::vector<int64_t>> axesOf(I& im, const N& n, int sinceOpset) {
  if (im.opset() >= sinceOpset) {
    if (!im.has(n, 1)) return std::vector<int64_t>{};
    return im.constInts(n, 1, "axes");
  }
  return I::attrInts(n, "axes");
}

void squeeze(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axes"})) return;
  const Value& x = im.in(n, 0);
  auto axes = axesOf(im, n, 13);
  if (!axes) return;
  std::vector<bool> drop(x.shape.size(), axes->empty());
  if (axes->empty())
    for (size_t d = 0; d < x.shape.size(); ++d) drop[d] = x.shape[d] == Dim::of(1);
  for (int64_t a : *axes) {
    const int64_t d = normAxis(a, x.shape.size());
    if (!axisOk(im, n, d, x.shape.size())) return;
    if (!(x.shape[static_cast<size_t>(d)] == Dim::of(1))) {
      im.unsupported(n, fmt::format("axis {} has size {}, not 1", a, dimText(x.shape[static_cast<size_t>(d)])));
      return;
    }
    drop[static_cast<size_t>(d)] = true;
  }
  std::vector<Dim> s;
  for (size_t d = 0; d < x.shape.size(); ++d)
    if (!drop[d]) s.push_back(x.shape[d]);
  reshapeTo(im, n, x, s);
}

void unsqueeze(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axes"})) return;
  const Value& x = im.in(n, 0);
  auto axes = axesOf(im, n, 13);
  if (!axes) return;
  const size_t r = x.shape.size() + axes->size();
  std::vector<bool> added(r, false);
  for (int64_t a : *axes) {
    const int64_t d = normAxis(a, r);
    if (d < 0 || d >= static_cast<int64_t>(r) || added[static_cast<size_t>(d)]) {
      im.unsupported(n, "axes out of range or repeated");
      return;
    }
    added[static_cast<size_t>(d)] = true;
  }
  std::vector<Dim> s;
  size_t j = 0;
  for (size_t d = 0; d < r; ++d) s.push_back(added[d] ? Dim::of(1) : x.shape[j++]);
  reshapeTo(im, n, x, s);
}

void transpose(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"perm"})) return;
  const Value& x = im.in(n, 0);
  std::vector<int64_t> perm = I::attrInts(n, "perm");
  if (perm.empty())
    for (size_t d = x.shape.size(); d-- > 0;) perm.push_back(static_cast<int64_t>(d));
  if (perm.size() != x.shape.size()) {
    im.unsupported(n, "perm does not match the rank");
    return;
  }
  std::vector<Dim> s;
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= static_cast<int64_t>(perm.size()) || seen[static_cast<size_t>(p)]) {
      im.unsupported(n, "perm is not a permutation");
      return;
    }
    seen[static_cast<size_t>(p)] = true;
    s.push_back(x.shape[static_cast<size_t>(p)]);
  }
  if (x.constant && x.shape.size() <= 1) {
    reshapeTo(im, n, x, s);
    return;
  }
  im.emit(n, 0, fmt::format("transpose({}, perm = {})", im.tensor(n, 0), intsText(perm)), s);
}

void concat(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axis"})) return;
  const Value& first = im.in(n, 0);
  // Before opset 4 the axis was optional, 1 by default.
  const int64_t axis = normAxis(I::attrInt(n, "axis", im.opset() < 4 ? 1 : 0), first.shape.size());
  if (!axisOk(im, n, axis, first.shape.size())) return;
  bool allConst = true;
  std::vector<Dim> s = first.shape;
  s[static_cast<size_t>(axis)] = Dim::of(0);
  for (int i = 0; i < n.input_size(); ++i) {
    const Value& v = im.in(n, i);
    allConst &= v.constant;
    if (v.shape.size() != s.size()) {
      im.unsupported(n, "inputs differ in rank");
      return;
    }
    for (size_t d = 0; d < s.size(); ++d)
      if (static_cast<int64_t>(d) != axis && !(v.shape[d] == s[d])) {
        im.unsupported(n, "inputs differ off the concatenation axis");
        return;
      }
    Dim& at = s[static_cast<size_t>(axis)];
    auto sum = addDims(at, v.shape[static_cast<size_t>(axis)]);
    if (!sum) {
      im.unsupported(n, "the concatenated size overflows");
      return;
    }
    at = *sum;
  }
  if (allConst && s.size() == 1) {
    Value c;
    c.elem = first.elem;
    c.shape = s;
    for (int i = 0; i < n.input_size(); ++i) {
      const Value& v = im.in(n, i);
      c.ints.insert(c.ints.end(), v.ints.begin(), v.ints.end());
      c.floats.insert(c.floats.end(), v.floats.begin(), v.floats.end());
    }
    im.setConst(n, 0, std::move(c));
    return;
  }
  std::vector<std::string> parts;
  for (int i = 0; i < n.input_size(); ++i) parts.push_back(im.tensor(n, i));
  if (n.input_size() == 1) {
    im.alias(n, 0, first);
    return;
  }
  im.emit(n, 0, fmt::format("concat({}, axis = {})", fmt::join(parts, ", "), axis), s);
}

void slice(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"starts", "ends", "axes"})) return;
  const Value& x = im.in(n, 0);
  std::vector<int64_t> starts, ends, axes, steps;
  if (im.opset() < 10) {
    starts = I::attrInts(n, "starts");
    ends = I::attrInts(n, "ends");
    axes = I::attrInts(n, "axes");
  } else {
    auto s = im.constInts(n, 1, "starts");
    auto e = im.constInts(n, 2, "ends");
    if (!s || !e) return;
    starts = *s;
    ends = *e;
    if (im.has(n, 3)) {
      auto a = im.constInts(n, 3, "axes");
      if (!a) return;
      axes = *a;
    }
    if (im.has(n, 4)) {
      auto st = im.constInts(n, 4, "steps");
      if (!st) return;
      steps = *st;
    }
  }
  if (axes.empty())
    for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (starts.size() != ends.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
    im.unsupported(n, "starts, ends, axes and steps differ in length");
    return;
  }
  std::vector<Dim> shape = x.shape;
  std::string e = x.constant ? "" : x.expr;
  Value c = x;
  for (size_t i = 0; i < starts.size(); ++i) {
    const int64_t a = normAxis(axes[i], x.shape.size());
    if (!axisOk(im, n, a, x.shape.size())) return;
    const Dim dim = x.shape[static_cast<size_t>(a)];
    if (!dim.known()) {
      im.unsupported(n, "slicing the batch axis");
      return;
    }
    if (steps[i] <= 0) {
      im.unsupported(n, fmt::format("step {}: nnc's slice steps forward", steps[i]));
      return;
    }
    // ONNX's clamping, then a range nnc's slice reads the same way.
    auto clampIdx = [&](int64_t v) {
      if (v < 0) v += dim.c;
      return std::clamp<int64_t>(v, 0, dim.c);
    };
    const int64_t b = clampIdx(starts[i]), en = clampIdx(ends[i]);
    const int64_t count = en > b ? (en - b + steps[i] - 1) / steps[i] : 0;
    if (count == 0) {
      im.unsupported(n, "the slice is empty");
      return;
    }
    shape[static_cast<size_t>(a)] = Dim::of(count);
    if (x.constant) {
      if (x.shape.size() != 1) {
        im.unsupported(n, "slicing a constant of rank above 1");
        return;
      }
      Value next = c;
      next.ints.clear();
      next.floats.clear();
      for (int64_t j = b; j < en; j += steps[i]) {
        if (!c.ints.empty()) next.ints.push_back(c.ints[static_cast<size_t>(j)]);
        if (!c.floats.empty()) next.floats.push_back(c.floats[static_cast<size_t>(j)]);
      }
      next.shape = {Dim::of(count)};
      c = next;
      continue;
    }
    e = fmt::format("slice({}, axis = {}, start = {}, end = {}{})", e, a, b, en,
                    steps[i] != 1 ? fmt::format(", step = {}", steps[i]) : "");
  }
  if (x.constant) {
    im.setConst(n, 0, c);
    return;
  }
  im.emit(n, 0, e, shape);
}

// Gather of a computed tensor by constant indices: a slice per index.
void gatherSlices(I& im, const N& n) {
  const Value& data = im.in(n, 0);
  const Value& idx = im.in(n, 1);
  const int64_t axis = normAxis(I::attrInt(n, "axis", 0), data.shape.size());
  if (!axisOk(im, n, axis, data.shape.size())) return;
  const Dim size = data.shape[static_cast<size_t>(axis)];
  if (!size.known() || !idx.constant || !idx.isInt() || idx.ints.size() > 64) {
    im.unsupported(n, "a Gather of computed values needs at most 64 constant indices on an axis of fixed size");
    return;
  }
  const std::string e = im.tensor(n, 0);
  std::vector<std::string> parts;
  for (const Dim& i : idx.ints) {
    const int64_t j = i.c < 0 ? i.c + size.c : i.c;
    if (!i.known() || j < 0 || j >= size.c) {
      im.unsupported(n, "index out of range");
      return;
    }
    parts.push_back(fmt::format("slice({}, axis = {}, start = {}, end = {})", e, axis, j, j + 1));
  }
  std::vector<Dim> out(data.shape.begin(), data.shape.begin() + axis);
  out.insert(out.end(), idx.shape.begin(), idx.shape.end());
  out.insert(out.end(), data.shape.begin() + axis + 1, data.shape.end());
  std::string r = parts.size() == 1 ? parts[0] : fmt::format("concat({}, axis = {})", fmt::join(parts, ", "), axis);
  im.emit(n, 0, fmt::format("reshape({}, {})", r, dimsText(out)), out);
}

void split(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axis", "split", "num_outputs"})) return;
  const Value& x = im.in(n, 0);
  const int64_t axis = normAxis(I::attrInt(n, "axis", 0), x.shape.size());
  if (!axisOk(im, n, axis, x.shape.size())) return;
  const Dim size = x.shape[static_cast<size_t>(axis)];
  if (!size.known()) {
    im.unsupported(n, "splitting the batch axis");
    return;
  }
  std::vector<int64_t> parts = I::attrInts(n, "split");
  if (im.opset() >= 13 && im.has(n, 1)) {
    auto p = im.constInts(n, 1, "split");
    if (!p) return;
    parts = *p;
  }
  const int64_t count = n.output_size();
  if (parts.empty()) {
    if (size.c % count != 0) {
      im.unsupported(n, "the axis does not split evenly");
      return;
    }
    parts.assign(static_cast<size_t>(count), size.c / count);
  }
  int64_t total = 0;
  for (int64_t p : parts) total += p;
  if (static_cast<int64_t>(parts.size()) != count || total != size.c) {
    im.unsupported(n, "split sizes do not add up to the axis");
    return;
  }
  const std::string e = im.tensor(n, 0);
  int64_t at = 0;
  for (int i = 0; i < count; ++i) {
    std::vector<Dim> s = x.shape;
    s[static_cast<size_t>(axis)] = Dim::of(parts[static_cast<size_t>(i)]);
    if (!n.output(i).empty() && parts[static_cast<size_t>(i)] > 0)
      im.emit(n, i, fmt::format("slice({}, axis = {}, start = {}, end = {})", e, axis, at, at + parts[static_cast<size_t>(i)]), s);
    at += parts[static_cast<size_t>(i)];
  }
}

void tile(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  const Value& x = im.in(n, 0);
  auto reps = im.constInts(n, 1, "repeats");
  if (!reps) return;
  if (reps->size() != x.shape.size()) {
    im.unsupported(n, "repeats do not match the rank");
    return;
  }
  std::string e = im.tensor(n, 0);
  std::vector<Dim> s = x.shape;
  for (size_t d = 0; d < s.size(); ++d) {
    const int64_t r = (*reps)[d];
    if (r == 1) continue;
    auto m = mulDims(s[d], Dim::of(r));
    if (r < 1 || r > 64 || !m) {
      im.unsupported(n, "repeats must be 1 to 64");
      return;
    }
    std::vector<std::string> copies(static_cast<size_t>(r), e);
    e = fmt::format("concat({}, axis = {})", fmt::join(copies, ", "), d);
    s[d] = *m;
  }
  im.emit(n, 0, x.shape == s ? fmt::format("identity({})", e) : e, s);
}

void constantOfShape(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"value"})) return;
  auto shape = im.constInts(n, 0, "shape");
  if (!shape) return;
  Value v;
  double fill = 0;
  v.elem = 1;
  if (const auto* a = I::attr(n, "value")) {
    auto t = tensorFromProto(a->t(), "", "ConstantOfShape value");
    if (!t || t->numel() != 1) {
      im.unsupported(n, "value must be one number");
      return;
    }
    fill = t->data[0];
    v.elem = a->t().data_type();
  }
  int64_t total = 1;
  for (int64_t d : *shape) {
    if (d < 0 || (d > 0 && total > (1 << 24) / d)) {
      im.unsupported(n, "the shape is negative or too large to fold");
      return;
    }
    total *= d;
    v.shape.push_back(Dim::of(d));
  }
  if (v.isInt()) v.ints.assign(static_cast<size_t>(total), Dim::of(static_cast<int64_t>(fill)));
  else {
    v.elem = 1;
    v.floats.assign(static_cast<size_t>(total), fill);
  }
  if (total == 0) {
    im.unsupported(n, "an empty tensor");
    return;
  }
  im.setConst(n, 0, std::move(v));
}

void range(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  const Value &a = im.in(n, 0), &b = im.in(n, 1), &d = im.in(n, 2);
  if (!a.constant || !b.constant || !d.constant) {
    im.unsupported(n, "start, limit and delta must be constants");
    return;
  }
  auto num = [](const Value& v) { return v.isInt() ? double(v.ints[0].c) : v.floats[0]; };
  if ((a.isInt() && !a.ints[0].known()) || (b.isInt() && !b.ints[0].known())) {
    im.unsupported(n, "a range that depends on the batch size");
    return;
  }
  const double start = num(a), limit = num(b), delta = num(d);
  const double count = delta == 0 ? -1 : std::ceil((limit - start) / delta);
  if (!(count >= 1 && count <= (1 << 20))) {
    im.unsupported(n, "the range is empty or too long to fold");
    return;
  }
  Value v;
  v.elem = a.elem;
  v.shape = {Dim::of(static_cast<int64_t>(count))};
  for (int64_t i = 0; i < static_cast<int64_t>(count); ++i) {
    if (a.isInt()) v.ints.push_back(Dim::of(static_cast<int64_t>(start + double(i) * delta)));
    else v.floats.push_back(static_cast<float>(start + double(i) * delta));
  }
  im.setConst(n, 0, std::move(v));
}

// DepthToSpace and SpaceToDepth: a reshape, a transpose, a reshape.
void depthSpace(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"blocksize", "mode"})) return;
  const Value& x = im.in(n, 0);
  const int64_t b = I::attrInt(n, "blocksize", 0);
  if (x.shape.size() != 4 || b < 1 || !x.shape[1].known() || !x.shape[2].known() || !x.shape[3].known()) {
    im.unsupported(n, "needs [N, C, H, W] of fixed C, H, W and a blocksize");
    return;
  }
  const Dim N0 = x.shape[0];
  const int64_t C = x.shape[1].c, H = x.shape[2].c, W = x.shape[3].c;
  const std::string e = im.tensor(n, 0);
  std::string r;
  std::vector<Dim> out;
  if (n.op_type() == "DepthToSpace") {
    if (C % (b * b) != 0) {
      im.unsupported(n, "channels not divisible by blocksize²");
      return;
    }
    const bool crd = I::attrString(n, "mode", "DCR") == "CRD";
    const std::vector<Dim> mid = crd ? std::vector<Dim>{N0, Dim::of(C / (b * b)), Dim::of(b), Dim::of(b), Dim::of(H), Dim::of(W)}
                                     : std::vector<Dim>{N0, Dim::of(b), Dim::of(b), Dim::of(C / (b * b)), Dim::of(H), Dim::of(W)};
    out = {N0, Dim::of(C / (b * b)), Dim::of(H * b), Dim::of(W * b)};
    r = fmt::format("reshape(transpose(reshape({}, {}), perm = {}), {})", e, dimsText(mid),
                    crd ? "[0, 1, 4, 2, 5, 3]" : "[0, 3, 4, 1, 5, 2]", dimsText(out));
  } else {
    if (H % b != 0 || W % b != 0) {
      im.unsupported(n, "H and W not divisible by blocksize");
      return;
    }
    const std::vector<Dim> mid = {N0, Dim::of(C), Dim::of(H / b), Dim::of(b), Dim::of(W / b), Dim::of(b)};
    out = {N0, Dim::of(C * b * b), Dim::of(H / b), Dim::of(W / b)};
    r = fmt::format("reshape(transpose(reshape({}, {}), perm = [0, 3, 5, 1, 2, 4]), {})", e, dimsText(mid), dimsText(out));
  }
  im.emit(n, 0, r, out);
}

void hardSwish(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  composite(im, n, "{0} * maximum(minimum({0} * 0.16666667 + 0.5, 1), 0)");
}
void shrink(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"bias", "lambd"})) return;
  const std::string b = numberText(I::attrFloat(n, "bias", 0.0)), l = numberText(I::attrFloat(n, "lambd", 0.5));
  composite(im, n, "({0} - " + b + ") * step({0} - " + l + ") + ({0} + " + b + ") * step(neg({0}) - " + l + ")");
}
void celu(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"alpha"})) return;
  const std::string a = numberText(I::attrFloat(n, "alpha", 1.0));
  composite(im, n, "maximum({0}, 0) + minimum(" + a + " * (exp(minimum({0}, 0) / " + a + ") - 1), 0)");
}

// √(var + ε) of e over the axes `ax` ("[1, 2]"), kept as 1s.
std::string stdDevText(const std::string& e, const std::string& ax, double eps) {
  return fmt::format("sqrt(mean(square({0} - mean({0}, axis = {1}, keepdims = 1)), axis = {1}, keepdims = 1) + {2})", e,
                     ax, numberText(eps));
}

// Normalization over `axes` (kept as 1s), then `tail` (a scale and bias).
void normalizeOver(I& im, const N& n, const std::vector<int64_t>& axes, double eps, const std::string& tail) {
  const Value& x = im.in(n, 0);
  const std::string e = im.tensor(n, 0), ax = intsText(axes);
  im.emit(n, 0, fmt::format("({0} - mean({0}, axis = {1}, keepdims = 1)) / {2}{3}", e, ax, stdDevText(e, ax, eps), tail),
          x.shape);
}
void instanceNorm(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"epsilon"})) return;
  const Value& x = im.in(n, 0);
  if (x.shape.size() < 3) {
    im.unsupported(n, "input of rank below 3");
    return;
  }
  std::vector<int64_t> axes;
  for (size_t d = 2; d < x.shape.size(); ++d) axes.push_back(static_cast<int64_t>(d));
  // scale and bias [C] broadcast over the spatial axes.
  std::vector<Dim> cs = {im.in(n, 1).shape.empty() ? Dim::of(1) : im.in(n, 1).shape[0]};
  for (size_t d = 2; d < x.shape.size(); ++d) cs.push_back(Dim::of(1));
  Value sc = im.in(n, 1), bi = im.in(n, 2);
  std::string es, eb;
  if (sc.constant && bi.constant) {
    sc.shape = cs;
    bi.shape = cs;
    es = im.tensorOf(sc, n.name());
    eb = im.tensorOf(bi, n.name());
  } else {
    es = fmt::format("reshape({}, {})", im.tensor(n, 1), dimsText(cs));
    eb = fmt::format("reshape({}, {})", im.tensor(n, 2), dimsText(cs));
  }
  normalizeOver(im, n, axes, I::attrFloat(n, "epsilon", 1e-5), " * " + es + " + " + eb);
}
void meanVarianceNorm(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axes"})) return;
  std::vector<int64_t> axes = I::attrInts(n, "axes");
  if (axes.empty()) axes = {0, 2, 3};
  const size_t r = im.in(n, 0).shape.size();
  for (int64_t& a : axes) {
    a = normAxis(a, r);
    if (!axisOk(im, n, a, r)) return;
  }
  normalizeOver(im, n, axes, 1e-9, "");
}

void identity(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  Value v = im.in(n, 0);
  if (v.constant && !v.initializer.empty()) {
    // A copy of a weight (PyTorch shares equal initializers this way) is a
    // weight of its own: trained apart, as in the model it came from.
    if (im.trainable().count(v.initializer)) im.trainable().insert(n.output(0));
    v.initializer = n.output(0);
    im.values()[n.output(0)] = v;
    return;
  }
  im.alias(n, 0, v);
}

void constant(I& im, const N& n) {
  if (n.attribute_size() != 1) {
    im.unsupported(n, "a Constant takes exactly one value attribute");
    return;
  }
  const auto& a = n.attribute(0);
  Value v;
  v.constant = true;
  if (a.name() == "value") {
    auto t = tensorFromProto(a.t(), "", fmt::format("Constant '{}'", n.name()));
    if (!t) {
      im.unsupported(n, t.error().message);
      return;
    }
    v.elem = a.t().data_type();
    for (int64_t d : t->shape()) v.shape.push_back(Dim::of(d));
    if (v.isInt()) {
      for (double d : t->data) {
        // Read through doubles: beyond 2^62 a value no longer converts back.
        if (!(std::abs(d) < 0x1p62)) {
          im.unsupported(n, fmt::format("Constant '{}': integer {} is out of the range nnc's sizes take", n.name(), d));
          return;
        }
        v.ints.push_back(Dim::of(static_cast<int64_t>(d)));
      }
    } else {
      v.elem = 1;
      v.floats = t->data;
    }
  } else if (a.name() == "value_float") {
    v.floats = {a.f()};
  } else if (a.name() == "value_floats") {
    v.floats.assign(a.floats().begin(), a.floats().end());
    v.shape = {Dim::of(a.floats_size())};
  } else if (a.name() == "value_int") {
    v.elem = 7;
    v.ints = {Dim::of(a.i())};
  } else if (a.name() == "value_ints") {
    v.elem = 7;
    for (int64_t x : a.ints()) v.ints.push_back(Dim::of(x));
    v.shape = {Dim::of(a.ints_size())};
  } else {
    im.unsupported(n, fmt::format("attribute '{}' is not supported", a.name()));
    return;
  }
  im.setConst(n, 0, std::move(v));
}

void shapeOp(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"start", "end"})) return;
  const Value& x = im.in(n, 0);
  const int64_t r = static_cast<int64_t>(x.shape.size());
  auto clampIdx = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + r : v, 0, r); };
  const int64_t b = clampIdx(I::attrInt(n, "start", 0)), e = clampIdx(I::attrInt(n, "end", r));
  Value v;
  v.elem = 7;
  for (int64_t d = b; d < e; ++d) v.ints.push_back(x.shape[static_cast<size_t>(d)]);
  v.shape = {Dim::of(static_cast<int64_t>(v.ints.size()))};
  im.setConst(n, 0, std::move(v));
}

void gather(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axis"})) return;
  const Value& data = im.in(n, 0);
  const Value& idx = im.in(n, 1);
  if (!data.constant) {
    gatherSlices(im, n);
    return;
  }
  if (!idx.constant || data.shape.size() != 1) {
    im.unsupported(n, "a Gather by computed indices, or of a constant of rank above 1 (nnc has no gather op yet)");
    return;
  }
  Value v;
  v.elem = data.elem;
  v.shape = idx.shape;
  const int64_t size = data.shape[0].c;
  for (const Dim& i : idx.ints) {
    int64_t j = i.c < 0 ? i.c + size : i.c;
    if (!i.known() || j < 0 || j >= size) {
      im.unsupported(n, "index out of range");
      return;
    }
    if (!data.ints.empty()) v.ints.push_back(data.ints[static_cast<size_t>(j)]);
    else v.floats.push_back(data.floats[static_cast<size_t>(j)]);
  }
  im.setConst(n, 0, std::move(v));
}

void cast(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"to"})) return;
  const Value& x = im.in(n, 0);
  if (im.opset() < 6) {
    im.unsupported(n, "Cast before opset 6 (its type a string)");
    return;
  }
  const int to = static_cast<int>(I::attrInt(n, "to", 1));
  Value v = x;
  const bool toFloat = to == 1 || to == 10 || to == 11 || to == 16;
  if (x.constant) {
    if (toFloat && x.isInt()) {
      for (const Dim& d : x.ints) {
        if (!d.known()) {
          im.unsupported(n, "a size that depends on the batch cast to float");
          return;
        }
        v.floats.push_back(static_cast<double>(d.c));
      }
      v.ints.clear();
    } else if (!toFloat && !x.isInt()) {
      for (double f : x.floats) v.ints.push_back(Dim::of(static_cast<int64_t>(std::trunc(f))));
      v.floats.clear();
    }
    v.elem = toFloat ? 1 : to;
    im.setConst(n, 0, std::move(v));
    return;
  }
  // To f32 or f64 a computed f32 is itself; f16 and bfloat16 would round it.
  if (to != 1 && to != 11) {
    im.unsupported(n, fmt::format("a cast of a computed tensor to {}: nnc computes in f32", elemTypeName(to)));
    return;
  }
  im.alias(n, 0, x);
}

void expand(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  const Value& x = im.in(n, 0);
  const Value& s = im.in(n, 1);
  if (!s.constant || !s.isInt()) {
    im.unsupported(n, "the shape must be known at import time");
    return;
  }
  auto out = broadcastShapes(x.shape, s.ints);
  if (!out) {
    im.unsupported(n, "the shape does not broadcast");
    return;
  }
  if (*out == x.shape) {
    im.alias(n, 0, x);
    return;
  }
  im.emit(n, 0, fmt::format("broadcast_to({}, shape = {})", im.tensor(n, 0), dimsText(*out)), *out);
}

// ReduceSum/Mean/Max/Min/SumSquare/L1/L2.
void reduce(I& im, const N& n, const std::string& op, const char* pre, const char* post) {
  if (!onlyAttrs(im, n, {"axes", "keepdims", "noop_with_empty_axes"})) return;
  const Value& x = im.in(n, 0);
  std::vector<int64_t> axes;
  if (n.op_type() == "ReduceSum" && im.opset() >= 13) {
    auto a = axesOf(im, n, 13);
    if (!a) return;
    axes = *a;
  } else {
    axes = I::attrInts(n, "axes");
  }
  const bool keep = I::attrInt(n, "keepdims", 1) != 0;
  if (axes.empty() && I::attrInt(n, "noop_with_empty_axes", 0) != 0) {
    im.alias(n, 0, x);
    return;
  }
  std::vector<bool> reduced(x.shape.size(), axes.empty());
  for (int64_t& a : axes) {
    a = normAxis(a, x.shape.size());
    if (!axisOk(im, n, a, x.shape.size())) return;
    reduced[static_cast<size_t>(a)] = true;
  }
  std::vector<int64_t> all;
  std::vector<Dim> s;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    if (reduced[d]) all.push_back(static_cast<int64_t>(d));
    if (!reduced[d]) s.push_back(x.shape[d]);
    else if (keep) s.push_back(Dim::of(1));
  }
  std::string e = fmt::format("{}({}{}{}, axis = {}, keepdims = {})", op, pre, im.tensor(n, 0), *pre ? ")" : "",
                              intsText(all), keep ? 1 : 0);
  if (*post) e = fmt::format("{}({})", post, e);
  im.emit(n, 0, e, s);
}
void logSumExp(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axes", "keepdims"})) return;
  const Value& x = im.in(n, 0);
  std::vector<int64_t> axes = I::attrInts(n, "axes");
  if (axes.empty())
    for (size_t d = 0; d < x.shape.size(); ++d) axes.push_back(static_cast<int64_t>(d));
  std::vector<Dim> kept = x.shape, s;
  for (int64_t& a : axes) {
    a = normAxis(a, x.shape.size());
    if (!axisOk(im, n, a, x.shape.size())) return;
    kept[static_cast<size_t>(a)] = Dim::of(1);
  }
  std::sort(axes.begin(), axes.end());
  const bool keep = I::attrInt(n, "keepdims", 1) != 0;
  for (size_t d = 0; d < x.shape.size(); ++d)
    if (keep || !std::binary_search(axes.begin(), axes.end(), static_cast<int64_t>(d))) s.push_back(kept[d]);
  // Max-subtracted, so no exp overflows.
  const std::string e = im.tensor(n, 0), ax = intsText(axes);
  std::string r = fmt::format("log(sum(exp({0} - max({0}, axis = {1}, keepdims = 1)), axis = {1}, keepdims = 1)) + "
                              "max({0}, axis = {1}, keepdims = 1)", e, ax);
  if (!keep) r = fmt::format("reshape({}, {})", r, dimsText(s));
  im.emit(n, 0, r, s);
}

void argExtreme(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axis", "keepdims", "select_last_index"})) return;
  if (I::attrInt(n, "select_last_index", 0) != 0) {
    im.unsupported(n, "select_last_index = 1: nnc's argmax takes the first extreme");
    return;
  }
  const Value& x = im.in(n, 0);
  const int64_t axis = normAxis(I::attrInt(n, "axis", 0), x.shape.size());
  if (!axisOk(im, n, axis, x.shape.size())) return;
  const bool keep = I::attrInt(n, "keepdims", 1) != 0;
  std::vector<Dim> s, dropped;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    if (static_cast<int64_t>(d) != axis) dropped.push_back(x.shape[d]);
    s.push_back(static_cast<int64_t>(d) == axis ? Dim::of(1) : x.shape[d]);
  }
  const std::string e = im.tensor(n, 0);
  std::string r = fmt::format("argmax({}, axis = {})", n.op_type() == "ArgMin" ? "neg(" + e + ")" : e, axis);
  if (keep) r = fmt::format("reshape({}, {})", r, dimsText(s));
  im.emit(n, 0, r, keep ? s : dropped, 7);
}

// y = (x − mean) / √(var + ε) · scale + bias over the axes from `axis` on.
void layerNorm(I& im, const N& n) {
  if (!onlyAttrs(im, n, {"axis", "epsilon", "stash_type"})) return;
  const Value& x = im.in(n, 0);
  const int64_t axis = normAxis(I::attrInt(n, "axis", -1), x.shape.size());
  if (!axisOk(im, n, axis, x.shape.size())) return;
  std::vector<int64_t> axes;
  for (int64_t d = axis; d < static_cast<int64_t>(x.shape.size()); ++d) axes.push_back(d);
  const double eps = I::attrFloat(n, "epsilon", 1e-5);
  normalizeOver(im, n, axes, eps, " * " + im.tensor(n, 1) + (im.has(n, 2) ? " + " + im.tensor(n, 2) : ""));
  // The optional Mean and InvStdDev outputs, shaped as x with the normalized axes 1.
  const std::string e = im.tensor(n, 0), ax = intsText(axes);
  std::vector<Dim> kept = x.shape;
  for (int64_t d : axes) kept[static_cast<size_t>(d)] = Dim::of(1);
  if (n.output_size() > 1 && !n.output(1).empty())
    im.emit(n, 1, fmt::format("mean({}, axis = {}, keepdims = 1)", e, ax), kept);
  if (n.output_size() > 2 && !n.output(2).empty()) im.emit(n, 2, "1 / " + stdDevText(e, ax, eps), kept);
}

void sinh(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  composite(im, n, "(exp({0}) - exp(neg({0}))) / 2");
}
void cosh(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  composite(im, n, "(exp({0}) + exp(neg({0}))) / 2");
}
void reduceLogSum(I& im, const N& n);
void castLike(I& im, const N& n) {
  if (!onlyAttrs(im, n, {})) return;
  const Value& x = im.in(n, 0);
  const int to = im.in(n, 1).elem;
  if (x.constant || (to != 1 && to != 11)) {
    im.unsupported(n, fmt::format("a cast to {} (nnc computes in f32)", elemTypeName(to)));
    return;
  }
  im.alias(n, 0, x);
}

void reduceSum(I& im, const N& n) { reduce(im, n, "sum", "", ""); }
void reduceMean(I& im, const N& n) { reduce(im, n, "mean", "", ""); }
void reduceMax(I& im, const N& n) { reduce(im, n, "max", "", ""); }
void reduceMin(I& im, const N& n) { reduce(im, n, "max", "neg(", "neg"); }
void reduceSumSquare(I& im, const N& n) { reduce(im, n, "sum", "square(", ""); }
void reduceL1(I& im, const N& n) { reduce(im, n, "sum", "abs(", ""); }
void reduceL2(I& im, const N& n) { reduce(im, n, "sum", "square(", "sqrt"); }
void reduceLogSum(I& im, const N& n) { reduce(im, n, "sum", "", "log"); }

}  // namespace

const std::map<std::string, Translate>& translators() {
  static const std::map<std::string, Translate> table = {
      {"Relu", unary<kRelu>}, {"Sigmoid", unary<kSigmoid>}, {"Tanh", unary<kTanh>}, {"Exp", unary<kExp>},
      {"Log", unary<kLog>}, {"Sqrt", unary<kSqrt>}, {"Abs", unary<kAbs>}, {"Neg", unary<kNeg>},
      {"Sign", unary<kSign>}, {"LeakyRelu", leakyRelu}, {"Elu", elu}, {"Selu", selu}, {"Softplus", softplus},
      {"Softsign", softsign}, {"HardSigmoid", hardSigmoid}, {"Reciprocal", reciprocal}, {"Clip", clip},
      {"PRelu", prelu}, {"Add", binary<kAdd>}, {"Sub", binary<kSub>}, {"Mul", binary<kMul>}, {"Div", binary<kDiv>},
      {"Pow", binary<kPow>}, {"Max", variadic<kMaximum>}, {"Min", variadic<kMinimum>}, {"Sum", variadic<kSumOp>},
      {"Mean", variadic<kMeanOp>}, {"MatMul", matmul}, {"Gemm", gemm}, {"Conv", conv},
      {"ConvTranspose", convTranspose}, {"MaxPool", maxPool}, {"AveragePool", avgPool},
      {"GlobalAveragePool", globalAvgPool}, {"GlobalMaxPool", globalMaxPool}, {"BatchNormalization", batchNorm},
      {"Dropout", dropout}, {"Softmax", softmax<false>}, {"LogSoftmax", softmax<true>}, {"Reshape", reshape},
      {"Flatten", flatten}, {"Squeeze", squeeze}, {"Unsqueeze", unsqueeze}, {"Transpose", transpose},
      {"Concat", concat}, {"Slice", slice}, {"Identity", identity}, {"Constant", constant}, {"Shape", shapeOp},
      {"Gather", gather}, {"Cast", cast}, {"Expand", expand}, {"ReduceSum", reduceSum}, {"ReduceMean", reduceMean},
      {"ReduceMax", reduceMax}, {"ReduceMin", reduceMin}, {"ReduceSumSquare", reduceSumSquare},
      {"ReduceL1", reduceL1}, {"ReduceL2", reduceL2}, {"ReduceLogSumExp", logSumExp}, {"ArgMax", argExtreme},
      {"ArgMin", argExtreme}, {"LayerNormalization", layerNorm}, {"ThresholdedRelu", thresholdedRelu},
      {"ReduceLogSum", reduceLogSum}, {"Sinh", sinh}, {"Cosh", cosh}, {"CastLike", castLike},
      {"Split", split}, {"Tile", tile}, {"ConstantOfShape", constantOfShape}, {"Range", range},
      {"DepthToSpace", depthSpace}, {"SpaceToDepth", depthSpace}, {"HardSwish", hardSwish}, {"Shrink", shrink},
      {"Celu", celu}, {"InstanceNormalization", instanceNorm}, {"MeanVarianceNormalization", meanVarianceNorm},
      {"Greater", compare<0>}, {"Less", compare<1>}, {"GreaterOrEqual", compare<2>}, {"LessOrEqual", compare<3>},
  };
  return table;
}

}  // namespace nnc::onnxio
