#include "cli/run_data.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>

namespace nnc::cli {
namespace {

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string kindOfPath(const std::string& p) {
  if (endsWith(p, ".npz")) return "npz";
  if (endsWith(p, ".csv")) return "csv";
  if (exists(p + "/x_train.npy")) return "npy";
  for (const char* f : {"/train-images-idx3-ubyte", "/train-images-idx3-ubyte.gz"})
    if (exists(p + f)) return "idx";
  return exists(p) ? "images" : "idx";
}

}  // namespace

// A train block's relative path is relative to the .nn file that says it, so
// a model runs from any working directory.
std::string besideModel(const Options& o, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  const size_t slash = o.file.rfind('/');
  return slash == std::string::npos ? p : o.file.substr(0, slash + 1) + p;
}

Expected<DataSpec> dataSpecFrom(const Options& o, const std::optional<TrainConfig>& train) {
  DataSpec spec;
  spec.path = kDefaultData;
  if (train)
    if (auto d = train->settings.find("data"); d != train->settings.end()) {
      const TrainValue& v = d->second;
      spec.kind = v.kind;
      if (v.positional.size() != 1 || v.positional[0].kind != "string")
        return error(v.loc, "{}(...) takes the data's path as one string", v.kind);
      spec.path = besideModel(o, v.positional[0].text);
      for (const auto& [name, a] : v.args) {
        auto str = [&]() -> Expected<std::string> {
          if (a.kind != "string") return error(a.loc, "{}(...): {} takes a string", v.kind, name);
          return a.text;
        };
        auto num = [&]() -> Expected<double> {
          if (a.kind != "int" && a.kind != "float") return error(a.loc, "{}(...): {} takes a number", v.kind, name);
          return a.number;
        };
        if (name == "test") {
          NNC_TRY(spec.testPath, str());
          spec.testPath = besideModel(o, spec.testPath);
        } else if (name == "label") {
          NNC_TRY(spec.label, str());
        } else if (name == "scale") {
          NNC_TRY(spec.scale, str());
        } else if (name == "regression") {
          NNC_TRY(double r, num());
          spec.regression = r != 0;
        } else if (name == "size") {
          NNC_TRY(double s, num());
          spec.height = spec.width = static_cast<int64_t>(s);
        } else if (name == "height" || name == "width" || name == "channels") {
          NNC_TRY(double n, num());
          int64_t& field = name == "height" ? spec.height : name == "width" ? spec.width : spec.channels;
          field = static_cast<int64_t>(n);
        } else if (name == "classes") {
          NNC_TRY(double n, num());
          spec.classes = static_cast<int32_t>(n);
        } else if (name == "test_fraction") {
          NNC_TRY(spec.testFraction, num());
        } else {
          return error(a.loc,
                       "{}(...) has no argument '{}' (its arguments: test, label, scale, regression, size, height, "
                       "width, channels, classes, test_fraction)",
                       v.kind, name);
        }
      }
    }
  if (o.flag("data")) {
    spec.path = o.value("data");
    spec.kind = kindOfPath(spec.path);
  }
  if (spec.scale != "auto" && spec.scale != "none" && spec.scale != "standardize")
    return error("scale '{}': the scalings are auto (u8 data / 255), none and standardize", spec.scale);
  return spec;
}

Expected<Augment> augmentFrom(const std::string& text) {
  Augment a;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(at, end - at);
    const size_t eq = item.find('=');
    const std::string name = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
    char* stop = nullptr;
    const double v = std::strtod(value.c_str(), &stop);
    const bool number = !value.empty() && *stop == '\0' && std::isfinite(v);
    if (name == "shift" && number && v >= 0 && v == std::floor(v) && v < 64) {
      a.shift = static_cast<int64_t>(v);
    } else if (name == "hflip" && value.empty()) {
      a.hflip = true;
    } else if (name == "binarize" && (value.empty() || number)) {
      a.binarize = value.empty() ? 0.5 : v;
    } else {
      return error("augment '{}': expected shift=K (pixels), hflip or binarize[=THRESHOLD], separated by commas", item);
    }
    at = end + 1;
  }
  return a;
}

