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

#include "dsl/diagnostics.h"
#include "runtime/dataset.h"
#include "runtime/tensor.h"

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
Expected<IdxArray> readIdx(const std::string& path);
// The same from bytes already in memory (raw or gzipped); `what` names them.
Expected<IdxArray> parseIdx(std::string_view bytes, const std::string& what);

// A labelled split (Dataset, runtime/dataset.h): images holds
// count*rows*cols pixels scaled to [0, 1] (pixel / 255.0f), row-major;
// labels are 0..255; classes is max label + 1. Loads
// DIR/{train|t10k}-images-idx3-ubyte[.gz] and
// DIR/{train|t10k}-labels-idx1-ubyte[.gz]; split is "train" or "test"
// ("t10k" is accepted for "test"). The uncompressed name is tried first.
Expected<Dataset> loadIdxDataset(const std::string& dir, const std::string& split);

// The images as f32 [N, rows*cols], or [N, 1, rows, cols] with
// keepImageShape (for convolutions); the labels as i32 [N].
Tensor datasetImages(const Dataset& d, bool keepImageShape = false);
Tensor datasetLabels(const Dataset& d);

}  // namespace nnc
