#include "io/plot.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <numbers>

#include "io/file_io.h"
#include "io/npy.h"

namespace nnc {
namespace {

// matplotlib's default cycle, so the charts look like the course notes'.
constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);

double pow10(int k) {
  double p = 1;
  for (int i = 0; i < std::abs(k); ++i) p *= 10;
  return k < 0 ? 1 / p : p;
}

std::string xmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default:
        // Control characters other than tab and newline are not allowed in
        // XML 1.0 at all, not even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n')
          out += ' ';
        else
          out += c;
    }
  }
  return out;
}

// A pixel coordinate: one decimal is finer than any screen, and "12" rather
// than "12.0" keeps long polylines short.
std::string px(double v) {
  std::string s = fmt::format("{:.1f}", v);
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  if (s == "-0") s = "0";
  return s;
}

bool endsWithSvg(const std::string& path) {
  if (path.size() < 4) return false;
  std::string ext = path.substr(path.size() - 4);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".svg";
}

struct Pt {
  double x, y;
};

struct Box {
  double x0, y0, x1, y1;
  bool contains(Pt p) const { return p.x >= x0 && p.x <= x1 && p.y >= y0 && p.y <= y1; }
};

// How much of the drawn data a legend placed at `b` would hide: points
// sampled every few pixels along each line, so a sparse line that merely
// crosses the box still counts.
size_t coverage(const Box& b, const std::vector<std::vector<Pt>>& runs) {
  size_t n = 0;
  for (const auto& run : runs) {
    for (size_t i = 0; i < run.size(); ++i) {
      if (b.contains(run[i])) ++n;
      if (i + 1 == run.size()) break;
      double dx = run[i + 1].x - run[i].x, dy = run[i + 1].y - run[i].y;
      int samples = static_cast<int>(std::min(200.0, std::hypot(dx, dy) / 4));
      for (int s = 1; s < samples; ++s) {
        double t = static_cast<double>(s) / samples;
        if (b.contains({run[i].x + t * dx, run[i].y + t * dy})) ++n;
      }
    }
  }
  return n;
}

