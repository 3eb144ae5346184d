#include "compiler/graph/graph_util.h"

#include <cmath>

#include "runtime/rng.h"

namespace nnc {

namespace {

// Fan-in of a weight in nnc's layouts: dense W is [in, out]; conv W is
// [F, C/groups, KH, KW] (fan-in C/groups·KH·KW, as PyTorch); a bias, its length.
double fanIn(const Shape& s) {
  if (s.empty()) return 1;
  if (s.size() == 1 || s.size() == 2) return static_cast<double>(s[0]);
  double n = static_cast<double>(s[1]);
  for (size_t i = 2; i < s.size(); ++i) n *= static_cast<double>(s[i]);
  return n;
}

// Each param draws from its own stream, keyed by name, so adding a param to a
// model does not change how the others are initialized.
uint64_t streamSeed(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ULL;
  return seed * 0x9e3779b97f4a7c15ULL ^ h;
}

}  // namespace

Expected<Tensor> initParam(const Node& n, uint64_t seed) {
  Tensor t(n.type);
  const std::string& kind = n.attrs.s("init");
  const std::vector<double>& a = n.attrs.floats("args");
  auto arg = [&](size_t i, double dflt) { return i < a.size() ? a[i] : dflt; };
  Rng rng(streamSeed(seed, n.name));
  if (kind == "zeros") {
  } else if (kind == "constant") {
    for (double& v : t.data) v = arg(0, 0);
  } else if (kind == "normal") {
    for (double& v : t.data) v = arg(0, 0.01) * rng.normal();
  } else if (kind == "uniform") {
    for (double& v : t.data) v = rng.uniform(arg(0, -0.05), arg(1, 0.05));
  } else if (kind == "xavier" || kind == "he") {
    // The course notes' Xavier and He: normal with std sqrt(1/n) and sqrt(2/n).
    const double stddev = std::sqrt((kind == "he" ? 2.0 : 1.0) / fanIn(n.type.shape));
    for (double& v : t.data) v = stddev * rng.normal();
  } else if (kind == "load") {
    if (!n.initial)
      return error(n.loc, "param '{}': its values (load(\"{}\")) were never read: an internal error, a bug in nnc",
                   n.name, n.attrs.s("file"));
    if (n.initial->size() != t.data.size())
      return error(n.loc, "param '{}' has {} values for {} elements: an internal error, a bug in nnc", n.name,
                   n.initial->size(), t.data.size());
    t.data = *n.initial;
  } else if (kind == "value") {
    if (a.size() != t.data.size() && a.size() != 1)
      return error(n.loc, "param '{}' has {} values for {} elements", n.name, a.size(), t.data.size());
    for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = a.size() == 1 ? a[0] : a[i];
  } else {
    return error(n.loc, "param '{}': unknown initializer '{}'", n.name, kind);
  }
  return t;
}

Expected<TensorMap> initParams(const Graph& g, uint64_t seed) {
  TensorMap m;
  for (ValueId p : g.params) {
    NNC_TRY(Tensor t, initParam(g.node(p), seed));
    m[g.node(p).name] = std::move(t);
  }
  return m;
}

std::vector<bool> liveNodes(const Graph& g, const std::vector<ValueId>& targets) {
  std::vector<bool> live(g.size(), targets.empty());
  for (ValueId t : targets) live[static_cast<size_t>(t)] = true;
  for (size_t i = g.size(); i-- > 0;)
    if (live[i])
      for (ValueId v : g.nodes[i].inputs) live[static_cast<size_t>(v)] = true;
  return live;
}

}  // namespace nnc
