// nnc emit-cpp: the model as standalone C++ (compiler/emit/emit_cpp.h) in a
// folder: NAME.hpp, NAME.cpp, the runtime, main_example.cpp, CMakeLists.txt.
#include <filesystem>
#include <ostream>

#include "cli/commands.h"
#include "cli/frontend.h"
#include "compiler/emit/emit_cpp.h"
#include "io/checkpoint.h"
#include "io/file_io.h"
#include "io/npy.h"

namespace nnc::cli {

namespace {

bool validNamespace(const std::string& ns) {
  if (ns.empty()) return false;
  size_t at = 0;
  while (true) {
    const size_t end = ns.find("::", at);
    const std::string part = ns.substr(at, end == std::string::npos ? std::string::npos : end - at);
    if (part.empty() || std::isdigit(static_cast<unsigned char>(part[0]))) return false;
    for (char c : part)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
    if (end == std::string::npos) return true;
    at = end + 2;
  }
}

}  // namespace

int runEmitCpp(const Options& o, std::ostream& out, std::ostream& err) {
  // --batch N is --set batch=N, given last.
  const std::string b = o.value("batch");
  if (o.flag("batch") &&
      (b.empty() || b.find_first_not_of("0123456789") != std::string::npos || b.size() > 9 || std::stoll(b) < 1)) {
    err << "nnc emit-cpp: --batch takes a positive integer, got '" << b << "'\n";
    return 1;
  }
  auto elab = elaborateOptions(o);
  if (!elab) {
    err << "nnc: " << elab.error().message << "\n";
    return 1;
  }
  if (o.flag("batch")) elab->overrides["batch"] = std::stoll(b);
  auto l = load(o.file, *elab, err);
  if (!l) return 1;
  auto fail = reporter(*l, err);
  const Graph& g = l->model.graph;
  const std::string dir = o.value("output");
  if (dir.empty()) return fail(error("-o OUTDIR is required: the folder to write the C++ files into"));
  if (dir == "-")
    return fail(error("-o -: emit-cpp writes several files (the model's class, the runtime, main_example.cpp, "
                      "CMakeLists.txt), not one for standard output; give the folder to write them into"));
  auto passes = passOptions(o, &out);
  if (!passes) return fail(passes.error());
  if (auto level = optLevelOption(o); !level) return fail(level.error());
  auto seed = seedOption(o);
  if (!seed) return fail(seed.error());

  EmitCppOptions eo;
  eo.ns = o.value("namespace", "nnc_model");
  if (!validNamespace(eo.ns)) return fail(error("--namespace: '{}' is not a C++ namespace name", eo.ns));
  eo.train = o.flag("train");
  eo.weightsFile = o.flag("weights-file");
  eo.passes = *passes;
  auto params = initParams(g, *seed);
  if (!params) return fail(params.error());
  eo.params = params.take();
  if (o.flag("weights")) {
    const std::string path = o.value("weights");
    if (auto st = overlayWeights(eo.params, path, g); !st) return fail(st.error());
    // A checkpoint's optimizer state lets train_step continue where `nnc run`
    // stopped; embedded in NAME.cpp, so not with --weights-file (a weights
    // file holds params only, and the state starts from zeros).
    std::error_code ec;
    if (eo.train && !eo.weightsFile && std::filesystem::is_directory(path, ec))
      if (auto c = readCheckpoint(path)) eo.state = c->state;
  }
  std::string origin = "nnc emit-cpp " + o.file;
  for (const auto& [name, values] : o.values)
    for (const std::string& v : values) origin += name == "O" ? " -O" + v : " --" + name + (v.empty() ? "" : " " + v);
  eo.origin = origin;

  auto files = emitCpp(l->model, eo);
  if (!files) return fail(files.error());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(error("cannot create the folder '{}': {}", dir, ec.message()));
  for (const EmittedFile& f : *files) {
    const std::string path = (std::filesystem::path(dir) / f.name).string();
    if (auto st = writeFileAtomic(path, f.text); !st) return fail(st.error());
  }
  if (passes->dumpAfter.empty()) {
    std::string names;
    for (const EmittedFile& f : *files) names += (names.empty() ? "" : ", ") + f.name;
    out << fmt::format("wrote {}: {}\n", dir, names);
  }
  return 0;
}

}  // namespace nnc::cli
