#include "compiler/elaborate/train_settings.h"

#include <cmath>
#include <numbers>

namespace nnc {

namespace {

struct NumArg {
  std::string_view name;
  double* value;
};

std::string argList(const std::vector<NumArg>& known) {
  std::string s;
  for (const auto& a : known) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s.empty() ? "none" : s;
}

// Reads a call's named number arguments; `positional`: the name the one
// positional argument stands for (the optimizers' `sgd(0.1)` is lr), if any.
Status readArgs(const TrainValue& v, const std::string& what, const std::vector<NumArg>& known,
                std::string_view positional) {
  if (v.positional.size() > (positional.empty() ? 0u : 1u))
    return error(v.loc, "{} '{}' takes named arguments ({})", what, v.kind, argList(known));
  auto set = [&](std::string_view name, const TrainValue& a) -> Status {
    for (const auto& k : known)
      if (k.name == name) {
        if (a.kind != "int" && a.kind != "float")
          return error(a.loc, "{} '{}': {} takes a number", what, v.kind, name);
        *k.value = a.number;
        return ok();
      }
    return error(a.loc, "{} '{}' has no argument '{}' (its arguments: {})", what, v.kind, name, argList(known));
  };
  if (!v.positional.empty()) NNC_CHECK(set(positional, v.positional[0]));
  for (const auto& [name, a] : v.args) NNC_CHECK(set(name, a));
  return ok();
}

Status inUnit(const TrainValue& v, const char* name, double x) {
  if (x >= 0 && x < 1) return ok();
  return error(v.loc, "{}'s {} must be in [0, 1), got {}", v.kind, name, x);
}

}  // namespace

double ScheduleSpec::lrAt(double baseLr, int64_t step) const {
  if (step < warmup) return baseLr * static_cast<double>(step) / static_cast<double>(warmup);
  const int64_t s = step - warmup;
  if (kind == "step" || kind == "exponential") return baseLr * std::pow(gamma, static_cast<double>(s / every));
  if (kind == "cosine") {
    const int64_t span = total - warmup;  // scheduleFrom checks total > warmup
    const double f = static_cast<double>(std::min(s, span)) / static_cast<double>(span);
    return minLr + (baseLr - minLr) * 0.5 * (1 + std::cos(std::numbers::pi * f));
  }
  return baseLr;
}

Expected<OptimizerSpec> optimizerFrom(const std::optional<TrainConfig>& train) {
  OptimizerSpec o;
  if (!train) return o;
  auto it = train->settings.find("optimizer");
  if (it == train->settings.end()) return o;
  const TrainValue& v = it->second;
  o.kind = v.kind;
  std::vector<NumArg> known = {{"lr", &o.lr}};
  if (v.kind == "sgd") {
  } else if (v.kind == "momentum" || v.kind == "nesterov") {
    known.push_back({"momentum", &o.momentum});
  } else if (v.kind == "adagrad") {
    known.push_back({"eps", &o.eps});
  } else if (v.kind == "rmsprop") {
    known.push_back({"decay_rate", &o.decayRate});
    known.push_back({"eps", &o.eps});
  } else if (v.kind == "adam" || v.kind == "adamw") {
    o.lr = 0.001;
    o.eps = 1e-8;
    known.push_back({"beta1", &o.beta1});
    known.push_back({"beta2", &o.beta2});
    known.push_back({"eps", &o.eps});
    if (v.kind == "adamw") known.push_back({"weight_decay", &o.weightDecay});
  } else {
    return error(v.loc, "unknown optimizer '{}' (known: sgd, momentum, nesterov, adagrad, rmsprop, adam, adamw)",
                 v.kind);
  }
  NNC_CHECK(readArgs(v, "optimizer", known, "lr"));
  if (!(o.lr > 0)) return error(v.loc, "the learning rate must be positive, got {}", o.lr);
  if (!(o.eps > 0)) return error(v.loc, "{}'s eps must be positive, got {}", v.kind, o.eps);
  NNC_CHECK(inUnit(v, "momentum", o.momentum));
  NNC_CHECK(inUnit(v, "decay_rate", o.decayRate));
  NNC_CHECK(inUnit(v, "beta1", o.beta1));
  NNC_CHECK(inUnit(v, "beta2", o.beta2));
  if (!(o.weightDecay >= 0) || !std::isfinite(o.weightDecay))
    return error(v.loc, "adamw's weight_decay must be a non-negative number, got {}", o.weightDecay);
  return o;
}

namespace {

// `what`: the call as written, "step(every = N)", whose N must be >= 1.
Expected<int64_t> wholeSteps(const TrainValue& v, double n, std::string_view what) {
  if (!(n >= 1) || n != std::floor(n) || n > 1e15)
    return error(v.loc, "{} takes a whole number of steps {} >= 1", what, what.substr(what.size() - 2, 1));
  return static_cast<int64_t>(n);
}

// `warmup = W`: a whole number of steps, 0 for none.
Expected<int64_t> warmupFrom(const TrainConfig& train) {
  auto it = train.settings.find("warmup");
  if (it == train.settings.end()) return int64_t{0};
  const TrainValue& v = it->second;
  if (v.kind != "int" || v.number < 0 || v.number > 1e15)
    return v.kind == "string" ? error(v.loc, "warmup is a whole number of steps (0: none), got \"{}\"", v.text)
                              : error(v.loc, "warmup is a whole number of steps (0: none), got {}", v.number);
  return static_cast<int64_t>(v.number);
}

}  // namespace

Expected<ScheduleSpec> scheduleFrom(const std::optional<TrainConfig>& train) {
  ScheduleSpec s;
  if (!train) return s;
  NNC_TRY(s.warmup, warmupFrom(*train));
  auto it = train->settings.find("schedule");
  if (it == train->settings.end()) return s;
  const TrainValue& v = it->second;
  s.kind = v.kind;
  double every = 1, total = 0;
  if (v.kind == "constant") {
    NNC_CHECK(readArgs(v, "schedule", {}, ""));
  } else if (v.kind == "step" || v.kind == "exponential") {
    // step's every is required and its gamma 0.1; exponential's every is 1 and its gamma required.
    const bool step = v.kind == "step";
    if (step) every = 0;
    NNC_CHECK(readArgs(v, "schedule", {{"every", &every}, {"gamma", &s.gamma}}, step ? "" : "gamma"));
    NNC_TRY(s.every, wholeSteps(v, every, step ? "step(every = N)" : "exponential(every = N)"));
    if (!step && !v.args.count("gamma") && v.positional.empty()) return error(v.loc, "exponential(gamma = g) needs gamma, the factor per `every` steps");
    if (!(s.gamma > 0) || !std::isfinite(s.gamma))
      return error(v.loc, "{}'s gamma must be positive, got {}", v.kind, s.gamma);
  } else if (v.kind == "cosine") {
    NNC_CHECK(readArgs(v, "schedule", {{"total", &total}, {"min_lr", &s.minLr}}, ""));
    NNC_TRY(s.total, wholeSteps(v, total, "cosine(total = T)"));
    if (!(s.minLr >= 0) || !std::isfinite(s.minLr))
      return error(v.loc, "cosine's min_lr must be a non-negative number, got {}", s.minLr);
    if (s.total <= s.warmup)
      return error(v.loc, "cosine(total = {}) counts the warmup's {} steps too: total must exceed warmup", s.total,
                   s.warmup);
  } else {
    return error(v.loc,
                 "unknown schedule '{}' (known: constant(), step(every, gamma), exponential(gamma, every), "
                 "cosine(total, min_lr))",
                 v.kind);
  }
  return s;
}

Expected<double> clipGradNormFrom(const std::optional<TrainConfig>& train) {
  if (!train) return 0.0;
  auto it = train->settings.find("clip_grad_norm");
  if (it == train->settings.end()) return 0.0;
  const TrainValue& v = it->second;
  if ((v.kind != "int" && v.kind != "float") || !(v.number > 0) || !std::isfinite(v.number))
    return error(v.loc, "clip_grad_norm is the largest gradient norm, a positive number");
  return v.number;
}

Expected<std::optional<RegularizeSpec>> regularizeFrom(const std::optional<TrainConfig>& train) {
  if (!train) return std::optional<RegularizeSpec>{};
  auto it = train->settings.find("regularize");
  if (it == train->settings.end()) return std::optional<RegularizeSpec>{};
  const TrainValue& r = it->second;
  if (r.kind != "l1" && r.kind != "l2")
    return error(r.loc, "regularize is l1(lambda) or l2(lambda), not '{}'", r.kind == "string" ? r.text : r.kind);
  RegularizeSpec s{r.kind, 0, r.loc};
  NNC_CHECK(readArgs(r, "regularize", {{"lambda", &s.lambda}}, "lambda"));
  if (r.positional.empty() && !r.args.count("lambda")) return error(r.loc, "regularize takes l1(lambda) or l2(lambda)");
  if (!(s.lambda >= 0) || !std::isfinite(s.lambda))
    return error(r.loc, "{}'s lambda must be a non-negative number, got {}", r.kind, s.lambda);
  return std::optional<RegularizeSpec>{s};
}

Expected<AugmentSpec> augmentFrom(const std::string& text, SourceLoc loc) {
  AugmentSpec a;
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
      return error(loc, "augment '{}': expected shift=K (pixels), hflip or binarize[=THRESHOLD], separated by commas",
                   item);
    }
    at = end + 1;
  }
  return a;
}

