// ONNX export: the model's inference graph (inputs, outputs that need no
// labels, the params as initializers) as a ModelProto, checked by ONNX's own
// checker and strict shape inference before it is handed back. The per-op
// rules are in export_ops.cpp.
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>
#include <fmt/ranges.h>
#include <set>

#include "compiler/graph/graph_util.h"
#include "onnx/export_ctx.h"
#include "onnx/onnx_io.h"

namespace nnc::onnxio {

std::string ExportCtx::valueName(ValueId v, const std::string& suffix) const {
  const Node& n = g.node(v);
  std::string s = fmt::format("%{}", v);
  if (!n.name.empty()) s += "_" + n.name;
  if (!suffix.empty()) s += "." + suffix;
  return s;
}

onnx::NodeProto& ExportCtx::add(const std::string& op, std::vector<std::string> inputs,
                                std::vector<std::string> outputs) {
  onnx::NodeProto& n = *out.add_node();
  n.set_op_type(op);
  n.set_name(outputs.at(0));  // ONNX node names are free; the first output's reads best in viewers
  for (auto& i : inputs) n.add_input(std::move(i));
  for (auto& o : outputs) n.add_output(std::move(o));
  return n;
}

std::string ExportCtx::int64s(const std::string& name, const std::vector<int64_t>& values) {
  onnx::TensorProto& t = *out.add_initializer();
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::INT64);
  t.add_dims(static_cast<int64_t>(values.size()));
  for (int64_t v : values) t.add_int64_data(v);
  return name;
}

// Floats go as raw little-endian bytes (x86-64 and aarch64 are little-endian),
// each value rounded to float once: what the nnc f32 programs compute with.
std::string ExportCtx::floats(const std::string& name, const std::vector<int64_t>& shape,
                              const std::vector<double>& values) {
  onnx::TensorProto& t = *out.add_initializer();
  t.set_name(name);
  t.set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : shape) t.add_dims(d);
  std::string raw(values.size() * sizeof(float), '\0');
  for (size_t i = 0; i < values.size(); ++i) {
    const auto f = static_cast<float>(values[i]);
    std::memcpy(raw.data() + i * sizeof f, &f, sizeof f);
  }
  t.set_raw_data(std::move(raw));
  return name;
}

bool ExportCtx::batchDep(ValueId v) const {
  for (bool b : batchDims[static_cast<size_t>(v)])
    if (b) return true;
  return false;
}

void setInt(onnx::NodeProto& n, const std::string& name, int64_t v) {
  auto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(v);
}

void setInts(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
  auto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (int64_t x : v) a.add_ints(x);
}

void setFloat(onnx::NodeProto& n, const std::string& name, double v) {
  auto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(static_cast<float>(v));
}

void setScalarTensor(onnx::NodeProto& n, const std::string& name, float v) {
  auto& a = *n.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::TENSOR);
  onnx::TensorProto& t = *a.mutable_t();
  t.set_data_type(onnx::TensorProto::FLOAT);
  t.add_dims(1);
  t.add_float_data(v);
}

