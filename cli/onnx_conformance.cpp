// checkImported: compile an imported model, feed a test's data sets, compare.
#include "cli/onnx_conformance.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "cli/frontend.h"
#include "compiler/graph/graph_util.h"
#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "io/file_io.h"

namespace nnc::cli {

namespace fs = std::filesystem;

namespace {

// The K-th file of `prefix`K.pb in `dir`, for K = 0, 1, ... while they exist.
std::vector<std::string> numbered(const std::string& dir, const std::string& prefix, const std::string& suffix) {
  std::vector<std::string> files;
  for (int k = 0;; ++k) {
    const std::string p = fmt::format("{}/{}{}{}", dir, prefix, k, suffix);
    std::error_code ec;
    if (!fs::exists(p, ec)) break;
    files.push_back(p);
  }
  return files;
}

struct Value {
  Tensor tensor;
  std::string name;   // the TensorProto's own name (ONNX's graph name for it), maybe empty
  bool exact = false; // an integer or bool type: compared exactly
};

Expected<Value> readValue(const std::string& path) {
  // Test data are at most megabytes; 2 GiB is the protobuf limit anyway.
  NNC_TRY(std::string bytes, readFile(path, uint64_t{1} << 31, "a TensorProto"));
  Value v;
  NNC_TRY(v.tensor, onnxio::readTensorProto(bytes, path, &v.name));
  NNC_TRY(int type, onnxio::tensorProtoElemType(bytes, path));
  v.exact = !(type == 1 || type == 10 || type == 11 || type == 16);  // float, float16, double, bfloat16
  return v;
}

bool close(double got, double want, bool exact, const OnnxTestOptions& opt) {
  if (std::isnan(want)) return std::isnan(got);
  if (std::isinf(want)) return got == want;
  if (exact) return got == want;
  return std::fabs(got - want) <= opt.atol + opt.rtol * std::fabs(want);
}

// `got` against the stored output; the message names `what`.
Status compare(const std::string& what, const Shape& shape, const std::vector<double>& got, const Value& want,
               const OnnxTestOptions& opt) {
  if (shape != want.tensor.type.shape)
    return error("{}: shape {}, the test expects {}", what, shapeString(shape), shapeString(want.tensor.type.shape));
  int64_t bad = 0, worst = -1;
  double worstErr = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    if (close(got[i], want.tensor.data[i], want.exact, opt)) continue;
    ++bad;
    const double e = std::isfinite(got[i]) ? std::fabs(got[i] - want.tensor.data[i]) : INFINITY;
    if (e > worstErr || worst < 0) worstErr = e, worst = static_cast<int64_t>(i);
  }
  if (bad == 0) return ok();
  const auto w = static_cast<size_t>(worst);
  return error("{}: {} of {} values differ ({}); the worst at flat index {}: {} where the test has {}", what, bad,
               got.size(), want.exact ? "compared exactly" : fmt::format("rtol {:g}, atol {:g}", opt.rtol, opt.atol),
               worst, got[w], want.tensor.data[w]);
}

// The graph value the K-th ONNX input or output stands for among `ids`:
// the K-th when the counts agree (the importer declares them in ONNX's
// order, and its names may differ from nnName's: "sum" becomes "sum_", a
// clash gets "_1"), else the one of the sanitized name.
ValueId find(const Graph& g, const std::vector<ValueId>& ids, const std::string& onnxName, size_t k, size_t onnxCount) {
  if (ids.size() == onnxCount && k < ids.size()) return ids[k];
  for (ValueId id : ids)
    if (g.node(id).name == nnName(onnxName) || g.node(id).name == onnxName) return id;
  return kNoValue;
}

struct Compiled {
  SourceManager sm;
  Elaborated model;
  TensorMap params;
  std::vector<ValueId> outputs;  // the graph outputs, in declaration order
  std::unique_ptr<jit::CompiledProgram> jit;
  std::vector<std::pair<std::string, std::string>> inputNames, outputNames;  // the importer's (ONNX, .nn)
};

// The importer's .nn name for an ONNX input or output, if it gave one and
// the graph has it among `ids`; else find()'s guess.
ValueId lookup(const Graph& g, const std::vector<ValueId>& ids, const std::vector<std::pair<std::string, std::string>>& names,
               const std::string& onnxName, size_t k, size_t onnxCount) {
  for (const auto& [onnx, nn] : names) {
    if (onnx != onnxName) continue;
    for (const auto& [name, id] : g.outputs)
      if (name == nn && std::find(ids.begin(), ids.end(), id) != ids.end()) return id;
    for (ValueId id : ids)
      if (g.node(id).name == nn) return id;
    return kNoValue;
  }
  return find(g, ids, onnxName, k, onnxCount);
}

Status compile(Compiled& c, const onnxio::Imported& imported, const std::string& name, const OnnxTestOptions& opt) {
  // The importer's load() params and buffers take their values from memory.
  const MemoryWeights memory{onnxio::ImportOptions{}.weightsFile, imported.weights};
  auto e = compileSource(c.sm, name + ".nn", imported.source, {}, &memory);
  if (!e) {
    std::string m = c.sm.render(e.error());
    while (!m.empty() && m.back() == '\n') m.pop_back();
    return error("the imported .nn does not compile: {}", m);
  }
  c.model = e.take();
  const Graph& g = c.model.graph;
  NNC_TRY(c.params, initParams(g, 42));
  c.inputNames = imported.inputs;
  c.outputNames = imported.outputs;
  for (const auto& [n, id] : g.outputs) c.outputs.push_back(id);
  if (c.outputs.empty()) return error("the imported model has no outputs");
  jit::CompileOptions co;
  co.optLevel = opt.optLevel;
  auto p = jit::CompiledProgram::create(g, c.outputs, LowerOptions{}, co);
  if (!p) return error("JIT compilation failed: {}", p.error().message);
  c.jit = p.take();
  for (const auto& [n, t] : c.params)
    if (float* d = c.jit->data(g.findByName(n)))
      for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
  return ok();
}

// One test_data_set_N: its inputs fed, the JIT (and the interpreter) run,
// every output compared.
Status runDataSet(Compiled& c, const std::string& dir, const onnxio::ModelInfo& info, const OnnxTestOptions& opt) {
  const Graph& g = c.model.graph;
  const std::vector<std::string> inFiles = numbered(dir, "input_", ".pb"), outFiles = numbered(dir, "output_", ".pb");
  if (outFiles.empty()) return error("{}: no output_0.pb", dir);
  TensorMap feeds = c.params;
  std::vector<bool> fed(g.size(), false);
  for (size_t k = 0; k < inFiles.size(); ++k) {
    NNC_TRY(Value v, readValue(inFiles[k]));
    const std::string onnxName = !v.name.empty() ? v.name : k < info.inputs.size() ? info.inputs[k] : "";
    const ValueId id = lookup(g, g.inputs, c.inputNames, onnxName, k, std::max(info.inputs.size(), inFiles.size()));
    if (id == kNoValue)
      return error("input_{}.pb ('{}'): the imported model has no input '{}'", k, onnxName, nnName(onnxName));
    if (g.type(id).shape != v.tensor.type.shape)
      return error("input '{}': the data are {}, the imported model takes {}", onnxName, shapeString(v.tensor.type.shape),
                   shapeString(g.type(id).shape));
    fed[static_cast<size_t>(id)] = true;
    if (float* d = c.jit->data(id))
      for (size_t i = 0; i < v.tensor.data.size(); ++i) d[i] = static_cast<float>(v.tensor.data[i]);
    v.tensor.type.dtype = g.type(id).dtype;
    feeds[g.node(id).name] = std::move(v.tensor);
  }
  for (ValueId id : g.inputs)
    if (!fed[static_cast<size_t>(id)]) return error("input '{}' of the imported model has no data in {}", g.node(id).name, dir);
  c.jit->run();
  std::vector<Tensor> interp;
  if (opt.interpreter) {
    auto r = interpret(g, feeds, EvalOptions{}, c.outputs);
    if (!r) return error("the reference interpreter failed: {}", r.error().message);
    interp = r.take();
  }
  for (size_t k = 0; k < outFiles.size(); ++k) {
    NNC_TRY(Value want, readValue(outFiles[k]));
    const std::string onnxName = !want.name.empty() ? want.name : k < info.outputs.size() ? info.outputs[k] : "";
    const ValueId id = lookup(g, c.outputs, c.outputNames, onnxName, k, std::max(info.outputs.size(), outFiles.size()));
    if (id == kNoValue) return error("output_{}.pb ('{}'): the imported model has no such output", k, onnxName);
    const float* d = c.jit->data(id);
    if (!d) return error("output '{}': the compiled program does not hold it", onnxName);
    std::vector<double> got(d, d + c.jit->size(id));
    NNC_CHECK(compare(fmt::format("output '{}' (JIT)", onnxName), g.type(id).shape, got, want, opt));
    if (opt.interpreter) {
      const Tensor& t = interp.at(static_cast<size_t>(id));
      NNC_CHECK(compare(fmt::format("output '{}' (interpreter)", onnxName), t.type.shape, t.data, want, opt));
    }
  }
  return ok();
}

}  // namespace

