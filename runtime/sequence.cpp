#include "runtime/sequence.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "runtime/activation.h"  // NNC_WIDEST_VECTORS
#include "runtime/gemm.h"
#include "runtime/parallel.h"

namespace {

// The row an id names, or -1 when it names none.
int64_t rowOf(float id, int64_t rows) {
  if (!(id >= 0) || id >= static_cast<float>(rows)) return -1;
  return static_cast<int64_t>(id);
}

}  // namespace

extern "C" {

void nnc_gather_rows(const float* table, const float* ids, float* out, int64_t n, int64_t width, int64_t rows) {
  nnc::parallelFor(n, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t) {
      const int64_t r = rowOf(ids[t], rows);
      float* dst = out + t * width;
      if (r < 0) std::memset(dst, 0, sizeof(float) * static_cast<size_t>(width));
      else std::memcpy(dst, table + r * width, sizeof(float) * static_cast<size_t>(width));
    }
  });
}

void nnc_scatter_add_rows(const float* ids, const float* dy, float* grad, int64_t n, int64_t width, int64_t rows) {
  std::memset(grad, 0, sizeof(float) * static_cast<size_t>(rows * width));
  nnc::parallelFor(width, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t t = 0; t < n; ++t) {
      const int64_t r = rowOf(ids[t], rows);
      if (r < 0) continue;
      const float* src = dy + t * width;
      float* dst = grad + r * width;
      for (int64_t j = lo; j < hi; ++j) dst[j] += src[j];
    }
  });
}

}  // extern "C"

namespace {

constexpr int64_t kRowBlock = 32;  // query rows per block: 32 × S scores in cache

// e^x for x ≤ 0 (softmax's shifted scores), relative error below 2e-7:
// 2^(x·log2 e) split into 2^n · 2^f, f in [-0.5, 0.5], 2^f by its degree-6
// Taylor polynomial, 2^n written into the exponent bits. Plain arithmetic,
// so the loops calling it vectorize (std::exp would not).
inline float expNonPositive(float x) {
  const float y = std::max(x, -87.0f) * 1.44269504f;
  const float n = (y + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5 · 2^23 pushes out the fraction
  const float f = (y - n) * 0.693147181f;
  const float p =
      1 + f * (1 + f * (0.5f + f * (0.166666667f + f * (0.0416666667f + f * (0.00833333333f + f * 0.00138888889f)))));
  int32_t bits;
  std::memcpy(&bits, &p, sizeof bits);
  bits += static_cast<int32_t>(n) << 23;
  float r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
}

struct Problem {
  int64_t t, s, dh, dv;
  bool causal;
  float scale;
  // Keys query block [r0, r0 + rows) sees: all, or up to the last row's.
  int64_t keys(int64_t r0, int64_t rows) const {
    return causal ? std::min(s, r0 + rows + (s - t)) : s;
  }
};

// Row reductions in kLanes partial results, combined in a fixed order: the
// loops vectorize (a single running sum would not, as float addition does not
// reassociate) and every run gives the same bits.
constexpr int kLanes = 16;

// row[0..seen) = softmax(scale · row), row[seen..n) = 0 (causal keys).
NNC_WIDEST_VECTORS void softmaxRow(float* __restrict row, int64_t seen, int64_t n, float scale) {
  float mx[kLanes], acc[kLanes];
  for (int l = 0; l < kLanes; ++l) mx[l] = -INFINITY, acc[l] = 0;
  int64_t j = 0;
  for (; j + kLanes <= seen; j += kLanes)
    for (int l = 0; l < kLanes; ++l) mx[l] = std::max(mx[l], row[j + l] * scale);
  float m = -INFINITY;
  for (int64_t r = j; r < seen; ++r) m = std::max(m, row[r] * scale);
  for (int l = 0; l < kLanes; ++l) m = std::max(m, mx[l]);
  for (j = 0; j + kLanes <= seen; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const float e = expNonPositive(row[j + l] * scale - m);
      row[j + l] = e;
      acc[l] += e;
    }
  float sum = 0;
  for (int64_t r = j; r < seen; ++r) {
    row[r] = expNonPositive(row[r] * scale - m);
    sum += row[r];
  }
  for (int l = 0; l < kLanes; ++l) sum += acc[l];
  const float inv = 1 / sum;
  for (int64_t r = 0; r < seen; ++r) row[r] *= inv;
  for (int64_t r = seen; r < n; ++r) row[r] = 0;
}

// d[j] = scale · p[j] · (d[j] − Σ p·d): softmax's gradient on one row.
NNC_WIDEST_VECTORS void softmaxGradRow(const float* __restrict p, float* __restrict d, int64_t n, float scale) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += p[j + l] * d[j + l];
  float dot = 0;
  for (int64_t r = j; r < n; ++r) dot += p[r] * d[r];
  for (int l = 0; l < kLanes; ++l) dot += acc[l];
  for (int64_t r = 0; r < n; ++r) d[r] = scale * p[r] * (d[r] - dot);
}

// p[rows, n] (row stride n) = softmax(scale · q_blk·k[0..n)ᵀ) with the
// causal keys of each row set to probability 0.
void blockProbs(const Problem& pr, const float* q, const float* k, int64_t r0, int64_t rows, int64_t n, float* p) {
  nnc::sgemm(false, true, rows, n, pr.dh, q + r0 * pr.dh, pr.dh, k, pr.dh, p, n, false);
  for (int64_t i = 0; i < rows; ++i)
    softmaxRow(p + i * n, pr.causal ? std::min(n, r0 + i + 1 + (pr.s - pr.t)) : n, n, pr.scale);
}

}  // namespace

