#include "runtime/random_calls.h"

#include <mutex>

#include "runtime/rng.h"

namespace nnc {

namespace {

std::mutex& generatorMutex() {
  static std::mutex m;
  return m;
}

Rng& generator() {
  static Rng rng(0);
  return rng;
}

}  // namespace

void setRandomSeed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(generatorMutex());
  generator().reseed(seed);
}

std::string saveRandomState() {
  std::lock_guard<std::mutex> lock(generatorMutex());
  return generator().save();
}

bool restoreRandomState(const std::string& text) {
  std::lock_guard<std::mutex> lock(generatorMutex());
  return generator().restore(text);
}

}  // namespace nnc

extern "C" void nnc_dropout_mask(float* out, int64_t n, float rate, float scale) {
  std::lock_guard<std::mutex> lock(nnc::generatorMutex());
  nnc::Rng& rng = nnc::generator();
  // The reference's draw (dropoutMaskEval): keep when uniform() < 1 − rate.
  const double keep = 1.0 - static_cast<double>(rate);
  for (int64_t i = 0; i < n; ++i) out[i] = rng.uniform() < keep ? scale : 0.0f;
}

extern "C" void nnc_normal(float* out, int64_t n, float mean, float stddev) {
  std::lock_guard<std::mutex> lock(nnc::generatorMutex());
  nnc::Rng& rng = nnc::generator();
  // The reference's draw (normalEval): pair by pair, scaled in double and
  // rounded once.
  const double m = mean, s = stddev;
  for (int64_t i = 0; i < n; i += 2) {
    double a, b;
    rng.normalPair(a, b);
    out[i] = static_cast<float>(m + s * a);
    if (i + 1 < n) out[i + 1] = static_cast<float>(m + s * b);
  }
}
