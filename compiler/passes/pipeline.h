// The optimizer: small named graph passes run in a fixed, logged order
// between differentiation and lowering (Halide's Lower.cpp in spirit), and
// the fusions lowering performs itself. Each can be switched off by name;
// -O0 switches every one off (and memory planning), leaving each op lowered
// by its own rule: the seeds' algorithms (im2col buffers, separate softmax
// and loss kernels).
#pragma once
#include <iosfwd>
#include <set>
#include <string>
#include <vector>

#include "compiler/graph/graph.h"
#include "compiler/lower/lower.h"

namespace nnc {

// The fusion groups `--no-fuse=` names, each a pass or a lowering option:
//   conv        implicit im2col: convolutions pack patches straight from the image
//   pool        relu before max-pooling computed inside the pooling (and its gradient)
//   batchnorm   training batchnorm (and a following relu) as two sweeps, its gradient as two;
//               inference batchnorm after a convolution folded into its weight and bias
//   epilogue    bias and activation applied in the GEMM's store
//   update      SGD's step W − lr·dW inside the GEMM computing dW (matmul_update)
//   softmax_ce  softmax cross-entropy's loss and gradient in one kernel
//   elementwise pointwise chains in one loop, and same-shape pointwise kernels
//               along producer→consumer edges in one loop storing each (multi-output)
const std::vector<std::string>& fusionNames();

struct PassOptions {
  bool optimize = true;           // false (-O0): no pass, no fusion, no memory planning
  std::set<std::string> disabled; // fusion names or pass names
  std::string dumpAfter;          // a pass name, "lower", or "all"
  // The program runs batchnorm on its running statistics (LowerOptions::
  // training false), which fold-batchnorm needs; compileProgram sets it
  // from the lowering options. Off by default: a graph of unknown mode is
  // treated as training, where folding would be wrong.
  bool inference = false;
  std::ostream* dump = nullptr;   // where dumps go (and -v's pass log)
  bool log = false;               // one line per pass: nodes before -> after
  bool dot = false;               // graph dumps as Graphviz (each a digraph after its "# after" line)
  // --conv-algo: the algorithm the conv-algo pass gives every fused
  // convolution it fits (a convAlgoName); empty or "auto": the runtime's choice.
  std::string convAlgo;

  bool enabled(const std::string& name) const { return optimize && disabled.count(name) == 0; }
  // Everything off but the cleanups and memory planning: what `nnc bench`
  // compares against.
  static PassOptions unfused();
};

// The graph passes, in the order they run.
const std::vector<std::string>& passNames();

// A graph after optimization, with where each original value went: map[v]
// is v's id in `graph`, or kNoValue where v was fused away or dead. Sources
// (inputs, labels, params, consts) always survive.
struct Optimized {
  Graph graph;
  std::vector<ValueId> map;
};

// Runs the enabled passes over `g`. `roots` (targets, commit pairs) are
// values the caller reads: no pass removes or fuses them away.
Expected<Optimized> optimizeGraph(const Graph& g, const std::vector<ValueId>& roots, const PassOptions& opt);

// `lo` with its commits renamed through an optimizer's map.
LowerOptions mapCommits(LowerOptions lo, const std::vector<ValueId>& map);

// The lowering options the fusions switch (elementwise, softmax_ce) and
// memory planning under -O0, applied on top of `lo`; with `log`, lowering
// logs its fusions where the passes log.
LowerOptions loweringFor(LowerOptions lo, const PassOptions& opt);

}  // namespace nnc