extern "C" {

void nnc_attention(const float* q, const float* k, const float* v, float* o, int64_t heads, int64_t t, int64_t s,
                   int64_t dh, int64_t dv, int64_t causal, float scale) {
  const Problem pr{t, s, dh, dv, causal != 0, scale};
  nnc::parallelFor(heads, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> p(static_cast<size_t>(kRowBlock * s));
    for (int64_t h = lo; h < hi; ++h) {
      const float *qh = q + h * t * dh, *kh = k + h * s * dh, *vh = v + h * s * dv;
      float* oh = o + h * t * dv;
      for (int64_t r0 = 0; r0 < t; r0 += kRowBlock) {
        const int64_t rows = std::min(kRowBlock, t - r0), n = pr.keys(r0, rows);
        blockProbs(pr, qh, kh, r0, rows, n, p.data());
        nnc::sgemm(false, false, rows, dv, n, p.data(), n, vh, dv, oh + r0 * dv, dv, false);
      }
    }
  });
}

void nnc_attention_grad(const float* q, const float* k, const float* v, const float* dy, float* grad, int64_t heads,
                        int64_t t, int64_t s, int64_t dh, int64_t dv, int64_t causal, float scale) {
  const Problem pr{t, s, dh, dv, causal != 0, scale};
  float* dq = grad;
  float* dk = dq + heads * t * dh;
  float* dvv = dk + heads * s * dh;
  nnc::parallelFor(heads, 1, [&](int64_t lo, int64_t hi) {
    std::vector<float> p(static_cast<size_t>(kRowBlock * s)), dp(static_cast<size_t>(kRowBlock * s));
    for (int64_t h = lo; h < hi; ++h) {
      const float *qh = q + h * t * dh, *kh = k + h * s * dh, *vh = v + h * s * dv, *dyh = dy + h * t * dv;
      float *dqh = dq + h * t * dh, *dkh = dk + h * s * dh, *dvh = dvv + h * s * dv;
      std::memset(dkh, 0, sizeof(float) * static_cast<size_t>(s * dh));
      std::memset(dvh, 0, sizeof(float) * static_cast<size_t>(s * dv));
      for (int64_t r0 = 0; r0 < t; r0 += kRowBlock) {
        const int64_t rows = std::min(kRowBlock, t - r0), n = pr.keys(r0, rows);
        blockProbs(pr, qh, kh, r0, rows, n, p.data());
        // dv[0..n) += Pᵀ·dy_blk; dP = dy_blk·vᵀ
        nnc::sgemm(true, false, n, dv, rows, p.data(), n, dyh + r0 * dv, dv, dvh, dv, true);
        nnc::sgemm(false, true, rows, n, dv, dyh + r0 * dv, dv, vh, dv, dp.data(), n, false);
        for (int64_t i = 0; i < rows; ++i) softmaxGradRow(p.data() + i * n, dp.data() + i * n, n, scale);
        // dq_blk = dS·k; dk[0..n) += dSᵀ·q_blk
        nnc::sgemm(false, false, rows, dh, n, dp.data(), n, kh, dh, dqh + r0 * dh, dh, false);
        nnc::sgemm(true, false, n, dh, rows, dp.data(), n, qh + r0 * dh, dh, dkh, dh, true);
      }
    }
  });
}

}  // extern "C"
