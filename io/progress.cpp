#include "io/progress.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <ostream>

namespace nnc {

std::string progressLine(int64_t epoch, int64_t epochs, int64_t done, int64_t total, double loss, double elapsedSec,
                         int width) {
  const double frac = total > 0 ? std::clamp(static_cast<double>(done) / static_cast<double>(total), 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(std::lround(frac * width));
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(width - filled), '-');
  const double eta = done > 0 ? elapsedSec / static_cast<double>(done) * static_cast<double>(total - done) : 0.0;
  return fmt::format("epoch {}/{} [{}] {}/{}  loss {:.4f}  {:.2f} s  ETA {:.2f} s", epoch, epochs, bar, done, total,
                     loss, elapsedSec, eta);
}

void Progress::update(int64_t epoch, int64_t epochs, int64_t done, int64_t total, double loss, double elapsedSec) {
  if (!live_) return;
  const auto now = std::chrono::steady_clock::now();
  if (shown_ && done < total && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const std::string line = progressLine(epoch, epochs, done, total, loss, elapsedSec);
  // Pads over a longer previous line rather than relying on an ANSI erase.
  out_ << '\r' << line << std::string(lastWidth_ > line.size() ? lastWidth_ - line.size() : 0, ' ') << std::flush;
  lastWidth_ = line.size();
  shown_ = true;
}

void Progress::clear() {
  if (!shown_) return;
  out_ << '\r' << std::string(lastWidth_, ' ') << '\r' << std::flush;
  shown_ = false;
  lastWidth_ = 0;
}

}  // namespace nnc
