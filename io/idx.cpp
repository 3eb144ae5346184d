// IDX reading (raw or gzipped); the MNIST-style splits are io/idx_dataset.cpp.
#include "io/idx.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <compare>
#include <iterator>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include "io/file_io.h"
#include "io/npy.h"

namespace nnc {
namespace {

// A gzip stream may inflate to at most the size its IDX header describes plus
// this much; anything beyond is refused while inflating, so a small hostile
// file cannot make us allocate without bound.
constexpr uint64_t kGzipSlack = uint64_t{1} << 20;
// Values are held as float: 2^31 of them is already 8 GiB. A header asking
// for more is far more likely corrupt than real, and the cap keeps every size
// computation below far from overflow.
constexpr uint64_t kMaxElements = uint64_t{1} << 31;

int elemSize(uint8_t type) {
  switch (type) {
    case kIdxU8:
    case kIdxI8: return 1;
    case kIdxI16: return 2;
    case kIdxI32:
    case kIdxF32: return 4;
    case kIdxF64: return 8;
    default: return 0;
  }
}

const char* typeName(uint8_t type) {
  switch (type) {
    case kIdxU8: return "u8";
    case kIdxI8: return "i8";
    case kIdxI16: return "i16";
    case kIdxI32: return "i32";
    case kIdxF32: return "f32";
    case kIdxF64: return "f64";
    default: return "?";
  }
}

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

const unsigned char* bytesOf(std::string_view b) { return reinterpret_cast<const unsigned char*>(b.data()); }

// "1f 8b 08 00..." : the first few bytes, for a "not an IDX file" message.
std::string hexPrefix(std::string_view b, size_t n = 4) {
  std::string s;
  for (size_t i = 0; i < std::min(n, b.size()); ++i)
    s += fmt::format("{}{:02x}", i ? " " : "", static_cast<unsigned char>(b[i]));
  if (b.size() > n) s += "...";
  if (b.empty()) s = "none: the file is empty";
  return s;
}

std::string dimsString(const Shape& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) out += fmt::format("{}{}", i ? "×" : "", s[i]);
  return out;
}

struct Header {
  uint8_t type = 0;
  Shape shape;
  uint64_t headerBytes = 0, elements = 0, dataBytes = 0;
};

enum class HeaderState { Ok, Short, Bad };

// Parses as much of the header as `b` holds. Short means the bytes so far
// are a valid start but end too early; Bad sets *err. The gzip reader calls
// this on a growing prefix to learn its size limit as soon as it can.
HeaderState parseHeader(std::string_view b, const std::string& what, const char* kind, Header* h,
                        Diagnostic* err) {
  const unsigned char* p = bytesOf(b);
  bool badMagic = (b.size() >= 1 && p[0] != 0) || (b.size() >= 2 && p[1] != 0);
  if (badMagic) {
    *err = error("'{}' is not an IDX file ({}magic {}; an IDX file starts 00 00 <type> <rank>)", what, kind,
                 hexPrefix(b));
    return HeaderState::Bad;
  }
  if (b.size() >= 3 && elemSize(p[2]) == 0) {
    *err = error("'{}' is not an IDX file ({}magic {}: unknown element type 0x{:02x})", what, kind, hexPrefix(b),
                 p[2]);
    return HeaderState::Bad;
  }
  if (b.size() < 4) return HeaderState::Short;
  h->type = p[2];
  int rank = p[3];
  if (rank == 0) {
    *err = error("'{}' has an IDX header with no dimensions ({}magic {})", what, kind, hexPrefix(b));
    return HeaderState::Bad;
  }
  h->headerBytes = 4 + 4 * static_cast<uint64_t>(rank);
  if (b.size() < h->headerBytes) return HeaderState::Short;
  h->shape.clear();
  for (int i = 0; i < rank; ++i) h->shape.push_back(be32(p + 4 + 4 * i));
  uint64_t elements = 1;
  for (int i = 0; i < rank; ++i) {
    if (h->shape[i] == 0) {
      *err = error("'{}' has a zero dimension: its IDX header says {} (dimension {} is 0)", what,
                   dimsString(h->shape), i);
      return HeaderState::Bad;
    }
    // Each dimension is below 2^32 and the running product stays at most
    // kMaxElements, so this cannot overflow before the check catches it.
    elements *= static_cast<uint64_t>(h->shape[i]);
    if (elements > kMaxElements) {
      *err = error("'{}' has an IDX header describing {} elements, more than the {} nnc reads", what,
                   dimsString(h->shape), kMaxElements);
      return HeaderState::Bad;
    }
  }
  h->elements = elements;
  h->dataBytes = elements * static_cast<uint64_t>(elemSize(h->type));
  return HeaderState::Ok;
}

// Asks for transparent huge pages on a large buffer before it is first
// touched: filling the 188 MB of floats of the MNIST training set otherwise
// costs tens of thousands of page faults, most of the load time on a VM.
void adviseHuge(void* p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  const uintptr_t page = 4096, start = (reinterpret_cast<uintptr_t>(p) + page - 1) & ~(page - 1),
                  end = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(page - 1);
  if (bytes >= (size_t{4} << 20) && end > start)
    (void)::madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE);
#else
  (void)p;
  (void)bytes;
#endif
}

