// Any byte string must end in a tensor or an error in words from the .npy
// reader (parseNpy, io/npy.h): never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)nnc::parseNpy(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npy");
  return 0;
}
