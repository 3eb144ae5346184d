// NPY format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
// A 6-byte magic, a version, a little-endian header length, then a Python
// dict literal ({'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), })
// padded with spaces and a newline to a multiple of 64 bytes, then the data.
#include "io/npy.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "io/file_io.h"
#include "io/zip.h"

namespace nnc {
namespace {

constexpr std::string_view kMagic = "\x93NUMPY";
constexpr size_t kAlign = 64;
// NumPy pads the header after the dict so that the first axis can later grow
// to any length in place; matching it keeps our files byte-identical to its.
constexpr size_t kGrowthAxisMaxDigits = 21;
// readNpy reads this much before trusting the header: NumPy's headers are a
// few hundred bytes (at most 64 KiB in version 1.0).
constexpr uint64_t kMaxHeaderRead = uint64_t{1} << 20;

uint64_t loadLE(const char* p, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = v << 8 | static_cast<uint8_t>(p[i]);
  return v;
}

void storeLE(std::string& out, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

enum class Kind { Float, Int, UInt, Bool };

struct Header {
  std::string descr;
  bool fortran = false;
  Shape shape;
};

// A recursive-descent reader for the dict literal NumPy writes. It accepts
// what Python's literal_eval would for this one shape of dict (either quote
// style, any key order, trailing commas, spare whitespace) and nothing else.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& label) : s_(text), label_(label) {}

  Expected<Header> parse() {
    Header h;
    bool haveDescr = false, haveFortran = false, haveShape = false;
    skipSpace();
    if (!eat('{')) return bad("it does not start with '{'");
    for (;;) {
      skipSpace();
      if (eat('}')) break;
      std::string key;
      if (!readString(key)) return bad("expected a quoted key");
      skipSpace();
      if (!eat(':')) return bad(fmt::format("expected ':' after '{}'", key));
      skipSpace();
      if (key == "descr") {
        if (peek() == '[') return bad("structured dtypes (a list as 'descr') are not supported");
        if (!readString(h.descr)) return bad("'descr' is not a quoted string");
        haveDescr = true;
      } else if (key == "fortran_order") {
        if (matchWord("True")) h.fortran = true;
        else if (matchWord("False")) h.fortran = false;
        else return bad("'fortran_order' is neither True nor False");
        haveFortran = true;
      } else if (key == "shape") {
        NNC_TRY(h.shape, readShape());
        haveShape = true;
      } else {
        return bad(fmt::format("unexpected key '{}'", key));
      }
      skipSpace();
      if (eat(',')) continue;
      if (eat('}')) break;
      return bad(fmt::format("expected ',' or '}}' after the value of '{}'", key));
    }
    skipSpace();
    if (pos_ != s_.size()) return bad("text follows the closing '}'");
    if (!haveDescr) return bad("no 'descr' key");
    if (!haveFortran) return bad("no 'fortran_order' key");
    if (!haveShape) return bad("no 'shape' key");
    return h;
  }

 private:
  Diagnostic bad(std::string_view why) const {
    return error("{} has a malformed header: {} (at byte {} of the header dict)", label_, why, pos_);
  }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  bool eat(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  void skipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }
  bool matchWord(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) return false;
    pos_ += w.size();
    return true;
  }
  // No escapes: nothing NumPy writes in these fields needs them.
  bool readString(std::string& out) {
    char q = peek();
    if (q != '\'' && q != '"') return false;
    size_t close = s_.find(q, pos_ + 1);
    if (close == std::string_view::npos) return false;
    std::string_view body = s_.substr(pos_ + 1, close - pos_ - 1);
    if (body.find('\\') != std::string_view::npos) return false;
    out.assign(body);
    pos_ = close + 1;
    return true;
  }
  Expected<Shape> readShape() {
    Shape shape;
    if (!eat('(')) return bad("'shape' is not a tuple");
    for (;;) {
      skipSpace();
      if (eat(')')) break;
      if (peek() == '-') return bad("'shape' has a negative dimension");
      if (peek() < '0' || peek() > '9') return bad("'shape' holds something other than integers");
      int64_t d = 0;
      while (peek() >= '0' && peek() <= '9') {
        int digit = peek() - '0';
        if (d > (std::numeric_limits<int64_t>::max() - digit) / 10) return bad("a 'shape' dimension is too large");
        d = d * 10 + digit;
        ++pos_;
      }
      eat('L');  // Python 2 wrote long integers as 123L
      shape.push_back(d);
      skipSpace();
      if (eat(',')) continue;
      if (eat(')')) break;
      return bad("expected ',' or ')' in 'shape'");
    }
    // (3) is not a tuple in Python, just 3; NumPy never writes it.
    return shape;
  }

