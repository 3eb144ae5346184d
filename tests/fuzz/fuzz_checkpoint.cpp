// Any byte string as checkpoint.json must end in the checkpoint's metadata
// or an error in words (parseCheckpointJson, io/checkpoint.h: the JSON
// reader and the field checks): never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/checkpoint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)nnc::parseCheckpointJson(std::string_view(reinterpret_cast<const char*>(data), size), "checkpoint.json");
  return 0;
}