namespace {

// The IR version each opset came with (onnx/helper.py's VERSION_TABLE).
int64_t irVersionOf(int opset) { return opset <= 11 ? 6 : opset <= 14 ? 7 : 8; }

int elemTypeOf(DType t) { return t == DType::I32 ? onnx::TensorProto::INT32 : onnx::TensorProto::FLOAT; }

// An axis's sizes at the two batch sizes.
using SizePair = std::pair<int64_t, int64_t>;

// The batch's sizes: those of the first axis of an input that follows it.
SizePair batchSizes(const ExportCtx& c, const std::vector<bool>& live) {
  for (ValueId v : c.g.inputs)
    for (size_t i = 0; live[static_cast<size_t>(v)] && i < c.batchDims[static_cast<size_t>(v)].size(); ++i)
      if (c.batchDims[static_cast<size_t>(v)][i]) return {c.g.type(v).shape[i], c.other->type(v).shape[i]};
  return {-1, -1};
}

// An axis that follows the batch is dim_param "batch" where it is the batch
// at both sizes, else a name of its own ("y_0": half the batch, say), so that
// equal names still mean equal sizes.
void addValueInfo(google::protobuf::RepeatedPtrField<onnx::ValueInfoProto>& list, const std::string& name,
                  const ExportCtx& c, ValueId v, SizePair batch) {
  onnx::ValueInfoProto& vi = *list.Add();
  vi.set_name(name);
  auto& tt = *vi.mutable_type()->mutable_tensor_type();
  const TensorType& type = c.g.type(v);
  tt.set_elem_type(elemTypeOf(type.dtype));
  auto& shape = *tt.mutable_shape();
  for (size_t i = 0; i < type.shape.size(); ++i) {
    auto& d = *shape.add_dim();
    if (!c.batchDims[static_cast<size_t>(v)][i]) d.set_dim_value(type.shape[i]);
    else if (SizePair{type.shape[i], c.other->type(v).shape[i]} == batch) d.set_dim_param("batch");
    else d.set_dim_param(fmt::format("{}_{}", name, i));
  }
}

std::string nodeLabel(const Graph& g, ValueId v) {
  const Node& n = g.node(v);
  return n.name.empty() ? fmt::format("%{}", v) : n.name;
}

// Per value and axis: whether its size differs in `other`, the same model at
// another batch size. Attributes must not differ except the shapes that
// reshape and broadcast_to write out (export_ops.cpp makes those dynamic):
// anything else has no form that holds at every batch.
Expected<std::vector<std::vector<bool>>> batchDimsOf(const Graph& g, const Graph* other, const std::vector<bool>& live) {
  std::vector<std::vector<bool>> dims(g.size());
  for (size_t v = 0; v < g.size(); ++v) dims[v].assign(g.nodes[v].type.shape.size(), false);
  if (!other) return dims;
  if (other->size() != g.size())
    return error("export-onnx: model '{}' has {} nodes at one batch size and {} at another (the batch steers a "
                 "loop): an ONNX file of dynamic batch cannot follow it (export at a fixed batch: --static-batch, "
                 "with --set batch=N)", g.name, g.size(), other->size());
  std::vector<std::string> bad;
  for (size_t v = 0; v < g.size(); ++v) {
    const Node &a = g.nodes[v], &b = other->nodes[v];
    if (a.op != b.op || a.type.rank() != b.type.rank())
      return error("export-onnx: model '{}' builds another graph at another batch size (from node '{}' on): an "
                   "ONNX file of dynamic batch cannot follow it (export at a fixed batch: --static-batch, with --set "
                   "batch=N)", g.name, nodeLabel(g, static_cast<ValueId>(v)));
    for (size_t i = 0; i < a.type.shape.size(); ++i) dims[v][i] = a.type.shape[i] != b.type.shape[i];
    if (!live[v] || a.op->is(OpId::Input) || a.op->is(OpId::Reshape) || a.op->name == "broadcast_to") continue;
    if (!(a.attrs == b.attrs) || (a.op->is(OpId::Param) && a.type != b.type))
      bad.push_back(fmt::format("node '{}' (op {})", nodeLabel(g, static_cast<ValueId>(v)), a.op->name));
  }
  if (!bad.empty())
    return error("export-onnx: in model '{}', {} change{} with the batch size in a way an ONNX file of dynamic "
                 "batch cannot follow (export at a fixed batch: --static-batch, with --set batch=N)",
                 g.name, fmt::join(bad, ", "), bad.size() == 1 ? "s" : "");
  return dims;
}

// The nodes the exporter does not write: dropout masks only read by the
// muls they vanish from, and matmuls folded into their bias add as Gemm.
void planSkips(ExportCtx& c, const std::vector<bool>& live, const std::vector<ValueId>& outputs) {
  const Graph& g = c.g;
  std::vector<int> uses(g.size(), 0), realUses(g.size(), 0);
  for (size_t v = 0; v < g.size(); ++v) {
    if (!live[v]) continue;
    const bool dropped = keepsOperandOfMask(c, static_cast<ValueId>(v));
    for (ValueId i : g.nodes[v].inputs) {
      ++uses[static_cast<size_t>(i)];
      if (!(dropped && g.node(i).op->name == "dropout_mask")) ++realUses[static_cast<size_t>(i)];
    }
  }
  for (ValueId o : outputs) ++uses[static_cast<size_t>(o)], ++realUses[static_cast<size_t>(o)];
  for (size_t v = 0; v < g.size(); ++v) {
    if (!live[v]) continue;
    const Node& n = g.nodes[v];
    if (n.op->name == "dropout_mask") c.skip[v] = realUses[v] == 0;
    if (!n.op->is(OpId::Add)) continue;
    for (size_t k = 0; k < 2; ++k) {
      const ValueId mm = n.inputs[k];
      const Node& m = g.node(mm);
      const TensorType& bias = g.type(n.inputs[1 - k]);
      if (m.op->is(OpId::Matmul) && uses[static_cast<size_t>(mm)] == 1 && g.type(m.inputs[0]).rank() == 2 &&
          bias.rank() == 1 && bias.dtype == DType::F32 && n.type == m.type) {
        c.skip[static_cast<size_t>(mm)] = true;
        break;
      }
    }
  }
}

}  // namespace

Status checkModel(const std::string& bytes) {
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes)) return error("not an ONNX model: its bytes do not parse as a ModelProto");
  try {
    onnx::checker::check_model(m);
    // ONNX 1.12's check_model has no full_check: strict shape inference
    // (types checked, node errors thrown) is what its full_check adds.
    onnx::shape_inference::InferShapes(m, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict=*/1, false));
  } catch (const std::exception& e) {
    return error("{}", e.what());
  }
  return ok();
}

