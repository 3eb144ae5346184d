// `nnc onnx-test DIR...`: the conformance runner (cli/onnx_conformance.h) as
// a command: a line per test as it ends, then the counts per ONNX op.
#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <ostream>

#include <fmt/ranges.h>

#include "cli/commands.h"
#include "cli/onnx_conformance.h"

namespace nnc::cli {

namespace {

Expected<double> positiveNumber(const Options& o, const std::string& name, double dflt) {
  if (!o.flag(name)) return dflt;
  const std::string s = o.value(name);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || !(v >= 0) || v > 1e9)
    return error("--{} takes a non-negative number, got '{}'", name, s);
  return v;
}

Expected<OnnxTestOptions> testOptions(const Options& o) {
  OnnxTestOptions t;
  t.interpreter = o.flag("interp") || o.flag("verbose");
  t.isolate = !o.flag("no-fork");
  NNC_TRY(t.rtol, positiveNumber(o, "rtol", t.rtol));
  NNC_TRY(t.atol, positiveNumber(o, "atol", t.atol));
  NNC_TRY(t.timeoutSeconds, positiveNumber(o, "timeout", t.timeoutSeconds));
  if (t.timeoutSeconds <= 0) return error("--timeout takes a positive number of seconds");
  NNC_TRY(int64_t jobs, countOption(o, "jobs", 1, true));
  t.jobs = static_cast<int>(std::min<int64_t>(jobs, 64));
  return t;
}

// A message on one line, for the one-line-per-test listing: its lines
// joined (an import error lists a problem per line), a diagnostic's caret
// line left out, at most 300 characters.
std::string oneLine(const std::string& m) {
  std::string s, line;
  for (size_t at = 0; at <= m.size();) {
    const size_t nl = std::min(m.find('\n', at), m.size());
    line = m.substr(at, nl - at);
    at = nl + 1;
    const size_t b = line.find_first_not_of(' ');
    if (b == std::string::npos || line.find_first_not_of("^ ~") == std::string::npos) continue;
    s += (s.empty() ? "" : s.back() == ':' ? " " : "; ") + line.substr(b);
  }
  return s.size() > 300 ? s.substr(0, 297) + "..." : s;
}

}  // namespace

int runOnnxTest(const Options& o, std::ostream& out, std::ostream& err) {
  auto opt = testOptions(o);
  if (!opt) {
    err << "nnc onnx-test: " << opt.error().message << "\n";
    return 1;
  }
  auto dirs = onnxTestDirs(o.files);
  if (!dirs) {
    err << "nnc onnx-test: " << dirs.error().message << "\n";
    return 1;
  }
  const bool verbose = o.flag("verbose");
  const auto results = runOnnxTests(*dirs, *opt, [&](const OnnxTestResult& r) {
    const std::string m = verbose ? r.message : oneLine(r.message);
    out << fmt::format("{:<11} {}{}{}\n", outcomeName(r.outcome), r.name, m.empty() ? "" : ": ", m);
    if (verbose && !r.ops.empty())
      out << fmt::format("            ops: {}; {} data set(s), {:.2f} s\n", fmt::join(r.ops, ", "), r.dataSets, r.seconds);
    out.flush();
  });
  // A test counts once for each distinct op its model has.
  std::map<std::string, std::array<int, 4>> perOp;
  std::array<int, 4> total{};
  for (const OnnxTestResult& r : results) {
    ++total[static_cast<size_t>(r.outcome)];
    for (const std::string& op : r.ops) ++perOp[op][static_cast<size_t>(r.outcome)];
  }
  out << fmt::format("\n{:<32} {:>6} {:>6} {:>11} {:>7}\n", "op", "pass", "fail", "unsupported", "skipped");
  for (const auto& [op, n] : perOp) out << fmt::format("{:<32} {:>6} {:>6} {:>11} {:>7}\n", op, n[0], n[1], n[2], n[3]);
  out << fmt::format("\n{} tests: {} passed, {} failed, {} unsupported, {} skipped\n", results.size(), total[0], total[1],
                     total[2], total[3]);
  if (o.flag("json")) {
    if (auto st = writeOutput(o.value("json"), resultsJson(results, *opt), out); !st) {
      err << "nnc onnx-test: " << st.error().message << "\n";
      return 1;
    }
  }
  return total[1] ? 1 : 0;
}

}  // namespace nnc::cli
