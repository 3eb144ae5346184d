// A small, portable random generator (xoshiro256**, seeded by splitmix64):
// the same seed gives the same numbers on every platform and compiler, which
// std::normal_distribution does not promise.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace nnc {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed) {
    for (uint64_t& w : s_) {
      seed += 0x9e3779b97f4a7c15ULL;
      uint64_t z = seed;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      w = z ^ (z >> 31);
    }
    haveSpare_ = false;
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  // Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double a, double b) { return a + (b - a) * uniform(); }
  // Standard normal (Box-Muller, both values used).
  double normal() {
    if (haveSpare_) {
      haveSpare_ = false;
      return spare_;
    }
    double u1 = 0;
    while (u1 <= 0) u1 = uniform();
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), th = 6.283185307179586 * u2;
    spare_ = r * std::sin(th);
    haveSpare_ = true;
    return r * std::cos(th);
  }
  // Two independent standard normals from two fresh uniforms (Box-Muller),
  // keeping no spare between calls: the `normal` op draws its samples pair
  // by pair this way in the reference (compiler/ops/nn_ops.cpp) and in
  // nnc_normal (runtime/random_calls.cpp), so a seeded interpreter run and
  // a compiled one take the same samples. 1 - uniform() is in (0, 1]: the
  // log is finite.
  void normalPair(double& a, double& b) {
    const double u1 = 1.0 - uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), th = 6.283185307179586 * u2;
    a = r * std::cos(th);
    b = r * std::sin(th);
  }
  // The whole state as text ("s0 s1 s2 s3 spare-bits has-spare", hex), so a
  // checkpoint can resume the very same stream.
  std::string save() const {
    uint64_t bits;
    std::memcpy(&bits, &spare_, sizeof bits);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%016llx %016llx %016llx %016llx %016llx %d", ull(s_[0]), ull(s_[1]), ull(s_[2]),
                  ull(s_[3]), ull(bits), haveSpare_ ? 1 : 0);
    return buf;
  }
  // False (state unchanged) when `text` is not what save() writes.
  bool restore(const std::string& text) {
    unsigned long long w[5];
    int spare = 0, used = 0;
    if (std::sscanf(text.c_str(), "%llx %llx %llx %llx %llx %d%n", &w[0], &w[1], &w[2], &w[3], &w[4], &spare,
                    &used) != 6 ||
        static_cast<size_t>(used) != text.size() || (spare != 0 && spare != 1) || (w[0] | w[1] | w[2] | w[3]) == 0)
      return false;
    for (int i = 0; i < 4; ++i) s_[i] = w[i];
    const uint64_t bits = w[4];
    std::memcpy(&spare_, &bits, sizeof bits);
    haveSpare_ = spare == 1;
    return true;
  }
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return n ? next() % n : 0; }

 private:
  static unsigned long long ull(uint64_t x) { return static_cast<unsigned long long>(x); }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  double spare_ = 0;
  bool haveSpare_ = false;
};

}  // namespace nnc
