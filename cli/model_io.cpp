// What commands read besides the model's text: the model built with
// --model and --set, and values for its params, inputs and labels from
// --weights and --input.
#include <cmath>
#include <ostream>

#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/frontend.h"
#include "io/checkpoint.h"
#include "io/npy.h"

namespace nnc::cli {

std::optional<Loaded> loadFor(const Options& o, std::ostream& err) {
  auto eo = elaborateOptions(o);
  if (!eo) {
    err << "nnc: " << eo.error().message << "\n";
    return std::nullopt;
  }
  return load(o.file, *eo, err);
}

Expected<TensorMap> readFeeds(const Options& o, const Graph& g, bool& labelsGiven) {
  TensorMap feeds;
  if (o.flag("weights")) {
    NNC_TRY(auto w, readWeights(o.value("weights")));
    for (auto& [name, t] : w) {
      const ValueId v = g.findByName(name);
      if (v == kNoValue || !g.node(v).op->is(OpId::Param))
        return error("'{}' in {} is not a param of model '{}'", name, o.value("weights"), g.name);
      NNC_CHECK(requireFinite(t.data, t.type.shape, fmt::format("param '{}' in '{}'", name, o.value("weights"))));
      feeds[name] = std::move(t);
    }
  }
  labelsGiven = false;
  for (const std::string& kv : o.all("input")) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos) return error("--input takes NAME=FILE.npy, got '{}'", kv);
    const std::string name = kv.substr(0, eq);
    const ValueId v = g.findByName(name);
    if (v == kNoValue || (!g.node(v).op->is(OpId::Input) && !g.node(v).op->is(OpId::Label)))
      return error("--input {}: model '{}' has no input or label named '{}'", kv, g.name, name);
    const std::string file = kv.substr(eq + 1);
    NNC_TRY(Tensor t, readNpy(file));
    // An i32 input or label (class ids) takes integers only: 1.5 is no class.
    if (g.type(v).dtype == DType::I32)
      for (size_t i = 0; i < t.data.size(); ++i)
        if (t.data[i] != std::floor(t.data[i]))
          return error("'{}' holds {} at index {}, but {} '{}' of model '{}' is {}: it takes whole numbers (class "
                       "ids), not fractions",
                       file, t.data[i], i, g.node(v).op->name, name, g.name, typeString(g.type(v)));
    NNC_CHECK(requireFinite(t.data, t.type.shape, fmt::format("--input {} ('{}')", name, file)));
    labelsGiven |= g.node(v).op->is(OpId::Label);
    feeds[name] = std::move(t);
  }
  return feeds;
}

Status requireFinite(const std::vector<double>& data, const Shape& shape, const std::string& what) {
  for (size_t i = 0; i < data.size(); ++i) {
    if (std::isfinite(data[i])) continue;
    std::string at;
    if (shape.size() >= 2 && static_cast<int64_t>(data.size()) == numel(shape)) {
      std::vector<int64_t> idx(shape.size());
      auto rest = static_cast<int64_t>(i);
      for (size_t d = shape.size(); d-- > 0;) {
        idx[d] = rest % shape[d];
        rest /= shape[d];
      }
      at = fmt::format(" ([{}])", fmt::join(idx, ", "));
    }
    const char* word = std::isnan(data[i]) ? "NaN" : data[i] > 0 ? "inf" : "-inf";
    size_t bad = 0;
    for (double v : data) bad += !std::isfinite(v);
    return error("{} holds {} at index {}{} ({} non-finite value{} of {}): refusing to compute with it", what, word, i,
                 at, bad, bad == 1 ? "" : "s", data.size());
  }
  return ok();
}

Status overlayWeights(TensorMap& params, const std::string& path, const Graph& g) {
  NNC_TRY(auto w, readWeights(path));
  for (auto& [name, t] : params) {
    auto it = w.find(name);
    if (it == w.end()) return error("'{}' has no value for param '{}' of model '{}'", path, name, g.name);
    if (it->second.type.shape != t.type.shape)
      return error("'{}': '{}' is {}, but model '{}' has {}", path, name, shapeString(it->second.type.shape), g.name,
                   typeString(t.type));
    NNC_CHECK(requireFinite(it->second.data, t.type.shape, fmt::format("param '{}' in '{}'", name, path)));
    t.data = it->second.data;
  }
  return ok();
}

}  // namespace nnc::cli
