// nnc eval: the model's outputs (and its loss, and with --grads its
// gradients) computed by the reference interpreter; with a checkpoint and no
// inputs, cmd_predict.cpp's runEvalData.
#include <filesystem>
#include <ostream>

#include "cli/commands.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "io/npy.h"

namespace nnc::cli {

int runEval(const Options& o, std::ostream& out, std::ostream& err) {
  // A trained checkpoint and no inputs: score the model on its test data.
  if (o.flag("weights") && !o.flag("input") && std::filesystem::is_directory(o.value("weights")))
    return runEvalData(o, out, err);
  auto l = loadFor(o, err);
  if (!l) return 1;
  const Graph& g = l->model.graph;
  auto fail = reporter(*l, err);
  // The interpreter runs the graph as written: nothing of it is compiled.
  for (const char* opt : {"O", "no-fuse", "dump-after"})
    if (o.flag(opt))
      return fail(error("{}: nnc eval compiles (and so optimizes) only with --weights CKPT and no --input; here the "
                        "reference interpreter runs the graph as written",
                        std::string_view(opt) == "O" ? "-O" + o.value("O") : fmt::format("--{}", opt)));
  bool labelsGiven = false;
  auto fed = readFeeds(o, g, labelsGiven);
  if (!fed) return fail(fed.error());
  TensorMap feeds = fed.take();
  auto seed = seedOption(o);
  if (!seed) return fail(seed.error());
  std::vector<std::pair<std::string, ValueId>> results = g.outputs;
  const bool withLoss = g.loss != kNoValue && (labelsGiven || g.labels.empty());
  if (withLoss) results.emplace_back("loss", g.loss);
  // With --grads the backward graph is evaluated too, in training mode (the
  // mode its gradient rules describe).
  const Graph* run = &g;
  std::optional<GradGraph> gg;
  if (o.flag("grads")) {
    if (!withLoss) return fail(error("--grads needs the labels of model '{}' (--input NAME=F.npy)", g.name));
    auto d = gradientsOf(g, l->model.train);
    if (!d) return fail(d.error());
    gg = d.take();
    run = &gg->graph;
    if (gg->graph.loss != g.loss) results.emplace_back("regularized_loss", gg->graph.loss);
    for (const auto& [name, v] : gg->grads) results.emplace_back("grad_" + name, v);
  }
  std::vector<ValueId> targets;
  for (const auto& [_, v] : results) targets.push_back(v);
  if (targets.empty()) return fail(error("model '{}' has no outputs to evaluate (and no labels for its loss)", g.name));
  auto vals = interpret(*run, feeds, EvalOptions{o.flag("f64"), o.flag("grads"), *seed}, targets);
  if (!vals) return fail(vals.error());
  const std::string dir = o.value("output-dir");
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return fail(error("cannot create '{}': {}", dir, ec.message()));
  }
  for (const auto& [name, v] : results) {
    const Tensor& t = (*vals)[static_cast<size_t>(v)];
    if (dir.empty()) {
      out << fmt::format("{} = {}\n", name, formatTensor(t, o.flag("f64")));
    } else {
      const std::string path = (std::filesystem::path(dir) / (name + ".npy")).string();
      // --f64 computed doubles: they are written as f8, not rounded to f4.
      if (auto st = writeNpy(path, t, o.flag("f64")); !st) return fail(st.error());
      out << fmt::format("wrote {} {}{}\n", path, typeString(t.type),
                         o.flag("f64") && t.type.dtype == DType::F32 ? " (as f64)" : "");
    }
  }
  return 0;
}

}  // namespace nnc::cli
