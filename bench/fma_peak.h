// The FMA peak the benchmarks judge their rows by: a register-only FMA loop
// at the widest vector width the CPU has (AVX-512, else AVX2+FMA, else
// scalar), measured in the same run as the rows (bench_conv, bench_gemm).
#pragma once
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NNC_BENCH_X86 1
#endif

namespace nnc::bench {

// ------------------------------------------------------------ FMA peak ----

// Iterations of the loops below: each does kAcc independent FMAs on full
// vectors. 16 accumulators cover 2 FMA ports × 4-cycle latency twice over,
// so the loop is throughput-bound on every core we know of.
inline constexpr int kAcc = 16;

#ifdef NNC_BENCH_X86
__attribute__((target("avx512f"))) inline float fmaLoop512(int64_t iters) {
  __m512 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_set1_ps(float(i) * 1e-3f);
  // m slightly below 1 and a small addend keep the values finite and normal.
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, a);
  }
  for (int i = 1; i < kAcc; ++i) acc[0] = _mm512_add_ps(acc[0], acc[i]);
  // Stored and summed by hand: GCC 12's _mm512_reduce_add_ps trips -Wuninitialized.
  float out[16];
  _mm512_storeu_ps(out, acc[0]);
  float s = 0;
  for (float v : out) s += v;
  return s;
}

__attribute__((target("avx2,fma"))) inline float fmaLoop256(int64_t iters) {
  __m256 acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-6f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kAcc; ++i) acc[i] = _mm256_fmadd_ps(acc[i], m, a);
  }
  for (int i = 1; i < kAcc; ++i) acc[0] = _mm256_add_ps(acc[0], acc[i]);
  float out[8];
  _mm256_storeu_ps(out, acc[0]);
  float s = 0;
  for (float v : out) s += v;
  return s;
}
#endif

inline float fmaLoopScalar(int64_t iters) {
  float acc[kAcc];
  for (int i = 0; i < kAcc; ++i) acc[i] = float(i) * 1e-3f;
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kAcc; ++i) acc[i] = __builtin_fmaf(acc[i], 0.999999f, 1e-6f);
  }
  float s = 0;
  for (float v : acc) s += v;
  return s;
}

struct FmaIsa {
  const char* name;
  int lanes;
  float (*loop)(int64_t);
};

inline FmaIsa fmaIsa() {
#ifdef NNC_BENCH_X86
  if (__builtin_cpu_supports("avx512f")) return {"avx512", 16, fmaLoop512};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {"avx2+fma", 8, fmaLoop256};
#endif
  return {"scalar", 1, fmaLoopScalar};
}

inline double fmaFlops(int64_t iters) { return 2.0 * kAcc * fmaIsa().lanes * double(iters); }

using Clock = std::chrono::steady_clock;

// The 1-thread FMA peak in FLOP/s, measured once (best of 5 short runs, so
// a moment of contention on a shared machine does not lower the bar).
inline double peakPerCore() {
  static const double peak = [] {
    const FmaIsa isa = fmaIsa();
    const int64_t iters = 20'000'000;
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = Clock::now();
      benchmark::DoNotOptimize(isa.loop(iters));
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      best = std::max(best, fmaFlops(iters) / s);
    }
    return best;
  }();
  return peak;
}

}  // namespace nnc::bench
