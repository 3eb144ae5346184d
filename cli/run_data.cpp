#include "cli/run_data.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <ostream>
#include <set>

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
  if (endsWith(p, ".txt")) return "text";
  if (exists(p + "/x_train.npy")) return "npy";
  // Any of the four IDX files marks an IDX folder, so one missing file is
  // reported by name (not as an images folder without class folders).
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                        "t10k-labels-idx1-ubyte"})
    for (const char* gz : {"", ".gz"})
      if (exists(p + "/" + f + gz)) return "idx";
  return exists(p) ? "images" : "idx";
}

// "7,9" → {7, 9}
Expected<std::vector<int32_t>> classList(const std::string& text, const std::string& what) {
  std::vector<int32_t> ids;
  size_t at = 0;
  while (at <= text.size()) {
    size_t end = text.find(',', at);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(at, end - at);
    if (item.empty() || item.size() > 9 || item.find_first_not_of("0123456789 ") != std::string::npos ||
        item.find_first_not_of(' ') == std::string::npos)
      return error("{} takes class ids separated by commas, such as \"7,9\"; '{}' is not one", what, item);
    ids.push_back(static_cast<int32_t>(std::stol(item)));
    at = end + 1;
  }
  return ids;
}

// text("PATH", context = 128, unit = "byte", test_fraction = 0.1): its own
// arguments, none of the other sources'.
Status textArgs(const TrainValue& v, DataSpec& spec) {
  spec.testFraction = 0.1;
  for (const auto& [name, a] : v.args) {
    const bool number = a.kind == "int" || a.kind == "float";
    if (name == "context") {
      if (a.kind != "int" || a.number < 1 || a.number > (1 << 20))
        return error(a.loc, "text(...): context is the window length, a whole number from 1 to 1048576");
      spec.context = static_cast<int64_t>(a.number);
    } else if (name == "unit") {
      if (a.kind != "string" || (a.text != "byte" && a.text != "char"))
        return error(a.loc, "text(...): unit is \"byte\" or \"char\" (UTF-8 code points)");
      spec.unit = a.text;
    } else if (name == "test_fraction") {
      if (!number || !(a.number > 0 && a.number < 1))
        return error(a.loc, "text(...): test_fraction is the share of the text held out for testing, in (0, 1)");
      spec.testFraction = a.number;
    } else {
      return error(a.loc, "text(...) has no argument '{}' (its arguments: context, unit, test_fraction)", name);
    }
  }
  return ok();
}

}  // namespace

const std::vector<std::string> kFashionNames = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

std::vector<std::string> classNames(const DataSpec& spec, const Dataset& d) {
  if (!d.classNames.empty()) return d.classNames;
  std::vector<std::string> names;
  if (spec.kind == "idx" && spec.path == kDefaultData) {
    names = kFashionNames;
  } else if (spec.kind == "images") {  // subfolders, sorted, as the loader numbers them
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(spec.path, ec))
      if (e.is_directory()) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
  }
  if (spec.select.empty() || names.empty()) return names;
  std::vector<std::string> picked;
  for (int32_t c : spec.select) picked.push_back(static_cast<size_t>(c) < names.size() ? names[static_cast<size_t>(c)] : "");
  return picked;
}

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
      if (v.kind == "text") NNC_CHECK(textArgs(v, spec));
      for (const auto& [name, a] : v.args) {
        if (v.kind == "text") break;  // read by textArgs
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
        } else if (name == "select" || name == "train_classes") {
          NNC_TRY(std::string text, str());
          auto ids = classList(text, fmt::format("{}(...): {}", v.kind, name));
          if (!ids) return error(a.loc, "{}", ids.error().message);
          (name == "select" ? spec.select : spec.trainClasses) = ids.take();
        } else {
          return error(a.loc,
                       "{}(...) has no argument '{}' (its arguments: test, label, scale, regression, size, height, "
                       "width, channels, classes, test_fraction, select, train_classes)",
                       v.kind, name);
        }
      }
    }
  if (o.flag("data")) {
    spec.path = o.value("data");
    // A text source's --data is other text, read with its arguments.
    if (spec.kind != "text") spec.kind = kindOfPath(spec.path);
  }
  if (spec.scale != "auto" && spec.scale != "none" && spec.scale != "standardize")
    return error("scale '{}': the scalings are auto (u8 data / 255), none and standardize", spec.scale);
  return spec;
}