void renderPanel(std::string& out, const Panel& panel, double ox, double w, double h) {
  const double left = 64, right = 16, top = 34, bottom = 50;
  const double x0 = ox + left, x1 = ox + w - right, y0 = top, y1 = h - bottom;

  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const Series& s : panel.series)
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i)
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i])) {
        xmin = std::min(xmin, s.x[i]), xmax = std::max(xmax, s.x[i]);
        ymin = std::min(ymin, s.y[i]), ymax = std::max(ymax, s.y[i]);
      }
  const bool hasData = xmin <= xmax;
  if (!hasData) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
  Ticks xt = niceTicks(xmin, xmax, std::max(2, static_cast<int>(std::lround((x1 - x0) / 80))), panel.integerX);
  Ticks yt = niceTicks(ymin, ymax, std::max(2, static_cast<int>(std::lround((y1 - y0) / 55))));
  auto X = [&](double v) { return x0 + (v - xt.lo) / (xt.hi - xt.lo) * (x1 - x0); };
  auto Y = [&](double v) { return y1 - (v - yt.lo) / (yt.hi - yt.lo) * (y1 - y0); };

  out += "<g>\n";
  std::string grid, marks;
  for (double v : xt.values) {
    grid += fmt::format("M{} {}V{}", px(X(v)), px(y0), px(y1));
    marks += fmt::format("M{} {}v5", px(X(v)), px(y1));
  }
  for (double v : yt.values) {
    grid += fmt::format("M{} {}H{}", px(x0), px(Y(v)), px(x1));
    marks += fmt::format("M{} {}h-5", px(x0), px(Y(v)));
  }
  out += fmt::format("<path d=\"{}\" stroke=\"#e6e6e6\" stroke-width=\"1\" fill=\"none\"/>\n", grid);
  out += fmt::format("<path d=\"{}\" stroke=\"#333\" stroke-width=\"1\" fill=\"none\"/>\n", marks);
  for (double v : xt.values)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", px(X(v)), px(y1 + 19),
                       formatTick(v, xt.decimals));
  for (double v : yt.values)
    out += fmt::format("<text x=\"{}\" y=\"{}\" dy=\"0.35em\" text-anchor=\"end\">{}</text>\n", px(x0 - 8),
                       px(Y(v)), formatTick(v, yt.decimals));
  out += fmt::format("<text x=\"{}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                     px((x0 + x1) / 2), xmlEscape(panel.title));
  out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"13\">{}</text>\n",
                     px((x0 + x1) / 2), px(h - 12), xmlEscape(panel.xLabel));
  out += fmt::format(
      "<text x=\"{0}\" y=\"{1}\" text-anchor=\"middle\" font-size=\"13\" transform=\"rotate(-90 {0} {1})\">{2}</text>\n",
      px(ox + 16), px((y0 + y1) / 2), xmlEscape(panel.yLabel));

  // Series: each run of finite points is one polyline; non-finite points
  // end a run, leaving a gap.
  std::vector<std::vector<Pt>> allRuns;
  std::vector<std::string> colors;
  for (size_t si = 0; si < panel.series.size(); ++si) {
    const Series& s = panel.series[si];
    std::string color = s.color.empty() ? kPalette[si % kPaletteSize] : s.color;
    colors.push_back(color);
    std::vector<std::vector<Pt>> runs(1);
    for (size_t i = 0; i < std::min(s.x.size(), s.y.size()); ++i) {
      if (std::isfinite(s.x[i]) && std::isfinite(s.y[i]))
        runs.back().push_back({X(s.x[i]), Y(s.y[i])});
      else if (!runs.back().empty())
        runs.emplace_back();
    }
    out += fmt::format("<g stroke=\"{0}\" fill=\"{0}\">\n", xmlEscape(color));
    for (const auto& run : runs) {
      if (run.size() >= 2) {
        // A dense per-step line drawn thick turns into a solid band.
        const bool dense = static_cast<double>(run.size()) > (x1 - x0) / 2;
        out += fmt::format("<polyline fill=\"none\" stroke-width=\"{}\" stroke-linejoin=\"round\" points=\"",
                           dense ? "1.2" : "1.8");
        for (size_t i = 0; i < run.size(); ++i) out += fmt::format("{}{},{}", i ? " " : "", px(run[i].x), px(run[i].y));
        out += "\"/>\n";
      }
      if (s.markers || run.size() == 1)
        for (Pt p : run) out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3\" stroke=\"none\"/>\n", px(p.x), px(p.y));
      if (!run.empty()) allRuns.push_back(run);
    }
    out += "</g>\n";
  }
  out += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n", px(x0),
                     px(y0), px(x1 - x0), px(y1 - y0));
  if (!hasData)
    out += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n",
                       px((x0 + x1) / 2), px((y0 + y1) / 2));

  // Legend in whichever corner hides the least of the data.
  std::vector<size_t> named;
  size_t longest = 0;
  for (size_t si = 0; si < panel.series.size(); ++si)
    if (!panel.series[si].name.empty()) {
      named.push_back(si);
      longest = std::max(longest, panel.series[si].name.size());
    }
  if (named.empty()) {
    out += "</g>\n";
    return;
  }
  const double lw = 40 + 7.2 * static_cast<double>(longest), lh = 8 + 18 * static_cast<double>(named.size());
  const double pad = 8;
  Box corners[] = {{x1 - pad - lw, y0 + pad, x1 - pad, y0 + pad + lh},
                   {x0 + pad, y0 + pad, x0 + pad + lw, y0 + pad + lh},
                   {x1 - pad - lw, y1 - pad - lh, x1 - pad, y1 - pad},
                   {x0 + pad, y1 - pad - lh, x0 + pad + lw, y1 - pad}};
  Box best = corners[0];
  size_t bestCover = SIZE_MAX;
  for (const Box& b : corners)
    if (size_t c = coverage(b, allRuns); c < bestCover) best = b, bestCover = c;
  out += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" rx=\"3\" fill=\"#fff\" fill-opacity=\"0.85\" "
      "stroke=\"#ccc\"/>\n",
      px(best.x0), px(best.y0), px(lw), px(lh));
  for (size_t k = 0; k < named.size(); ++k) {
    const Series& s = panel.series[named[k]];
    const std::string color = xmlEscape(colors[named[k]]);
    double cy = best.y0 + 13 + 18 * static_cast<double>(k);
    out += fmt::format("<path d=\"M{} {}h22\" stroke=\"{}\" stroke-width=\"1.8\"/>\n", px(best.x0 + 8), px(cy), color);
    if (s.markers)
      out += fmt::format("<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"/>\n", px(best.x0 + 19), px(cy), color);
    out += fmt::format("<text x=\"{}\" y=\"{}\" dy=\"0.35em\">{}</text>\n", px(best.x0 + 36), px(cy),
                       xmlEscape(s.name));
  }
  out += "</g>\n";
}

}  // namespace

