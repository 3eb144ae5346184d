// Batch augmentation (augmentBatch, declared in io/dataset.h).
#include <algorithm>
#include <vector>

#include "io/augment.h"

namespace nnc {

void augmentBatch(const Augment& a, const Dataset& d, float* samples, int64_t n, Rng& rng) {
  const int64_t rows = d.rows, cols = d.cols, planes = d.channels, size = d.sampleSize();
  std::vector<float> copy(static_cast<size_t>(a.shift > 0 ? size : 0));
  for (int64_t i = 0; i < n; ++i) {
    float* x = samples + i * size;
    if (a.shift > 0) {
      const uint64_t span = 2 * static_cast<uint64_t>(a.shift) + 1;
      const int64_t dy = static_cast<int64_t>(rng.below(span)) - a.shift;
      const int64_t dx = static_cast<int64_t>(rng.below(span)) - a.shift;
      if (dy != 0 || dx != 0) {
        std::copy_n(x, size, copy.data());
        for (int64_t c = 0; c < planes; ++c)
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t k = 0; k < cols; ++k) {
              const int64_t sr = r - dy, sk = k - dx;
              const bool inside = sr >= 0 && sr < rows && sk >= 0 && sk < cols;
              x[(c * rows + r) * cols + k] = inside ? copy[static_cast<size_t>((c * rows + sr) * cols + sk)] : 0.0f;
            }
      }
    }
    if (a.hflip && rng.below(2) == 1)
      for (int64_t r = 0; r < planes * rows; ++r) std::reverse(x + r * cols, x + (r + 1) * cols);
  }
  if (a.binarize >= 0)
    for (int64_t j = 0; j < n * size; ++j) samples[j] = samples[j] > a.binarize ? 1.0f : 0.0f;
}

}  // namespace nnc