// An inflated byte buffer. malloc/realloc rather than std::string, whose
// resize would zero-fill tens of megabytes only for inflate to overwrite.
struct Inflated {
  struct Free {
    void operator()(unsigned char* p) const { std::free(p); }
  };
  std::unique_ptr<unsigned char, Free> data;
  size_t capacity = 0, size = 0;
  bool grow(size_t want) {
    auto* p = static_cast<unsigned char*>(std::realloc(data.get(), want));
    if (!p) return false;
    (void)data.release();
    data.reset(p);
    adviseHuge(p + capacity, want - capacity);
    capacity = want;
    return true;
  }
  std::string_view view() const { return {reinterpret_cast<const char*>(data.get()), size}; }
};

// Gunzips `in` into a buffer that grows as needed, capped at what the IDX
// header (read from the first inflated bytes) allows plus kGzipSlack.
// Concatenated gzip members are joined, as gzip(1) does.
Expected<Inflated> gunzip(std::string_view in, const std::string& what) {
  z_stream zs{};
  // 15 + 32: full window, and zlib detects and checks the gzip wrapper.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) return error("'{}': zlib could not start inflating", what);
  struct Ender {
    z_stream* z;
    ~Ender() { inflateEnd(z); }
  } ender{&zs};

  Inflated out;
  auto noMemory = [&](uint64_t bytes) { return error("'{}': out of memory inflating {} bytes", what, bytes); };
  // 64 KiB surely holds any header (at most 1024 bytes).
  if (!out.grow(size_t{64} << 10)) return noMemory(size_t{64} << 10);
  // ISIZE, the trailer's size mod 2^32, lets a normal file be inflated into
  // one allocation; it is only a hint and never trusted beyond the limit.
  uint64_t hint = 0;
  if (in.size() >= 18) {
    const unsigned char* t = bytesOf(in) + in.size() - 4;
    hint = uint64_t{t[0]} | (uint64_t{t[1]} << 8) | (uint64_t{t[2]} << 16) | (uint64_t{t[3]} << 24);
  }
  uint64_t limit = std::numeric_limits<uint64_t>::max();  // unknown until the header is inflated
  bool headerKnown = false;
  const unsigned char* next = bytesOf(in);
  size_t left = in.size();

  for (;;) {
    if (out.size == out.capacity) {
      // Full: grow, but never past limit + 1 (the extra byte tells "exactly
      // at the limit" from "beyond it"). The header is known by now: the
      // first 64 KiB hold it, or inflating stopped at a bad one.
      uint64_t want = std::max<uint64_t>(uint64_t{out.capacity} * 2, hint);
      if (headerKnown) want = std::min(want, limit + 1);
      if (!out.grow(static_cast<size_t>(want))) return noMemory(want);
    }
    zs.next_in = const_cast<Bytef*>(next);
    zs.avail_in = static_cast<uInt>(std::min<size_t>(left, UINT_MAX));
    zs.next_out = out.data.get() + out.size;
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.capacity - out.size, UINT_MAX));
    const uInt inBefore = zs.avail_in, outBefore = zs.avail_out;
    int rc = inflate(&zs, Z_NO_FLUSH);
    next += inBefore - zs.avail_in;
    left -= inBefore - zs.avail_in;
    out.size += outBefore - zs.avail_out;

    if (!headerKnown) {
      Header h;
      Diagnostic ignored;
      HeaderState st = parseHeader(out.view(), what, "", &h, &ignored);
      // Not IDX data: what we have is enough for parseIdx to say why.
      if (st == HeaderState::Bad) return out;
      if (st == HeaderState::Ok) {
        headerKnown = true;
        limit = h.headerBytes + h.dataBytes + kGzipSlack;
        if (hint > limit + 1) hint = 0;
      }
    }
    if (out.size > limit)
      return error("'{}' inflates to more than {} bytes, beyond the {} its IDX header describes; refusing it "
                   "(a gzip bomb or a corrupt header?)",
                   what, limit, limit - kGzipSlack);

    if (rc == Z_STREAM_END) {
      if (left >= 2 && next[0] == 0x1f && next[1] == 0x8b) {
        inflateReset(&zs);
        continue;
      }
      if (left > 0)
        return error("'{}' has {} bytes of trailing garbage after its gzip stream", what, left);
      return out;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR) {
      if (out.size == out.capacity) continue;  // only needed more room
      return error("'{}' is a truncated gzip stream: it ends after {} compressed bytes (inflated {} so far)", what,
                   in.size(), out.size);
    }
    if (rc == Z_MEM_ERROR) return noMemory(out.size);
    std::string why = zs.msg ? zs.msg : fmt::format("zlib error {}", rc);
    return error("'{}' is a corrupt gzip stream: {}", what, why);
  }
}

