// A serialized ONNX model read back into plain values (onnx_io.h's
// ModelOutline), so that tests can check what the exporter wrote without
// including ONNX's headers outside onnx/.
#include <fmt/ranges.h>

#include "onnx/onnx_io.h"
#include "onnx/proto.h"

namespace nnc::onnxio {

namespace {

std::string attrText(const onnx::AttributeProto& a) {
  switch (a.type()) {
    case onnx::AttributeProto::INT: return fmt::format("{}", a.i());
    case onnx::AttributeProto::FLOAT: return fmt::format("{}", a.f());
    case onnx::AttributeProto::STRING: return a.s();
    case onnx::AttributeProto::INTS: return fmt::format("[{}]", fmt::join(a.ints(), ", "));
    case onnx::AttributeProto::FLOATS: return fmt::format("[{}]", fmt::join(a.floats(), ", "));
    case onnx::AttributeProto::TENSOR: return "tensor";
    default: return "?";
  }
}

ModelOutline::Value valueOf(const onnx::ValueInfoProto& vi) {
  ModelOutline::Value v{vi.name(), vi.type().tensor_type().elem_type(), {}};
  for (const auto& d : vi.type().tensor_type().shape().dim())
    v.dims.push_back(d.has_dim_param() ? d.dim_param() : fmt::format("{}", d.dim_value()));
  return v;
}

}  // namespace

Expected<ModelOutline> outlineModel(const std::string& bytes) {
  onnx::ModelProto m;
  if (!m.ParseFromString(bytes)) return error("not an ONNX model: its bytes do not parse as a ModelProto");
  ModelOutline o;
  o.irVersion = m.ir_version();
  for (const auto& op : m.opset_import())
    if (op.domain().empty()) o.opset = op.version();
  const onnx::GraphProto& g = m.graph();
  for (const auto& vi : g.input()) o.inputs.push_back(valueOf(vi));
  for (const auto& vi : g.output()) o.outputs.push_back(valueOf(vi));
  for (const auto& n : g.node()) {
    ModelOutline::NodeInfo info{n.op_type(), {n.input().begin(), n.input().end()},
                                {n.output().begin(), n.output().end()}, {}};
    for (const auto& a : n.attribute()) info.attrs[a.name()] = attrText(a);
    o.nodes.push_back(std::move(info));
  }
  for (const auto& t : g.initializer()) {
    NNC_TRY(Tensor v, tensorFromProto(t, "", fmt::format("initializer '{}'", t.name())));
    o.initializers[t.name()] = std::move(v);
  }
  return o;
}

}  // namespace nnc::onnxio
