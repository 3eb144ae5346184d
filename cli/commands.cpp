// nnc check, nnc graph, nnc eval.
#include "cli/commands.h"

#include <filesystem>
#include <ostream>

#include "cli/frontend.h"
#include "compiler/autodiff/train_step.h"
#include "compiler/interpreter/interpreter.h"
#include "io/checkpoint.h"
#include "io/npy.h"

namespace nnc::cli {

std::string groupThousands(int64_t n) {
  std::string d = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < d.size(); ++i) {
    if (i && (d.size() - i) % 3 == 0) out += ',';
    out += d[i];
  }
  return n < 0 ? "-" + out : out;
}

namespace {

// Integers as integers; f32 values in the shortest form that reads back as the
// same float (as NumPy prints float32), f64 values likewise as doubles.
std::string formatNumber(double v, DType dt, bool f64) {
  if (dt == DType::I32) return fmt::format("{}", static_cast<int64_t>(v));
  return f64 ? fmt::format("{}", v) : fmt::format("{}", static_cast<float>(v));
}

void formatAxis(const Tensor& t, size_t axis, int64_t offset, const std::vector<int64_t>& strides, bool f64,
                std::string& out) {
  if (axis == t.shape().size()) {
    out += formatNumber(t.data[static_cast<size_t>(offset)], t.type.dtype, f64);
    return;
  }
  const int64_t n = t.shape()[axis];
  out += '[';
  for (int64_t i = 0; i < n; ++i) {
    if (n > 8 && i == 3) {  // long axes show their ends, as NumPy does
      out += "..., ";
      i = n - 3;
    }
    if (i && out.back() != ' ') out += axis + 1 == t.shape().size() ? ", " : ",\n" + std::string(axis + 1, ' ');
    formatAxis(t, axis + 1, offset + i * strides[axis], strides, f64, out);
  }
  out += ']';
}

std::string nodeLabel(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  return n.name.empty() ? fmt::format("%{}", v) : n.name;
}

}  // namespace

std::optional<Loaded> loadFor(const Options& o, std::ostream& err) {
  auto eo = elaborateOptions(o);
  if (!eo) {
    err << "nnc: " << eo.error().message << "\n";
    return std::nullopt;
  }
  return load(o.file, *eo, err);
}

Expected<TensorMap> readFeeds(const Options& o, const Graph& g, bool& labelsGiven) {
  TensorMap feeds;
  if (o.flag("weights")) {
    NNC_TRY(auto w, readWeights(o.value("weights")));
    for (auto& [name, t] : w) {
      const ValueId v = g.findByName(name);
      if (v == kNoValue || !g.node(v).op->is(OpId::Param))
        return error("'{}' in {} is not a param of model '{}'", name, o.value("weights"), g.name);
      feeds[name] = std::move(t);
    }
  }
  labelsGiven = false;
  for (const std::string& kv : o.all("input")) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) return error("--input takes NAME=FILE.npy, got '{}'", kv);
    const std::string name = kv.substr(0, eq);
    const ValueId v = g.findByName(name);
    if (v == kNoValue || (!g.node(v).op->is(OpId::Input) && !g.node(v).op->is(OpId::Label)))
      return error("--input {}: model '{}' has no input or label named '{}'", kv, g.name, name);
    NNC_TRY(Tensor t, readNpy(kv.substr(eq + 1)));
    labelsGiven |= g.node(v).op->is(OpId::Label);
    feeds[name] = std::move(t);
  }
  return feeds;
}

Expected<uint64_t> seedOption(const Options& o) {
  if (!o.flag("seed")) return uint64_t{42};
  const std::string s = o.value("seed");
  if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 19)
    return error("--seed takes a non-negative integer, got '{}'", s);
  return static_cast<uint64_t>(std::stoull(s));
}

std::string formatTensor(const Tensor& t, bool f64) {
  std::string out;
  formatAxis(t, 0, 0, stridesOf(t.shape()), f64, out);
  return out;
}

