// nnc eval --weights CKPT (a trained model scored on its test data) and
// nnc predict (its top classes for given samples), both through the JIT's
// inference program.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <ostream>

#include "cli/commands.h"
#include "cli/run_data.h"
#include "cli/run_stepper.h"
#include "io/checkpoint.h"
#include "io/image_decode.h"
#include "io/npy.h"

namespace nnc::cli {
namespace {

// -O0..-O3 and --no-fuse (and --dump-after, dumped to `out`), as nnc run
// compiles with them.
Expected<JitSetup> jitSetupFor(const Options& o, std::ostream& out) {
  JitSetup js;
  NNC_TRY(js.optLevel, optLevelOption(o));
  NNC_TRY(js.passes, passOptions(o, &out));
  return js;
}

Expected<TensorMap> weightsFor(const Options& o, const Graph& g) {
  if (!o.flag("weights")) return error("--weights DIR (a checkpoint from nnc run --save) is required");
  NNC_TRY(TensorMap params, initParams(g, 42));
  NNC_CHECK(overlayWeights(params, o.value("weights"), g));
  return params;
}

// A sample file as samples of the model's input: .npy ([n, ...] or one
// sample; integer arrays but bools scaled by 1/255) or an image (PNG, PGM, PPM), scaled to [0, 1].
Expected<std::vector<float>> readSamples(const std::string& path, const TensorType& xt) {
  const int64_t sample = xt.numel() / xt.shape[0];
  std::vector<float> x;
  auto isNpy = [&] { return path.size() > 4 && path.compare(path.size() - 4, 4, ".npy") == 0; };
  if (isNpy()) {
    NNC_TRY(std::string bytes, readNpyBytes(path));
    NNC_TRY(Tensor t, parseNpy(bytes, path));
    if (t.numel() == 0 || t.numel() % sample != 0)
      return error("'{}' holds {} values, not a whole number of samples of {} ({} values each)", path, t.numel(),
                   shapeString(Shape(xt.shape.begin() + 1, xt.shape.end())), sample);
    // Integer arrays (u8 pixels, as NumPy saves images) are scaled like the
    // training images; bools are 0 and 1 already (True was read as 1/255).
    const std::string descr = npyDescr(bytes);
    const bool isBool = descr.size() == 3 && descr[1] == 'b';
    const double scale = t.type.dtype == DType::I32 && !isBool ? 1.0 / 255 : 1.0;
    NNC_CHECK(requireFinite(t.data, t.type.shape, fmt::format("--input '{}'", path)));
    for (double v : t.data) x.push_back(static_cast<float>(v * scale));
    return x;
  }
  NNC_TRY(Image im, readImage(path));
  int64_t c = 1, h = 0, w = 0;
  if (xt.rank() == 4) {
    c = xt.shape[1], h = xt.shape[2], w = xt.shape[3];
  } else {
    h = w = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(sample))));
    if (xt.rank() != 2 || h * w != sample)
      return error("'{}' is an image, but model input {} is not [batch, C, H, W] or a flattened square image", path,
                   typeString(xt));
  }
  if (c != 1 && c != 3) return error("'{}': model input {} has {} channels; images give 1 or 3", path, typeString(xt), c);
  for (float v : imageToPlanes(im, static_cast<int>(c), h, w)) x.push_back(v / 255.0f);
  return x;
}

}  // namespace

int runEvalData(const Options& o, std::ostream& out, std::ostream& err) {
  // Checked first: 0 would silently mean "every test sample".
  auto limitOpt = countOption(o, "limit", 0, true);
  if (!limitOpt) {
    err << "nnc eval: " << limitOpt.error().message << "\n";
    return 1;
  }
  auto l = loadFor(o, err);
  if (!l) return 1;
  auto fail = reporter(*l, err);
  const Graph& g = l->model.graph;
  if (auto st = applyThreads(o); !st) return fail(st.error());
  auto spec = dataSpecFrom(o, l->model.train);
  if (!spec) return fail(spec.error());
  auto data = loadData(*spec, 42);
  if (!data) return fail(data.error());
  if (!fitModelToText(o, *data, *l, err)) return 1;
  auto params = weightsFor(o, g);
  if (!params) return fail(params.error());
  auto fit = fitData(l->model, *data);
  if (!fit) return fail(fit.error());
  StepGraphs graphs{g, nullptr, fit->scores, kNoValue, fit->batch};
  graphs.metric = fit->metric;
  graphs.perSample = fit->perSample;
  auto js = jitSetupFor(o, out);
  if (!js) return fail(js.error());
  auto s = jitInferStepper(graphs, *params, *js);
  if (!s) return fail(s.error());
  const int64_t limit = *limitOpt;
  auto sc = evaluate(**s, *fit, data->test, limit);
  if (!sc) return fail(sc.error());
  if (sc->seen == 0) return fail(error("the test split ({} samples) makes no batch of {}", data->test.count, fit->batch));
  out << fmt::format("{} with {} on the test split of {}: ", g.name, o.value("weights"), spec->path);
  if (!fit->classify) {
    out << fmt::format("loss {:.6g}{} ({} samples)\n", sc->loss,
                       std::isnan(sc->accuracy) ? "" : fmt::format(", accuracy {:.4f}", sc->accuracy), sc->seen);
    if (fit->perSample != kNoValue && !data->test.labels.empty()) {
      auto report = perClassReport(**s, *fit, g.node(fit->perSample).name, data->train, 0, data->test, limit, 0.99,
                                   classNames(*spec, data->test));
      if (!report) return fail(report.error());
      out << *report;
    }
    return 0;
  }
  out << fmt::format("accuracy {:.4f} ({} samples), loss {:.4f}\n", sc->accuracy, sc->seen, sc->loss);
  const auto names = classNames(*spec, data->test);
  out << "  class                 accuracy   samples\n";
  for (size_t c = 0; c < sc->total.size(); ++c) {
    if (sc->total[c] == 0) continue;
    const std::string name = c < names.size() ? fmt::format("{} {}", c, names[c]) : std::to_string(c);
    out << fmt::format("  {:<20} {:9.4f} {:9}\n", name,
                       static_cast<double>(sc->right[c]) / static_cast<double>(sc->total[c]), sc->total[c]);
  }
  return 0;
}

