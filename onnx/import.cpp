// The importer's driver: parse and check the model, declare its inputs,
// translate node after node (import_ops.cpp), list every node it cannot
// translate at once, and print the .nn source.
#include <onnx/checker.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "compiler/elaborate/layers.h"
#include "compiler/ops/op_registry.h"
#include "dsl/lexer.h"
#include "onnx/import_ctx.h"
#include "onnx/onnx_io.h"

namespace nnc::onnxio {

std::string dimText(const Dim& d) {
  if (d.k == 0) return fmt::format("{}", d.c);
  std::string s = d.k == 1 ? "batch" : fmt::format("batch * {}", d.k);
  if (d.c > 0) s += fmt::format(" + {}", d.c);
  if (d.c < 0) s += fmt::format(" - {}", -d.c);
  return s;
}

std::string dimsText(const std::vector<Dim>& d) {
  std::vector<std::string> parts;
  for (const Dim& x : d) parts.push_back(dimText(x));
  return fmt::format("[{}]", fmt::join(parts, ", "));
}

std::string intsText(const std::vector<int64_t>& v) { return fmt::format("[{}]", fmt::join(v, ", ")); }

std::string numberText(double v) {
  std::string s = fmt::format("{}", static_cast<float>(v));
  if (s.find_first_of(".eE") == std::string::npos && s.find_first_of("ni") == std::string::npos) s += ".0";
  return s;
}

// Sizes come from the file: every product and sum is checked, an overflow
// is "not foldable" rather than undefined behaviour.
std::optional<Dim> mulDims(const Dim& a, const Dim& b) {
  if (a.k != 0 && b.k != 0) return std::nullopt;
  Dim r;
  const int64_t k1 = a.k == 0 ? a.c : a.k, k2 = a.k == 0 ? b.k : b.c;
  if (__builtin_mul_overflow(k1, k2, &r.k) || __builtin_mul_overflow(a.c, b.c, &r.c)) return std::nullopt;
  return r;
}

std::optional<Dim> addDims(const Dim& a, const Dim& b) {
  Dim r;
  if (__builtin_add_overflow(a.k, b.k, &r.k) || __builtin_add_overflow(a.c, b.c, &r.c)) return std::nullopt;
  return r;
}

std::optional<std::vector<Dim>> broadcastShapes(const std::vector<Dim>& a, const std::vector<Dim>& b) {
  const size_t r = std::max(a.size(), b.size());
  std::vector<Dim> out(r);
  for (size_t i = 0; i < r; ++i) {
    const Dim one = Dim::of(1);
    const Dim x = i < r - a.size() ? one : a[i - (r - a.size())];
    const Dim y = i < r - b.size() ? one : b[i - (r - b.size())];
    if (x == y || y == one) out[i] = x;
    else if (x == one) out[i] = y;
    else return std::nullopt;
  }
  return out;
}

// ---- Importer ----

const onnx::AttributeProto* Importer::attr(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute())
    if (a.name() == name) return &a;
  return nullptr;
}
int64_t Importer::attrInt(const onnx::NodeProto& n, const std::string& name, int64_t dflt) {
  const auto* a = attr(n, name);
  return a ? a->i() : dflt;
}
double Importer::attrFloat(const onnx::NodeProto& n, const std::string& name, double dflt) {
  const auto* a = attr(n, name);
  return a ? a->f() : dflt;
}
std::string Importer::attrString(const onnx::NodeProto& n, const std::string& name, const std::string& dflt) {
  const auto* a = attr(n, name);
  return a ? a->s() : dflt;
}
std::vector<int64_t> Importer::attrInts(const onnx::NodeProto& n, const std::string& name) {
  const auto* a = attr(n, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : std::vector<int64_t>{};
}

void Importer::unsupported(const onnx::NodeProto& n, const std::string& what) {
  failedNode_ = true;
  problems_.push_back(Problem{n.name(), n.op_type(), what});
}

std::optional<std::vector<int64_t>> Importer::constInts(const onnx::NodeProto& n, int i, const std::string& what) {
  const Value& v = in(n, i);
  if (!v.constant || !v.isInt()) {
    unsupported(n, fmt::format("{} (input {}) must be a constant integer tensor known at import time", what, i));
    return std::nullopt;
  }
  std::vector<int64_t> out;
  for (const Dim& d : v.ints) {
    if (!d.known()) {
      unsupported(n, fmt::format("{} depends on the batch size", what));
      return std::nullopt;
    }
    out.push_back(d.c);
  }
  return out;
}

std::string Importer::freshName(const std::string& onnxName) {
  // Besides the keywords: the batch parameter and the names the language gives meaning.
  static const std::set<std::string> reserved = {"batch", "loss", "load", "accuracy"};
  std::string s;
  for (char c : onnxName) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  // PyTorch's "/conv1/Conv_output_0" reads better as "conv1_Conv".
  const std::string tail = "_output_0";
  if (s.size() > tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0)
    s.resize(s.size() - tail.size());
  while (!s.empty() && s[0] == '_') s.erase(0, 1);
  if (s.empty()) s = "v";
  if (std::isdigit(static_cast<unsigned char>(s[0]))) s = "v" + s;
  if (isKeywordText(s) || reserved.count(s)) s += "_";
  std::string unique = s;
  for (int k = 1; used_.count(unique); ++k) unique = fmt::format("{}_{}", s, k);
  // Op and layer names stay callable: a value never takes one.
  while (findOp(unique) || isLayer(unique) || used_.count(unique)) unique += "_";
  used_.insert(unique);
  return unique;
}

std::string Importer::weightName(const std::string& initializer, const Value& v) {
  auto it = declared_.find(initializer);
  if (it != declared_.end()) return it->second;
  const std::string name = freshName(initializer);
  Shape shape;
  for (const Dim& d : v.shape) shape.push_back(d.c);
  weights_[name] = Tensor(TensorType{DType::F32, shape}, v.floats);
  const bool train = trainable_.count(initializer) != 0;
  decls_.push_back(fmt::format("    {} {}: f32{} = load(\"{}\")", train ? "param" : "buffer", name, dimsText(v.shape),
                               weightsFile_));
  declared_[initializer] = name;
  return name;
}

std::string Importer::tensorOf(const Value& v, const std::string& hint) {
  if (!v.constant) return v.expr;
  if (v.isInt()) {
    // An integer tensor where a float one is computed: its values as floats.
    Value f = v;
    f.elem = 1;
    f.floats.clear();
    for (const Dim& d : v.ints) {
      if (!d.known()) return "";
      f.floats.push_back(static_cast<double>(d.c));
    }
    f.ints.clear();
    return tensorOf(f, hint);
  }
  bool finite = true;
  for (double x : v.floats) finite &= std::isfinite(x);
  if (finite && v.shape.empty()) return numberText(v.floats[0]);
  for (const Dim& d : v.shape)
    if (!d.known()) return "";
  if (!v.initializer.empty()) return weightName(v.initializer, v);
  if (finite && v.shape.size() == 1 && v.floats.size() <= 8) {
    std::vector<std::string> parts;
    for (double x : v.floats) parts.push_back(numberText(x));
    return fmt::format("[{}]", fmt::join(parts, ", "));
  }
  const std::string key = fmt::format("{}_const{}", hint, ++constCount_);
  return weightName(key, v);
}

std::string Importer::tensor(const onnx::NodeProto& n, int i) {
  const Value& v = in(n, i);
  std::string s = tensorOf(v, n.name().empty() ? n.op_type() : n.name());
  if (s.empty()) unsupported(n, fmt::format("input {} is a constant whose shape depends on the batch size", i));
  return s;
}

void Importer::emit(const onnx::NodeProto& n, int i, const std::string& expr, std::vector<Dim> shape, int elem) {
  if (failedNode_) return;
  // At the default batch, no value may exceed what one tensor may hold.
  int64_t count = 1;
  for (const Dim& d : shape) {
    int64_t size = 0;
    if (__builtin_mul_overflow(d.k, batch_, &size) || __builtin_add_overflow(size, d.c, &size) || size <= 0 ||
        __builtin_mul_overflow(count, size, &count) || count > kMaxTensorElements) {
      unsupported(n, fmt::format("its output {} is empty or holds more than 2^31 elements", dimsText(shape)));
      return;
    }
  }
  for (const Dim& d : shape)
    if (d.k != 0) usesBatch_ = true;
  const std::string& out = n.output(i);
  auto named = outputNames_.find(out);
  const std::string name = freshName(named != outputNames_.end() ? out : readableName(n));
  if (named != outputNames_.end()) named->second = name;
  std::string line = fmt::format("    {} = {}", name, expr);
  const std::string comment = fmt::format("# {} '{}': {}", n.op_type(), n.name(), dimsText(shape));
  line += std::string(line.size() < 60 ? 60 - line.size() : 1, ' ') + comment;
  lines_.push_back(std::move(line));
  Value v;
  v.expr = name;
  v.shape = std::move(shape);
  v.elem = elem;
  values_[out] = std::move(v);
}

// PyTorch names a node "/block/conv1/Conv": a module path, then the op. A
// module that holds one node names its value ("block_conv1"); other values
// keep the op ("block_Relu"). Any other naming: the output's name.
std::string Importer::readableName(const onnx::NodeProto& n) const {
  const std::string& node = n.name();
  const size_t slash = node.rfind('/');
  if (node.empty() || node[0] != '/' || slash == std::string::npos || n.output_size() != 1 ||
      node.compare(slash + 1, n.op_type().size(), n.op_type()) != 0)
    return n.output(0);
  const std::string module = node.substr(0, slash);
  auto it = moduleNodes_.find(module);
  if (!module.empty() && it != moduleNodes_.end() && it->second == 1) return module;
  return node;
}

void Importer::countModules(const onnx::GraphProto& g) {
  for (const auto& n : g.node()) {
    const size_t slash = n.name().rfind('/');
    if (!n.name().empty() && n.name()[0] == '/' && slash != std::string::npos) ++moduleNodes_[n.name().substr(0, slash)];
  }
}

void Importer::alias(const onnx::NodeProto& n, int i, const Value& v) {
  if (failedNode_) return;
  if (!v.constant && outputNames_.count(n.output(i))) {
    // A graph output gets a line of its own, so that it has its own name.
    emit(n, i, fmt::format("identity({})", v.expr), v.shape, v.elem);
    return;
  }
  values_[n.output(i)] = v;
}

void Importer::setConst(const onnx::NodeProto& n, int i, Value v) {
  if (failedNode_) return;
  v.constant = true;
  v.initializer.clear();
  values_[n.output(i)] = std::move(v);
}

// ---- the driver ----

namespace {

struct OpsetRange {
  static constexpr int kMin = 1, kMax = 17;
};

std::string sanitizeModelName(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
  if (out.empty() || std::isdigit(static_cast<unsigned char>(out[0]))) out = "m" + out;
  if (isKeywordText(out)) out += "_";
  return out;
}

Expected<Value> initializerValue(const onnx::TensorProto& t, const std::string& baseDir) {
  NNC_TRY(Tensor x, tensorFromProto(t, baseDir, fmt::format("initializer '{}'", t.name())));
  Value v;
  v.constant = true;
  v.elem = t.data_type();
  for (int64_t d : x.shape()) v.shape.push_back(Dim::of(d));
  v.initializer = t.name();
  if (v.isInt()) {
    for (double d : x.data) v.ints.push_back(Dim::of(static_cast<int64_t>(d)));
  } else {
    v.elem = 1;  // f64 and f16 weights are computed in f32
    v.floats = std::move(x.data);
  }
  return v;
}

// Initializers that are trained: the float ones read as weights by the ops
// that have them (conv, gemm, matmul, batchnorm's scale and bias, prelu's
// slope, and the operands of add/mul/...); batchnorm's running statistics
// and everything folded at import are not.
std::set<std::string> trainedInitializers(const onnx::GraphProto& g) {
  std::set<std::string> frozen, used;
  for (const auto& n : g.node()) {
    const std::string& op = n.op_type();
    if (op == "BatchNormalization") {
      for (int i = 3; i < n.input_size(); ++i) frozen.insert(n.input(i));
    }
    // Shapes, indices and axes.
    if (op == "Reshape" || op == "Slice" || op == "Squeeze" || op == "Unsqueeze" || op == "Gather" || op == "Expand" ||
        op == "ConstantOfShape" || op == "Clip" || op == "Dropout" || op == "ReduceSum" || op == "Tile" || op == "Pad")
      for (int i = 1; i < n.input_size(); ++i) frozen.insert(n.input(i));
    for (const auto& x : n.input()) used.insert(x);
  }
  std::set<std::string> out;
  for (const auto& t : g.initializer())
    if (used.count(t.name()) && !frozen.count(t.name()) &&
        (t.data_type() == onnx::TensorProto::FLOAT || t.data_type() == onnx::TensorProto::DOUBLE ||
         t.data_type() == onnx::TensorProto::FLOAT16))
      out.insert(t.name());
  return out;
}

}  // namespace

Expected<Imported> importModel(const std::string& bytes, const std::string& displayName, const ImportOptions& opt,
                               const std::string& baseDir) {
  onnx::ModelProto m;
  if (bytes.empty()) return error("{}: the file is empty, not an ONNX model", displayName);
  if (bytes.size() > (size_t{1} << 31) - 1 || !m.ParseFromString(bytes))
    return error("{}: not an ONNX model (the protobuf does not parse: truncated, or another kind of file)",
                 displayName);
  if (!m.has_graph() || m.ir_version() <= 0 || m.opset_import_size() == 0)
    return error("{}: not an ONNX model (a protobuf without {})", displayName,
                 !m.has_graph() ? "a graph" : m.ir_version() <= 0 ? "an IR version" : "an opset import");
  int opset = -1;
  for (const auto& o : m.opset_import())
    if (o.domain().empty() || o.domain() == "ai.onnx") opset = static_cast<int>(o.version());
  if (opset < 0) return error("{}: the model imports no version of the default ONNX opset (ai.onnx)", displayName);
  if (opset < OpsetRange::kMin || opset > OpsetRange::kMax)
    return error("{}: opset {} of ai.onnx: nnc imports opsets {} to {}", displayName, opset, OpsetRange::kMin,
                 OpsetRange::kMax);
  bool external = false;
  for (const auto& t : m.graph().initializer()) external |= t.data_location() == onnx::TensorProto::EXTERNAL;
  try {
    // The checker resolves external data from the model's folder, which
    // only its by-path form knows (importFile passes the path as the name).
    if (external && !baseDir.empty()) onnx::checker::check_model(displayName);
    else onnx::checker::check_model(m);
  } catch (const std::exception& e) {
    std::string what = e.what();
    while (!what.empty() && (what.back() == '\n' || what.back() == ' ')) what.pop_back();
    return error("{}: not a valid ONNX model: {}", displayName, what);
  }
  const onnx::GraphProto& g = m.graph();

  Importer im(opset, opt.batch);
  im.weightsFile() = opt.weightsFile;
  im.trainable() = trainedInitializers(g);
  im.countModules(g);
  for (const auto& o : g.output()) im.outputNames()[o.name()] = "";
  auto& values = im.values();
  for (const auto& t : g.initializer()) {
    if (values.count(t.name())) return error("{}: initializer '{}' is defined twice", displayName, t.name());
    NNC_TRY(Value v, initializerValue(t, baseDir));
    values[t.name()] = std::move(v);
  }

  // Inputs: f32 tensors with fixed sizes but for a leading batch axis.
  std::vector<std::string> inputLines;
  std::set<std::string> poisoned;  // values not imported (a problem is listed): their users are skipped
  std::vector<std::pair<std::string, std::string>> inputNames, outputNames;
  for (const auto& in : g.input()) {
    if (values.count(in.name())) continue;  // an initializer listed as an input (IR < 4)
    const auto& tt = in.type().tensor_type();
    Problem p{in.name(), "graph input", ""};
    if (!in.type().has_tensor_type()) p.what = "is not a tensor";
    // f64 and f16 inputs are read as f32 (nnc computes in f32).
    else if (tt.elem_type() != onnx::TensorProto::FLOAT && tt.elem_type() != onnx::TensorProto::DOUBLE &&
             tt.elem_type() != onnx::TensorProto::FLOAT16)
      p.what = fmt::format("is {}: nnc's model inputs are f32", elemTypeName(tt.elem_type()));
    else if (!tt.has_shape()) p.what = "has no shape";
    std::vector<Dim> shape;
    if (p.what.empty())
      for (int a = 0; a < tt.shape().dim_size(); ++a) {
        const auto& d = tt.shape().dim(a);
        if (d.has_dim_value()) {
          if (d.dim_value() <= 0 || d.dim_value() > (int64_t{1} << 31)) {
            p.what = fmt::format("has size {} on axis {}", d.dim_value(), a);
            break;
          }
          shape.push_back(Dim::of(d.dim_value()));
        } else if (a == 0) {
          shape.push_back(Dim{1, 0});  // the batch
        } else {
          p.what = fmt::format("has no fixed size on axis {} ('{}'): only the leading (batch) axis may vary", a,
                               d.dim_param());
          break;
        }
      }
    if (!p.what.empty()) {
      im.problems().push_back(std::move(p));
      poisoned.insert(in.name());
      continue;
    }
    Value v;
    v.shape = shape;
    v.elem = tt.elem_type();  // f16 and f64 too: read as f32, but CastLike sees the type
    v.expr = im.freshName(in.name());
    if (!shape.empty() && shape[0].k != 0) im.markBatch();
    inputLines.push_back(fmt::format("    input {}: f32{}", v.expr, dimsText(shape)));
    inputNames.emplace_back(in.name(), v.expr);
    values[in.name()] = std::move(v);
  }

  // Nodes, in the order given (ONNX requires a topological one).
  const auto& table = translators();
  for (const auto& n : g.node()) {
    im.beginNode();
    bool skip = false;
    for (const auto& x : n.input()) {
      if (x.empty()) continue;
      if (poisoned.count(x)) skip = true;
      else if (!values.count(x)) {
        im.unsupported(n, fmt::format("reads '{}', which no earlier node, input or initializer defines (a cycle, "
                                      "an unsorted graph or a missing input)", x));
        skip = true;
      }
    }
    if (!skip && !n.domain().empty() && n.domain() != "ai.onnx") {
      im.unsupported(n, fmt::format("domain '{}': nnc imports the default ONNX domain only", n.domain()));
      skip = true;
    }
    auto t = table.find(n.op_type());
    if (!skip && t == table.end()) {
      im.unsupported(n, "op not supported");
      skip = true;
    }
    if (!skip) t->second(im, n);
    for (const auto& o : n.output())
      if (!o.empty() && (skip || im.failed() || !values.count(o))) poisoned.insert(o);
  }

  std::vector<std::string> outputLines;
  std::string firstOutput;
  std::vector<Dim> firstShape;
  for (const auto& o : g.output()) {
    if (poisoned.count(o.name())) continue;
    auto it = values.find(o.name());
    if (it == values.end()) {
      im.problems().push_back(Problem{o.name(), "graph output", "is not computed by any node"});
      continue;
    }
    if (it->second.constant) {
      im.problems().push_back(Problem{o.name(), "graph output", "is a constant: nnc models output computed tensors"});
      continue;
    }
    outputLines.push_back(fmt::format("    output {}", it->second.expr));
    outputNames.emplace_back(o.name(), it->second.expr);
    if (firstOutput.empty()) {
      firstOutput = it->second.expr;
      firstShape = it->second.shape;
    }
  }
  if (outputLines.empty() && im.problems().empty())
    im.problems().push_back(Problem{g.name(), "graph", "has no outputs"});

  if (!im.problems().empty()) {
    std::string list;
    std::set<std::string> ops;
    for (const Problem& p : im.problems()) {
      list += fmt::format("\n  {} '{}' ({}): {}", p.op == "graph input" || p.op == "graph output" || p.op == "graph"
                                                     ? p.op : "node", p.node, p.op, p.what);
      ops.insert(p.op);
    }
    return error("{}: {} problem{} importing the model{}", displayName, im.problems().size(),
                 im.problems().size() == 1 ? "" : "s", list);
  }

  // The source.
  std::ostringstream s;
  // The file's name reads better than PyTorch's graph name ("torch_jit").
  // ONNX's test folders hold a model.onnx each: there the folder names it.
  const std::filesystem::path file(displayName);
  std::string stem = file.stem().string();
  if (stem == "model" && file.has_parent_path()) stem = file.parent_path().filename().string();
  const std::string name = sanitizeModelName(!opt.modelName.empty() ? opt.modelName : !stem.empty() ? stem : g.name());
  s << fmt::format("# Imported by nnc import from {}\n", std::filesystem::path(displayName).filename().string());
  s << fmt::format("# (producer {} {}, IR version {}, opset {}); ONNX names are in the comments.\n",
                   m.producer_name().empty() ? "unknown" : m.producer_name(), m.producer_version(), m.ir_version(),
                   opset);
  if (!im.weights().empty()) {
    int64_t count = 0;
    for (const auto& [_, t] : im.weights()) count += t.numel();
    s << fmt::format("# {} tensors ({} values) are read from {}: params are trained, buffers are not.\n",
                     im.weights().size(), count, opt.weightsFile);
  }
  const bool batch = im.usesBatch();
  s << fmt::format("model {}{} {{\n", name, batch ? fmt::format("(batch = {})", opt.batch) : "");
  for (const auto& l : inputLines) s << l << "\n";
  if (!opt.loss.empty()) {
    const bool ids = opt.loss == "softmax_cross_entropy" || opt.loss == "cross_entropy";
    std::vector<Dim> ls = ids ? std::vector<Dim>{firstShape.empty() ? Dim::of(1) : firstShape[0]} : firstShape;
    s << fmt::format("    label {}: {}{}\n", opt.label, ids ? "i32" : "f32", dimsText(ls));
  }
  for (const auto& l : im.decls()) s << l << "\n";
  for (const auto& l : im.lines()) s << l << "\n";
  for (const auto& l : outputLines) s << l << "\n";
  if (!opt.loss.empty()) s << fmt::format("    loss = {}({}, {})\n", opt.loss, firstOutput, opt.label);
  s << "}\n";
  if (!opt.loss.empty())
    s << fmt::format("\ntrain {} {{\n    optimizer = adam(lr = 0.001)\n    epochs    = 1\n    seed      = 42\n}}\n", name);
  return Imported{s.str(), std::move(im.weights()), std::move(inputNames), std::move(outputNames)};
}

Expected<Imported> importFile(const std::string& path, const ImportOptions& opt) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return error("{}: cannot be read", path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return importModel(ss.str(), path, opt, std::filesystem::path(path).parent_path().string());
}

}  // namespace nnc::onnxio