Expected<Augment> augmentFrom(const std::string& text) {
  NNC_TRY(const AugmentSpec a, nnc::augmentFrom(text));
  return Augment{a.shift, a.hflip, a.binarize};
}

// Text: i32 [batch, context] ids in, their next ids as the label, and a
// model whose vocabulary holds the data's (an id beyond it would be a zero
// one-hot row in compiled code, not an error).
Expected<DataFit> fitText(const Elaborated& m, const DataSplits& d, DataFit f) {
  const Graph& g = m.graph;
  const int64_t context = d.train.cols, vocab = static_cast<int64_t>(d.vocab.size());
  const Shape want{f.batch, context};
  if (g.labels.empty()) return error("text data are next-token labels, but model '{}' has no label", g.name);
  for (ValueId v : {g.inputs[0], g.labels[0]})
    if (g.type(v).dtype != DType::I32 || g.type(v).shape != want)
      return error(g.node(v).loc, "text data are windows of {} token ids, but model '{}' takes {} '{}' {} (expected "
                   "i32[{}, {}]: batch, context)",
                   context, g.name, g.node(v).op->name, g.node(v).name, typeString(g.type(v)), f.batch, context);
  for (const ModelParam& p : m.params)
    if (p.name == "vocab" && p.value && *p.value < vocab)
      return error("the text's vocabulary has {} {}s, but model '{}' has vocab = {} (leave --set vocab out: the text "
                   "sets it)",
                   vocab, d.unit, g.name, *p.value);
  for (const auto& [name, v] : g.outputs)
    if ((name == "logits" || name == "probs") && g.type(v).rank() == 3 && g.type(v).shape[2] < vocab)
      return error(g.node(v).loc, "the text's vocabulary has {} {}s, but output '{}' scores {}: {}", vocab, d.unit,
                   name, g.type(v).shape[2], typeString(g.type(v)));
  f.classify = false;
  for (const auto& [name, v] : m.metrics)
    if (name == "accuracy") f.metric = v;
  return f;
}

Expected<DataFit> fitData(const Elaborated& m, const DataSplits& d) {
  const Graph& g = m.graph;
  if (g.inputs.size() != 1 || g.labels.size() > 1)
    return error("nnc run trains models with one input and at most one label; '{}' has {} and {}", g.name,
                 g.inputs.size(), g.labels.size());
  const TensorType xt = g.type(g.inputs[0]);
  const Dataset& tr = d.train;
  DataFit f;
  f.batch = m.batch;
  // Batches are cut from the data sample by sample: samples must be the
  // leading axis of the input (and of the label).
  for (ValueId v : {g.inputs[0], g.labels.empty() ? kNoValue : g.labels[0]})
    if (v != kNoValue && m.batchAxis.at(v) > 0)
      return error(g.node(v).loc, "nnc feeds samples along the first axis, but {} '{}' of model '{}' is {} with batch at axis {}",
                   g.node(v).op->name, g.node(v).name, g.name, typeString(g.type(v)), m.batchAxis.at(v));
  if (!d.vocab.empty()) return fitText(m, d, f);
  const std::string sample = tr.rows == 1 ? fmt::format("{} features", tr.cols)
                                          : fmt::format("{}×{}×{} images", tr.channels, tr.rows, tr.cols);
  if (xt.rank() < 2 || xt.numel() != f.batch * tr.sampleSize() ||
      (xt.rank() == 4 && (xt.shape[1] != tr.channels || xt.shape[2] != tr.rows || xt.shape[3] != tr.cols)))
    return error(g.node(g.inputs[0]).loc, "the data are {} per sample, but model '{}' takes input {} (expected [batch, {}]{})",
                 sample, g.name, typeString(xt), tr.sampleSize(),
                 tr.rows > 1 ? fmt::format(" or [batch, {}, {}, {}]", tr.channels, tr.rows, tr.cols) : "");
  for (const auto& [name, v] : m.metrics)
    if (name == "accuracy") f.metric = v;
  if (!m.perSample.empty()) f.perSample = m.perSample[0];
  f.hasLabel = !g.labels.empty();
  if (!f.hasLabel) {  // learns from its input alone; the data's labels (if any) only group the report
    f.classify = false;
    return f;
  }
  f.perSample = kNoValue;
  const TensorType tt = g.type(g.labels[0]);
  f.classify = !tr.labels.empty();
  if (f.classify) {
    if (tt.shape != Shape{f.batch} || tt.dtype != DType::I32)
      return error(g.node(g.labels[0]).loc, "the data have class ids, but model '{}' takes label {} (expected i32[{}])",
                   g.name, typeString(tt), f.batch);
    const int32_t classes = std::max(tr.classes, d.test.classes);
    for (ValueId v : m.scores)
      if (g.type(v).shape[1] == classes) {
        f.scores = v;
        break;
      }
    // Compiled code compares class ids but cannot report one out of range:
    // the data are checked here, once, against the model's number of classes.
    for (ValueId v : m.scores)
      if (f.scores == kNoValue && g.type(v).shape[1] < classes) {
        // The labels are what is out of range (or the model too small): the
        // message names the label file and the first label beyond the
        // output, with the model's line as a note.
        const int64_t scored = g.type(v).shape[1];
        for (const Dataset* s : {&tr, &d.test})
          for (size_t i = 0; i < s->labels.size(); ++i)
            if (s->labels[i] >= scored)
              return error("'{}': label {} (sample {} of the {} split) is out of range for model '{}', whose output "
                           "'{}' scores {} classes (0..{})",
                           s->labelSource.empty() ? "the data" : s->labelSource, s->labels[i], i,
                           s == &tr ? "training" : "test", g.name,
                           g.node(v).name, scored, scored - 1)
                  .note(g.node(v).loc, fmt::format("output '{}' is {}", g.node(v).name, typeString(g.type(v))));
        return error(g.node(v).loc, "the data have {} classes, but output '{}' scores {}: {}", classes, g.node(v).name,
                     scored, typeString(g.type(v)));
      }
    // The loss's logits, to count right answers during training at no cost.
    if (m.lossScores != kNoValue && g.type(m.lossScores).shape[1] == classes) f.trainScores = m.lossScores;
  } else if (tt.dtype != DType::F32 || tt.numel() != f.batch * tr.targetSize) {
    return error(g.node(g.labels[0]).loc,
                 "the data have {} regression target{} per sample, but model '{}' takes label {} (expected f32[{}{}])",
                 tr.targetSize, tr.targetSize == 1 ? "" : "s", g.name, typeString(tt), f.batch,
                 tr.targetSize == 1 ? "" : fmt::format(", {}", tr.targetSize));
  }
  return f;
}

