// Internal to the importer: what the driver (import.cpp) and the op
// translators (import_ops.cpp) share. ONNX values become either .nn
// expressions (tensors computed by the model) or constants known at import
// time (initializers, Constant nodes, and what folds from them: the
// Shape → Gather → Concat chains a PyTorch `x.view(x.size(0), -1)` writes).
// Sizes are linear in the model's `batch` parameter, so a folded shape stays
// valid at every batch size.
#pragma once
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "onnx/proto.h"

namespace nnc::onnxio {

// k·batch + c: a dimension or an integer constant.
struct Dim {
  int64_t k = 0, c = 0;
  static Dim of(int64_t v) { return Dim{0, v}; }
  bool known() const { return k == 0; }
  bool operator==(const Dim&) const = default;
};
std::string dimText(const Dim& d);  // "64", "batch", "batch * 3 + 1"
std::string dimsText(const std::vector<Dim>& d);  // "[batch, 8, 28, 28]"

struct Value {
  bool constant = false;
  int elem = 1;                   // ONNX element type
  std::vector<Dim> shape;
  // A tensor: its .nn expression (a name, or a number for a scalar literal).
  std::string expr;
  // A constant: its elements, as sizes (integers) or floats.
  std::vector<Dim> ints;
  std::vector<double> floats;
  std::string initializer;        // the ONNX initializer it is, if any
  bool isInt() const { return elem != 1 && elem != 10 && elem != 11 && elem != 16; }
};

// One problem with a node, reported with all the others at the end.
struct Problem {
  std::string node, op, what;
};

class Importer;

// A node's translation: reads ins, writes the outputs through the importer.
using Translate = void (*)(Importer&, const onnx::NodeProto&);
const std::map<std::string, Translate>& translators();

class Importer {
 public:
  explicit Importer(int opset, int64_t batch) : opset_(opset), batch_(batch) {}

  int opset() const { return opset_; }
  int64_t batchDefault() const { return batch_; }
  bool usesBatch() const { return usesBatch_; }
  void markBatch() { usesBatch_ = true; }

  // The node's inputs (an empty name is an omitted optional input).
  bool has(const onnx::NodeProto& n, int i) const { return i < n.input_size() && !n.input(i).empty(); }
  const Value& in(const onnx::NodeProto& n, int i) const { return values_.at(n.input(i)); }

  // Attributes, with ONNX's defaults.
  static const onnx::AttributeProto* attr(const onnx::NodeProto& n, const std::string& name);
  static int64_t attrInt(const onnx::NodeProto& n, const std::string& name, int64_t dflt);
  static double attrFloat(const onnx::NodeProto& n, const std::string& name, double dflt);
  static std::string attrString(const onnx::NodeProto& n, const std::string& name, const std::string& dflt);
  static std::vector<int64_t> attrInts(const onnx::NodeProto& n, const std::string& name);

  // A constant input's integers (which must all be known), or nullopt with a problem recorded.
  std::optional<std::vector<int64_t>> constInts(const onnx::NodeProto& n, int i, const std::string& what);
  // An input as a tensor expression: constants are materialized (a number,
  // or a buffer loaded from the weights).
  std::string tensor(const onnx::NodeProto& n, int i);
  std::string tensorOf(const Value& v, const std::string& hint);

  // Output i of n is the tensor `expr` of this shape: one line of the model.
  void emit(const onnx::NodeProto& n, int i, const std::string& expr, std::vector<Dim> shape, int elem = 1);
  // Output i of n is input j (Identity, Dropout in inference): no line.
  void alias(const onnx::NodeProto& n, int i, const Value& v);
  void setConst(const onnx::NodeProto& n, int i, Value v);

  void unsupported(const onnx::NodeProto& n, const std::string& what);
  bool failed() const { return failedNode_; }

  // Driver side.
  std::map<std::string, Value>& values() { return values_; }
  std::vector<std::string>& lines() { return lines_; }
  std::vector<std::string>& decls() { return decls_; }
  std::vector<Problem>& problems() { return problems_; }
  std::map<std::string, Tensor>& weights() { return weights_; }
  std::string& weightsFile() { return weightsFile_; }
  std::set<std::string>& trainable() { return trainable_; }  // initializers trained as params
  std::map<std::string, std::string>& outputNames() { return outputNames_; }
  std::string freshName(const std::string& onnxName);
  std::string readableName(const onnx::NodeProto& n) const;
  void countModules(const onnx::GraphProto& g);
  void beginNode() { failedNode_ = false; }
  // A declared param or buffer holding this initializer (made on first use).
  std::string weightName(const std::string& initializer, const Value& v);

 private:
  int opset_;
  int64_t batch_;
  bool usesBatch_ = false;
  bool failedNode_ = false;
  std::map<std::string, Value> values_;
  std::vector<std::string> lines_, decls_;
  std::vector<Problem> problems_;
  std::map<std::string, Tensor> weights_;
  std::string weightsFile_;
  std::set<std::string> trainable_, used_;
  std::map<std::string, std::string> declared_;  // initializer → its param/buffer name
  std::map<std::string, std::string> outputNames_;  // graph outputs: ONNX name → .nn name
  int constCount_ = 0;
  std::map<std::string, int> moduleNodes_;  // PyTorch module path → its nodes
};

// Shapes.
std::optional<std::vector<Dim>> broadcastShapes(const std::vector<Dim>& a, const std::vector<Dim>& b);
std::optional<Dim> mulDims(const Dim& a, const Dim& b);
std::optional<Dim> addDims(const Dim& a, const Dim& b);
std::string intsText(const std::vector<int64_t>& v);  // "[1, 2]"
std::string numberText(double v);                     // shortest text that reads back as the same f32

}  // namespace nnc::onnxio