std::string nnName(const std::string& onnxName) {
  std::string s = onnxName;
  for (char& ch : s)
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_')) ch = '_';
  if (!s.empty() && std::isdigit(static_cast<unsigned char>(s[0]))) s = "v" + s;
  return s;
}

OnnxTestResult checkImported(const std::string& dir, const onnxio::Imported& imported, const onnxio::ModelInfo& info,
                             const OnnxTestOptions& opt) {
  OnnxTestResult r;
  r.dir = dir;
  r.ops = info.opTypes;
  std::vector<std::string> sets;
  std::error_code ec;
  for (int n = 0; fs::is_directory(fmt::format("{}/test_data_set_{}", dir, n), ec); ++n)
    sets.push_back(fmt::format("{}/test_data_set_{}", dir, n));
  if (sets.empty()) {
    r.outcome = OnnxOutcome::Skipped;
    r.message = "no test_data_set_0 folder";
    return r;
  }
  Compiled c;
  if (auto st = compile(c, imported, fs::path(dir).filename().string(), opt); !st) {
    r.message = st.error().message;
    return r;
  }
  for (const std::string& s : sets) {
    if (auto st = runDataSet(c, s, info, opt); !st) {
      r.message = fmt::format("{}: {}", fs::path(s).filename().string(), st.error().message);
      return r;
    }
    ++r.dataSets;
  }
  r.outcome = OnnxOutcome::Pass;
  return r;
}

}  // namespace nnc::cli
