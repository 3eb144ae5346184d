// nnc export-onnx: the model's inference graph and params as an ONNX file
// (onnx/export.cpp), written atomically.
#include <ostream>

#include "cli/commands.h"
#include "io/file_io.h"
#include "onnx/onnx_io.h"

namespace nnc::cli {

int runExportOnnx(const Options& o, std::ostream& out, std::ostream& err) {
  const std::string path = o.value("output");
  if (path.empty() || path == "-") {
    err << "nnc: export-onnx needs -o MODEL.onnx (the file to write)\n";
    return 1;
  }
  auto l = loadFor(o, err);
  if (!l) return 1;
  const Graph& g = l->model.graph;
  auto fail = reporter(*l, err);
  // Checked before the work, so that a bad path does not cost an export.
  if (auto st = checkWritableFile(path, "-o"); !st) return fail(st.error());
  auto opset = countOption(o, "opset", 13, true);
  if (!opset) return fail(opset.error());
  if (*opset < 11 || *opset > 17) return fail(error("--opset takes 11 to 17, got {}", *opset));
  auto params = initParams(g, 42);
  if (!params) return fail(params.error());
  if (o.flag("weights"))
    if (auto st = overlayWeights(*params, o.value("weights"), g); !st) return fail(st.error());

  onnxio::ExportOptions eo{.opset = static_cast<int>(*opset), .producerVersion = NNC_VERSION};
  // The batch axes are the ones whose sizes change with the model's batch
  // parameter: the model is built once more at batch + 1 (or, for a model
  // that needs an even batch, say, at twice the batch) to see which.
  std::optional<Elaborated> other;
  const ModelParam* batch = l->model.param("batch");
  if (batch && batch->value && !o.flag("static-batch")) {
    auto elab = elaborateOptions(o);
    if (!elab) return fail(elab.error());
    for (int64_t n : {*batch->value + 1, *batch->value * 2}) {
      elab->overrides["batch"] = n;
      if (auto e = elaborate(l->program, *elab)) {
        other = e.take();
        break;
      }
    }
    if (!other)
      err << fmt::format("nnc: export-onnx: model '{}' does not build at batch {} or {}: the batch is fixed at {}\n",
                         g.name, *batch->value + 1, *batch->value * 2, *batch->value);
    else
      eo.otherBatch = &other->graph;
  }
  auto ex = onnxio::exportModel(g, *params, eo);
  if (!ex) return fail(ex.error());
  if (auto st = writeFileAtomic(path, ex->bytes); !st) return fail(st.error());
  for (const std::string& s : ex->skipped)
    err << fmt::format("nnc: export-onnx: output '{}' left out: it reads labels\n", s);
  out << fmt::format("wrote {}: model '{}', opset {}, {} ONNX nodes, {} params{}\n", path, g.name, *opset, ex->nodes,
                     groupThousands(g.paramCount(false)), ex->dynamicBatch ? ", dynamic batch" : "");
  return 0;
}

}  // namespace nnc::cli
