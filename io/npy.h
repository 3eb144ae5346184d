// NumPy .npy and .npz files (f32, f64, i32, i64 read; f32 and i32 written;
// C order). NPZ archives may be stored or deflated (np.savez_compressed).
#pragma once
#include <map>
#include <string>

#include "base/diagnostics.h"
#include "base/tensor.h"

namespace nnc {

// Reading converts to the tensor's double storage; the dtype becomes F32 for
// floating files and I32 for integer ones. Errors name the file and say what
// is wrong (bad magic, truncated data, unsupported dtype, Fortran order).
Expected<Tensor> readNpy(const std::string& path);
Expected<Tensor> parseNpy(std::string_view bytes, const std::string& what);
Expected<std::map<std::string, Tensor>> readNpz(const std::string& path);
Expected<std::map<std::string, Tensor>> parseNpz(std::string_view bytes, const std::string& what);

std::string serializeNpy(const Tensor& t);  // dtype from t.type.dtype
// Writes atomically (temporary file, then rename); a full disk is an error.
Status writeNpy(const std::string& path, const Tensor& t);
Status writeNpz(const std::string& path, const std::map<std::string, Tensor>& arrays);

}  // namespace nnc
