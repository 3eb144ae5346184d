#include "cli/conv_layers.h"

#include <fmt/format.h>

namespace nnc::cli {

std::vector<ConvLayer> convLayers(const Graph& g) {
  std::vector<ConvLayer> layers;
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const std::optional<FusedConv> c = fusedConvOf(g, id);
    if (!c) continue;
    const Node& n = g.node(id);
    const ConvGeom& k = c->geom;
    std::string geometry = fmt::format("{}x{}x{}x{} -> {}, {}x{}", k.n, k.c, k.h, k.w, k.f, k.kh, k.kw);
    geometry += k.sh == k.sw ? fmt::format(" s{}", k.sh) : fmt::format(" s{}x{}", k.sh, k.sw);
    geometry += k.ph == k.pw ? fmt::format(" p{}", k.ph) : fmt::format(" p{}x{}", k.ph, k.pw);
    if (k.groups != 1) geometry += fmt::format(" g{}", k.groups);
    if (c->pool) geometry += fmt::format(" pool{}", c->pool);
    // An unnamed node (a convolution whose relu took the name) by its id
    // and the layer call that made it: "%4 conv1" from layer "conv2d conv1".
    std::string label = n.name.empty() ? fmt::format("%{}", id) : n.name;
    if (n.name.empty() && !n.layer.empty()) label += fmt::format(" {}", n.layer.substr(n.layer.rfind(' ') + 1));
    layers.push_back({std::move(label), std::string(n.op->name), std::move(geometry), *c, convAlgoAttr(n.attrs)});
  }
  return layers;
}

int fittingLayers(const std::vector<ConvLayer>& layers, ConvAlgo a) {
  int n = 0;
  for (const ConvLayer& l : layers) n += convAlgoFits(a, l.conv.geom, l.conv.dir, l.conv.act, l.conv.pool);
  return n;
}

}  // namespace nnc::cli
