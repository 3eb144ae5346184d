// Internal to onnx/: reading ONNX's protobuf messages into nnc's values.
#pragma once
#include <onnx/onnx_pb.h>

#include <string>

#include "base/diagnostics.h"
#include "base/tensor.h"

namespace nnc::onnxio {

// The most elements one tensor may claim (2^31): a dims product beyond it is
// refused before anything is allocated.
constexpr int64_t kMaxTensorElements = int64_t{1} << 31;

// A TensorProto's values, whatever its element type (float, double, the
// integers, bool, float16); `baseDir` resolves external data (empty: none
// allowed). `what` names the tensor in messages.
Expected<Tensor> tensorFromProto(const onnx::TensorProto& t, const std::string& baseDir, const std::string& what);

// "float", "int64", ... for messages.
const char* elemTypeName(int type);

}  // namespace nnc::onnxio
