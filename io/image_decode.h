// Decoding the image files of image-folder datasets: PNG and binary/ASCII
// PGM/PPM, told apart by their magic bytes, never by the file name.
//
// PNG: bit depths 1, 2, 4, 8 and 16 of every colour type (gray, gray+alpha,
// RGB, RGBA, palette), all five row filters, chunk CRCs checked. 16-bit
// samples are downscaled to 8 bits (round(v / 257)); interlaced (Adam7) files
// are refused with an error. Ancillary chunks (tRNS, gAMA...) are ignored.
// PNM: P2/P5 (gray) and P3/P6 (RGB), maxval up to 255, rescaled to 0..255.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"

namespace nnc {

// 8-bit samples, row-major, channels interleaved: 1 gray, 2 gray+alpha,
// 3 RGB, 4 RGBA (palette images become RGB).
struct Image {
  int64_t width = 0, height = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;
};

// Larger images are refused before anything is allocated: a hostile header
// must not make us allocate without bound.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// `what` names the bytes (the file) in every error.
Expected<Image> decodeImage(std::string_view bytes, const std::string& what);
Expected<Image> readImage(const std::string& path);

// The image as `channels` (1 or 3) planes of height×width floats in 0..255
// (CHW). Alpha is dropped, not composited; RGB→gray is 0.299R + 0.587G +
// 0.114B; gray→RGB repeats the plane. A different size is reached by bilinear
// interpolation with half-pixel centres (as OpenCV's INTER_LINEAR and
// PyTorch's align_corners=False), without antialiasing when shrinking.
std::vector<float> imageToPlanes(const Image& im, int channels, int64_t height, int64_t width);

}  // namespace nnc
