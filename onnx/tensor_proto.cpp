// TensorProto → Tensor: typed fields, raw little-endian bytes, external data.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "onnx/onnx_io.h"
#include "onnx/proto.h"

namespace nnc::onnxio {

namespace {

// Bytes per element of the types nnc reads; 0 for the others (strings,
// complex, bfloat16 is read too).
int elemSize(int type) {
  using T = onnx::TensorProto;
  switch (type) {
    case T::FLOAT: case T::INT32: case T::UINT32: return 4;
    case T::DOUBLE: case T::INT64: case T::UINT64: return 8;
    case T::INT16: case T::UINT16: case T::FLOAT16: case T::BFLOAT16: return 2;
    case T::INT8: case T::UINT8: case T::BOOL: return 1;
    default: return 0;
  }
}

double halfToDouble(uint16_t h) {
  const int sign = h >> 15, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  double v;
  if (exp == 0) v = std::ldexp(mant, -24);
  else if (exp == 31) v = mant ? std::nan("") : INFINITY;
  else v = std::ldexp(mant + 1024, exp - 25);
  return sign ? -v : v;
}

// One element of little-endian bytes.
double fromBytes(const char* p, int type) {
  using T = onnx::TensorProto;
  auto get = [&](auto x) { std::memcpy(&x, p, sizeof x); return x; };
  switch (type) {
    case T::FLOAT: return get(float{});
    case T::DOUBLE: return get(double{});
    case T::INT32: return get(int32_t{});
    case T::UINT32: return get(uint32_t{});
    case T::INT64: return static_cast<double>(get(int64_t{}));
    case T::UINT64: return static_cast<double>(get(uint64_t{}));
    case T::INT16: return get(int16_t{});
    case T::UINT16: return get(uint16_t{});
    case T::INT8: return get(int8_t{});
    case T::UINT8: return get(uint8_t{});
    case T::BOOL: return get(uint8_t{}) != 0;
    case T::FLOAT16: return halfToDouble(get(uint16_t{}));
    case T::BFLOAT16: {
      const uint32_t u = uint32_t{get(uint16_t{})} << 16;
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    }
    default: return 0;
  }
}

Expected<std::string> externalBytes(const onnx::TensorProto& t, const std::string& baseDir, const std::string& what,
                                    int64_t want) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : t.external_data()) {
    if (kv.key() == "location") location = kv.value();
    else if (kv.key() == "offset" || kv.key() == "length") {
      char* end = nullptr;
      const long long v = std::strtoll(kv.value().c_str(), &end, 10);
      if (kv.value().empty() || *end != '\0' || v < 0)
        return error("{}: external data {} '{}' is not a non-negative integer", what, kv.key(), kv.value());
      (kv.key() == "offset" ? offset : length) = v;
    }
  }
  if (location.empty()) return error("{}: external data without a location", what);
  if (baseDir.empty()) return error("{}: external data ('{}') needs the model's folder: read the model from a file", what, location);
  const std::filesystem::path p = std::filesystem::path(location);
  if (p.is_absolute() || location.find("..") != std::string::npos)
    return error("{}: external data location '{}' must be a relative path inside the model's folder", what, location);
  const std::filesystem::path full = std::filesystem::path(baseDir) / p;
  std::error_code ec;
  const auto size = std::filesystem::file_size(full, ec);
  if (ec) return error("{}: its external data file '{}' cannot be read: {}", what, full.string(), ec.message());
  if (length < 0) length = static_cast<int64_t>(size) - offset;
  if (length != want || offset + length > static_cast<int64_t>(size))
    return error("{}: external data '{}' holds {} bytes from offset {} (file size {}), the tensor needs {}", what,
                 full.string(), length, offset, size, want);
  std::ifstream in(full, std::ios::binary);
  in.seekg(offset);
  std::string bytes(static_cast<size_t>(want), '\0');
  if (!in.read(bytes.data(), want)) return error("{}: reading external data '{}' failed", what, full.string());
  return bytes;
}

}  // namespace

