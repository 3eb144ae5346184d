// PNG (https://www.w3.org/TR/png/) and Netpbm PGM/PPM decoding.
#include "io/image_decode.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdlib>

#include "io/file_io.h"
#include "io/npy.h"

namespace nnc {
namespace {

constexpr std::string_view kPngSig = "\x89PNG\r\n\x1a\n";

uint32_t be32(const char* p) {
  auto u = [&](int i) { return uint32_t{static_cast<unsigned char>(p[i])}; };
  return u(0) << 24 | u(1) << 16 | u(2) << 8 | u(3);
}

std::string hexPrefix(std::string_view b) {
  std::string s;
  for (size_t i = 0; i < std::min<size_t>(8, b.size()); ++i)
    s += fmt::format("{}{:02x}", i ? " " : "", static_cast<unsigned char>(b[i]));
  return b.empty() ? "nothing: the file is empty" : s;
}

struct PngHeader {
  int64_t width = 0, height = 0;
  int depth = 0, colorType = 0;
  int samples = 0;  // per pixel in the file: a palette index counts as one
};

Expected<PngHeader> parseIhdr(std::string_view d, const std::string& what) {
  if (d.size() != 13) return error("'{}': the IHDR chunk is {} bytes, not 13", what, d.size());
  PngHeader h;
  h.width = be32(d.data());
  h.height = be32(d.data() + 4);
  h.depth = static_cast<unsigned char>(d[8]);
  h.colorType = static_cast<unsigned char>(d[9]);
  const int compression = static_cast<unsigned char>(d[10]), filter = static_cast<unsigned char>(d[11]),
            interlace = static_cast<unsigned char>(d[12]);
  if (h.width == 0 || h.height == 0 || h.width > INT32_MAX || h.height > INT32_MAX)
    return error("'{}': the PNG header gives an invalid size {}×{}", what, h.width, h.height);
  if (h.width * h.height > kMaxImagePixels)
    return error("'{}' is {}×{} pixels, more than the {} nnc reads", what, h.width, h.height, kMaxImagePixels);
  const int d8 = h.depth;
  bool depthOk = false;
  switch (h.colorType) {
    case 0: h.samples = 1; depthOk = d8 == 1 || d8 == 2 || d8 == 4 || d8 == 8 || d8 == 16; break;
    case 3: h.samples = 1; depthOk = d8 == 1 || d8 == 2 || d8 == 4 || d8 == 8; break;
    case 2: h.samples = 3; depthOk = d8 == 8 || d8 == 16; break;
    case 4: h.samples = 2; depthOk = d8 == 8 || d8 == 16; break;
    case 6: h.samples = 4; depthOk = d8 == 8 || d8 == 16; break;
    default: return error("'{}': PNG colour type {} does not exist", what, h.colorType);
  }
  if (!depthOk) return error("'{}': bit depth {} is not allowed for PNG colour type {}", what, d8, h.colorType);
  if (compression != 0 || filter != 0)
    return error("'{}': unknown PNG compression ({}) or filter method ({})", what, compression, filter);
  if (interlace == 1)
    return error("'{}' is an interlaced (Adam7) PNG, which nnc does not read; save it non-interlaced", what);
  if (interlace != 0) return error("'{}': unknown PNG interlace method {}", what, interlace);
  return h;
}

// Inflates into exactly `size` bytes: a stream yielding fewer or more is an
// error, so the output never grows past what the header describes.
Expected<std::vector<uint8_t>> inflateExact(std::string_view in, uint64_t size, const std::string& what) {
  std::vector<uint8_t> out(static_cast<size_t>(size) + 1);  // +1 tells "exactly" from "more"
  z_stream zs{};
  if (inflateInit(&zs) != Z_OK) return error("'{}': zlib could not start inflating", what);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = Z_OK;
  while (rc == Z_OK) rc = inflate(&zs, Z_NO_FLUSH);
  const uint64_t got = out.size() - zs.avail_out;
  std::string why = zs.msg ? zs.msg : "";
  inflateEnd(&zs);
  if (got > size)
    return error("'{}': the image data inflate to more than the {} bytes its header describes", what, size);
  if (rc == Z_STREAM_END && got == size) {
    out.pop_back();
    return out;
  }
  if (rc == Z_STREAM_END || rc == Z_BUF_ERROR)
    return error("'{}' is truncated: its image data inflate to {} bytes, the header describes {}", what, got, size);
  return error("'{}' has corrupt image data (zlib: {})", what, why.empty() ? fmt::format("error {}", rc) : why);
}

uint8_t paeth(int a, int b, int c) {
  const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
  return static_cast<uint8_t>(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

// Undoes the row filters in place; rows are 1 filter byte + stride bytes.
Status unfilter(std::vector<uint8_t>& raw, int64_t height, int64_t stride, int bpp, const std::string& what) {
  std::vector<uint8_t> zero(static_cast<size_t>(stride), 0);
  const uint8_t* prev = zero.data();
  for (int64_t y = 0; y < height; ++y) {
    uint8_t* row = raw.data() + y * (stride + 1);
    const int f = row[0];
    uint8_t* x = row + 1;
    for (int64_t i = 0; i < stride; ++i) {
      const int a = i >= bpp ? x[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      switch (f) {
        case 0: break;
        case 1: x[i] = static_cast<uint8_t>(x[i] + a); break;
        case 2: x[i] = static_cast<uint8_t>(x[i] + b); break;
        case 3: x[i] = static_cast<uint8_t>(x[i] + (a + b) / 2); break;
        case 4: x[i] = static_cast<uint8_t>(x[i] + paeth(a, b, c)); break;
        default: return error("'{}': row {} has unknown PNG filter type {}", what, y, f);
      }
    }
    prev = x;
  }
  return ok();
}

Expected<Image> decodePng(std::string_view b, const std::string& what) {
  PngHeader h;
  bool haveHeader = false, haveEnd = false;
  std::string idat;
  std::vector<uint8_t> palette;
  size_t pos = kPngSig.size();
  while (pos < b.size() && !haveEnd) {
    if (b.size() - pos < 12)
      return error("'{}' is truncated: the chunk at byte {} is cut short ({} bytes left)", what, pos, b.size() - pos);
    const uint32_t len = be32(b.data() + pos);
    const std::string type(b.substr(pos + 4, 4));
    if (len > INT32_MAX) return error("'{}': chunk '{}' at byte {} has an invalid length {}", what, type, pos, len);
    if (len > b.size() - pos - 12)
      return error("'{}' is truncated: chunk '{}' at byte {} needs {} bytes, {} are left", what, type, pos, len + 12,
                   b.size() - pos);
    const std::string_view data = b.substr(pos + 8, len);
    const uint32_t stored = be32(b.data() + pos + 8 + len);
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(b.data() + pos + 4), static_cast<uInt>(len + 4)));
    if (crc != stored)
      return error("'{}': chunk '{}' at byte {} has a bad CRC (stored {:08x}, computed {:08x}); the file is corrupt",
                   what, type, pos, stored, crc);
    if (!haveHeader && type != "IHDR") return error("'{}': the first PNG chunk is '{}', not 'IHDR'", what, type);
    if (type == "IHDR") {
      if (haveHeader) return error("'{}' has a second IHDR chunk", what);
      NNC_TRY(h, parseIhdr(data, what));
      haveHeader = true;
    } else if (type == "PLTE") {
      if (len % 3 != 0 || len == 0 || len > 768)
        return error("'{}': the PLTE chunk is {} bytes, not 3 per entry for 1 to 256 entries", what, len);
      palette.assign(data.begin(), data.end());
    } else if (type == "IDAT") {
      idat.append(data);
    } else if (type == "IEND") {
      haveEnd = true;
    } else if (!(static_cast<unsigned char>(type[0]) & 0x20)) {
      return error("'{}' has a critical chunk '{}' that nnc does not know", what, type);
    }
    pos += 12 + len;
  }
  if (!haveHeader) return error("'{}' is truncated: it ends after the PNG signature", what);
  if (!haveEnd) return error("'{}' is truncated: it ends without an IEND chunk", what);
  if (idat.empty()) return error("'{}' has no IDAT chunk (no image data)", what);
  if (h.colorType == 3 && palette.empty()) return error("'{}' is a palette PNG without a PLTE chunk", what);

  const int bitsPerPixel = h.samples * h.depth, bpp = std::max(1, bitsPerPixel / 8);
  const int64_t stride = (h.width * bitsPerPixel + 7) / 8;
  NNC_TRY(std::vector<uint8_t> raw, inflateExact(idat, static_cast<uint64_t>(h.height * (stride + 1)), what));
  NNC_CHECK(unfilter(raw, h.height, stride, bpp, what));

  Image im;
  im.width = h.width;
  im.height = h.height;
  im.channels = h.colorType == 3 ? 3 : h.samples;
  im.pixels.resize(static_cast<size_t>(h.width * h.height * im.channels));
  uint8_t* out = im.pixels.data();
  const int64_t perRow = h.width * h.samples;
  const int maxSub = (1 << h.depth) - 1;
  for (int64_t y = 0; y < h.height; ++y) {
    const uint8_t* row = raw.data() + y * (stride + 1) + 1;
    for (int64_t i = 0; i < perRow; ++i) {
      int v;
      if (h.depth == 8) v = row[i];
      else if (h.depth == 16) v = ((row[2 * i] << 8 | row[2 * i + 1]) + 128) / 257;
      else v = (row[i * h.depth / 8] >> (8 - h.depth - (i * h.depth) % 8)) & maxSub;
      if (h.colorType == 3) {
        if (3 * static_cast<size_t>(v) + 2 >= palette.size())
          return error("'{}': pixel ({}, {}) uses palette entry {}, but the palette has {}", what, y, i, v,
                       palette.size() / 3);
        for (int c = 0; c < 3; ++c) *out++ = palette[3 * static_cast<size_t>(v) + static_cast<size_t>(c)];
      } else {
        *out++ = static_cast<uint8_t>(h.depth < 8 ? v * 255 / maxSub : v);
      }
    }
  }
  return im;
}

// Netpbm headers: whitespace-separated decimal fields, '#' comments to the
// end of the line.
struct PnmReader {
  std::string_view b;
  size_t pos = 2;
  bool skipSpace() {
    while (pos < b.size()) {
      const char c = b[pos];
      if (c == '#') {
        while (pos < b.size() && b[pos] != '\n' && b[pos] != '\r') ++pos;
      } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
        ++pos;
      } else {
        return true;
      }
    }
    return false;
  }
  // -1: no number here; -2: too large.
  int64_t number() {
    if (!skipSpace() || b[pos] < '0' || b[pos] > '9') return -1;
    int64_t v = 0;
    while (pos < b.size() && b[pos] >= '0' && b[pos] <= '9') {
      v = v * 10 + (b[pos++] - '0');
      if (v > INT32_MAX) return -2;
    }
    return v;
  }
};

Expected<Image> decodePnm(std::string_view b, const std::string& what) {
  const char kind = b[1];
  if (kind == '1' || kind == '4' || kind == '7')
    return error("'{}' is a P{} Netpbm file; nnc reads P2/P5 (PGM) and P3/P6 (PPM)", what, kind);
  const bool ascii = kind == '2' || kind == '3';
  Image im;
  im.channels = kind == '3' || kind == '6' ? 3 : 1;
  PnmReader r{b};
  const int64_t w = r.number(), h = r.number(), maxval = r.number();
  if (w == -2 || h == -2 || maxval == -2) return error("'{}': a PNM header field is too large", what);
  if (w < 0 || h < 0 || maxval < 0) return error("'{}' is truncated or malformed: its PNM header lacks width, height or maxval", what);
  if (w == 0 || h == 0) return error("'{}': the PNM header gives an empty size {}×{}", what, w, h);
  if (w * h > kMaxImagePixels)
    return error("'{}' is {}×{} pixels, more than the {} nnc reads", what, w, h, kMaxImagePixels);
  if (maxval == 0 || maxval > 255)
    return error("'{}' has maxval {}; nnc reads 8-bit PNM files (maxval 1 to 255)", what, maxval);
  im.width = w;
  im.height = h;
  const int64_t n = w * h * im.channels;
  // Each sample takes at least one byte: a lower bound checked before allocating.
  const int64_t left = static_cast<int64_t>(b.size() - std::min(b.size(), r.pos + 1));
  if (left < n)
    return error("'{}' is truncated: {}×{}×{} samples need {} bytes, {} are left", what, w, h, im.channels, n, left);
  im.pixels.resize(static_cast<size_t>(n));
  if (ascii) {
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = r.number();
      if (v == -1) return error("'{}' is truncated or malformed: sample {} of {} is missing or not a number", what, i, n);
      if (v < 0 || v > maxval) return error("'{}': sample {} is beyond maxval {}", what, i, maxval);
      im.pixels[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
    }
  } else {
    // Exactly one whitespace byte separates maxval from the samples.
    const size_t at = r.pos + 1;
    for (int64_t i = 0; i < n; ++i) {
      const int v = static_cast<unsigned char>(b[at + static_cast<size_t>(i)]);
      if (v > maxval) return error("'{}': sample {} is {}, beyond maxval {}", what, i, v, maxval);
      im.pixels[static_cast<size_t>(i)] = static_cast<uint8_t>(v);
    }
  }
  if (maxval != 255)
    for (uint8_t& p : im.pixels) p = static_cast<uint8_t>((p * 255 + maxval / 2) / maxval);
  return im;
}

}  // namespace

Expected<Image> decodeImage(std::string_view b, const std::string& what) {
  if (b.size() >= kPngSig.size() && b.substr(0, kPngSig.size()) == kPngSig) return decodePng(b, what);
  if (!b.empty() && b.size() < kPngSig.size() && kPngSig.substr(0, b.size()) == b)
    return error("'{}' is truncated: {} bytes, shorter than the PNG signature", what, b.size());
  if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '7') return decodePnm(b, what);
  return error("'{}' is neither a PNG nor a PGM/PPM file (bad signature: starts {})", what, hexPrefix(b));
}

