// NumPy .npy and .npz files (f32, f64, i32, i64 read; f32, f64 and i32
// written; C order). NPZ archives may be stored or deflated (np.savez_compressed).
#pragma once
#include <map>
#include <string>

#include "base/diagnostics.h"
#include "base/tensor.h"

namespace nnc {

// Reading converts to the tensor's double storage; the dtype becomes F32 for
// floating files and I32 for integer ones. Errors name the file and say what
// is wrong (bad magic, truncated data, bytes after the data the header
// describes, unsupported dtype, Fortran order). readNpy reads the header
// before the data, and no data unless the file's size is what it describes;
// it reads only regular files (io/file_io.h's InputFile).
Expected<Tensor> readNpy(const std::string& path);
// Whether NPY bytes hold u1 (8-bit) data, which readers give as I32 like
// every integer dtype: the data's scale = "auto" divides those by 255 (bool,
// b1, is not among them: its values are 0 and 1).
bool npyIsU8(std::string_view bytes);
// The 'descr' of NPY bytes ("<f4", "|b1"), or "" where there is none.
std::string npyDescr(std::string_view bytes);
// The bytes of an NPY file, read only after its header matched its size.
Expected<std::string> readNpyBytes(const std::string& path);
Expected<Tensor> parseNpy(std::string_view bytes, const std::string& what);
Expected<std::map<std::string, Tensor>> readNpz(const std::string& path);
Expected<std::map<std::string, Tensor>> parseNpz(std::string_view bytes, const std::string& what);

// dtype from t.type.dtype: <f4 or <i4; with f64, F32 tensors are written as
// <f8 with every bit of their double values (nnc eval --f64).
std::string serializeNpy(const Tensor& t, bool f64 = false);
// Writes atomically (temporary file, then rename); a full disk is an error.
Status writeNpy(const std::string& path, const Tensor& t, bool f64 = false);
Status writeNpz(const std::string& path, const std::map<std::string, Tensor>& arrays);

}  // namespace nnc
