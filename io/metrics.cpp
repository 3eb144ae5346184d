#include "io/metrics.h"

#include <cmath>

#include "io/file_io.h"
#include "io/json.h"
#include "io/npy.h"

namespace nnc {
namespace {

bool endsWith(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// fmt's "{}" gives the shortest text that reads back to the same double.
std::string csvNumber(double v) {
  if (std::isnan(v)) return "";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{}", v);
}

std::string jsonNumber(double v) { return std::isfinite(v) ? fmt::format("{}", v) : "null"; }

std::string csvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

enum class Format { Csv, Jsonl, Unknown };

Format formatOf(const std::string& path) {
  std::string p = lower(path);
  if (endsWith(p, ".csv")) return Format::Csv;
  if (endsWith(p, ".jsonl") || endsWith(p, ".ndjson")) return Format::Jsonl;
  return Format::Unknown;
}

}  // namespace

std::string MetricsLog::toCsv() const {
  std::string out = "epoch,step,split,loss,accuracy,samples_per_sec\n";
  for (const MetricRow& r : rows_)
    out += fmt::format("{},{},{},{},{},{}\n", r.epoch, r.step, csvField(r.split), csvNumber(r.loss),
                       csvNumber(r.accuracy), csvNumber(r.samplesPerSec));
  return out;
}

std::string MetricsLog::toJsonl() const {
  std::string out;
  for (const MetricRow& r : rows_)
    out += fmt::format("{{\"epoch\":{},\"step\":{},\"split\":{},\"loss\":{},\"accuracy\":{},\"samples_per_sec\":{}}}\n",
                       r.epoch, r.step, jsonQuote(r.split), jsonNumber(r.loss), jsonNumber(r.accuracy),
                       jsonNumber(r.samplesPerSec));
  return out;
}

Status MetricsLog::writeCsv(const std::string& path) const { return writeFileAtomic(path, toCsv()); }
Status MetricsLog::writeJsonl(const std::string& path) const { return writeFileAtomic(path, toJsonl()); }

Status checkMetricsPath(const std::string& path) {
  if (formatOf(path) == Format::Unknown)
    return error("cannot write metrics to '{}': the name must end in .csv or .jsonl", path);
  return ok();
}

Status MetricsLog::write(const std::string& path) const {
  switch (formatOf(path)) {
    case Format::Csv: return writeCsv(path);
    case Format::Jsonl: return writeJsonl(path);
    case Format::Unknown: break;
  }
  return checkMetricsPath(path);
}

}  // namespace nnc
