// The nnc commands (each in its cli/cmd_*.cpp) and what they share: option
// parsing (options.cpp), reading models and values (model_io.cpp), printing
// numbers and tensors (format.cpp).
#pragma once
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "cli/frontend.h"
#include "compiler/autodiff/autodiff.h"
#include "compiler/elaborate/elaborate.h"
#include "compiler/graph/graph_util.h"
#include "compiler/passes/pipeline.h"

namespace nnc::cli {

struct OptionSpec {
  const char* name;  // without the leading --
  bool takesValue;
  const char* metavar;
  const char* help;
  char shortName = 0;  // e.g. 'v' for -v
};

struct Options {
  std::string file;                // the first FILE
  std::vector<std::string> files;  // every FILE, where the command takes several (onnx-test)
  std::map<std::string, std::vector<std::string>> values;  // every occurrence, in order

  bool flag(const std::string& n) const { return values.count(n) != 0; }
  std::string value(const std::string& n, std::string dflt = "") const {
    auto it = values.find(n);
    return it == values.end() ? dflt : it->second.back();
  }
  const std::vector<std::string>& all(const std::string& n) const;
};

Expected<Options> parseOptions(std::string_view command, const std::vector<OptionSpec>& specs,
                               const std::vector<std::string>& args, bool manyFiles = false);
// --model and --set, shared by every command that builds a model.
Expected<ElaborateOptions> elaborateOptions(const Options& o);
// FILE built with those options; errors are printed to `err`.
std::optional<Loaded> loadFor(const Options& o, std::ostream& err);
// What a command's errors go through: prints the diagnostic against the
// model's sources (file:line:col, the line, a caret) and gives exit code 1.
inline auto reporter(const Loaded& l, std::ostream& err) {
  return [&l, &err](const Diagnostic& d) {
    err << l.sm->render(d);
    return 1;
  };
}

// --weights W.npz and --input NAME=F.npy as interpreter feeds.
Expected<TensorMap> readFeeds(const Options& o, const Graph& g, bool& labelsGiven);
Expected<uint64_t> seedOption(const Options& o);  // --seed, default 42
// --NAME N: dflt when absent; a non-negative integer, and with `positive`
// one above 0 (where 0 would have to mean "all", it is refused in words).
Expected<int64_t> countOption(const Options& o, const std::string& name, int64_t dflt, bool positive);
// Replaces every param of `params` (g's) by its value in `path` (a checkpoint
// folder or an .npz); a param missing there or of another shape is an error.
Status overlayWeights(TensorMap& params, const std::string& path, const Graph& g);
// An error naming `what` (e.g. "param 'W1' in ckpt/") and the first NaN or
// infinite value's flat index and, for `shape` of rank 2 or more, its index
// per axis; ok if every value is finite. A NaN there would flow into every
// output (or, through an old relu, vanish) with exit 0, so readers refuse.
Status requireFinite(const std::vector<double>& data, const Shape& shape, const std::string& what);

int runCheck(const Options& o, std::ostream& out, std::ostream& err);
int runGraph(const Options& o, std::ostream& out, std::ostream& err);
int runEval(const Options& o, std::ostream& out, std::ostream& err);
int runGrad(const Options& o, std::ostream& out, std::ostream& err);
int runGradcheck(const Options& o, std::ostream& out, std::ostream& err);
int runRun(const Options& o, std::ostream& out, std::ostream& err);
int runEvalData(const Options& o, std::ostream& out, std::ostream& err);  // eval --weights CKPT without --input
int runPredict(const Options& o, std::ostream& out, std::ostream& err);
int runSample(const Options& o, std::ostream& out, std::ostream& err);
int runEmitLlvm(const Options& o, std::ostream& out, std::ostream& err);
int runEmitCpp(const Options& o, std::ostream& out, std::ostream& err);
int runBench(const Options& o, std::ostream& out, std::ostream& err);
int runImport(const Options& o, std::ostream& out, std::ostream& err);
int runExportOnnx(const Options& o, std::ostream& out, std::ostream& err);
int runOnnxTest(const Options& o, std::ostream& out, std::ostream& err);

// What -o PATH names: no PATH or "-" is `out` (standard output), anything
// else a file, written atomically.
Status writeOutput(const std::string& path, std::string_view text, std::ostream& out);

// --threads N (0 or absent: every core), applied to the thread pool.
Status applyThreads(const Options& o);
// -O0..-O3 (default 3).
Expected<int> optLevelOption(const Options& o);
// -O0 (every pass off), --no-fuse=LIST, --dump-after=PASS (dumps go to
// `dump`), -v (a line per pass).
Expected<PassOptions> passOptions(const Options& o, std::ostream* dump);
// The options above, for every command that compiles.
std::vector<OptionSpec> withPassOptions(std::vector<OptionSpec> v);

// "433,890"
std::string groupThousands(int64_t n);
// NumPy-like text of a tensor: [[1, 2], [3, 4]], long axes elided with "...".
std::string formatTensor(const Tensor& t, bool f64 = false);

}  // namespace nnc::cli
