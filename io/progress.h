// The live progress line of `nnc run` on a terminal:
//   epoch 2/5 [##########----------] 300/600  loss 0.5213  0.61 s  ETA 0.60 s
// rewritten in place with "\r" at most ten times a second, and cleared before
// the epoch's summary line is printed. Not used when output is not a
// terminal: logs get plain lines instead.
#pragma once
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace nnc {

// The line itself, `width` characters of bar; ETA from the mean step time so far.
std::string progressLine(int64_t epoch, int64_t epochs, int64_t done, int64_t total, double loss, double elapsedSec,
                         int width = 20);

class Progress {
 public:
  Progress(std::ostream& out, bool live) : out_(out), live_(live) {}
  void update(int64_t epoch, int64_t epochs, int64_t done, int64_t total, double loss, double elapsedSec);
  void clear();  // erases the line, if one is shown

 private:
  std::ostream& out_;
  bool live_;
  bool shown_ = false;
  size_t lastWidth_ = 0;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace nnc
