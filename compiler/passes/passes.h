// The graph passes, one per file of this folder; pipeline.cpp runs them in
// order, by name. A new pass is declared here and added to that table.
#pragma once
#include <vector>

#include "compiler/passes/rewriter.h"

namespace nnc::passes {

// The passes (see pipeline.cpp for their order). `external` marks values
// the caller reads: they keep their value and a node of their own.
Expected<Optimized> simplify(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> foldConstants(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> eliminateCommon(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> eliminateDead(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseConv(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fusePool(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseBatchnorm(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseEpilogue(const Graph& g, const std::vector<bool>& external);
Expected<Optimized> fuseUpdate(const Graph& g, const std::vector<bool>& external);
// The one pass that reads options: opt.convAlgo (and opt.log for its notes).
Expected<Optimized> chooseConvAlgos(const Graph& g, const std::vector<bool>& external, const PassOptions& opt);

}  // namespace nnc::passes