  std::string_view s_;
  const std::string& label_;
  size_t pos_ = 0;
};

struct ElemType {
  Kind kind;
  int size;
};

Expected<ElemType> parseDescr(const std::string& d, const std::string& label) {
  auto unsupported = [&] {
    return error("{} has dtype '{}', which is not supported (f4, f8, i1-i8, u1-u8 and b1 are)", label, d);
  };
  if (d.size() < 3) return unsupported();
  char order = d[0], kindChar = d[1];
  int size = 0;
  for (size_t i = 2; i < d.size(); ++i) {
    if (d[i] < '0' || d[i] > '9' || size > 100) return unsupported();
    size = size * 10 + (d[i] - '0');
  }
  ElemType t{};
  t.size = size;
  switch (kindChar) {
    case 'f':
      if (size != 4 && size != 8) return unsupported();
      t.kind = Kind::Float;
      break;
    case 'i':
    case 'u':
      if (size != 1 && size != 2 && size != 4 && size != 8) return unsupported();
      t.kind = kindChar == 'i' ? Kind::Int : Kind::UInt;
      break;
    case 'b':
      if (size != 1) return unsupported();
      t.kind = Kind::Bool;
      break;
    default:
      return unsupported();
  }
  bool little = order == '<' || order == '|' || (order == '=' && std::endian::native == std::endian::little);
  bool big = order == '>' || (order == '=' && std::endian::native == std::endian::big);
  if (!little && !big) return unsupported();
  // Byte order is meaningless for one-byte types, whatever the file says.
  if (big && size > 1) return error("{} is big-endian (dtype '{}'), which is not supported", label, d);
  return t;
}

// Where the data start and how many bytes they take, from the preamble and
// header alone: `b` need only hold those, `fileSize` is the whole file's.
struct Layout {
  ElemType et;
  Shape shape;
  int64_t count = 0;
  size_t dataAt = 0;
  uint64_t dataBytes = 0;
};

Expected<Layout> parseLayout(std::string_view b, uint64_t fileSize, const std::string& label) {
  if (b.size() < kMagic.size() + 2) {
    if (b.empty()) return error("{} is empty, not an NPY file", label);
    if (kMagic.substr(0, std::min(b.size(), kMagic.size())) == b.substr(0, std::min(b.size(), kMagic.size())))
      return error("{} is truncated: {} bytes, too short for the NPY preamble", label, b.size());
    return error("{} is not an NPY file (bad magic)", label);
  }
  if (b.substr(0, kMagic.size()) != kMagic) return error("{} is not an NPY file (bad magic)", label);
  int major = static_cast<uint8_t>(b[6]), minor = static_cast<uint8_t>(b[7]);
  if (major < 1 || major > 3 || minor != 0)
    return error("{} has NPY format version {}.{}, which is not supported (1.0, 2.0 and 3.0 are)", label, major,
                 minor);
  // Version 1.0 has a 2-byte header length; 2.0 and 3.0 (UTF-8 header) have 4.
  const size_t lenBytes = major == 1 ? 2 : 4;
  const size_t preamble = kMagic.size() + 2 + lenBytes;
  if (b.size() < preamble)
    return error("{} is truncated: {} bytes, too short for the NPY preamble", label, b.size());
  uint64_t hlen = loadLE(b.data() + 8, static_cast<int>(lenBytes));
  if (hlen > fileSize - preamble)
    return error("{} is truncated: the header says it is {} bytes, file has {} bytes after the preamble", label,
                 hlen, fileSize - preamble);
  if (hlen > b.size() - preamble)
    return error("{} has a {}-byte NPY header, more than the {} nnc reads", label, hlen, b.size() - preamble);
  std::string_view text = b.substr(preamble, static_cast<size_t>(hlen));
  Layout l;
  l.dataAt = preamble + static_cast<size_t>(hlen);

  NNC_TRY(Header h, HeaderParser(text, label).parse());
  NNC_TRY(l.et, parseDescr(h.descr, label));
  if (h.fortran) return error("{} is in Fortran order ('fortran_order': True), which is not supported", label);

  // Multiply in the order tensor.cpp's numel does, so any shape accepted
  // here is one numel() can compute without signed overflow.
  int64_t count = 1;
  for (int64_t d : h.shape)
    if (__builtin_mul_overflow(count, d, &count))
      return error("{} has shape {}, whose element count overflows", label, shapeString(h.shape));
  int64_t needBytes;
  if (__builtin_mul_overflow(count, static_cast<int64_t>(l.et.size), &needBytes))
    return error("{} has shape {}, whose byte size overflows", label, shapeString(h.shape));
  const uint64_t haveBytes = fileSize - l.dataAt;
  if (static_cast<uint64_t>(needBytes) > haveBytes)
    return error("{} is truncated: header says {} values of {} bytes, file has {} bytes of data", label, count,
                 l.et.size, haveBytes);
  // numpy.load ignores trailing bytes, but they mean the file is not what
  // its header says (a concatenation, a padded or damaged copy).
  if (static_cast<uint64_t>(needBytes) < haveBytes)
    return error("{} has {} bytes after the {} values of {} bytes its header describes (shape {})", label,
                 haveBytes - static_cast<uint64_t>(needBytes), count, l.et.size, shapeString(h.shape));
  l.shape = h.shape;
  l.count = count;
  l.dataBytes = static_cast<uint64_t>(needBytes);
  return l;
}

Expected<Tensor> parseNpyLabeled(std::string_view b, const std::string& label) {
  NNC_TRY(Layout l, parseLayout(b, b.size(), label));
  const ElemType et = l.et;
  const int64_t count = l.count;
  const size_t dataAt = l.dataAt;
  Shape shape = l.shape;

  Tensor t;
  t.type.dtype = et.kind == Kind::Float ? DType::F32 : DType::I32;
  t.type.shape = shape;
  t.data.resize(static_cast<size_t>(count));
  const char* p = b.data() + dataAt;
  for (int64_t i = 0; i < count; ++i, p += et.size) {
    uint64_t raw = loadLE(p, et.size);
    double v = 0;
    switch (et.kind) {
      case Kind::Float:
        // An F32 tensor holds f32 values: an f8 file is rounded as it would
        // be when fed to compiled code, so reference and compiled runs see
        // the same inputs.
        v = et.size == 4 ? std::bit_cast<float>(static_cast<uint32_t>(raw))
                         : static_cast<double>(static_cast<float>(std::bit_cast<double>(raw)));
        break;
      case Kind::Bool:
        v = raw != 0 ? 1 : 0;
        break;
      case Kind::Int: {
        int shift = 64 - 8 * et.size;  // sign-extend narrower integers
        int64_t s = static_cast<int64_t>(raw << shift) >> shift;
        if (s < std::numeric_limits<int32_t>::min() || s > std::numeric_limits<int32_t>::max())
          return error("{} holds {} at index {}, which does not fit in i32", label, s, i);
        v = static_cast<double>(s);
        break;
      }
      case Kind::UInt:
        if (raw > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()))
          return error("{} holds {} at index {}, which does not fit in i32", label, raw, i);
        v = static_cast<double>(raw);
        break;
    }
    t.data[static_cast<size_t>(i)] = v;
  }
  return t;
}

