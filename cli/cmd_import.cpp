// nnc import MODEL.onnx -o MODEL.nn: an ONNX model as a readable .nn file
// and its weights as an .npz beside it. The source is compiled before it is
// written, so a file nnc import writes is one every command accepts.
#include <filesystem>
#include <ostream>

#include <fmt/format.h>

#include "cli/commands.h"
#include "io/file_io.h"
#include "io/npy.h"
#include "onnx/onnx_io.h"

namespace nnc::cli {

int runImport(const Options& o, std::ostream& out, std::ostream& err) {
  namespace fs = std::filesystem;
  auto fail = [&](const Diagnostic& d) {
    err << "nnc import: " << d.message << "\n";
    return 1;
  };
  if (!o.flag("output")) return fail(error("-o MODEL.nn is required: where to write the .nn source"));
  const std::string nnPath = o.value("output");
  const std::string npzPath =
      o.value("weights-out", fs::path(nnPath).replace_extension(".npz").string());
  if (fs::path(nnPath).extension() != ".nn") return fail(error("-o {}: the source's name must end in .nn", nnPath));
  if (fs::path(npzPath).extension() != ".npz")
    return fail(error("--weights-out {}: the weights' name must end in .npz", npzPath));
  if (auto st = checkWritableFile(nnPath, "-o"); !st) return fail(st.error());
  if (auto st = checkWritableFile(npzPath, "--weights-out"); !st) return fail(st.error());

  onnxio::ImportOptions io;
  io.modelName = o.value("name");
  auto batch = countOption(o, "batch", 1, true);
  if (!batch) return fail(batch.error());
  io.batch = *batch;
  io.loss = o.value("loss");
  io.label = o.value("label", "t");
  if (o.flag("label") && io.loss.empty()) return fail(error("--label names the label of --loss: give --loss too"));
  // load() paths are relative to the .nn file.
  const fs::path nnDir = fs::absolute(fs::path(nnPath)).parent_path();
  io.weightsFile = fs::absolute(fs::path(npzPath)).lexically_relative(nnDir).string();
  auto imported = onnxio::importFile(o.file, io);
  if (!imported) return fail(imported.error());
  onnxio::Imported& im = *imported;

  // What every command will do with the file, done once now.
  SourceManager sm;
  MemoryWeights mem{io.weightsFile, im.weights};
  auto compiled = compileSource(sm, nnPath, im.source, {}, &mem);
  if (!compiled) {
    err << sm.render(compiled.error());
    return fail(error("the imported source does not compile: an internal error, a bug in nnc's importer"));
  }
  if (!im.weights.empty())
    if (auto st = writeNpz(npzPath, im.weights); !st) return fail(st.error());
  if (auto st = writeFileAtomic(nnPath, im.source); !st) return fail(st.error());
  int64_t values = 0;
  for (const auto& [_, t] : im.weights) values += t.numel();
  out << fmt::format("imported {}: model '{}', {} nodes -> {}", o.file, compiled->graph.name, compiled->graph.size(),
                     nnPath);
  if (!im.weights.empty()) out << fmt::format(", {} tensors ({} values) -> {}", im.weights.size(), values, npzPath);
  out << "\n";
  return 0;
}

}  // namespace nnc::cli
