// Any byte string must end in a .nn source or an error in words from the
// ONNX importer (onnx/onnx_io.h: protobuf parsing, ONNX's checker, every
// translator and the size checks): never a crash, a hang or an allocation
// of what a hostile file claims.
#include <cstddef>
#include <cstdint>
#include <string>

#include "onnx/onnx_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)nnc::onnxio::importModel(std::string(reinterpret_cast<const char*>(data), size), "fuzz.onnx", {});
  return 0;
}
