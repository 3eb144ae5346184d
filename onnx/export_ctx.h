// Internal to onnx/export*.cpp: what the exporter's per-op rules share while
// one graph is written (the ONNX names of nnc's values, which axes follow the
// batch, helpers that add nodes and int64 initializers).
#pragma once
#include <onnx/onnx_pb.h>

#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "compiler/graph/graph.h"

namespace nnc::onnxio {

struct ExportCtx {
  const Graph& g;
  onnx::GraphProto& out;
  int opset;
  // Per value: its ONNX name ("" until written), and per axis whether its
  // size follows the batch (all false when the export is at a fixed batch).
  std::vector<std::string> names;
  std::vector<std::vector<bool>> batchDims;
  // Values no ONNX node computes: a dropout mask every use of which is
  // dropped, a matmul folded into its bias add's Gemm.
  std::vector<bool> skip;
  // The same model at another batch size (ExportOptions::otherBatch), or null.
  const Graph* other = nullptr;

  // "%5_h1": '%' cannot start an nnc name, so these never clash with the
  // inputs, params and outputs, which keep their nnc names.
  std::string valueName(ValueId v, const std::string& suffix = "") const;
  const std::string& in(ValueId v, size_t i) const { return names[static_cast<size_t>(g.node(v).inputs[i])]; }
  onnx::NodeProto& add(const std::string& op, std::vector<std::string> inputs, std::vector<std::string> outputs);
  // A 1-D int64 initializer (Reshape's shape, ReduceSum's axes), by name.
  std::string int64s(const std::string& name, const std::vector<int64_t>& values);
  // A float initializer of the given shape.
  std::string floats(const std::string& name, const std::vector<int64_t>& shape, const std::vector<double>& values);
  bool batchDep(ValueId v) const;  // some axis of v follows the batch
};

void setInt(onnx::NodeProto& n, const std::string& name, int64_t v);
void setInts(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v);
void setFloat(onnx::NodeProto& n, const std::string& name, double v);
// An attribute holding a one-element tensor (ConstantOfShape's value).
void setScalarTensor(onnx::NodeProto& n, const std::string& name, float v);

// Whether an export rule exists for the op (the plan is checked before
// anything is written, so every unsupported node is named at once).
bool hasExportRule(const Node& n);
// Whether mul node v is x * dropout_mask(..) of x's shape, so it is x (the
// mask is all ones in inference) and neither it nor the mask is written.
bool keepsOperandOfMask(const ExportCtx& c, ValueId v);
// Writes the ONNX nodes computing value v (names[v] is set by the caller
// beforehand to the name the result must take, or aliased by the rule).
Status emitNode(ExportCtx& c, ValueId v);

}  // namespace nnc::onnxio
