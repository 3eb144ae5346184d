// Training metrics: one row per logged step or epoch, written as CSV or
// JSON Lines so runs can be compared in a spreadsheet or with pandas.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "base/diagnostics.h"

namespace nnc {

inline constexpr double kNoMetric = std::numeric_limits<double>::quiet_NaN();

// A metric that was not measured stays NaN: an empty CSV cell, a JSON null.
// `step` is the global step (updates done so far), so rows logged at the end
// of an epoch land on the same x axis as the per-step rows.
struct MetricRow {
  int64_t epoch = 0;
  int64_t step = 0;
  std::string split = "train";  // "train", "test", or any other name
  double loss = kNoMetric;
  double accuracy = kNoMetric;
  double samplesPerSec = kNoMetric;
};

class MetricsLog {
 public:
  void add(MetricRow row) { rows_.push_back(std::move(row)); }
  const std::vector<MetricRow>& rows() const { return rows_; }
  bool empty() const { return rows_.empty(); }

  // Header `epoch,step,split,loss,accuracy,samples_per_sec`; numbers in
  // their shortest exact form; NaN an empty cell, infinities `inf`/`-inf`.
  std::string toCsv() const;
  // One object per line with the same keys; NaN and infinities are null
  // (JSON has no spelling for them).
  std::string toJsonl() const;

  // Atomic writes (temporary file, then rename), so the file may be
  // rewritten after every epoch and a crash never leaves half a file.
  Status writeCsv(const std::string& path) const;
  Status writeJsonl(const std::string& path) const;
  // Chooses the format from the extension: .csv, or .jsonl / .ndjson.
  Status write(const std::string& path) const;

 private:
  std::vector<MetricRow> rows_;
};

// Whether `path` names a format write() knows; lets the CLI reject a bad
// --metrics argument before training rather than after it.
Status checkMetricsPath(const std::string& path);

}  // namespace nnc