int runPredict(const Options& o, std::ostream& out, std::ostream& err) {
  auto l = loadFor(o, err);
  if (!l) return 1;
  auto fail = reporter(*l, err);
  const Graph& g = l->model.graph;
  if (g.inputs.size() != 1) return fail(error("nnc predict needs a model with one input; '{}' has {}", g.name, g.inputs.size()));
  if (!o.flag("input")) return fail(error("--input F (.npy, .png, .pgm or .ppm) is required"));
  const TensorType xt = g.type(g.inputs[0]);
  const int64_t batch = l->model.batch;
  if (batch == 0 || l->model.scores.empty())
    return fail(error("model '{}' has no [batch, classes] output to rank classes by", g.name));
  const ValueId scores = l->model.scores[0];
  if (const int axis = l->model.batchAxis.at(g.inputs[0]); axis > 0)
    return fail(error("nnc predict feeds samples along the first axis, but input '{}' of model '{}' is {} with batch at axis {}",
                      g.node(g.inputs[0]).name, g.name, typeString(xt), axis));
  auto top = o.flag("top") ? std::atoll(o.value("top").c_str()) : 3;
  if (top < 1) return fail(error("--top takes a positive integer, got '{}'", o.value("top")));
  auto params = weightsFor(o, g);
  if (!params) return fail(params.error());
  std::vector<float> x;
  for (const std::string& f : o.all("input")) {
    auto s = readSamples(f, xt);
    if (!s) return fail(s.error());
    x.insert(x.end(), s->begin(), s->end());
  }
  const int64_t sample = xt.numel() / batch, n = static_cast<int64_t>(x.size()) / sample;
  const int64_t classes = g.type(scores).shape[1];
  const bool probs = g.node(scores).op->is(OpId::Softmax);
  StepGraphs graphs{g, nullptr, scores, kNoValue, batch};
  graphs.inferLoss = false;
  auto js = jitSetupFor(o, out);
  if (!js) return fail(js.error());
  auto s = jitInferStepper(graphs, *params, *js);
  if (!s) return fail(s.error());
  auto spec = dataSpecFrom(o, l->model.train);
  const auto names = spec ? classNames(*spec, Dataset{}) : std::vector<std::string>{};
  Batch b;
  b.y.assign(static_cast<size_t>(batch * std::max<int64_t>(1, g.labels.empty() ? 1 : g.type(g.labels[0]).numel() / batch)), 0.0f);
  for (int64_t first = 0; first < n; first += batch) {
    b.x.assign(static_cast<size_t>(batch * sample), 0.0f);  // the last batch padded with zeros
    const int64_t count = std::min(batch, n - first);
    std::copy_n(x.data() + first * sample, count * sample, b.x.data());
    (*s)->feed(b, false);
    auto r = (*s)->infer();
    if (!r) return fail(r.error());
    for (int64_t i = 0; i < count; ++i) {
      const float* row = r->scores + i * classes;
      std::vector<double> p(row, row + classes);
      if (!probs) {  // softmax of the scores
        const double m = *std::max_element(p.begin(), p.end());
        double sum = 0;
        for (double& v : p) sum += (v = std::exp(v - m));
        for (double& v : p) v /= sum;
      }
      std::vector<int64_t> order(static_cast<size_t>(classes));
      for (int64_t c = 0; c < classes; ++c) order[static_cast<size_t>(c)] = c;
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t c) { return p[static_cast<size_t>(a)] > p[static_cast<size_t>(c)]; });
      std::string line = fmt::format("sample {}:", first + i);
      for (int64_t k = 0; k < std::min<int64_t>(top, classes); ++k) {
        const auto c = static_cast<size_t>(order[static_cast<size_t>(k)]);
        line += fmt::format("{} {}{} {:.4f}", k ? "," : "", c, c < names.size() ? " (" + names[c] + ")" : "", p[c]);
      }
      out << line << "\n";
    }
  }
  return 0;
}

}  // namespace nnc::cli
