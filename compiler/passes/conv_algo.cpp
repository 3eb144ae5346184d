// conv-algo: each fused convolution gets a concrete algorithm, so the choice
// is the compiler's, visible in the optimized graph and the loop IR, rather
// than made behind the runtime call. By default it is the runtime's own
// choice (convAlgoChoose: a function of the shapes only, never of the
// thread count); --conv-algo forces one wherever it fits, and a node it
// does not fit keeps the runtime's choice, logged under -v.
#include <ostream>

#include <fmt/format.h>

#include "compiler/ops/conv_algo.h"
#include "compiler/passes/passes.h"

namespace nnc::passes {

Expected<Optimized> chooseConvAlgos(const Graph& g, const std::vector<bool>&, const PassOptions& opt) {
  ConvAlgo forced = ConvAlgo::Auto;
  if (!opt.convAlgo.empty()) {
    NNC_TRY(forced, parseConvAlgo("--conv-algo", opt.convAlgo));
  }
  Rewriter r(g);
  for (ValueId id = 0; id < static_cast<ValueId>(g.size()); ++id) {
    const ValueId copied = r.copy(id);
    const std::optional<FusedConv> c = fusedConvOf(g, id);
    if (!c) continue;
    const ConvAlgo chosen = convAlgoChoose(c->geom, c->dir, c->act, c->pool);
    ConvAlgo algo = chosen;
    if (forced != ConvAlgo::Auto) {
      if (convAlgoFits(forced, c->geom, c->dir, c->act, c->pool)) {
        algo = forced;
      } else if (opt.log && opt.dump) {
        const Node& n = g.node(id);
        *opt.dump << fmt::format("conv-algo: %{}{} ({} {}, {}): {} does not fit, keeping the runtime's {}\n", id,
                                 n.name.empty() ? "" : " " + n.name, n.op->name, typeString(n.type),
                                 convDirName(c->dir), convAlgoName(forced), convAlgoName(chosen));
      }
    }
    r.out().node(copied).attrs.set("algo", std::string(convAlgoName(algo)));
  }
  return r.finish();
}

}  // namespace nnc::passes
