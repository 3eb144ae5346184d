#include "compiler/passes/pipeline.h"

#include <algorithm>
#include <ostream>

#include <fmt/format.h>

#include "compiler/passes/passes.h"

namespace nnc {

namespace {

using PassFn = Expected<Optimized> (*)(const Graph&, const std::vector<bool>&, const PassOptions&);

// A pass that takes no options.
template <Expected<Optimized> (*F)(const Graph&, const std::vector<bool>&)>
Expected<Optimized> plain(const Graph& g, const std::vector<bool>& external, const PassOptions&) {
  return F(g, external);
}

struct Pass {
  std::string name;
  std::string fusion;  // the --no-fuse group that also switches it, if any
  PassFn run;
};

// The order matters: cleanups first, so fusions see the simplest graph;
// fold-batchnorm before pool and epilogue, so that the relu (and max-pool)
// after an inference batchnorm reach the convolution it folded into; pool
// before epilogue, so a relu feeding a max-pool goes into the pooling
// (it shrinks there 4×) rather than into the convolution's store;
// fuse-residual after epilogue, which leaves the convolution of a residual
// sum alone (its relu reads the sum, not the convolution); fuse-relu-grad
// after epilogue, whose step(relu(z)) is the step it looks for; a last
// dce drops what fusion left unused; conv-algo comes last, when each
// convolution's final form (its fused activation and pooling) is known;
// overlap-allreduce last, when every gradient's kernel is final.
const std::vector<Pass>& pipeline() {
  static const std::vector<Pass> p = {
      {"expand-attention", "", passes::expandAttention},
      {"simplify", "", plain<passes::simplify>},
      {"fold", "", plain<passes::foldConstants>},
      {"cse", "", plain<passes::eliminateCommon>},
      {"dce", "", plain<passes::eliminateDead>},
      {"fuse-conv", "conv", plain<passes::fuseConv>},
      {"fold-batchnorm", "batchnorm", passes::foldBatchnorm},
      {"fuse-pool", "pool", plain<passes::fusePool>},
      {"fuse-batchnorm", "batchnorm", plain<passes::fuseBatchnorm>},
      {"fuse-epilogue", "epilogue", plain<passes::fuseEpilogue>},
      {"fuse-residual", "epilogue", plain<passes::fuseResidual>},
      {"fuse-relu-grad", "epilogue", plain<passes::fuseReluGrad>},
      {"fuse-update", "update", plain<passes::fuseUpdate>},
      {"dce", "", plain<passes::eliminateDead>},
      {"conv-algo", "", passes::chooseConvAlgos},
      {"overlap-allreduce", "", plain<passes::overlapAllreduce>},
  };
  return p;
}

}  // namespace

const std::vector<std::string>& fusionNames() {
  static const std::vector<std::string> names = {"conv", "pool", "batchnorm", "epilogue", "update", "softmax_ce", "elementwise", "attention"};
  return names;
}

const std::vector<std::string>& passNames() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const Pass& p : pipeline())
      if (std::find(n.begin(), n.end(), p.name) == n.end()) n.push_back(p.name);
    return n;
  }();
  return names;
}

PassOptions PassOptions::unfused() {
  PassOptions o;
  for (const std::string& f : fusionNames()) o.disabled.insert(f);
  return o;
}

Expected<Optimized> optimizeGraph(const Graph& g, const std::vector<ValueId>& roots, const PassOptions& opt) {
  Optimized cur{g, {}};
  for (ValueId v = 0; v < static_cast<ValueId>(g.size()); ++v) cur.map.push_back(v);
  for (const Pass& pass : pipeline()) {
    if (!opt.enabled(pass.name) || (!pass.fusion.empty() && !opt.enabled(pass.fusion))) continue;
    std::vector<bool> external(cur.graph.size(), false);
    for (ValueId r : roots)
      if (const ValueId m = cur.map[static_cast<size_t>(r)]; m != kNoValue) external[static_cast<size_t>(m)] = true;
    const size_t before = cur.graph.size();
    NNC_TRY(Optimized next, pass.run(cur.graph, external, opt));
    for (ValueId& m : cur.map)
      if (m != kNoValue) m = next.map[static_cast<size_t>(m)];
    cur.graph = std::move(next.graph);
    for (ValueId r : roots)
      NNC_INTERNAL_ASSERT(cur.map[static_cast<size_t>(r)] != kNoValue, fmt::format("in pass {}", pass.name),
                          "dropped value %{} that the caller reads", r);
    if (opt.dump && opt.log) *opt.dump << fmt::format("pass {:<16} {:>4} -> {:>4} nodes\n", pass.name, before, cur.graph.size());
    if (opt.dump && (opt.dumpAfter == pass.name || opt.dumpAfter == "all")) {
      *opt.dump << fmt::format("# after {}\n", pass.name);
      *opt.dump << (opt.dot ? printDot(cur.graph) : printGraph(cur.graph));
    }
  }
  return cur;
}

LowerOptions mapCommits(LowerOptions lo, const std::vector<ValueId>& map) {
  for (auto& [param, next] : lo.commits) {
    param = map[static_cast<size_t>(param)];
    next = map[static_cast<size_t>(next)];
  }
  return lo;
}

LowerOptions loweringFor(LowerOptions lo, const PassOptions& opt) {
  lo.fuseElementwise = lo.fuseElementwise && opt.enabled("elementwise");
  lo.fuseSoftmaxCe = lo.fuseSoftmaxCe && opt.enabled("softmax_ce");
  lo.planMemory = lo.planMemory && opt.optimize;
  if (opt.log) lo.log = opt.dump;
  return lo;
}

}  // namespace nnc
