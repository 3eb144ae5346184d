// nnc grad, nnc gradcheck, and the gradients of nnc eval --grads.
#include <filesystem>
#include <ostream>

#include "cli/commands.h"
#include "cli/frontend.h"
#include "compiler/autodiff/autodiff.h"
#include "compiler/autodiff/gradcheck.h"
#include "compiler/autodiff/train_step.h"
#include "io/npy.h"

namespace nnc::cli {

namespace {

std::optional<Loaded> loadModel(const Options& o, std::ostream& err, bool smallBatch) {
  auto eo = elaborateOptions(o);
  if (!eo) {
    err << "nnc: " << eo.error().message << "\n";
    return std::nullopt;
  }
  // Finite differences evaluate the whole model twice per entry: a batch of
  // 2 keeps that quick, and gradients do not depend on the batch size. A
  // default, so that a model without a `batch` parameter (or --set batch=N)
  // is built as it is.
  if (smallBatch) eo->defaults["batch"] = 2;
  return load(o.file, *eo, err);
}

}  // namespace

int runGrad(const Options& o, std::ostream& out, std::ostream& err) {
  auto l = loadModel(o, err, false);
  if (!l) return 1;
  auto gg = gradientsOf(l->model.graph, l->model.train);
  if (!gg) {
    err << l->sm->render(gg.error());
    return 1;
  }
  out << (o.flag("dot") ? printDot(gg->graph) : printBackward(*gg));
  return 0;
}

int runGradcheck(const Options& o, std::ostream& out, std::ostream& err) {
  auto l = loadModel(o, err, true);
  if (!l) return 1;
  GradCheckOptions opt;
  try {
    if (o.flag("samples")) opt.samples = std::stoi(o.value("samples"));
    if (o.flag("eps")) opt.eps = std::stod(o.value("eps"));
    if (o.flag("rtol")) opt.rtol = std::stod(o.value("rtol"));
  } catch (const std::exception&) {
    err << "nnc gradcheck: --samples takes an integer, --eps and --rtol numbers\n";
    return 1;
  }
  if (opt.samples <= 0 || !(opt.eps > 0)) {
    err << "nnc gradcheck: --samples and --eps must be positive\n";
    return 1;
  }
  auto seed = seedOption(o);
  if (!seed) {
    err << "nnc gradcheck: " << seed.error().message << "\n";
    return 1;
  }
  opt.seed = *seed;
  Graph g = l->model.graph;
  if (auto st = applyRegularization(g, l->model.train); !st) {
    err << l->sm->render(st.error());
    return 1;
  }
  bool labelsGiven = false;
  auto fed = readFeeds(o, g, labelsGiven);
  if (!fed) {
    err << l->sm->render(fed.error());
    return 1;
  }
  TensorMap feeds = randomFeeds(g, opt.seed);
  for (auto& [k, v] : *fed) feeds[k] = std::move(v);
  auto report = gradCheck(g, feeds, opt);
  if (!report) {
    err << l->sm->render(report.error());
    return 1;
  }
  const int64_t batch = l->model.batch ? l->model.batch : 1;
  out << fmt::format("gradcheck {}: f64, central differences with h = {}, up to {} entries per param, batch {}\n\n",
                     g.name, opt.eps, opt.samples, batch);
  out << fmt::format("  {:<24} {:>7} {:>6} {:>12} {:>12}\n", "param", "checked", "kinks", "max abs err", "max rel err");
  for (const ParamCheck& p : report->params)
    out << fmt::format("  {:<24} {:>7} {:>6} {:>12.3g} {:>12.3g}  {}\n", p.name, p.checked, p.kinks, p.maxAbs, p.maxRel,
                       p.ok ? "ok" : "FAILED");
  int kinks = 0;
  for (const ParamCheck& p : report->params) kinks += p.kinks;
  if (kinks)
    out << fmt::format("\n{} entr{} skipped: the difference window crosses a kink (relu at 0, a max-pool tie, ...)\n",
                       kinks, kinks == 1 ? "y was" : "ies were");
  out << fmt::format("\n{} (an entry passes with relative error <= {}, or an absolute error within the\n"
                     "finite difference's own rounding noise)\n",
                     report->ok ? "passed" : "FAILED", opt.rtol);
  return report->ok ? 0 : 1;
}

}  // namespace nnc::cli