int runCheck(const Options& o, std::ostream& out, std::ostream& err) {
  auto l = loadFor(o, err);
  if (!l) return 1;
  const Graph& g = l->model.graph;
  struct Row {
    std::string name, op, type, params;
  };
  std::vector<Row> rows;
  std::vector<int64_t> rowParams;
  std::string lastLayer;
  for (size_t i = 0; i < g.size(); ++i) {
    const Node& n = g.nodes[i];
    const std::string_view op = n.op->name;
    if (n.op->is(OpId::Param) || n.op->is(OpId::Const)) continue;
    // A node's parameter count is that of the params it reads directly; the
    // nodes of one layer call (dense, conv2d, ...) make one row, as in Keras.
    int64_t params = 0;
    for (ValueId v : n.inputs)
      if (g.node(v).op->is(OpId::Param)) params += g.type(v).numel();
    if (!n.layer.empty() && n.layer == lastLayer) {
      rows.back().type = typeString(n.type);
      rowParams.back() += params;
      if (!n.name.empty()) rows.back().name = n.name + " (" + rows.back().name + ")";
    } else {
      std::string name = nodeLabel(g, static_cast<ValueId>(i)), kind(op);
      if (!n.layer.empty()) {
        const size_t sp = n.layer.find(' ');
        kind = n.layer.substr(0, sp);
        name = sp == std::string::npos ? name : n.layer.substr(sp + 1);
        if (!n.name.empty()) name = n.name + " (" + name + ")";
      }
      rows.push_back({name, kind, typeString(n.type), ""});
      rowParams.push_back(params);
    }
    lastLayer = n.layer;
  }
  for (size_t k = 0; k < rows.size(); ++k)
    if (rowParams[k]) rows[k].params = groupThousands(rowParams[k]);
  size_t w0 = 4, w1 = 2, w2 = 12;
  for (const Row& r : rows) {
    w0 = std::max(w0, r.name.size());
    w1 = std::max(w1, r.op.size());
    w2 = std::max(w2, r.type.size());
  }
  out << fmt::format("model {}\n\n", g.name);
  out << fmt::format("  {:<{}}  {:<{}}  {:<{}}  {:>11}\n", "node", w0, "op", w1, "output shape", w2, "params");
  out << "  " << std::string(w0 + w1 + w2 + 17, '-') << "\n";
  for (const Row& r : rows)
    out << fmt::format("  {:<{}}  {:<{}}  {:<{}}  {:>11}\n", r.name, w0, r.op, w1, r.type, w2, r.params);
  out << "  " << std::string(w0 + w1 + w2 + 17, '-') << "\n";
  const int64_t total = g.paramCount(false), trainable = g.paramCount(true);
  out << fmt::format("  total params: {} (trainable: {}, non-trainable: {})\n", groupThousands(total),
                     groupThousands(trainable), groupThousands(total - trainable));
  if (g.loss != kNoValue) out << fmt::format("  loss: {} {}\n", nodeLabel(g, g.loss), typeString(g.type(g.loss)));
  for (const auto& [name, v] : g.outputs) out << fmt::format("  output: {} {}\n", name, typeString(g.type(v)));
  if (l->model.train) out << fmt::format("  train: {} settings\n", l->model.train->settings.size());
  return 0;
}

int runGraph(const Options& o, std::ostream& out, std::ostream& err) {
  auto l = loadFor(o, err);
  if (!l) return 1;
  auto fail = reporter(*l, err);
  auto passes = passOptions(o, &out);
  if (!passes) return fail(passes.error());
  Graph g = l->model.graph;
  std::vector<ValueId> roots;
  for (const auto& [_, v] : g.outputs) roots.push_back(v);
  if (g.loss != kNoValue) roots.push_back(g.loss);
  LowerOptions lo;
  if (o.flag("train")) {
    auto step = buildTrainStep(g, l->model.train);
    if (!step) return fail(step.error());
    g = step->grads.graph;
    lo = step->lowering();
    roots = rootsOf({g.loss}, lo);
  }
  if (o.flag("optimized") || !passes->dumpAfter.empty()) {
    auto opt = optimizeGraph(g, roots, *passes);
    if (!opt) return fail(opt.error());
    if (passes->dumpAfter == "lower" || passes->dumpAfter == "all") {
      lo = mapCommits(loweringFor(lo, *passes), opt->map);
      std::vector<ValueId> targets;
      for (ValueId r : roots) targets.push_back(opt->map[static_cast<size_t>(r)]);
      auto prog = lowerGraph(opt->graph, targets, lo);
      if (!prog) return fail(prog.error());
      out << "# after lower\n" << printProgram(*prog);
    }
    if (!o.flag("optimized")) return 0;
    g = std::move(opt->graph);
  }
  out << (o.flag("dot") ? printDot(g) : printGraph(g));
  return 0;
}

Status overlayWeights(TensorMap& params, const std::string& path, const Graph& g) {
  NNC_TRY(auto w, readWeights(path));
  for (auto& [name, t] : params) {
    auto it = w.find(name);
    if (it == w.end()) return error("'{}' has no value for param '{}' of model '{}'", path, name, g.name);
    if (it->second.type.shape != t.type.shape)
      return error("'{}': '{}' is {}, but model '{}' has {}", path, name, shapeString(it->second.type.shape), g.name,
                   typeString(t.type));
    t.data = it->second.data;
  }
  return ok();
}

int runEval(const Options& o, std::ostream& out, std::ostream& err) {
  // A trained checkpoint and no inputs: score the model on its test data.
  if (o.flag("weights") && !o.flag("input") && std::filesystem::is_directory(o.value("weights")))
    return runEvalData(o, out, err);
  auto l = loadFor(o, err);
  if (!l) return 1;
  const Graph& g = l->model.graph;
  auto fail = reporter(*l, err);
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
      if (auto st = writeNpy(path, t); !st) return fail(st.error());
      out << fmt::format("wrote {} {}\n", path, typeString(t.type));
    }
  }
  return 0;
}

}  // namespace nnc::cli
