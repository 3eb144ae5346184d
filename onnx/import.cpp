// Placeholder until the importer lands (this commit wires the library).
#include "onnx/onnx_io.h"

namespace nnc::onnxio {

Expected<Imported> importModel(const std::string&, const std::string& displayName, const ImportOptions&) {
  return error("{}: ONNX import is not written yet", displayName);
}

Expected<Imported> importFile(const std::string& path, const ImportOptions& opt) { return importModel("", path, opt); }

}  // namespace nnc::onnxio
