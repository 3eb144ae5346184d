// Metrics log (CSV, JSONL) and SVG plots: exact text for the log formats,
// tick choice on awkward ranges, and a structural check that the SVG is
// well-formed XML carrying the labels and data it should.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "io/file_io.h"
#include "io/metrics.h"
#include "io/npy.h"
#include "io/plot.h"

using namespace nnc;
namespace fs = std::filesystem;

namespace {

const double kNaN = std::nan("");

MetricsLog smallLog() {
  MetricsLog log;
  log.add({1, 1, "train", 2.25, kNaN, kNaN});
  log.add({1, 2, "train", 1.5, kNaN, kNaN});
  log.add({1, 2, "test", 1.75, 0.8125, 1234.5});
  log.add({2, 3, "train", kNaN, kNaN, kNaN});
  log.add({2, 4, "train", 0.1, 0.5, INFINITY});
  log.add({2, 4, "test", 1.0, 0.9, kNaN});
  return log;
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("nnc_metrics_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

// A small XML well-formedness checker: one root, tags balanced and
// properly nested, attributes quoted and not repeated, no raw '<' or
// stray '&' in text or attribute values. Returns "" or what is wrong.
std::string xmlProblem(const std::string& s) {
  std::vector<std::string> stack;
  size_t i = 0, roots = 0;
  auto entityOk = [&](size_t at) {
    size_t semi = s.find(';', at);
    if (semi == std::string::npos || semi - at > 8) return false;
    std::string e = s.substr(at + 1, semi - at - 1);
    return e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos" || (e.size() > 1 && e[0] == '#');
  };
  auto isName = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.'; };
  while (i < s.size()) {
    if (s[i] == '&') {
      if (!entityOk(i)) return "bad entity at " + std::to_string(i);
      ++i;
      continue;
    }
    if (s[i] != '<') {
      if (stack.empty() && !std::isspace(static_cast<unsigned char>(s[i]))) return "text outside the root";
      ++i;
      continue;
    }
    if (s.compare(i, 5, "<?xml") == 0) {
      if (i != 0) return "XML declaration not first";
      size_t end = s.find("?>", i);
      if (end == std::string::npos) return "unterminated declaration";
      i = end + 2;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      size_t end = s.find("-->", i);
      if (end == std::string::npos) return "unterminated comment";
      i = end + 3;
      continue;
    }
    bool closing = s[i + 1] == '/';
    size_t j = i + (closing ? 2 : 1);
    size_t nameStart = j;
    while (j < s.size() && isName(s[j])) ++j;
    std::string name = s.substr(nameStart, j - nameStart);
    if (name.empty()) return "empty tag name at " + std::to_string(i);
    if (closing) {
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size() || s[j] != '>') return "bad closing tag " + name;
      if (stack.empty() || stack.back() != name) return "mismatched </" + name + ">";
      stack.pop_back();
      i = j + 1;
      continue;
    }
    std::vector<std::string> attrs;
    bool selfClosing = false;
    for (;;) {
      while (j < s.size() && std::isspace(static_cast<unsigned char>(s[j]))) ++j;
      if (j >= s.size()) return "unterminated tag " + name;
      if (s[j] == '>') { ++j; break; }
      if (s.compare(j, 2, "/>") == 0) { selfClosing = true; j += 2; break; }
      size_t a = j;
      while (j < s.size() && isName(s[j])) ++j;
      std::string attr = s.substr(a, j - a);
      if (attr.empty() || j >= s.size() || s[j] != '=') return "bad attribute in <" + name + ">";
      if (std::find(attrs.begin(), attrs.end(), attr) != attrs.end()) return "repeated attribute " + attr;
      attrs.push_back(attr);
      ++j;
      if (j >= s.size() || (s[j] != '"' && s[j] != '\'')) return "unquoted attribute " + attr;
      char q = s[j++];
      for (; j < s.size() && s[j] != q; ++j) {
        if (s[j] == '<') return "'<' in attribute " + attr;
        if (s[j] == '&' && !entityOk(j)) return "bad entity in attribute " + attr;
      }
      if (j >= s.size()) return "unterminated attribute " + attr;
      ++j;
    }
    if (stack.empty() && ++roots > 1) return "more than one root";
    if (!selfClosing) stack.push_back(name);
    i = j;
  }
  if (!stack.empty()) return "unclosed <" + stack.back() + ">";
  if (roots != 1) return "no root element";
  return "";
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

std::vector<double> tickValues(double lo, double hi, int target = 5, bool integer = false) {
  return niceTicks(lo, hi, target, integer).values;
}

}  // namespace

TEST_CASE("metrics CSV has one row per entry and empty cells for NaN", "[metrics]") {
  CHECK(smallLog().toCsv() ==
        "epoch,step,split,loss,accuracy,samples_per_sec\n"
        "1,1,train,2.25,,\n"
        "1,2,train,1.5,,\n"
        "1,2,test,1.75,0.8125,1234.5\n"
        "2,3,train,,,\n"
        "2,4,train,0.1,0.5,inf\n"
        "2,4,test,1,0.9,\n");
  MetricsLog odd;
  odd.add({0, 0, "a,\"b\"", 1e-7, kNaN, kNaN});
  CHECK(odd.toCsv() == "epoch,step,split,loss,accuracy,samples_per_sec\n0,0,\"a,\"\"b\"\"\",1e-07,,\n");
  CHECK(MetricsLog().toCsv() == "epoch,step,split,loss,accuracy,samples_per_sec\n");
}

TEST_CASE("metrics JSONL has one object per line and null for NaN", "[metrics]") {
  CHECK(smallLog().toJsonl() ==
        "{\"epoch\":1,\"step\":1,\"split\":\"train\",\"loss\":2.25,\"accuracy\":null,\"samples_per_sec\":null}\n"
        "{\"epoch\":1,\"step\":2,\"split\":\"train\",\"loss\":1.5,\"accuracy\":null,\"samples_per_sec\":null}\n"
        "{\"epoch\":1,\"step\":2,\"split\":\"test\",\"loss\":1.75,\"accuracy\":0.8125,\"samples_per_sec\":1234.5}\n"
        "{\"epoch\":2,\"step\":3,\"split\":\"train\",\"loss\":null,\"accuracy\":null,\"samples_per_sec\":null}\n"
        "{\"epoch\":2,\"step\":4,\"split\":\"train\",\"loss\":0.1,\"accuracy\":0.5,\"samples_per_sec\":null}\n"
        "{\"epoch\":2,\"step\":4,\"split\":\"test\",\"loss\":1,\"accuracy\":0.9,\"samples_per_sec\":null}\n");
  MetricsLog odd;
  odd.add({0, 0, "q\"\\\n", -INFINITY, kNaN, kNaN});
  CHECK(odd.toJsonl() ==
        "{\"epoch\":0,\"step\":0,\"split\":\"q\\\"\\\\\\n\",\"loss\":null,\"accuracy\":null,\"samples_per_sec\":null}\n");
}

TEST_CASE("metrics files are written by extension, others and missing folders are errors in words", "[metrics]") {
  TempDir dir;
  MetricsLog log = smallLog();
  std::string csv = (dir.path / "m.csv").string(), jsonl = (dir.path / "m.jsonl").string();
  REQUIRE(log.write(csv).ok());
  REQUIRE(log.write(jsonl).ok());
  CHECK(*readFile(csv) == log.toCsv());
  CHECK(*readFile(jsonl) == log.toJsonl());
  CHECK(log.write((dir.path / "M.CSV").string()).ok());

  auto bad = log.write((dir.path / "m.txt").string());
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.error().message, Catch::Contains("m.txt") && Catch::Contains(".csv or .jsonl"));
  CHECK_FALSE(checkMetricsPath("m.json").ok());
  CHECK(checkMetricsPath("run/m.ndjson").ok());

  auto missing = log.write((dir.path / "no" / "such" / "m.csv").string());
  REQUIRE_FALSE(missing.ok());
  CHECK_THAT(missing.error().message, Catch::Contains("no/such/m.csv") && Catch::Contains("No such file"));

  auto plot = writePlot((dir.path / "no" / "p.svg").string(), log);
  REQUIRE_FALSE(plot.ok());
  CHECK_THAT(plot.error().message, Catch::Contains("no/p.svg") && Catch::Contains("No such file"));
  auto png = writePlot((dir.path / "p.png").string(), log);
  REQUIRE_FALSE(png.ok());
  CHECK_THAT(png.error().message, Catch::Contains("must end in .svg"));
  REQUIRE(writePlot((dir.path / "p.svg").string(), log).ok());
  CHECK(*readFile((dir.path / "p.svg").string()) == renderSvg(metricsPanels(log)));
}

TEST_CASE("ticks are round numbers enclosing the data", "[metrics]") {
  using V = std::vector<double>;
  CHECK(tickValues(0, 2.3) == V{0, 0.5, 1, 1.5, 2, 2.5});
  CHECK(niceTicks(0, 2.3).decimals == 1);
  CHECK(tickValues(0.81, 0.87) == V{0.8, 0.82, 0.84, 0.86, 0.88});
  CHECK(niceTicks(0.81, 0.87).decimals == 2);
  CHECK(tickValues(0, 1) == V{0, 0.2, 0.4, 0.6, 0.8, 1});
  CHECK(tickValues(1, 937, 5, true) == V{0, 200, 400, 600, 800, 1000});
  CHECK(tickValues(-3, 7) == V{-4, -2, 0, 2, 4, 6, 8});
  CHECK(tickValues(0.0012, 0.0047) == V{0.001, 0.002, 0.003, 0.004, 0.005});
  // Data exactly on a tick must not grow an extra one from rounding.
  CHECK(tickValues(0.1, 0.3) == V{0.1, 0.15, 0.2, 0.25, 0.3});
  CHECK(tickValues(0.3, 0.1) == V{0.1, 0.15, 0.2, 0.25, 0.3});
  // Epochs 1..3: whole numbers only.
  CHECK(tickValues(1, 3, 5, true) == V{1, 2, 3});
  CHECK(tickValues(1, 3, 5, false) == V{1, 1.5, 2, 2.5, 3});

  SECTION("a constant series or single point is padded into a span") {
    Ticks t = niceTicks(0.5, 0.5);
    CHECK(t.lo < 0.5);
    CHECK(t.hi > 0.5);
    CHECK(t.values.size() >= 3);
    CHECK(tickValues(0, 0) == V{-1, -0.5, 0, 0.5, 1});
    CHECK(tickValues(1, 1, 5, true) == V{0, 1, 2});
    Ticks big = niceTicks(2000, 2000);
    CHECK(big.lo < 2000);
    CHECK(big.hi > 2000);
  }
  SECTION("non-finite bounds fall back to [0, 1]") {
    CHECK(tickValues(kNaN, 1) == V{0, 0.2, 0.4, 0.6, 0.8, 1});
    CHECK(tickValues(0, INFINITY) == V{0, 0.2, 0.4, 0.6, 0.8, 1});
  }
  SECTION("labels") {
    CHECK(formatTick(0, 1) == "0.0");
    CHECK(formatTick(2.5, 1) == "2.5");
    CHECK(formatTick(0.82, 2) == "0.82");
    CHECK(formatTick(-1e-17, 1) == "0.0");
    CHECK(formatTick(1000, 0) == "1000");
    CHECK(formatTick(3e8, 0) == "3e+08");
  }
}

TEST_CASE("the SVG is well-formed and carries the labels, legend and points", "[metrics]") {
  Panel p{"Loss <&> \"quoted\"", "step", "loss", {}, true};
  p.series.push_back({"train", {0, 1, 2}, {2, 1, 0.5}, "", false});
  p.series.push_back({"test & val", {2}, {1.5}, "", true});
  Panel q{"Accuracy", "epoch", "accuracy", {}, true};
  q.series.push_back({"test", {1, 2}, {0.5, 0.75}, "#123456", true});
  std::string svg = renderSvg({p, q}, 800, 300);
  INFO(svg);
  CHECK(xmlProblem(svg) == "");
  CHECK(svg.find("width=\"800\" height=\"300\"") != std::string::npos);
  CHECK(svg.find(">Loss &lt;&amp;&gt; &quot;quoted&quot;<") != std::string::npos);
  CHECK(svg.find(">Accuracy<") != std::string::npos);
  CHECK(svg.find(">step<") != std::string::npos);
  CHECK(svg.find(">loss<") != std::string::npos);
  CHECK(svg.find(">epoch<") != std::string::npos);
  CHECK(svg.find(">accuracy<") != std::string::npos);
  CHECK(svg.find(">train<") != std::string::npos);
  CHECK(svg.find(">test &amp; val<") != std::string::npos);
  CHECK(svg.find("#1f77b4") != std::string::npos);
  CHECK(svg.find("#ff7f0e") != std::string::npos);
  CHECK(svg.find("#123456") != std::string::npos);
  CHECK(count(svg, "<polyline") == 2);  // one point draws a dot, not a line
  CHECK(count(svg, "<circle") >= 1 + 2);
  // Tick labels: y of the loss panel runs 0.5 .. 2.0 by 0.5.
  CHECK(svg.find(">0.5<") != std::string::npos);
  CHECK(svg.find(">2.0<") != std::string::npos);
  CHECK(svg == renderSvg({p, q}, 800, 300));  // deterministic

  SECTION("polyline points map the data into the plot area") {
    // Panel 0 spans x 0..400: plot area 64..384, y 34..250; the axes run
    // x 0..2 and y 0.5..2 (ticks every 0.5), so (0, 2) is the top-left
    // corner and (2, 0.5) the bottom-right one.
    CHECK(svg.find("points=\"64,34 224,178 384,250\"") != std::string::npos);
  }
}

TEST_CASE("non-finite points leave gaps instead of breaking the chart", "[metrics]") {
  Panel p{"t", "x", "y", {}, false};
  p.series.push_back({"s", {0, 1, 2, 3, 4, 5, 6}, {1, 2, kNaN, 3, 4, INFINITY, 5}, "", false});
  std::string svg = renderSvg({p});
  CHECK(xmlProblem(svg) == "");
  CHECK(count(svg, "<polyline") == 2);  // [0,1] and [3,4]
  CHECK(count(svg, "<circle") == 1);    // the lone point at x=6
  CHECK(svg.find("nan") == std::string::npos);
  CHECK(svg.find("inf") == std::string::npos);

  Panel empty{"nothing", "x", "y", {}, false};
  empty.series.push_back({"all NaN", {kNaN, 1}, {1, kNaN}, "", false});
  std::string e = renderSvg({empty});
  CHECK(xmlProblem(e) == "");
  CHECK(e.find(">no data<") != std::string::npos);
  CHECK(xmlProblem(renderSvg({})) == "");
}

TEST_CASE("metrics panels: loss per step, accuracy per epoch, colours fixed per split", "[metrics]") {
  auto panels = metricsPanels(smallLog());
  REQUIRE(panels.size() == 2);
  const Panel& loss = panels[0];
  REQUIRE(loss.series.size() == 2);
  CHECK(loss.series[0].name == "train");
  CHECK(loss.series[0].x == std::vector<double>{1, 2, 4});
  CHECK(loss.series[0].y == std::vector<double>{2.25, 1.5, 0.1});
  CHECK(loss.series[1].name == "test");
  CHECK(loss.series[1].x == std::vector<double>{2, 4});
  const Panel& acc = panels[1];
  REQUIRE(acc.series.size() == 2);
  CHECK(acc.series[0].name == "train");
  CHECK(acc.series[0].x == std::vector<double>{2});
  CHECK(acc.series[1].name == "test");
  CHECK(acc.series[1].x == std::vector<double>{1, 2});
  CHECK(acc.series[1].y == std::vector<double>{0.8125, 0.9});
  CHECK(loss.series[1].color == acc.series[1].color);
  CHECK(loss.series[0].color != loss.series[1].color);

  MetricsLog lossOnly;
  lossOnly.add({1, 1, "train", 1.0, kNaN, kNaN});
  CHECK(metricsPanels(lossOnly).size() == 1);
  std::string svg = renderSvg(metricsPanels(MetricsLog()));
  CHECK(xmlProblem(svg) == "");
  CHECK(svg.find(">no data<") != std::string::npos);
}

// Not run by default: writes a realistic chart for looking at by eye.
// NNC_PLOT_DEMO=/tmp/x.svg nnc_tests '[.metrics-demo]'
TEST_CASE("metrics demo chart", "[.metrics-demo]") {
  const char* out = std::getenv("NNC_PLOT_DEMO");
  REQUIRE(out != nullptr);
  MetricsLog log;
  int64_t step = 0;
  for (int64_t epoch = 1; epoch <= 5; ++epoch) {
    for (int s = 0; s < 200; ++s) {
      ++step;
      double t = static_cast<double>(step);
      double noise = 0.15 * std::sin(t * 1.7) * std::cos(t * 0.37);
      log.add({epoch, step, "train", 0.35 + 2.0 * std::exp(-t / 120) + noise * std::exp(-t / 600), kNaN, kNaN});
    }
    double e = static_cast<double>(epoch);
    log.add({epoch, step, "test", 0.45 + 0.6 * std::exp(-e / 1.5), 0.97 - 0.2 * std::exp(-e / 1.2), 5000});
    log.add({epoch, step, "train", kNaN, 0.99 - 0.22 * std::exp(-e / 1.1), kNaN});
  }
  REQUIRE(writePlot(out, log).ok());
}