// Python's repr of a tuple of ints: (), (5,), (2, 3).
std::string shapeRepr(const Shape& s) {
  if (s.empty()) return "()";
  if (s.size() == 1) return fmt::format("({},)", s[0]);
  std::string r = "(";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + ")";
}

// Doubles outside i32 (or NaN) have no defined conversion; saturate so a
// bad value shows up as an extreme rather than as undefined behaviour.
int32_t toI32(double v) {
  if (std::isnan(v)) return 0;
  if (v <= static_cast<double>(std::numeric_limits<int32_t>::min())) return std::numeric_limits<int32_t>::min();
  if (v >= static_cast<double>(std::numeric_limits<int32_t>::max())) return std::numeric_limits<int32_t>::max();
  return static_cast<int32_t>(v);
}

Status checkWritable(const Tensor& t, const std::string& path, std::string_view name) {
  std::string what = name.empty() ? fmt::format("'{}'", path) : fmt::format("array '{}' for '{}'", name, path);
  int64_t count = 1;
  for (int64_t d : t.type.shape) {
    if (d < 0) return error("cannot write {}: shape {} has a negative dimension", what, shapeString(t.type.shape));
    if (__builtin_mul_overflow(count, d, &count))
      return error("cannot write {}: shape {} is too large", what, shapeString(t.type.shape));
  }
  if (static_cast<uint64_t>(count) != t.data.size())
    return error("cannot write {}: shape {} needs {} values but the tensor holds {}", what,
                 shapeString(t.type.shape), count, t.data.size());
  return ok();
}

}  // namespace

std::string npyDescr(std::string_view b) {
  const std::string_view head = b.substr(0, std::min<size_t>(b.size(), 4096));
  size_t at = head.find("descr");
  if (at == std::string_view::npos) return "";
  at = head.find_first_of("'\"", head.find(':', at));
  if (at == std::string_view::npos) return "";
  const size_t end = head.find(head[at], at + 1);
  return end == std::string_view::npos ? "" : std::string(head.substr(at + 1, end - at - 1));
}

bool npyIsU8(std::string_view b) {
  const std::string d = npyDescr(b);
  return d.size() == 3 && d.substr(1) == "u1";
}

