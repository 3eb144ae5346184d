// Compares two checkpoints of the same run (tests/mpi/run_test.sh): their
// params, optimizer state and logged losses, either bit for bit ("same")
// or within a tolerance ("close RTOL ATOL"). Prints the largest difference.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "io/checkpoint.h"

using namespace nnc;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: compare_runs DIR_A DIR_B same | close RTOL ATOL\n");
    return 2;
  }
  const std::string mode = argv[3];
  const double rtol = mode == "close" && argc > 5 ? std::atof(argv[4]) : 0, atol = mode == "close" && argc > 5 ? std::atof(argv[5]) : 0;
  auto a = readCheckpoint(argv[1]), b = readCheckpoint(argv[2]);
  if (!a || !b) {
    std::fprintf(stderr, "%s\n", (!a ? a.error() : b.error()).message.c_str());
    return 1;
  }
  if (a->model != b->model || a->step != b->step || a->epoch != b->epoch) {
    std::fprintf(stderr, "different runs: %s step %lld, %s step %lld\n", a->model.c_str(), (long long)a->step,
                 b->model.c_str(), (long long)b->step);
    return 1;
  }
  double worst = 0;  // the largest |x − y| / (atol + rtol·|y|)
  double maxAbs = 0;
  auto compare = [&](const char* what, const std::map<std::string, Tensor>& x, const std::map<std::string, Tensor>& y) {
    if (x.size() != y.size()) {
      std::fprintf(stderr, "%s: %zu against %zu values\n", what, x.size(), y.size());
      std::exit(1);
    }
    for (const auto& [name, t] : x) {
      auto it = y.find(name);
      if (it == y.end() || it->second.data.size() != t.data.size()) {
        std::fprintf(stderr, "%s: '%s' missing or of another size\n", what, name.c_str());
        std::exit(1);
      }
      for (size_t i = 0; i < t.data.size(); ++i) {
        const double d = std::fabs(t.data[i] - it->second.data[i]);
        maxAbs = std::max(maxAbs, d);
        if (mode == "same" ? d != 0 : d > atol + rtol * std::fabs(it->second.data[i]))
          worst = std::max(worst, mode == "same" ? 1.0 : d / (atol + rtol * std::fabs(it->second.data[i])));
      }
    }
  };
  compare("params", a->params, b->params);
  const double paramDiff = maxAbs;
  compare("state", a->state, b->state);
  double lossDiff = 0;
  size_t losses = 0;
  for (const MetricRow& r : a->metrics)
    for (const MetricRow& s : b->metrics)
      // Speeds differ run to run; the rows without one are the logged losses
      // and scores (kNoMetric is NaN: not comparable with ==).
      if (r.step == s.step && r.split == s.split && r.epoch == s.epoch && std::isnan(r.samplesPerSec) &&
          std::isnan(s.samplesPerSec) && !std::isnan(r.loss)) {
        ++losses;
        const double d = std::fabs(r.loss - s.loss);
        lossDiff = std::max(lossDiff, d);
        if (mode == "same" ? d != 0 : d > atol + rtol * std::fabs(s.loss)) worst = std::max(worst, 2.0);
        // Accuracies count argmaxes: a near-tie may flip between close runs.
        const bool both = std::isnan(r.accuracy) && std::isnan(s.accuracy);
        if (!both && (mode == "same" ? r.accuracy != s.accuracy : !(std::fabs(r.accuracy - s.accuracy) <= 0.005)))
          worst = std::max(worst, 2.0);
      }
  std::printf("max |param difference| %.3g, max |loss difference| %.3g over %zu logged losses: %s\n", paramDiff,
              lossDiff, losses, worst == 0 ? "ok" : "DIFFERENT");
  return worst == 0 && losses > 0 ? 0 : 1;
}
