// Element types, shapes and the host tensor the interpreter and the NPY
// reader/writer exchange. Values are held in double whatever their dtype:
// the interpreter computes in f64 and rounds to f32 when asked (see
// compiler/interpreter/interpreter.h); i32 values are exact in a double.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace nnc {

enum class DType : uint8_t { F32, I32 };
using Shape = std::vector<int64_t>;

const char* dtypeName(DType t);  // "f32", "i32"
int64_t numel(const Shape& s);   // 1 for a scalar (rank 0)
std::string shapeString(const Shape& s);  // "[100, 784]"

struct TensorType {
  DType dtype = DType::F32;
  Shape shape;
  int64_t numel() const { return nnc::numel(shape); }
  int rank() const { return static_cast<int>(shape.size()); }
  bool operator==(const TensorType&) const = default;
};
std::string typeString(const TensorType& t);  // "f32[100, 784]"

struct Tensor {
  TensorType type;
  std::vector<double> data;  // row-major (C order)

  Tensor() = default;
  explicit Tensor(TensorType t) : type(std::move(t)), data(static_cast<size_t>(type.numel()), 0.0) {}
  Tensor(TensorType t, std::vector<double> d) : type(std::move(t)), data(std::move(d)) {}
  const Shape& shape() const { return type.shape; }
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
};

// Row-major strides of a shape, in elements.
std::vector<int64_t> stridesOf(const Shape& s);

}  // namespace nnc
