// Any byte string, raw or gzipped IDX, must end in an array or an error in
// words: never a crash, a hang or unbounded memory (parseIdx, io/idx.h).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/idx.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto r = nnc::parseIdx(bytes, "fuzz.idx", /*scaleU8=*/size % 2 == 1)) (void)r->values.size();
  return 0;
}