const char* elemTypeName(int type) {
  static const char* const names[] = {"undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
                                      "string", "bool", "float16", "double", "uint32", "uint64", "complex64",
                                      "complex128", "bfloat16"};
  return type >= 0 && type < 17 ? names[type] : "unknown";
}

Expected<Tensor> tensorFromProto(const onnx::TensorProto& t, const std::string& baseDir, const std::string& what) {
  using T = onnx::TensorProto;
  const int type = t.data_type();
  const int es = elemSize(type);
  if (es == 0) return error("{}: element type {} is not supported (nnc reads numbers and bools)", what, elemTypeName(type));
  Shape shape;
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0) return error("{}: dimension {} is negative", what, d);
    if (d > 0 && n > kMaxTensorElements / d)
      return error("{}: dims {} claim more than 2^31 elements", what, shapeString(Shape(t.dims().begin(), t.dims().end())));
    n *= d;
    shape.push_back(d);
  }
  if (t.has_segment()) return error("{}: segmented tensors are not supported", what);
  // Allocated only once the data are known to hold n elements: the dims
  // alone may claim 2^31 of them (16 GB as doubles) in a tiny file.
  Tensor out;
  auto allocate = [&] { out = Tensor(TensorType{DType::F32, shape}); };
  std::string ext;
  const std::string* raw = nullptr;
  if (t.data_location() == T::EXTERNAL) {
    NNC_TRY(ext, externalBytes(t, baseDir, what, n * es));
    raw = &ext;
  } else if (t.has_raw_data()) {
    raw = &t.raw_data();
  }
  if (raw) {
    if (static_cast<int64_t>(raw->size()) != n * es)
      return error("{}: raw data holds {} bytes, {} {} elements need {}", what, raw->size(), n, elemTypeName(type), n * es);
    allocate();
    for (int64_t i = 0; i < n; ++i) out.data[static_cast<size_t>(i)] = fromBytes(raw->data() + i * es, type);
    return out;
  }
  auto fill = [&](const auto& field, auto conv) -> Status {
    if (static_cast<int64_t>(field.size()) != n)
      return error("{}: holds {} values for dims {} ({} elements)", what, field.size(), shapeString(shape), n);
    allocate();
    for (int64_t i = 0; i < n; ++i) out.data[static_cast<size_t>(i)] = conv(field.Get(static_cast<int>(i)));
    return ok();
  };
  auto same = [](auto v) { return static_cast<double>(v); };
  switch (type) {
    case T::FLOAT: NNC_CHECK(fill(t.float_data(), same)); break;
    case T::DOUBLE: NNC_CHECK(fill(t.double_data(), same)); break;
    case T::INT64: NNC_CHECK(fill(t.int64_data(), same)); break;
    case T::UINT32: case T::UINT64: NNC_CHECK(fill(t.uint64_data(), same)); break;
    case T::FLOAT16:
      NNC_CHECK(fill(t.int32_data(), [](int32_t v) { return halfToDouble(static_cast<uint16_t>(v)); }));
      break;
    case T::BFLOAT16:
      NNC_CHECK(fill(t.int32_data(), [](int32_t v) {
        const uint32_t u = static_cast<uint32_t>(v) << 16;
        float f;
        std::memcpy(&f, &u, 4);
        return static_cast<double>(f);
      }));
      break;
    default: NNC_CHECK(fill(t.int32_data(), same)); break;  // int32, int16, int8, uint16, uint8, bool
  }
  return out;
}

Expected<Tensor> readTensorProto(const std::string& bytes, const std::string& what, std::string* name) {
  onnx::TensorProto t;
  if (bytes.size() > (size_t{1} << 31) || !t.ParseFromString(bytes))
    return error("{}: not an ONNX TensorProto (protobuf parse failed)", what);
  if (name) *name = t.name();
  return tensorFromProto(t, "", what);
}

Expected<int> tensorProtoElemType(const std::string& bytes, const std::string& what) {
  onnx::TensorProto t;
  if (bytes.size() > (size_t{1} << 31) || !t.ParseFromString(bytes))
    return error("{}: not an ONNX TensorProto (protobuf parse failed)", what);
  return t.data_type();
}

}  // namespace nnc::onnxio
