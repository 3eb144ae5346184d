#include "io/zip.h"

#include <zlib.h>

#include <cstdint>
#include <set>

#include "io/file_io.h"

namespace nnc {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalSize = 30, kCentralSize = 46, kEndSize = 22, kZip64LocatorSize = 20;

// Callers check bounds before reading; these only assemble little-endian values.
uint16_t rd16(std::string_view b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}
uint32_t rd32(std::string_view b, size_t at) {
  return static_cast<uint32_t>(rd16(b, at)) | static_cast<uint32_t>(rd16(b, at + 2)) << 16;
}
void put16(std::string& s, uint32_t v) {
  s.push_back(static_cast<char>(v & 0xff));
  s.push_back(static_cast<char>((v >> 8) & 0xff));
}
void put32(std::string& s, uint32_t v) {
  put16(s, v & 0xffff);
  put16(s, v >> 16);
}

uint32_t crcOf(std::string_view data) {
  // zlib's crc32 takes a uInt length; feed it in slices so any size works.
  uLong crc = crc32(0L, Z_NULL, 0);
  while (!data.empty()) {
    size_t n = std::min<size_t>(data.size(), 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(n));
    data.remove_prefix(n);
  }
  return static_cast<uint32_t>(crc);
}

Diagnostic corrupt(const std::string& what, std::string_view why) {
  return error("'{}' is a corrupt ZIP archive: {}", what, why);
}

Expected<std::string> inflateRaw(std::string_view in, uint32_t usize, const std::string& what,
                                 const std::string& name) {
  // Deflate cannot expand data by more than about 1032:1, so a larger
  // recorded size is a lie; refusing it keeps a tiny hostile file from
  // making us allocate 4 GiB.
  if (static_cast<uint64_t>(usize) > static_cast<uint64_t>(in.size()) * 1032 + 64)
    return corrupt(what, fmt::format("member '{}' claims {} bytes from {} compressed bytes", name, usize,
                                     in.size()));
  // One spare byte lets a stream that inflates to more than recorded be told
  // apart from one that fits exactly.
  std::string out(static_cast<size_t>(usize) + 1, '\0');
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return error("'{}': zlib could not start inflating", what);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&zs, Z_FINISH);
  uLong produced = zs.total_out;
  std::string zmsg = zs.msg ? zs.msg : "";
  inflateEnd(&zs);
  if (rc != Z_STREAM_END) {
    if (!zmsg.empty())
      return corrupt(what, fmt::format("member '{}' does not inflate: {}", name, zmsg));
    if (produced > usize)
      return corrupt(what, fmt::format("member '{}' inflates to more than its recorded {} bytes", name, usize));
    return corrupt(what, fmt::format("member '{}' has a truncated deflate stream", name));
  }
  if (produced != usize)
    return corrupt(what, fmt::format("member '{}' inflates to {} bytes, but its header says {}", name, produced,
                                     usize));
  out.resize(usize);
  return out;
}

}  // namespace

Expected<std::string> readZipFile(const std::string& path) {
  NNC_TRY(InputFile f, InputFile::open(path));
  const uint64_t size = f.size();
  if (size < kEndSize) return error("'{}' is not a ZIP archive (too short: {} bytes)", path, size);
  // The end record and its comment close the archive: find it in the last
  // 64 KiB before reading the rest, so a file that is no archive (or one
  // padded with bytes after it) is refused without being read whole.
  const uint64_t tailAt = size > kEndSize + 0xffff ? size - kEndSize - 0xffff : 0;
  NNC_TRY(std::string tail, f.read(tailAt, size - tailAt));
  size_t end = SIZE_MAX;
  for (size_t p = tail.size() - kEndSize + 1; p-- > 0;)
    if (rd32(tail, p) == kEndSig && p + kEndSize + rd16(tail, p + 20) <= tail.size()) {
      end = p;
      break;
    }
  if (end == SIZE_MAX)
    return tailAt == 0 ? error("'{}' is not a ZIP archive (no end-of-central-directory record)", path)
                       : error("'{}' is not a ZIP archive (no end-of-central-directory record in its last {} bytes)",
                               path, tail.size());
  const size_t closes = end + kEndSize + rd16(tail, end + 20);
  if (closes != tail.size())
    return error("'{}' has {} bytes after the end of its ZIP archive (its end record and comment)", path,
                 tail.size() - closes);
  return f.read(0, size);
}

