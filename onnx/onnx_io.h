// ONNX in and out. The importer turns an ONNX model (opsets 6–17) into a
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

}  // namespace nnc::onnxio
