// nnc emit-cpp: the model as standalone C++ (compiler/emit/emit_cpp.h) in a
// folder: NAME.hpp, NAME.cpp, the runtime, main_example.cpp, CMakeLists.txt,
// and .nnc-emitted, the list of what it wrote (files it may replace later).
#include <filesystem>
#include <map>
#include <string_view>
#include <vector>
#include <ostream>

#include "base/hash.h"
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

// OUTDIR/.nnc-emitted: the files emit-cpp wrote there, each with the hash of
// what it wrote, so that a second emit-cpp may replace its own unchanged
// output but not a file the user wrote or edited (without --force).
constexpr const char* kManifest = ".nnc-emitted";

// name → hash; an unreadable or malformed manifest vouches for nothing.
std::map<std::string, uint64_t> readManifest(const std::string& dir) {
  std::map<std::string, uint64_t> m;
  auto text = readFile((std::filesystem::path(dir) / kManifest).string(), uint64_t{1} << 20, "emit-cpp's manifest");
  if (!text) return m;
  size_t at = 0;
  while (at < text->size()) {
    size_t end = text->find('\n', at);
    if (end == std::string::npos) end = text->size();
    const std::string line = text->substr(at, end - at);
    at = end + 1;
    if (line.empty() || line[0] == '#') continue;
    if (line.size() < 19 || line.compare(16, 2, "  ") != 0) continue;
    const std::string hex = line.substr(0, 16), name = line.substr(18);
    if (hex.find_first_not_of("0123456789abcdef") != std::string::npos || name.empty() ||
        name.find('/') != std::string::npos)
      continue;
    m[name] = std::stoull(hex, nullptr, 16);
  }
  return m;
}

std::string manifestText(const std::map<std::string, uint64_t>& m) {
  std::string s =
      "# nnc emit-cpp: the files it wrote in this folder and the FNV-1a 64 hash of each, as written.\n"
      "# emit-cpp replaces these while they are unchanged, and nothing else without --force.\n";
  for (const auto& [name, h] : m) s += fmt::format("{:016x}  {}\n", h, name);
  return s;
}

// The files of `files` that exist in `dir` and that emit-cpp may not
// replace: not in the manifest, or changed since it wrote them (a file
// already holding exactly what would be written is no loss either way).
std::vector<std::string> foreignFiles(const std::string& dir, const std::vector<EmittedFile>& files,
                                      const std::map<std::string, uint64_t>& manifest) {
  std::vector<std::string> foreign;
  for (const EmittedFile& f : files) {
    const std::string path = (std::filesystem::path(dir) / f.name).string();
    std::error_code ec;
    if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) continue;
    auto text = readFile(path);
    if (text && *text == f.text) continue;
    auto it = manifest.find(f.name);
    if (text && it != manifest.end() && it->second == fnv1a(*text)) continue;
    foreign.push_back(f.name);
  }
  return foreign;
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
  std::map<std::string, uint64_t> manifest = readManifest(dir);
  if (!o.flag("force")) {
    const std::vector<std::string> foreign = foreignFiles(dir, *files, manifest);
    if (!foreign.empty()) {
      std::string names;
      for (const std::string& n : foreign) names += (names.empty() ? "'" : ", '") + n + "'";
      const bool one = foreign.size() == 1;
      return fail(error("-o {}: {} {} already there and {} not written by nnc emit-cpp (or {} changed since); "
                        "nothing was written. Give another folder, or --force to replace {}",
                        dir, names, one ? "is" : "are", one ? "was" : "were", one ? "was" : "were",
                        one ? "it" : "them"));
    }
  }
  // Entries for files of an earlier emit-cpp that this one does not write
  // (another model's, a .weights file) stay while those files are unchanged.
  for (auto it = manifest.begin(); it != manifest.end();) {
    auto text = readFile((std::filesystem::path(dir) / it->first).string());
    it = text && fnv1a(*text) == it->second ? std::next(it) : manifest.erase(it);
  }
  for (const EmittedFile& f : *files) {
    const std::string path = (std::filesystem::path(dir) / f.name).string();
    if (auto st = writeFileAtomic(path, f.text); !st) return fail(st.error());
    manifest[f.name] = fnv1a(f.text);
  }
  if (auto st = writeFileAtomic((std::filesystem::path(dir) / kManifest).string(), manifestText(manifest)); !st)
    return fail(st.error());
  if (passes->dumpAfter.empty()) {
    std::string names;
    for (const EmittedFile& f : *files) names += (names.empty() ? "" : ", ") + f.name;
    out << fmt::format("wrote {}: {}\n", dir, names);
  }
  return 0;
}

}  // namespace nnc::cli