Expected<std::vector<ZipMember>> parseZip(std::string_view b, const std::string& what) {
  const size_t size = b.size();
  if (size < kEndSize) return error("'{}' is not a ZIP archive (too short: {} bytes)", what, size);

  // The end record sits at the very end, followed only by a comment of at
  // most 65535 bytes; scan backwards for the last record whose comment fits.
  size_t end = SIZE_MAX;
  size_t lowest = size - kEndSize > 0xffff ? size - kEndSize - 0xffff : 0;
  for (size_t p = size - kEndSize + 1; p-- > lowest;) {
    if (rd32(b, p) == kEndSig && p + kEndSize + rd16(b, p + 20) <= size) {
      end = p;
      break;
    }
  }
  if (end == SIZE_MAX) return error("'{}' is not a ZIP archive (no end-of-central-directory record)", what);

  if (end >= kZip64LocatorSize && rd32(b, end - kZip64LocatorSize) == kZip64LocatorSig)
    return error("'{}' is a ZIP64 archive, which is not supported", what);
  uint16_t disk = rd16(b, end + 4), cdDisk = rd16(b, end + 6);
  uint16_t entriesHere = rd16(b, end + 8), entries = rd16(b, end + 10);
  uint32_t cdSize = rd32(b, end + 12), cdOffset = rd32(b, end + 16);
  if (entries == 0xffff || cdSize == 0xffffffff || cdOffset == 0xffffffff)
    return error("'{}' is a ZIP64 archive, which is not supported", what);
  if (disk != 0 || cdDisk != 0 || entriesHere != entries)
    return error("'{}' is a multi-disk ZIP archive, which is not supported", what);
  if (static_cast<uint64_t>(cdOffset) + cdSize > end)
    return corrupt(what, fmt::format("central directory ({} bytes at offset {}) lies outside the file", cdSize,
                                     cdOffset));

  std::vector<ZipMember> members;
  std::set<std::string> seen;
  const size_t cdEnd = static_cast<size_t>(cdOffset) + cdSize;
  size_t p = cdOffset;
  for (uint32_t i = 0; i < entries; ++i) {
    if (cdEnd - p < kCentralSize || rd32(b, p) != kCentralSig)
      return corrupt(what, fmt::format("central directory entry {} of {} is missing or damaged", i + 1, entries));
    uint16_t flags = rd16(b, p + 8), method = rd16(b, p + 10);
    uint32_t crc = rd32(b, p + 16), csize = rd32(b, p + 20), usize = rd32(b, p + 24);
    size_t nameLen = rd16(b, p + 28), extraLen = rd16(b, p + 30), commentLen = rd16(b, p + 32);
    uint32_t localOffset = rd32(b, p + 42);
    if (cdEnd - p - kCentralSize < nameLen + extraLen + commentLen)
      return corrupt(what, fmt::format("central directory entry {} runs past the directory", i + 1));
    std::string name(b.substr(p + kCentralSize, nameLen));
    p += kCentralSize + nameLen + extraLen + commentLen;

    if (csize == 0xffffffff || usize == 0xffffffff || localOffset == 0xffffffff)
      return error("'{}' member '{}' uses ZIP64 sizes, which are not supported", what, name);
    if (flags & 1) return error("'{}' member '{}' is encrypted, which is not supported", what, name);
    if (method != 0 && method != 8)
      return error("'{}' member '{}' uses compression method {}; only stored (0) and deflated (8) are supported",
                   what, name, method);
    if (!seen.insert(name).second) return corrupt(what, fmt::format("member '{}' appears twice", name));

    // The local header repeats the name and may carry a different extra
    // field (Python writes ZIP64 placeholders there), so only its lengths are
    // used, to find where the data starts; sizes come from the directory.
    if (localOffset > size || size - localOffset < kLocalSize || rd32(b, localOffset) != kLocalSig)
      return corrupt(what, fmt::format("local header of member '{}' is missing or damaged", name));
    uint64_t dataAt = static_cast<uint64_t>(localOffset) + kLocalSize + rd16(b, localOffset + 26) +
                      rd16(b, localOffset + 28);
    if (dataAt > size || size - dataAt < csize)
      return corrupt(what, fmt::format("data of member '{}' ({} bytes) runs past the end of the file", name, csize));
    std::string_view raw = b.substr(static_cast<size_t>(dataAt), csize);

    std::string data;
    if (method == 0) {
      if (csize != usize)
        return corrupt(what, fmt::format("stored member '{}' has compressed size {} but size {}", name, csize,
                                         usize));
      data.assign(raw);
    } else {
      NNC_TRY(data, inflateRaw(raw, usize, what, name));
    }
    uint32_t actual = crcOf(data);
    if (actual != crc)
      return error("'{}' member '{}' fails its CRC-32 check (recorded {:08x}, computed {:08x})", what, name, crc,
                   actual);
    members.push_back({std::move(name), std::move(data)});
  }
  return members;
}