Expected<RunSettings> runSettingsFrom(const std::optional<TrainConfig>& train) {
  RunSettings r;
  if (!train) return r;
  for (const auto& [key, v] : train->settings) {
    if (key == "epochs" || key == "iterations" || key == "limit") {
      // 0 would silently mean "all" (or, for epochs, train nothing).
      if (v.kind != "int" || v.number < 1)
        return error(v.loc, "{} is a positive whole number (leave it out for the default)", key);
      (key == "epochs" ? r.epochs : key == "iterations" ? r.iterations : r.limit) = static_cast<int64_t>(v.number);
    }
    if (key == "seed") r.seed = static_cast<uint64_t>(v.number);
    if (key == "log_every") r.logEvery = static_cast<int64_t>(v.number);
    if (key == "shuffle") r.shuffle = v.number != 0;
    if (key == "eval_train") r.evalTrain = v.number != 0;
    if (key == "flag_quantile") {
      if ((v.kind != "float" && v.kind != "int") || !(v.number > 0 && v.number <= 1))
        return error(v.loc, "flag_quantile is the share of training samples not flagged, in (0, 1]");
      r.flagQuantile = v.number;
    }
    if (key == "validation") {
      if ((v.kind != "float" && v.kind != "int") || !(v.number >= 0 && v.number < 1))
        return error(v.loc, "validation is the fraction of training samples held out, in [0, 1)");
      r.validation = v.number;
    }
    if (key == "augment") {
      if (v.kind != "string") return error(v.loc, "augment is a string such as \"shift=2,hflip\"");
      NNC_CHECK(augmentFrom(v.text, v.loc));
      r.augment = v.text;
    }
  }
  return r;
}

Status checkTrainSettings(const TrainConfig& train) {
  const std::optional<TrainConfig> t = train;
  NNC_CHECK(optimizerFrom(t));
  NNC_CHECK(scheduleFrom(t));
  NNC_CHECK(clipGradNormFrom(t));
  NNC_CHECK(regularizeFrom(t));
  NNC_CHECK(runSettingsFrom(t));
  return ok();
}

}  // namespace nnc
