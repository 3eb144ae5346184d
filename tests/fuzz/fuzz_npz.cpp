// Any byte string must end in arrays or an error in words from the .npz
// reader (parseNpz, io/npy.h: the zip directory, stored and deflated
// members, the .npy inside): never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)nnc::parseNpz(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.npz");
  return 0;
}