Expected<Tensor> parseNpy(std::string_view bytes, const std::string& what) {
  return parseNpyLabeled(bytes, fmt::format("'{}'", what));
}

Expected<std::string> readNpyBytes(const std::string& path) {
  // The header first: the data are read only once the file's size is
  // exactly what it describes, so a padded or mislabelled file costs a few
  // kilobytes, not its size in memory.
  NNC_TRY(InputFile f, InputFile::open(path));
  const std::string label = fmt::format("'{}'", path);
  NNC_TRY(std::string head, f.readUpTo(0, kMaxHeaderRead));
  NNC_TRY(Layout l, parseLayout(head, f.size(), label));
  (void)l;
  return f.read(0, f.size());
}

Expected<Tensor> readNpy(const std::string& path) {
  NNC_TRY(std::string bytes, readNpyBytes(path));
  return parseNpy(bytes, path);
}

Expected<std::map<std::string, Tensor>> readNpz(const std::string& path) {
  NNC_TRY(std::string bytes, readZipFile(path));
  return parseNpz(bytes, path);
}

Expected<std::map<std::string, Tensor>> parseNpz(std::string_view bytes, const std::string& path) {
  NNC_TRY(std::vector<ZipMember> members, parseZip(bytes, path));
  std::map<std::string, Tensor> out;
  for (ZipMember& m : members) {
    if (!m.name.empty() && m.name.back() == '/') continue;  // a folder entry holds nothing
    constexpr std::string_view ext = ".npy";
    if (m.name.size() < ext.size() || m.name.compare(m.name.size() - ext.size(), ext.size(), ext) != 0)
      return error("'{}' member '{}' is not a .npy array", path, m.name);
    NNC_TRY(Tensor t, parseNpyLabeled(m.data, fmt::format("'{}' member '{}'", path, m.name)));
    // np.load names arrays by the member name less ".npy"; parseZip has
    // already refused duplicate names.
    out.emplace(m.name.substr(0, m.name.size() - ext.size()), std::move(t));
  }
  return out;
}

std::string serializeNpy(const Tensor& t, bool f64) {
  const Shape& shape = t.type.shape;
  const bool f8 = f64 && t.type.dtype == DType::F32;
  std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}",
                                 f8 ? "<f8" : t.type.dtype == DType::F32 ? "<f4" : "<i4", shapeRepr(shape));
  if (!shape.empty()) {
    size_t digits = std::to_string(shape[0]).size();
    if (digits < kGrowthAxisMaxDigits) dict.append(kGrowthAxisMaxDigits - digits, ' ');
  }
  // Exactly numpy's _wrap_header, including a full 64 bytes of padding when
  // the header would already end on a boundary; 2.0 only when 1.0's 16-bit
  // length cannot hold it.
  size_t hlen = dict.size() + 1;
  int major = 1;
  size_t lenBytes = 2;
  size_t pad = kAlign - (kMagic.size() + 2 + lenBytes + hlen) % kAlign;
  if (hlen + pad > 0xffff) {
    major = 2;
    lenBytes = 4;
    pad = kAlign - (kMagic.size() + 2 + lenBytes + hlen) % kAlign;
  }

  const size_t count = t.data.size();
  const size_t item = f8 ? 8 : 4;
  std::string out;
  out.reserve(kMagic.size() + 2 + lenBytes + hlen + pad + count * item);
  out += kMagic;
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  storeLE(out, hlen + pad, static_cast<int>(lenBytes));
  out += dict;
  out.append(pad, ' ');
  out.push_back('\n');
  for (double v : t.data) {
    if (f8)
      storeLE(out, std::bit_cast<uint64_t>(v), 8);
    else if (t.type.dtype == DType::F32)
      storeLE(out, std::bit_cast<uint32_t>(static_cast<float>(v)), 4);
    else
      storeLE(out, static_cast<uint32_t>(toI32(v)), 4);
  }
  return out;
}

Status writeNpy(const std::string& path, const Tensor& t, bool f64) {
  NNC_CHECK(checkWritable(t, path, ""));
  return writeFileAtomic(path, serializeNpy(t, f64));
}

Status writeNpz(const std::string& path, const std::map<std::string, Tensor>& arrays) {
  std::vector<ZipMember> members;
  members.reserve(arrays.size());
  for (const auto& [name, t] : arrays) {
    NNC_CHECK(checkWritable(t, path, name));
    members.push_back({name + ".npy", serializeNpy(t)});
  }
  auto zip = buildZip(members);
  if (!zip) return error("cannot write '{}': {}", path, zip.error().message);
  return writeFileAtomic(path, *zip);
}

}  // namespace nnc
