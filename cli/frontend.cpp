#include "cli/frontend.h"

#include <cmath>
#include <filesystem>
#include <ostream>

#include <fmt/ranges.h>

#include "dsl/parser.h"
#include "io/file_io.h"
#include "io/npy.h"
#include "onnx/onnx_io.h"

namespace nnc::cli {

namespace {
constexpr uint64_t kMaxSourceBytes = uint64_t{16} << 20;
// ONNX files hold their weights: a few GB at most for what a CPU trains.
constexpr uint64_t kMaxOnnxBytes = uint64_t{2} << 30;

bool isOnnx(const std::string& path) {
  return path.size() > 5 && path.compare(path.size() - 5, 5, ".onnx") == 0;
}

std::string names(const std::map<std::string, Tensor>& arrays) {
  std::vector<std::string> k;
  for (const auto& [n, _] : arrays) {
    if (k.size() == 8) {
      k.push_back("...");
      break;
    }
    k.push_back(n);
  }
  return k.empty() ? "no arrays" : fmt::format("{}", fmt::join(k, ", "));
}

}  // namespace

Status resolveLoads(Graph& g, const std::string& sourcePath, const MemoryWeights* memory) {
  std::map<std::string, std::map<std::string, Tensor>> files;
  const std::filesystem::path dir = std::filesystem::path(sourcePath).parent_path();
  for (ValueId p : g.params) {
    Node& n = g.node(p);
    if (n.attrs.s("init") != "load") continue;
    const std::string& file = n.attrs.s("file");
    const std::string& key = n.attrs.s("key");
    const std::map<std::string, Tensor>* arrays = nullptr;
    std::string where = file;
    if (memory && file == memory->file) {
      arrays = &memory->arrays;
      where = file + " (imported in memory)";
    } else {
      const std::string path = std::filesystem::path(file).is_absolute() ? file : (dir / file).string();
      auto it = files.find(path);
      if (it == files.end()) {
        auto read = readNpz(path);
        if (!read) return error(n.loc, "param '{}': load(\"{}\"): {}", n.name, file, read.error().message);
        it = files.emplace(path, read.take()).first;
      }
      arrays = &it->second;
      where = path;
    }
    auto a = arrays->find(key);
    if (a == arrays->end())
      return error(n.loc, "param '{}': {} has no array '{}' (it holds {})", n.name, where, key, names(*arrays));
    if (a->second.shape() != n.type.shape)
      return error(n.loc, "param '{}' is declared {} but '{}' in {} is {}", n.name, shapeString(n.type.shape), key,
                   where, shapeString(a->second.shape()));
    for (size_t i = 0; i < a->second.data.size(); ++i)
      if (!std::isfinite(a->second.data[i]))
        return error(n.loc, "param '{}': '{}' in {} holds {} at index {}: refusing to compute with it", n.name, key,
                     where, std::isnan(a->second.data[i]) ? "NaN" : "an infinity", i);
    n.initial = std::make_shared<const std::vector<double>>(a->second.data);
  }
  return ok();
}

Expected<Elaborated> compileSource(SourceManager& sm, const std::string& name, std::string text,
                                   const ElaborateOptions& opt, const MemoryWeights* memory) {
  const uint32_t file = sm.add(name, std::move(text));
  NNC_TRY(ast::Program prog, parse(sm, file));
  NNC_TRY(Elaborated e, elaborate(prog, opt));
  NNC_CHECK(resolveLoads(e.graph, name, memory));
  return e;
}

std::optional<Loaded> load(const std::string& path, const ElaborateOptions& opt, std::ostream& err) {
  Loaded l;
  std::string text, name = path;
  if (isOnnx(path)) {
    auto bytes = readFile(path, kMaxOnnxBytes, "an ONNX model");
    if (!bytes) {
      err << l.sm->render(bytes.error());
      return std::nullopt;
    }
    onnxio::ImportOptions io;
    io.weightsFile = std::filesystem::path(path).stem().string() + ".npz";
    auto imported = onnxio::importModel(bytes.take(), path, io, std::filesystem::path(path).parent_path().string());
    if (!imported) {
      err << "nnc: " << imported.error().message << "\n";
      return std::nullopt;
    }
    text = std::move(imported->source);
    l.imported.file = io.weightsFile;
    l.imported.arrays = std::move(imported->weights);
    // Diagnostics then quote the imported text: `nnc import` prints it.
    name = path + ".nn";
  } else {
    // Model sources are kilobytes; the cap keeps a wrong argument (a data
    // file, a disk image) from being read whole before the parser objects.
    auto read = readFile(path, kMaxSourceBytes, "a model source");
    if (!read) {
      err << l.sm->render(read.error());
      return std::nullopt;
    }
    text = read.take();
  }
  const uint32_t file = l.sm->add(name, std::move(text));
  auto prog = parse(*l.sm, file);
  if (!prog) {
    err << l.sm->render(prog.error());
    return std::nullopt;
  }
  l.program = prog.take();
  auto model = elaborate(l.program, opt);
  Status loads = model ? resolveLoads(model->graph, path, l.imported.file.empty() ? nullptr : &l.imported) : ok();
  if (!model || !loads) {
    Diagnostic& d = model ? loads.error() : model.error();
    // Errors about the file as a whole point at its first line.
    if (!d.loc.valid()) d.loc = SourceLoc{file, 0, 0};
    err << (d.loc.line == 0 && !d.internal() ? fmt::format("{}: error: {}\n", name, d.message) : l.sm->render(d));
    return std::nullopt;
  }
  l.model = model.take();
  return l;
}

}  // namespace nnc::cli