Expected<DataFit> fitData(const Graph& g, const DataSplits& d) {
  if (g.inputs.size() != 1 || g.labels.size() != 1)
    return error("nnc run trains models with one input and one label; '{}' has {} and {}", g.name, g.inputs.size(),
                 g.labels.size());
  const TensorType xt = g.type(g.inputs[0]), tt = g.type(g.labels[0]);
  const Dataset& tr = d.train;
  DataFit f;
  f.batch = xt.shape.empty() ? 0 : xt.shape[0];
  const std::string sample = tr.rows == 1 ? fmt::format("{} features", tr.cols)
                                          : fmt::format("{}×{}×{} images", tr.channels, tr.rows, tr.cols);
  if (xt.rank() < 2 || xt.numel() != f.batch * tr.sampleSize() ||
      (xt.rank() == 4 && (xt.shape[1] != tr.channels || xt.shape[2] != tr.rows || xt.shape[3] != tr.cols)))
    return error(g.node(g.inputs[0]).loc, "the data are {} per sample, but model '{}' takes input {} (expected [batch, {}]{})",
                 sample, g.name, typeString(xt), tr.sampleSize(),
                 tr.rows > 1 ? fmt::format(" or [batch, {}, {}, {}]", tr.channels, tr.rows, tr.cols) : "");
  f.classify = !tr.labels.empty();
  if (f.classify) {
    if (tt.shape != Shape{f.batch} || tt.dtype != DType::I32)
      return error(g.node(g.labels[0]).loc, "the data have class ids, but model '{}' takes label {} (expected i32[{}])",
                   g.name, typeString(tt), f.batch);
    const int32_t classes = std::max(tr.classes, d.test.classes);
    for (const auto& [_, v] : g.outputs)
      if (g.type(v).shape == Shape{f.batch, classes}) {
        f.scores = v;
        break;
      }
    // Compiled code compares class ids but cannot report one out of range:
    // the data are checked here, once, against the model's number of classes.
    for (const auto& [_, v] : g.outputs)
      if (f.scores == kNoValue && g.type(v).rank() == 2 && g.type(v).shape[0] == f.batch &&
          g.type(v).shape[1] < classes)
        return error(g.node(v).loc, "the data have {} classes, but output '{}' scores {}: {}", classes, g.node(v).name,
                     g.type(v).shape[1], typeString(g.type(v)));
    // The loss's logits, to count right answers during training at no cost.
    if (g.loss != kNoValue) {
      const Node& l = g.node(g.loss);
      if ((l.op->name == "softmax_cross_entropy" || l.op->name == "cross_entropy") &&
          g.type(l.inputs[0]).shape == Shape{f.batch, classes})
        f.trainScores = l.inputs[0];
    }
  } else if (tt.dtype != DType::F32 || tt.numel() != f.batch * tr.targetSize) {
    return error(g.node(g.labels[0]).loc,
                 "the data have {} regression target{} per sample, but model '{}' takes label {} (expected f32[{}{}])",
                 tr.targetSize, tr.targetSize == 1 ? "" : "s", g.name, typeString(tt), f.batch,
                 tr.targetSize == 1 ? "" : fmt::format(", {}", tr.targetSize));
  }
  return f;
}

void makeBatch(const Dataset& d, const std::vector<int64_t>& order, int64_t first, int64_t batch, Batch& b) {
  const int64_t n = d.sampleSize(), t = d.labels.empty() ? d.targetSize : 1;
  b.x.resize(static_cast<size_t>(batch * n));
  b.y.resize(static_cast<size_t>(batch * t));
  for (int64_t k = 0; k < batch; ++k) {
    const int64_t i = order[static_cast<size_t>(first + k)];
    std::copy_n(d.images.data() + i * n, n, b.x.data() + k * n);
    if (d.labels.empty())
      std::copy_n(d.targets.data() + i * t, t, b.y.data() + k * t);
    else
      b.y[static_cast<size_t>(k)] = static_cast<float>(d.labels[static_cast<size_t>(i)]);
  }
}

Expected<Score> evaluate(Stepper& s, const DataFit& fit, const Dataset& d, int64_t limit) {
  Score r;
  const int64_t count = limit ? std::min(limit, d.count) : d.count;
  std::vector<int64_t> all(static_cast<size_t>(d.count));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  const int32_t classes = std::max<int32_t>(d.classes, 1);
  r.right.assign(static_cast<size_t>(classes), 0);
  r.total.assign(static_cast<size_t>(classes), 0);
  Batch b;
  double lossSum = 0;
  int64_t batches = 0;
  for (int64_t first = 0; first + fit.batch <= count; first += fit.batch, ++batches) {
    makeBatch(d, all, first, fit.batch, b);
    s.feed(b, false);
    NNC_TRY(auto sc, s.infer());
    lossSum += sc.loss;
    if (!fit.classify || !sc.scores) continue;
    for (int64_t i = 0; i < fit.batch; ++i, ++r.seen) {
      const float* row = sc.scores + i * classes;
      const int32_t want = d.labels[static_cast<size_t>(first + i)];
      const bool hit = std::max_element(row, row + classes) - row == want;
      r.right[static_cast<size_t>(want)] += hit;
      r.total[static_cast<size_t>(want)] += 1;
    }
  }
  int64_t right = 0;
  for (int64_t x : r.right) right += x;
  r.accuracy = fit.classify && r.seen ? static_cast<double>(right) / static_cast<double>(r.seen) : std::nan("");
  r.loss = batches ? lossSum / static_cast<double>(batches) : std::nan("");
  if (!fit.classify) r.seen = batches * fit.batch;
  return r;
}

}  // namespace nnc::cli
