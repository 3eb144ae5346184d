// Any byte string must end in an image or an error in words from the PNG,
// PGM and PPM decoders (decodeImage, io/image_decode.h), and a decoded
// image must convert to planes: never a crash, a hang or unbounded memory.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "io/image_decode.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto im = nnc::decodeImage(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.img");
  if (im && im->width <= 64 && im->height <= 64) (void)nnc::imageToPlanes(*im, 3, 5, 7);
  return 0;
}
