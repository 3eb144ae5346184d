// FNV-1a, 64 bits: a cheap, stable hash of bytes (emit-cpp's manifest of
// the files it wrote, the checks that every rank of a data-parallel run
// has the same model and data). Not for anything adversarial.
#pragma once
#include <cstdint>
#include <string_view>

namespace nnc {

inline constexpr uint64_t kFnvOffset = 14695981039346656037ULL;

// Continues hash h over `bytes` (start from kFnvOffset).
inline uint64_t fnv1a(std::string_view bytes, uint64_t h = kFnvOffset) {
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ULL;
  return h;
}

}  // namespace nnc
