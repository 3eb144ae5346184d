// Line charts as self-contained SVG: axes with round-numbered ticks, grid,
// axis labels, a legend, one or more panels side by side. No dependency; the
// output is deterministic (same input, same bytes) so it can be tested.
#pragma once
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "io/metrics.h"

namespace nnc {

// Points whose x or y is NaN or infinite are skipped and break the line
// there (a gap). A run of one point is drawn as a dot.
struct Series {
  std::string name;
  std::vector<double> x, y;
  std::string color;     // CSS colour; empty picks from the palette by index
  bool markers = false;  // dots on every point (sparse series, e.g. per epoch)
};

struct Panel {
  std::string title, xLabel, yLabel;
  std::vector<Series> series;
  bool integerX = false;  // steps and epochs: no tick at 1.5
};

// Axis ticks at multiples of 1, 2 or 5 × 10^k. [lo, hi] is the axis range:
// the first and last tick, which enclose the data. An empty or one-valued
// range is padded so that it still has a span.
struct Ticks {
  double lo = 0, hi = 1, step = 1;
  std::vector<double> values;
  int decimals = 0;  // enough to tell neighbouring ticks apart
};
Ticks niceTicks(double lo, double hi, int target = 5, bool integer = false);
// A tick label: `decimals` places, no "-0"; exponent form when huge or tiny.
std::string formatTick(double v, int decimals);

std::string renderSvg(const std::vector<Panel>& panels, int width = 900, int height = 360);

// Loss against step (every split that logged a loss) and, when any row has
// an accuracy, accuracy against epoch (rows of one split and epoch averaged).
// Train is blue and test orange in both panels. With `bitsUnit` (text data:
// "bits/char"), a panel of the loss in bits (loss / ln 2) against step too.
std::vector<Panel> metricsPanels(const MetricsLog& log, const std::string& bitsUnit = "");
Status writePlot(const std::string& path, const MetricsLog& log, const std::string& bitsUnit = "");
// Rejects anything but a .svg path, before training starts.
Status checkPlotPath(const std::string& path);

}  // namespace nnc
