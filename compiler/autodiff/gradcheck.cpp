#include "compiler/autodiff/gradcheck.h"

#include <algorithm>
#include <cmath>

#include "runtime/rng.h"

namespace nnc {

namespace {

// How many ids an i32 value may take: the rows of the embedding table it
// indexes, a one_hot's depth, or the classes of the predictions it labels
// (their last axis), found through the shape ops between them; 2 if none.
int64_t idRange(const Graph& g, ValueId v, int depth = 0) {
  for (const Node& n : g.nodes)
    for (size_t k = 0; k < n.inputs.size(); ++k) {
      if (n.inputs[k] != v) continue;
      const std::string_view op = n.op->name;
      if (op == "embedding" && k == 0) return g.type(n.inputs[1]).shape[0];
      if (op == "one_hot") return n.attrs.i("depth");
      if (k > 0 && g.type(n.inputs[0]).rank() > 0) return g.type(n.inputs[0]).shape.back();
      if (n.op->view || op == "transpose" || op == "slice" || op == "concat")
        if (depth < 16) {
          const ValueId self = static_cast<ValueId>(&n - g.nodes.data());
          if (const int64_t r = idRange(g, self, depth + 1); r != 2) return r;
        }
    }
  return 2;
}

void fillIds(const Graph& g, ValueId v, Rng& rng, Tensor& t) {
  const uint64_t range = static_cast<uint64_t>(std::max<int64_t>(idRange(g, v), 1));
  for (double& x : t.data) x = static_cast<double>(rng.below(range));
}

}  // namespace

TensorMap randomFeeds(const Graph& g, uint64_t seed) {
  Rng rng(seed ^ 0x5eedf00dULL);
  TensorMap m;
  for (ValueId v : g.inputs) {
    Tensor t(g.type(v));
    if (t.type.dtype == DType::I32) fillIds(g, v, rng, t);
    else
      for (double& x : t.data) x = rng.normal();
    m[g.node(v).name] = std::move(t);
  }
  for (ValueId v : g.labels) {
    Tensor t(g.type(v));
    if (t.type.dtype == DType::F32) {
      for (double& x : t.data) x = rng.uniform();
    } else {
      fillIds(g, v, rng, t);
    }
    m[g.node(v).name] = std::move(t);
  }
  return m;
}

namespace {

// The branch pattern of every non-smooth node, concatenated.
std::vector<int64_t> branchPattern(const Graph& g, const std::vector<Tensor>& vals) {
  std::vector<int64_t> pattern;
  for (const Node& n : g.nodes) {
    if (!n.op->branches) continue;
    std::vector<const Tensor*> ins;
    bool live = true;
    for (ValueId v : n.inputs) {
      ins.push_back(&vals[static_cast<size_t>(v)]);
      live &= !vals[static_cast<size_t>(v)].data.empty() || vals[static_cast<size_t>(v)].type.numel() == 0;
    }
    if (live) n.op->branches(ins, n.attrs, pattern);
  }
  return pattern;
}

}  // namespace

Expected<GradCheckReport> gradCheck(const Graph& fwd, const TensorMap& given, const GradCheckOptions& opt) {
  NNC_TRY(GradGraph gg, differentiate(fwd));
  TensorMap feeds = given;
  NNC_TRY(TensorMap params, initParams(fwd, opt.seed));
  for (auto& [name, t] : params) feeds.try_emplace(name, std::move(t));
  const EvalOptions eo{true, opt.training, opt.seed};

  std::vector<ValueId> gradTargets;
  for (const auto& [_, v] : gg.grads) gradTargets.push_back(v);
  NNC_TRY(std::vector<Tensor> symbolic, interpret(gg.graph, feeds, eo, gradTargets));

  GradCheckReport report;
  Rng pick(opt.seed + 1);
  for (size_t p = 0; p < gg.grads.size(); ++p) {
    const auto& [name, gv] = gg.grads[p];
    const Tensor& grad = symbolic[static_cast<size_t>(gv)];
    ParamCheck pc;
    pc.name = name;
    const int64_t n = grad.numel();
    std::vector<int64_t> entries;
    if (n <= opt.samples) {
      for (int64_t i = 0; i < n; ++i) entries.push_back(i);
    } else {
      while (static_cast<int>(entries.size()) < opt.samples) {
        const auto i = static_cast<int64_t>(pick.below(static_cast<uint64_t>(n)));
        if (std::find(entries.begin(), entries.end(), i) == entries.end()) entries.push_back(i);
      }
    }
    for (int64_t i : entries) {
      Tensor& x = feeds.at(name);
      const double orig = x.data[static_cast<size_t>(i)];
      x.data[static_cast<size_t>(i)] = orig + opt.eps;
      NNC_TRY(std::vector<Tensor> plus, interpret(fwd, feeds, eo));
      x.data[static_cast<size_t>(i)] = orig - opt.eps;
      NNC_TRY(std::vector<Tensor> minus, interpret(fwd, feeds, eo));
      x.data[static_cast<size_t>(i)] = orig;
      if (branchPattern(fwd, plus) != branchPattern(fwd, minus)) {
        ++pc.kinks;
        continue;
      }
      const double fp = plus[static_cast<size_t>(fwd.loss)].data[0], fm = minus[static_cast<size_t>(fwd.loss)].data[0];
      const double numeric = (fp - fm) / (2 * opt.eps), analytic = grad.data[static_cast<size_t>(i)];
      const double abs = std::abs(numeric - analytic);
      const double rel = abs / std::max({std::abs(numeric), std::abs(analytic), 1e-300});
      const double noise = 16 * 0x1p-52 * std::max({std::abs(fp), std::abs(fm), 1.0}) / opt.eps;
      ++pc.checked;
      pc.maxAbs = std::max(pc.maxAbs, abs);
      pc.maxRel = std::max(pc.maxRel, rel);
      if (!(abs <= noise || rel <= opt.rtol)) pc.ok = false;  // NaN fails too
    }
    report.ok = report.ok && pc.ok;
    report.params.push_back(std::move(pc));
  }
  return report;
}

}  // namespace nnc