template <class Conv>
void convert(const unsigned char* p, uint64_t n, int size, float* dst, Conv conv) {
  for (uint64_t i = 0; i < n; ++i) dst[i] = conv(p + i * static_cast<uint64_t>(size));
}

// Yields table[byte] for each byte: random access, so vector::assign sizes
// its buffer once and converts in a single pass without zero-filling first.
struct LutIterator {
  using iterator_category = std::random_access_iterator_tag;
  using value_type = float;
  using difference_type = std::ptrdiff_t;
  using pointer = const float*;
  using reference = float;
  const unsigned char* p;
  const float* table;
  float operator*() const { return table[*p]; }
  float operator[](difference_type i) const { return table[p[i]]; }
  LutIterator& operator++() { ++p; return *this; }
  LutIterator operator++(int) { LutIterator t = *this; ++p; return t; }
  LutIterator& operator--() { --p; return *this; }
  LutIterator operator--(int) { LutIterator t = *this; --p; return t; }
  LutIterator& operator+=(difference_type n) { p += n; return *this; }
  LutIterator& operator-=(difference_type n) { p -= n; return *this; }
  LutIterator operator+(difference_type n) const { return {p + n, table}; }
  [[maybe_unused]] friend LutIterator operator+(difference_type n, LutIterator it) { return it + n; }
  LutIterator operator-(difference_type n) const { return {p - n, table}; }
  difference_type operator-(const LutIterator& o) const { return p - o.p; }
  auto operator<=>(const LutIterator& o) const { return p <=> o.p; }
  bool operator==(const LutIterator& o) const { return p == o.p; }
};

// A file (or inflated stream) of `size` bytes must hold exactly the header
// and the data it describes.
Status checkExtent(const Header& h, uint64_t size, const std::string& what, bool gz) {
  const char* has = gz ? "inflates to" : "has";
  const uint64_t avail = size - h.headerBytes;
  std::string described = h.type == kIdxU8
                              ? fmt::format("{} bytes", dimsString(h.shape))
                              : fmt::format("{} {} values ({} bytes)", dimsString(h.shape), typeName(h.type),
                                            h.dataBytes);
  if (avail < h.dataBytes)
    return error("'{}' is truncated: header says {}, file {} {} after the {}-byte header", what, described, has,
                 avail, h.headerBytes);
  if (avail > h.dataBytes)
    return error("'{}' has {} bytes after the {} its IDX header describes", what, avail - h.dataBytes, described);
  return ok();
}

