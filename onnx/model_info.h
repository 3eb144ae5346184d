// What the conformance runner needs to know of an ONNX model without
// importing it: its op types (for the per-op summary, also of models the
// importer refuses) and its graph's input and output names in order (a
// test's input_K.pb feeds the K-th input that is not an initializer).
#pragma once
#include <string>
#include <vector>

#include "base/diagnostics.h"

namespace nnc::onnxio {

struct ModelInfo {
  std::vector<std::string> opTypes;  // distinct, sorted; "domain:Op" outside the default domain
  std::vector<std::string> inputs;   // graph inputs that no initializer gives, in order
  std::vector<std::string> outputs;  // graph outputs, in order
  int64_t opset = 0;                 // of the default domain (0: not given)
};

// `bytes` is model.onnx's content; `what` names it in messages.
Expected<ModelInfo> modelInfo(const std::string& bytes, const std::string& what);

}  // namespace nnc::onnxio