Ticks niceTicks(double lo, double hi, int target, bool integer) {
  if (!std::isfinite(lo) || !std::isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) std::swap(lo, hi);
  target = std::max(target, 1);
  if (hi - lo <= 1e-12 * std::max(1.0, std::abs(lo))) {
    // One value: give it a neighbourhood so it sits mid-axis.
    double p = lo == 0 ? 1 : std::abs(lo) * 0.1;
    if (integer) p = std::max(p, 1.0);
    lo -= p, hi += p;
  }
  const double raw = (hi - lo) / target;
  int k = static_cast<int>(std::floor(std::log10(raw)));
  double f = raw / pow10(k);
  int nice = f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
  if (nice == 10) nice = 1, ++k;
  if (integer && k < 0) nice = 1, k = 0;
  Ticks t;
  t.step = k >= 0 ? nice * pow10(k) : nice / pow10(-k);
  // Multiples are computed as integer / power of ten, which rounds once, so
  // 3 × 0.1 comes out as 0.3 and not 0.30000000000000004.
  auto value = [&](double i) { return k >= 0 ? i * nice * pow10(k) : i * nice / pow10(-k); };
  const double i0 = std::floor(lo / t.step + 1e-9), i1 = std::ceil(hi / t.step - 1e-9);
  for (double i = i0; i <= i1; ++i) t.values.push_back(value(i));
  t.lo = t.values.front(), t.hi = t.values.back();
  t.decimals = k >= 0 ? 0 : -k;
  return t;
}

std::string formatTick(double v, int decimals) {
  if (!std::isfinite(v)) return fmt::format("{}", v);
  if (v != 0 && (std::abs(v) >= 1e7 || decimals > 6)) return fmt::format("{:g}", v);
  if (std::abs(v) < 0.5 * pow10(-decimals)) v = 0;  // no "-0.0"
  return fmt::format("{:.{}f}", v, decimals);
}

std::string renderSvg(const std::vector<Panel>& panels, int width, int height) {
  width = std::max(width, 200), height = std::max(height, 150);
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"{0}\" height=\"{1}\" fill=\"#fff\"/>\n",
      width, height);
  const double pw = static_cast<double>(width) / static_cast<double>(std::max<size_t>(panels.size(), 1));
  for (size_t i = 0; i < panels.size(); ++i)
    renderPanel(out, panels[i], pw * static_cast<double>(i), pw, static_cast<double>(height));
  return out + "</svg>\n";
}

std::vector<Panel> metricsPanels(const MetricsLog& log, const std::string& bitsUnit) {
  // Splits in a fixed order, train then test then the rest as they first
  // appear, so colours agree between panels and between runs.
  std::vector<std::string> splits = {"train", "test"};
  for (const MetricRow& r : log.rows())
    if (std::find(splits.begin(), splits.end(), r.split) == splits.end()) splits.push_back(r.split);
  auto color = [](size_t i) { return std::string(kPalette[i % kPaletteSize]); };
  // Per-epoch series are short enough for a dot per point; per-step ones
  // would turn into a smear of dots.
  constexpr size_t kMarkerLimit = 40;

  Panel loss{"Loss", "step", "loss", {}, true};
  Panel acc{"Accuracy", "epoch", "accuracy", {}, true};
  for (size_t si = 0; si < splits.size(); ++si) {
    Series ls{splits[si], {}, {}, color(si), false};
    std::map<int64_t, std::pair<double, int>> byEpoch;  // sum, count
    for (const MetricRow& r : log.rows()) {
      if (r.split != splits[si]) continue;
      if (std::isfinite(r.loss)) {
        ls.x.push_back(static_cast<double>(r.step));
        ls.y.push_back(r.loss);
      }
      if (std::isfinite(r.accuracy)) {
        auto& [sum, n] = byEpoch[r.epoch];
        sum += r.accuracy, ++n;
      }
    }
    if (!ls.x.empty()) {
      ls.markers = ls.x.size() <= kMarkerLimit;
      loss.series.push_back(std::move(ls));
    }
    if (!byEpoch.empty()) {
      Series as{splits[si], {}, {}, color(si), byEpoch.size() <= kMarkerLimit};
      for (auto& [epoch, sn] : byEpoch) {
        as.x.push_back(static_cast<double>(epoch));
        as.y.push_back(sn.first / sn.second);
      }
      acc.series.push_back(std::move(as));
    }
  }
  std::vector<Panel> panels = {loss};
  if (!bitsUnit.empty()) {
    // The same curves in bits: loss / ln 2.
    Panel bits{"Loss in " + bitsUnit, "step", bitsUnit, loss.series, true};
    for (Series& sr : bits.series)
      for (double& y : sr.y) y /= std::numbers::ln2;
    panels.push_back(std::move(bits));
  }
  if (!acc.series.empty()) panels.push_back(std::move(acc));
  return panels;
}

Status checkPlotPath(const std::string& path) {
  if (!endsWithSvg(path)) return error("cannot write a plot to '{}': the name must end in .svg", path);
  return ok();
}

Status writePlot(const std::string& path, const MetricsLog& log, const std::string& bitsUnit) {
  NNC_CHECK(checkPlotPath(path));
  return writeFileAtomic(path, renderSvg(metricsPanels(log, bitsUnit)));
}

}  // namespace nnc