Expected<std::string> buildZip(const std::vector<ZipMember>& members) {
  if (members.size() >= 0xffff)
    return error("{} arrays are too many for a ZIP archive without ZIP64 (at most 65534)", members.size());
  // 1980-01-01 00:00, the DOS epoch: a fixed stamp makes output reproducible.
  constexpr uint16_t kTime = 0, kDate = (0 << 9) | (1 << 5) | 1;
  std::string out, central;
  for (const ZipMember& m : members) {
    if (m.name.size() > 0xffff) return error("ZIP member name is too long ({} bytes)", m.name.size());
    if (m.data.size() >= 0xffffffffu || out.size() >= 0xffffffffu)
      return error("ZIP member '{}' does not fit in a ZIP archive without ZIP64 (4 GiB)", m.name);
    bool ascii = true;
    for (unsigned char c : m.name) ascii &= c < 0x80;
    // Bit 11 tells readers the name is UTF-8 rather than code page 437.
    uint16_t flags = ascii ? 0 : 1 << 11;
    uint32_t crc = crcOf(m.data), len = static_cast<uint32_t>(m.data.size());
    uint32_t offset = static_cast<uint32_t>(out.size());

    put32(out, kLocalSig);
    put16(out, 20);  // version needed: 2.0, as Python's zipfile writes
    put16(out, flags);
    put16(out, 0);  // stored
    put16(out, kTime);
    put16(out, kDate);
    put32(out, crc);
    put32(out, len);
    put32(out, len);
    put16(out, static_cast<uint32_t>(m.name.size()));
    put16(out, 0);
    out += m.name;
    out += m.data;

    put32(central, kCentralSig);
    put16(central, (3u << 8) | 20);  // made by Unix, so unzip honours the mode bits below
    put16(central, 20);
    put16(central, flags);
    put16(central, 0);
    put16(central, kTime);
    put16(central, kDate);
    put32(central, crc);
    put32(central, len);
    put32(central, len);
    put16(central, static_cast<uint32_t>(m.name.size()));
    put16(central, 0);  // extra
    put16(central, 0);  // comment
    put16(central, 0);  // disk
    put16(central, 0);  // internal attributes
    put32(central, 0100644u << 16);  // regular file, rw-r--r--
    put32(central, offset);
    central += m.name;
  }
  if (out.size() + central.size() >= 0xffffffffu)
    return error("arrays do not fit in a ZIP archive without ZIP64 (4 GiB)");
  uint32_t cdOffset = static_cast<uint32_t>(out.size());
  out += central;
  put32(out, kEndSig);
  put16(out, 0);
  put16(out, 0);
  put16(out, static_cast<uint32_t>(members.size()));
  put16(out, static_cast<uint32_t>(members.size()));
  put32(out, static_cast<uint32_t>(central.size()));
  put32(out, cdOffset);
  put16(out, 0);
  return out;
}

}  // namespace nnc
