// nnc check: the model's layers, their output shapes and parameter counts,
// and the memory a train run and inference will need (cli/memory_need.h).
#include <ostream>

#include "cli/commands.h"
#include "cli/memory_need.h"
#include "compiler/autodiff/train_step.h"

namespace nnc::cli {

namespace {

std::string nodeLabel(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  return n.name.empty() ? fmt::format("%{}", v) : n.name;
}

}  // namespace

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
  // The memory plan of both programs as nnc run compiles them (lowered, not
  // JIT-compiled: milliseconds even for a large model). A model that cannot
  // be trained (no loss, a param no gradient reaches) is sized for inference.
  std::optional<TrainStep> step;
  if (g.loss != kNoValue)
    if (auto s = buildTrainStep(g, l->model.train)) step = s.take();
  auto need = memoryNeed(g, step ? &*step : nullptr, PassOptions{}, l->model.lossScores);
  if (!need) {
    out << fmt::format("  memory: not planned: {}\n", need.error().message);
    return 0;
  }
  out << "\n" << memoryLines(*need, "  ");
  const int64_t bytes = need->training ? need->trainBytes() : need->inferBytes();
  if (auto avail = availableMemory(); avail && bytes > avail->bytes)
    out << fmt::format("  note: that is more than the {} available ({}): nnc run will refuse it\n",
                       humanBytes(avail->bytes), avail->source);
  return 0;
}

}  // namespace nnc::cli
