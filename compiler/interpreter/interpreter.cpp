#include "compiler/interpreter/interpreter.h"

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

void roundToF32(Tensor& t) {
  for (double& v : t.data) v = static_cast<double>(static_cast<float>(v));
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

Expected<std::vector<Tensor>> interpret(const Graph& g, const TensorMap& feeds, const EvalOptions& opt,
                                        const std::vector<ValueId>& targets) {
  const std::vector<bool> live = liveNodes(g, targets);
  // The oracle keeps every value, in double: refuse in words what cannot fit.
  double bytes = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (live[i]) bytes += 8.0 * static_cast<double>(g.nodes[i].type.numel());
  if (bytes > kMaxInterpreterBytes)
    return error("the reference interpreter would need {:.1f} GiB for the values of model '{}' (limit {} GiB)",
                 bytes / (1 << 30), g.name, kMaxInterpreterBytes / (1 << 30));
  std::vector<Tensor> vals(g.size());
  Rng rng(opt.seed);
  EvalEnv env{opt.training, &rng};
  for (size_t i = 0; i < g.size(); ++i) {
    if (!live[i]) continue;
    const Node& n = g.nodes[i];
    const std::string_view op = n.op->name;
    if (n.op->kind == OpKind::Source) {
      auto it = n.name.empty() ? feeds.end() : feeds.find(n.name);
      if (n.op->is(OpId::Const)) {
        const std::vector<double>& v = n.attrs.floats("value");
        vals[i] = Tensor(n.type);
        for (size_t k = 0; k < vals[i].data.size(); ++k) vals[i].data[k] = v.size() == 1 ? v[0] : v.at(k);
      } else if (it != feeds.end()) {
        if (it->second.shape() != n.type.shape)
          return error(n.loc, "{} '{}' is {}, but the value given is {}", op, n.name, typeString(n.type),
                       typeString(it->second.type));
        vals[i] = Tensor(n.type, it->second.data);
      } else if (n.op->is(OpId::Input) && !n.attrs.floats("example").empty()) {
        const std::vector<double>& v = n.attrs.floats("example");
        vals[i] = Tensor(n.type);
        for (size_t k = 0; k < vals[i].data.size(); ++k) vals[i].data[k] = v.size() == 1 ? v[0] : v.at(k);
      } else if (n.op->is(OpId::Param)) {
        NNC_TRY(vals[i], initParam(n, opt.seed));
      } else {
        return error(n.loc, "no value given for {} '{}' ({})", op, n.name, typeString(n.type));
      }
    } else {
      std::vector<const Tensor*> ins;
      for (ValueId v : n.inputs) ins.push_back(&vals[static_cast<size_t>(v)]);
      vals[i] = Tensor(n.type);
      Status st = n.op->eval(EvalArgs{ins, n.attrs, vals[i], env});
      if (!st) {
        Diagnostic d = std::move(st.error());
        if (!d.loc.valid()) d.loc = n.loc;
        return d;
      }
    }
    if (!opt.f64 && n.type.dtype == DType::F32) roundToF32(vals[i]);
  }
  return vals;
}

}  // namespace nnc