// scaleU8: u8 elements become byte / 255.0f (the dataset's pixels) rather
// than the byte's value, in the same pass.
Expected<IdxArray> parseDecoded(std::string_view b, const std::string& what, bool gz, bool scaleU8 = false) {
  const char* kind = gz ? "gunzipped, " : "";
  const char* has = gz ? "inflates to" : "has";
  Header h;
  Diagnostic err;
  HeaderState st = parseHeader(b, what, kind, &h, &err);
  if (st == HeaderState::Bad) return err;
  if (st == HeaderState::Short) {
    if (b.size() < 4)
      return error("'{}' is truncated: it {} {} bytes, too short for an IDX header ({}magic {})", what, has,
                   b.size(), kind, hexPrefix(b));
    return error("'{}' is truncated: its IDX header has {} dimensions ({} bytes) but the file {} {} bytes", what,
                 static_cast<int>(static_cast<unsigned char>(b[3])), h.headerBytes, has, b.size());
  }
  NNC_CHECK(checkExtent(h, b.size(), what, gz));

  IdxArray a;
  a.type = h.type;
  a.shape = h.shape;
  const unsigned char* p = bytesOf(b) + h.headerBytes;
  const uint64_t n = h.elements;
  a.values.reserve(static_cast<size_t>(n));
  adviseHuge(a.values.data(), static_cast<size_t>(n) * sizeof(float));
  if (h.type == kIdxU8) {
    // Converting while constructing skips the zero-fill resize() would do.
    float table[256];
    for (int i = 0; i < 256; ++i) table[i] = scaleU8 ? static_cast<float>(i) / 255.0f : static_cast<float>(i);
    a.values.assign(LutIterator{p, table}, LutIterator{p + n, table});
    return a;
  }
  a.values.resize(static_cast<size_t>(n));
  float* d = a.values.data();
  switch (h.type) {
    case kIdxI8:
      for (uint64_t i = 0; i < n; ++i) d[i] = static_cast<float>(static_cast<int8_t>(p[i]));
      break;
    case kIdxI16:
      convert(p, n, 2, d, [](const unsigned char* q) {
        return static_cast<float>(static_cast<int16_t>(static_cast<uint16_t>((q[0] << 8) | q[1])));
      });
      break;
    case kIdxI32:
      convert(p, n, 4, d, [](const unsigned char* q) { return static_cast<float>(static_cast<int32_t>(be32(q))); });
      break;
    case kIdxF32:
      convert(p, n, 4, d, [](const unsigned char* q) {
        uint32_t bits = be32(q);
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
      });
      break;
    case kIdxF64:
      convert(p, n, 8, d, [](const unsigned char* q) {
        uint64_t bits = (uint64_t{be32(q)} << 32) | be32(q + 4);
        double v;
        std::memcpy(&v, &bits, 8);
        return static_cast<float>(v);
      });
      break;
  }
  return a;
}



}  // namespace

const char* idxTypeName(uint8_t type) { return typeName(type); }

Expected<IdxArray> parseIdx(std::string_view bytes, const std::string& what, bool scaleU8) {
  if (bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
      static_cast<unsigned char>(bytes[1]) == 0x8b) {
    NNC_TRY(Inflated raw, gunzip(bytes, what));
    return parseDecoded(raw.view(), what, true, scaleU8);
  }
  return parseDecoded(bytes, what, false, scaleU8);
}

// Reads the file into memory rather than mapping it: a mapping turns a file
// truncated by another process mid-read into SIGBUS instead of an error.
// A raw file's header is checked against the file's size before its data
// are read; a gzipped one is inflated no further than its header allows.
Expected<IdxArray> readIdx(const std::string& path, bool scaleU8) {
  NNC_TRY(InputFile f, InputFile::open(path));
  NNC_TRY(std::string head, f.readUpTo(0, 4 + 4 * 255));
  const bool gz = head.size() >= 2 && static_cast<unsigned char>(head[0]) == 0x1f &&
                  static_cast<unsigned char>(head[1]) == 0x8b;
  if (!gz) {
    Header h;
    Diagnostic err;
    // Bad or short headers: parseIdx says why from these same bytes.
    if (parseHeader(head, path, "", &h, &err) == HeaderState::Ok) NNC_CHECK(checkExtent(h, f.size(), path, false));
    else if (f.size() > head.size()) return parseIdx(head, path, scaleU8);
  }
  NNC_TRY(std::string bytes, f.read(0, f.size()));
  return parseIdx(bytes, path, scaleU8);
}

}  // namespace nnc
