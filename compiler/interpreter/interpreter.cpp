#include "compiler/interpreter/interpreter.h"

#include "runtime/rng.h"

namespace nnc {

namespace {

void roundToF32(Tensor& t) {
  for (double& v : t.data) v = static_cast<double>(static_cast<float>(v));
}

}  // namespace

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
