// nnc sample: text from a language model trained on text(...) data. The
// model is compiled for inference at batch 1 and taken to be causal (the
// logits at position i depend on positions <= i only: an LSTM, a masked
// transformer, a bigram table), so the text so far fills positions 0..L-1
// of the window (the rest id 0) and the logits at L-1 give the next unit;
// past the context the window slides.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <ostream>

#include "cli/commands.h"
#include "cli/run_data.h"
#include "cli/run_stepper.h"
#include "io/checkpoint.h"
#include "io/text_dataset.h"
#include "runtime/rng.h"

namespace nnc::cli {
namespace {

struct SampleArgs {
  int64_t tokens = 200, topK = 0;  // topK 0: every unit
  double temperature = 1;
  uint64_t seed = 42;
  std::string prompt;
};

Expected<SampleArgs> sampleArgs(const Options& o) {
  SampleArgs a;
  NNC_TRY(a.tokens, countOption(o, "tokens", a.tokens, false));
  NNC_TRY(a.topK, countOption(o, "top-k", 0, false));
  NNC_TRY(a.seed, seedOption(o));
  if (o.flag("temperature")) {
    const std::string t = o.value("temperature");
    char* end = nullptr;
    a.temperature = std::strtod(t.c_str(), &end);
    if (t.empty() || *end != '\0' || !(a.temperature >= 0) || !std::isfinite(a.temperature))
      return error("--temperature takes a number >= 0 (0: always the most likely unit), got '{}'", t);
  }
  a.prompt = o.value("prompt");
  return a;
}

// The checkpoint's vocabulary: nnc run --save writes it for text data.
Expected<Vocab> vocabOf(const std::string& weights) {
  if (weights.empty()) return error("--weights DIR (a checkpoint of a model trained on text(...) data) is required");
  NNC_TRY(Checkpoint c, readCheckpoint(weights));
  if (c.vocab.empty())
    return error("checkpoint '{}' has no vocabulary (vocab.json): nnc sample needs a model trained on text(...) data",
                 weights);
  return parseVocabJson(c.vocab, weights + "/vocab.json");
}

// The model at batch 1 with the vocabulary's size and the train block's
// context for its `vocab` and `context` parameters, as nnc run set them.
std::optional<Loaded> loadAtBatch1(const Options& o, const Vocab& v, std::ostream& err) {
  auto first = loadFor(o, err);
  if (!first) return std::nullopt;
  auto eo = elaborateOptions(o);
  auto spec = dataSpecFrom(o, first->model.train);
  if (!eo || !spec) {
    err << first->sm->render(eo ? spec.error() : eo.error());
    return std::nullopt;
  }
  eo->defaults = {{"batch", 1}, {"vocab", static_cast<int64_t>(v.units.size())}};
  if (spec->kind == "text") eo->defaults["context"] = spec->context;
  return load(o.file, *eo, err);
}

// The output to sample from: `logits` or `probs`, f32[1, context, V >= vocab].
Expected<ValueId> scoresOutput(const Graph& g, const Vocab& v, int64_t context, bool& probs) {
  for (const char* name : {"logits", "probs"})
    for (const auto& [n, id] : g.outputs) {
      if (n != name) continue;
      const TensorType t = g.type(id);
      if (t.rank() != 3 || t.shape[0] != 1 || t.shape[1] != context ||
          t.shape[2] < static_cast<int64_t>(v.units.size()))
        return error(g.node(id).loc, "output '{}' is {}, but nnc sample reads f32[1, {}, V] with V >= {} (the vocabulary)",
                     n, typeString(t), context, v.units.size());
      probs = n == std::string("probs");
      return id;
    }
  return error("model '{}' has no output named 'logits' or 'probs' (f32[1, context, vocab]) to sample from", g.name);
}

// The next unit from one position's scores (the first `vocab` of them):
// greedy at temperature 0, else drawn from softmax(z / T) (probs^(1/T)),
// cut to the K most likely.
int32_t pick(const float* z, size_t vocab, bool probs, const SampleArgs& a, Rng& rng) {
  std::vector<size_t> order(vocab);
  std::iota(order.begin(), order.end(), size_t{0});
  // Most likely first, ties to the lower id, so the text is the same everywhere.
  std::stable_sort(order.begin(), order.end(), [&](size_t i, size_t j) { return z[i] > z[j]; });
  if (a.temperature == 0) return static_cast<int32_t>(order[0]);
  const size_t keep = a.topK ? std::min(vocab, static_cast<size_t>(a.topK)) : vocab;
  std::vector<double> w(keep);
  for (size_t k = 0; k < keep; ++k) {
    const double s = z[order[k]];
    w[k] = probs ? std::pow(std::max(s, 0.0), 1 / a.temperature) : std::exp((s - z[order[0]]) / a.temperature);
  }
  const double total = std::accumulate(w.begin(), w.end(), 0.0);
  if (!(total > 0)) return static_cast<int32_t>(order[0]);
  double u = rng.uniform() * total;
  for (size_t k = 0; k < keep; ++k) {
    if (u < w[k]) return static_cast<int32_t>(order[k]);
    u -= w[k];
  }
  return static_cast<int32_t>(order[keep - 1]);
}

}  // namespace

int runSample(const Options& o, std::ostream& out, std::ostream& err) {
  auto args = sampleArgs(o);
  auto vocab = args ? vocabOf(o.value("weights")) : Expected<Vocab>(args.error());
  if (!vocab) {
    err << "nnc sample: " << vocab.error().message << "\n";
    return 1;
  }
  auto l = loadAtBatch1(o, *vocab, err);
  if (!l) return 1;
  auto fail = reporter(*l, err);
  const Graph& g = l->model.graph;
  if (g.inputs.size() != 1 || g.type(g.inputs[0]).dtype != DType::I32 || g.type(g.inputs[0]).rank() != 2 ||
      g.type(g.inputs[0]).shape[0] != 1)
    return fail(error("nnc sample feeds one input of token ids, i32[1, context] at batch 1; model '{}' takes {}", g.name,
                      g.inputs.empty() ? "none" : typeString(g.type(g.inputs[0]))));
  const int64_t context = g.type(g.inputs[0]).shape[1];
  bool probs = false;
  auto scores = scoresOutput(g, *vocab, context, probs);
  if (!scores) return fail(scores.error());
  if (auto st = applyThreads(o); !st) return fail(st.error());
  auto params = initParams(g, 42);
  if (!params) return fail(params.error());
  if (auto st = overlayWeights(*params, o.value("weights"), g); !st) return fail(st.error());
  // Without a prompt the text starts as if after a line break (fortunes,
  // like most texts, start entries on a new line), or after id 0.
  auto ids = encodeText(*vocab, args->prompt.empty() ? std::string_view("\n") : std::string_view(args->prompt));
  if (args->prompt.empty()) ids = std::vector<int32_t>{ids ? (*ids)[0] : 0};
  if (!ids) return fail(ids.error());
  StepGraphs graphs{g, nullptr, *scores, kNoValue, 1};
  graphs.inferLoss = false;
  JitSetup js;
  auto opt = optLevelOption(o);
  auto passes = opt ? passOptions(o, &out) : Expected<PassOptions>(opt.error());
  if (!passes) return fail(passes.error());
  js.optLevel = *opt, js.passes = *passes;
  auto stepper = jitInferStepper(graphs, *params, js);
  if (!stepper) return fail(stepper.error());
  Rng rng(args->seed);
  std::vector<int32_t> text = *ids;
  Batch b;
  b.x.assign(static_cast<size_t>(context), 0.0f);
  b.y.assign(static_cast<size_t>(context), 0.0f);
  const int64_t V = g.type(*scores).shape[2];
  for (int64_t n = 0; n < args->tokens; ++n) {
    const int64_t len = std::min<int64_t>(static_cast<int64_t>(text.size()), context);
    std::fill(b.x.begin(), b.x.end(), 0.0f);
    for (int64_t i = 0; i < len; ++i)
      b.x[static_cast<size_t>(i)] = static_cast<float>(text[text.size() - static_cast<size_t>(len - i)]);
    (*stepper)->feed(b, false);
    auto r = (*stepper)->infer();
    if (!r) return fail(r.error());
    text.push_back(pick(r->scores + (len - 1) * V, vocab->units.size(), probs, *args, rng));
  }
  // The prompt as given (an empty one's start unit is not printed), then what was generated.
  out << args->prompt << decodeIds(*vocab, std::vector<int32_t>(text.begin() + static_cast<std::ptrdiff_t>(ids->size()), text.end()))
      << "\n";
  return 0;
}

}  // namespace nnc::cli
