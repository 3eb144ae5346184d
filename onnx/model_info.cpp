// ModelInfo from the ModelProto: a parse, no checking (the importer checks).
#include "onnx/model_info.h"

#include <onnx/onnx_pb.h>

#include <set>

namespace nnc::onnxio {

namespace {

// Ops inside If/Loop/Scan bodies count too: a test of Loop exercises them.
void collectOps(const onnx::GraphProto& g, std::set<std::string>& ops, int depth) {
  if (depth > 16) return;  // a pathological nesting must not recurse without end
  for (const onnx::NodeProto& n : g.node()) {
    const bool dflt = n.domain().empty() || n.domain() == "ai.onnx";
    ops.insert(dflt ? n.op_type() : n.domain() + ":" + n.op_type());
    for (const onnx::AttributeProto& a : n.attribute()) {
      if (a.has_g()) collectOps(a.g(), ops, depth + 1);
      for (const onnx::GraphProto& sub : a.graphs()) collectOps(sub, ops, depth + 1);
    }
  }
}

}  // namespace

Expected<ModelInfo> modelInfo(const std::string& bytes, const std::string& what) {
  onnx::ModelProto m;
  if (bytes.size() > (size_t{1} << 31) || !m.ParseFromString(bytes))
    return error("{}: not an ONNX model (protobuf parse failed)", what);
  ModelInfo info;
  std::set<std::string> ops;
  collectOps(m.graph(), ops, 0);
  info.opTypes.assign(ops.begin(), ops.end());
  std::set<std::string> init;
  for (const onnx::TensorProto& t : m.graph().initializer()) init.insert(t.name());
  for (const onnx::ValueInfoProto& v : m.graph().input())
    if (!init.count(v.name())) info.inputs.push_back(v.name());
  for (const onnx::ValueInfoProto& v : m.graph().output()) info.outputs.push_back(v.name());
  for (const onnx::OperatorSetIdProto& o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") info.opset = o.version();
  return info;
}

}  // namespace nnc::onnxio