Expected<Image> readImage(const std::string& path) {
  // The largest image nnc decodes (kMaxImagePixels of 16-bit RGBA) is
  // 512 MiB uncompressed; a bigger file is not one of them.
  NNC_TRY(std::string bytes, readFile(path, uint64_t{1} << 30, "an image"));
  return decodeImage(bytes, path);
}

std::vector<float> imageToPlanes(const Image& im, int channels, int64_t height, int64_t width) {
  const int64_t h = im.height, w = im.width, hw = h * w;
  const int c = im.channels;
  std::vector<float> src(static_cast<size_t>(channels * hw));
  for (int64_t i = 0; i < hw; ++i) {
    const uint8_t* p = im.pixels.data() + i * c;
    if (channels == 1) {
      src[static_cast<size_t>(i)] = c >= 3 ? static_cast<float>(0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]) : p[0];
    } else {
      for (int k = 0; k < 3; ++k) src[static_cast<size_t>(k * hw + i)] = c >= 3 ? p[k] : p[0];
    }
  }
  if (height == h && width == w) return src;

  // Source coordinate, lower neighbour and weight of the upper one, per
  // output row or column.
  struct Tap {
    int64_t lo, hi;
    double f;
  };
  auto taps = [](int64_t out, int64_t in) {
    std::vector<Tap> t(static_cast<size_t>(out));
    for (int64_t o = 0; o < out; ++o) {
      double s = std::clamp((static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5,
                            0.0, static_cast<double>(in - 1));
      const int64_t lo = static_cast<int64_t>(s);
      t[static_cast<size_t>(o)] = {lo, std::min(lo + 1, in - 1), s - static_cast<double>(lo)};
    }
    return t;
  };
  const std::vector<Tap> ty = taps(height, h), tx = taps(width, w);
  std::vector<float> dst(static_cast<size_t>(channels * height * width));
  for (int k = 0; k < channels; ++k) {
    const float* s = src.data() + k * hw;
    float* d = dst.data() + k * height * width;
    for (int64_t y = 0; y < height; ++y) {
      const Tap a = ty[static_cast<size_t>(y)];
      for (int64_t x = 0; x < width; ++x) {
        const Tap t = tx[static_cast<size_t>(x)];
        const double top = s[a.lo * w + t.lo] * (1 - t.f) + s[a.lo * w + t.hi] * t.f;
        const double bot = s[a.hi * w + t.lo] * (1 - t.f) + s[a.hi * w + t.hi] * t.f;
        d[y * width + x] = static_cast<float>(top * (1 - a.f) + bot * a.f);
      }
    }
  }
  return dst;
}

}  // namespace nnc
