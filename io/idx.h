// IDX files (the MNIST / Fashion-MNIST format) and labelled image splits
// made of an images file and a labels file.
//
// An IDX file is: 0x00 0x00, a type byte, a dimension count, one big-endian
// u32 per dimension, then the elements in row-major order, big-endian. Files
// may be gzipped; that is told from the 1f 8b magic, never from the name.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"
#include "base/tensor.h"

namespace nnc {

// IDX element types.
inline constexpr uint8_t kIdxU8 = 0x08, kIdxI8 = 0x09, kIdxI16 = 0x0B, kIdxI32 = 0x0C, kIdxF32 = 0x0D,
                         kIdxF64 = 0x0E;

// Elements as float whatever the file's type: u8, i8 and i16 are exact; i32
// beyond 2^24 and f64 are rounded.
struct IdxArray {
  uint8_t type = kIdxU8;
  Shape shape;
  std::vector<float> values;
};

// Errors name the file and say what is wrong: bad magic (with the bytes
// found), truncated header or data, trailing bytes, zero or oversized
// dimensions, a corrupt gzip stream (zlib's words), or a gzip stream that
// inflates to more than the header allows (plus 1 MiB of slack).
// scaleU8: u8 elements become byte / 255.0f (a dataset's pixels).
Expected<IdxArray> readIdx(const std::string& path, bool scaleU8 = false);
// The same from bytes already in memory (raw or gzipped); `what` names them.
Expected<IdxArray> parseIdx(std::string_view bytes, const std::string& what, bool scaleU8 = false);

// IDX element type name ("u8", "f32", ...), for messages.
const char* idxTypeName(uint8_t type);

}  // namespace nnc
