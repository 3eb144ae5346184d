#include "compiler/ops/conv_algo.h"

#include "compiler/ops/activation.h"
#include "compiler/ops/lower_rules.h"

namespace nnc {

std::string convAlgoNames() {
  std::string s;
  for (int i = 0; i < kConvAlgoCount; ++i) s += std::string(i ? ", " : "") + convAlgoName(ConvAlgo(i));
  return s;
}

Expected<ConvAlgo> parseConvAlgo(std::string_view what, const std::string& name) {
  ConvAlgo a = ConvAlgo::Auto;
  if (!convAlgoFromName(name.c_str(), &a))
    return error("{}: unknown convolution algorithm \"{}\"; the algorithms are {}", what, name, convAlgoNames());
  return a;
}

ConvAlgo convAlgoAttr(const Attrs& a) {
  ConvAlgo algo = ConvAlgo::Auto;
  convAlgoFromName(a.s("algo").c_str(), &algo);
  return algo;
}

const char* convDirName(ConvDir d) {
  switch (d) {
    case ConvDir::Forward: return "forward";
    case ConvDir::InputGrad: return "input grad";
    case ConvDir::WeightGrad: return "weight grad";
  }
  return "?";
}

std::optional<FusedConv> fusedConvOf(const OpDef& op, const std::vector<TensorType>& in, const TensorType& out,
                                     const Attrs& a) {
  // Each op's image, weight shape and filter count: the forward
  // convolution's, which the gradients are computed against.
  FusedConv c;
  PatchGeom p;
  int64_t filters = 0;
  if (op.is(OpId::Conv2dFused) || op.is(OpId::Conv2dPoolFused) || op.is(OpId::Conv2dResidualFused)) {
    p = convWindows(in[0].shape, in[1].shape, a);
    filters = in[1].shape[0];
    c.act = actAttr(a);
    c.pool = a.has("pool") ? a.i("pool") : 0;
  } else if (op.is(OpId::Conv2dGradWeightFused)) {
    p = convWindows(in[0].shape, out.shape, a);  // x and dw
    filters = in[1].shape[1];                    // dy's channels
    c.dir = ConvDir::WeightGrad;
  } else if (op.is(OpId::ConvTranspose2dFused) || op.is(OpId::ConvTranspose2dMaskFused)) {
    p = convWindows(out.shape, in[1].shape, a);  // our result is the forward image
    filters = in[0].shape[1];
    c.dir = ConvDir::InputGrad;
  } else {
    return std::nullopt;
  }
  c.geom = ConvGeom{.n = p.n, .c = p.c, .h = p.h, .w = p.w, .f = filters, .kh = p.kh, .kw = p.kw,
                    .sh = p.sh, .sw = p.sw, .ph = p.ph, .pw = p.pw, .groups = a.i("groups")};
  return c;
}

std::optional<FusedConv> fusedConvOf(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  std::vector<TensorType> in;
  for (ValueId x : n.inputs) in.push_back(g.type(x));
  return fusedConvOf(*n.op, in, n.type, n.attrs);
}

}  // namespace nnc