Expected<Exported> exportModel(const Graph& g, const std::map<std::string, Tensor>& params, const ExportOptions& opt) {
  if (opt.opset < 11 || opt.opset > 17) return error("export-onnx: opset {} is not one of 11 to 17", opt.opset);
  Exported result;
  // Outputs computed from labels (an accuracy) cannot be computed at inference.
  std::vector<bool> readsLabel(g.size(), false);
  for (size_t v = 0; v < g.size(); ++v) {
    readsLabel[v] = g.nodes[v].op->is(OpId::Label);
    for (ValueId i : g.nodes[v].inputs) readsLabel[v] = readsLabel[v] || readsLabel[static_cast<size_t>(i)];
  }
  std::vector<std::pair<std::string, ValueId>> outputs;
  for (const auto& [name, v] : g.outputs) {
    if (readsLabel[static_cast<size_t>(v)]) result.skipped.push_back(name);
    else outputs.emplace_back(name, v);
  }
  if (outputs.empty())
    return error("export-onnx: model '{}' has no output to export{}", g.name,
                 result.skipped.empty() ? "" : fmt::format(" (its outputs {} read labels)", fmt::join(result.skipped, ", ")));
  std::vector<ValueId> targets;
  for (const auto& [_, v] : outputs) targets.push_back(v);
  const std::vector<bool> live = liveNodes(g, targets);

  std::vector<std::string> unsupported;
  for (size_t v = 0; v < g.size(); ++v)
    if (live[v] && g.nodes[v].op->kind != OpKind::Source && !hasExportRule(g.nodes[v]))
      unsupported.push_back(fmt::format("export-onnx: node '{}' (op {}) has no ONNX form",
                                        nodeLabel(g, static_cast<ValueId>(v)), g.nodes[v].op->name));
  if (!unsupported.empty()) return error("{}", fmt::join(unsupported, "\n"));
  NNC_TRY(auto batchDims, batchDimsOf(g, opt.otherBatch, live));

  onnx::ModelProto model;
  model.set_ir_version(irVersionOf(opt.opset));
  model.set_producer_name("nnc");
  model.set_producer_version(opt.producerVersion);
  auto& opsetId = *model.add_opset_import();
  opsetId.set_domain("");
  opsetId.set_version(opt.opset);
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name(g.name);
  ExportCtx c{g, graph, opt.opset, std::vector<std::string>(g.size()), std::move(batchDims),
              std::vector<bool>(g.size(), false), opt.otherBatch};
  planSkips(c, live, targets);
  const SizePair batch = c.other ? batchSizes(c, live) : SizePair{-1, -1};

  std::set<std::string> taken;
  for (size_t v = 0; v < g.size(); ++v) {
    if (!live[v]) continue;
    const Node& n = g.nodes[v];
    const auto id = static_cast<ValueId>(v);
    if (n.op->is(OpId::Input)) {
      c.names[v] = n.name;
      addValueInfo(*graph.mutable_input(), n.name, c, id, batch);
    } else if (n.op->is(OpId::Param)) {
      auto it = params.find(n.name);
      if (it == params.end()) return error("export-onnx: no value for param '{}' of model '{}'", n.name, g.name);
      if (it->second.type.shape != n.type.shape)
        return error("export-onnx: param '{}' is {}, but model '{}' has {}", n.name,
                     shapeString(it->second.type.shape), g.name, typeString(n.type));
      c.names[v] = c.floats(n.name, n.type.shape, it->second.data);
    } else if (n.op->is(OpId::Const)) {
      if (n.type.dtype != DType::F32) return error("export-onnx: node '{}' (an i32 const) has no ONNX form", nodeLabel(g, id));
      std::vector<double> values = n.attrs.floats("value");
      if (values.size() == 1) values.assign(static_cast<size_t>(n.type.numel()), values[0]);
      c.names[v] = c.floats(c.valueName(id), n.type.shape, values);
    } else if (n.op->kind == OpKind::Source) {
      return error("export-onnx: node '{}' (op {}) has no ONNX form", nodeLabel(g, id), n.op->name);
    } else if (!c.skip[v]) {
      c.names[v] = c.valueName(id);
      NNC_CHECK(emitNode(c, id));
    }
    taken.insert(c.names[v]);
  }
  for (ValueId v : g.inputs) result.dynamicBatch = result.dynamicBatch || (live[static_cast<size_t>(v)] && c.batchDep(v));
  for (const auto& [name, v] : outputs) {
    result.dynamicBatch = result.dynamicBatch || c.batchDep(v);
    if (taken.count(name))
      return error("export-onnx: output '{}' of model '{}' has the name of an input or param", name, g.name);
    c.add("Identity", {c.names[static_cast<size_t>(v)]}, {name});
    addValueInfo(*graph.mutable_output(), name, c, v, batch);
  }
  if (!model.SerializeToString(&result.bytes)) return error("export-onnx: the model does not serialize");
  if (auto st = checkModel(result.bytes); !st)
    return internalError("export-onnx", "ONNX's checker rejects the model nnc wrote: {}", st.error().message);
  result.nodes = graph.node_size();
  return result;
}

}  // namespace nnc::onnxio