std::map<std::string, int64_t> textModelParams(const Options& o, const Elaborated& m, const DataSplits& d) {
  std::map<std::string, int64_t> set;
  if (d.vocab.empty()) return set;
  const std::map<std::string, int64_t> fromData = {{"vocab", static_cast<int64_t>(d.vocab.size())},
                                                   {"context", d.train.cols}};
  std::set<std::string> given;
  for (const std::string& kv : o.all("set")) given.insert(kv.substr(0, kv.find('=')));
  for (const ModelParam& p : m.params)
    if (auto it = fromData.find(p.name); it != fromData.end() && !given.count(p.name) && p.value != it->second)
      set[p.name] = it->second;
  return set;
}

bool fitModelToText(const Options& o, const DataSplits& d, Loaded& l, std::ostream& err) {
  const std::map<std::string, int64_t> set = textModelParams(o, l.model, d);
  if (set.empty()) return true;
  auto eo = elaborateOptions(o);
  if (!eo) {
    err << "nnc: " << eo.error().message << "\n";
    return false;
  }
  eo->defaults = set;
  auto again = load(o.file, *eo, err);
  if (!again) return false;
  l = std::move(*again);
  return true;
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

void finishScore(Score& r, const DataFit& fit) {
  int64_t right = 0;
  for (int64_t x : r.right) right += x;
  r.accuracy = fit.classify && r.seen ? static_cast<double>(right) / static_cast<double>(r.seen) : std::nan("");
  if (!fit.classify && fit.metric != kNoValue && r.samples) r.accuracy = r.metricSum / static_cast<double>(r.samples);
  r.loss = r.samples ? r.lossSum / static_cast<double>(r.samples) : std::nan("");
  if (!fit.classify) r.seen = r.samples;
}

Expected<Score> evaluate(Stepper& s, const DataFit& fit, const Dataset& d, int64_t limit, int part, int parts) {
  Score r;
  const int64_t all = limit ? std::min(limit, d.count) : d.count;
  const int64_t begin = all * part / parts, count = all * (part + 1) / parts;
  const int32_t classes = std::max<int32_t>(d.classes, 1);
  r.right.assign(static_cast<size_t>(classes), 0);
  r.total.assign(static_cast<size_t>(classes), 0);
  Batch b;
  std::vector<int64_t> rows(static_cast<size_t>(fit.batch));
  for (int64_t first = begin; first < count; first += fit.batch) {
    // The last batch may be short: padded with copies of its last sample,
    // whose rows are not scored.
    const int64_t real = std::min(fit.batch, count - first);
    for (int64_t k = 0; k < fit.batch; ++k) rows[static_cast<size_t>(k)] = first + std::min(k, real - 1);
    makeBatch(d, rows, 0, fit.batch, b);
    s.feed(b, false);
    NNC_TRY(auto sc, s.infer());
    double loss = sc.loss, metric = sc.metric;
    if (sc.perSample) {
      r.perSample.insert(r.perSample.end(), sc.perSample, sc.perSample + real);
      if (!d.labels.empty())
        r.sampleClass.insert(r.sampleClass.end(), d.labels.begin() + first, d.labels.begin() + first + real);
    }
    if (fit.classify && sc.scores)
      for (int64_t i = 0; i < real; ++i, ++r.seen) {
        const float* row = sc.scores + i * classes;
        const int32_t want = d.labels[static_cast<size_t>(first + i)];
        const bool hit = std::max_element(row, row + classes) - row == want;
        r.right[static_cast<size_t>(want)] += hit;
        r.total[static_cast<size_t>(want)] += 1;
      }
    if (real < fit.batch) {
      // The loss and metric are means over the whole batch, padding included
      // (inference is per sample: batchnorm uses its running statistics).
      // A batch of the padding sample alone gives its share, taken out:
      // mean over the real rows = (batch · mean − pad rows · pad mean) / real.
      // (A summed loss comes out scaled to a whole batch, as the others'.)
      std::fill(rows.begin(), rows.end(), first + real - 1);
      makeBatch(d, rows, 0, fit.batch, b);
      s.feed(b, false);
      NNC_TRY(auto pad, s.infer());
      const auto n = static_cast<double>(fit.batch), extra = static_cast<double>(fit.batch - real);
      loss = (n * sc.loss - extra * pad.loss) / static_cast<double>(real);
      metric = (n * sc.metric - extra * pad.metric) / static_cast<double>(real);
    }
    r.lossSum += loss * static_cast<double>(real);
    r.metricSum += metric * static_cast<double>(real);
    r.samples += real;
  }
  finishScore(r, fit);
  return r;
}

Expected<std::string> perClassReport(Stepper& s, const DataFit& fit, const std::string& output, const Dataset& train,
                                     int64_t trainLimit, const Dataset& test, int64_t testLimit, double quantile,
                                     const std::vector<std::string>& names) {
  NNC_TRY(Score tr, evaluate(s, fit, train, trainLimit));
  NNC_TRY(Score te, evaluate(s, fit, test, testLimit));
  if (tr.perSample.empty() || te.sampleClass.empty()) return std::string();
  std::vector<float> sorted = tr.perSample;
  std::sort(sorted.begin(), sorted.end());
  // The nearest-rank quantile: at least `quantile` of the training samples lie at or below it.
  const auto rank = static_cast<size_t>(std::ceil(quantile * static_cast<double>(sorted.size())));
  const float threshold = sorted[std::min(sorted.size() - 1, rank == 0 ? 0 : rank - 1)];
  const auto classes = static_cast<size_t>(std::max<int32_t>(test.classes, 1));
  std::vector<double> sum(classes, 0);
  std::vector<int64_t> count(classes, 0), flagged(classes, 0);
  for (size_t i = 0; i < te.perSample.size(); ++i) {
    const auto c = static_cast<size_t>(te.sampleClass[i]);
    sum[c] += te.perSample[i];
    count[c] += 1;
    flagged[c] += te.perSample[i] > threshold;
  }
  std::string t = fmt::format(
      "'{}' per class of the test split; flagged: above {:.6g}, the {} quantile of its {} training samples\n", output,
      threshold, quantile, sorted.size());
  t += fmt::format("  {:<20} {:>12} {:>9} {:>9}\n", "class", "mean", "flagged", "samples");
  for (size_t c = 0; c < classes; ++c) {
    if (count[c] == 0) continue;
    const std::string name = c < names.size() && !names[c].empty() ? fmt::format("{} {}", c, names[c]) : std::to_string(c);
    t += fmt::format("  {:<20} {:12.6g} {:8.1f}% {:9}\n", name, sum[c] / static_cast<double>(count[c]),
                     100.0 * static_cast<double>(flagged[c]) / static_cast<double>(count[c]), count[c]);
  }
  return t;
}

}  // namespace nnc::cli
