// ONNX in and out. The importer turns an ONNX model (opsets 1–17) into a
// readable .nn source with its initializers as an .npz; every command that
// reads a model goes through the .nn text, so an imported model is checked,
// optimized and compiled exactly as a hand-written one. The exporter writes
// a model's inference graph and trained params as ONNX. ONNX's protobuf
// classes stay behind this header (onnx/*.cpp only).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "base/tensor.h"
#include "compiler/graph/graph.h"

namespace nnc::onnxio {

struct ImportOptions {
  std::string modelName;               // default: from the file name
  std::string weightsFile = "model.npz";  // as the .nn file's load() calls name it
  int64_t batch = 1;                   // default of the model's batch parameter (a symbolic first dim)
  std::string loss;                    // "", or a loss op (softmax_cross_entropy, mse, ...) added with a train block
  std::string label = "t";             // the label's name when a loss is added
};

struct Imported {
  std::string source;                  // the .nn text
  std::map<std::string, Tensor> weights;  // the params' values by .nn name (what weightsFile holds)
  // The graph's inputs and outputs in ONNX order: (ONNX name, .nn name).
  std::vector<std::pair<std::string, std::string>> inputs, outputs;
};

// `bytes` is the file's content; `displayName` names it in messages. Every
// unsupported node is listed in one error (name, op type, attribute).
// `baseDir` is where external data files are looked for (empty: the model
// must hold all its tensors).
Expected<Imported> importModel(const std::string& bytes, const std::string& displayName, const ImportOptions& opt,
                               const std::string& baseDir = "");
Expected<Imported> importFile(const std::string& path, const ImportOptions& opt);

// An ONNX TensorProto (a conformance test's input_0.pb, output_0.pb) as a
// host tensor; its name in *name when given. Integer and bool types are
// read as values (exact in a double up to 2^53); f64 is rounded to f32 only
// where nnc computes.
Expected<Tensor> readTensorProto(const std::string& bytes, const std::string& what, std::string* name = nullptr);

// The ONNX element type a tensor proto held (1 float, 6 int32, 7 int64, 9 bool, 11 double ...), for the conformance runner.
Expected<int> tensorProtoElemType(const std::string& bytes, const std::string& what);

struct ExportOptions {
  int opset = 13;  // 11 to 17 (ONNX 1.12's range from 11 on); the IR version follows it
  std::string producerVersion;
  // The same model elaborated at another batch size, or null: the axes whose
  // sizes differ between the two graphs follow the batch and are written as
  // dim_param "batch" (reshapes copy them with 0), so the file runs at any
  // batch size. Null: every size is fixed.
  const Graph* otherBatch = nullptr;
};

struct Exported {
  std::string bytes;                 // the serialized ModelProto
  int nodes = 0;                     // ONNX nodes written
  bool dynamicBatch = false;         // some input or output has dim_param "batch"
  std::vector<std::string> skipped;  // outputs left out: they read labels
};

// `forward` is the model's graph as elaborated (labels and the loss are left
// out; dropout and batchnorm take their inference forms); `params` holds a
// value for every param the outputs read (batchnorm's running statistics
// included), written as initializers of the same names. Every node without an
// ONNX form is listed in one error. The model passes ONNX's checker and
// strict shape inference, or the result is an internal error.
Expected<Exported> exportModel(const Graph& forward, const std::map<std::string, Tensor>& params,
                               const ExportOptions& opt);

// ONNX's checker and strict shape inference (types checked, node errors
// fatal) on a serialized model: what exportModel runs on its result.
Status checkModel(const std::string& bytes);

// A serialized model's outline, for tests and messages: node op types in
// order, inputs and outputs with their dims ("batch" for a dim_param),
// initializers by name (float ones exactly, as doubles), each node's
// attributes as text ("1", "0.9", "[1, 1, 0, 0]").
struct ModelOutline {
  int64_t irVersion = 0, opset = 0;
  struct Value {
    std::string name;
    int elemType = 0;
    std::vector<std::string> dims;
  };
  struct NodeInfo {
    std::string op;
    std::vector<std::string> inputs, outputs;
    std::map<std::string, std::string> attrs;
  };
  std::vector<Value> inputs, outputs;
  std::vector<NodeInfo> nodes;
  std::map<std::string, Tensor> initializers;
};
Expected<ModelOutline> outlineModel(const std::string& bytes);

}  // namespace nnc::onnxio
