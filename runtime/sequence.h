// Kernels of the sequence models' ops that address memory by data: an
// embedding's row gather and its gradient's scatter-add. Ids arrive as
// floats (nnc's i32 values are held as floats, exact below 2^24); an id
// outside [0, rows) reads a zero row and adds nowhere, so a bad id never
// touches memory out of bounds (the reference interpreter reports it).
#pragma once
#include <cstdint>

extern "C" {
// out[t, :] = table[ids[t], :] for t < n; table is [rows, width].
void nnc_gather_rows(const float* table, const float* ids, float* out, int64_t n, int64_t width, int64_t rows);
// grad[r, :] = Σ_{t: ids[t] = r} dy[t, :], summed in t order (deterministic;
// threads split the columns, never the sum).
void nnc_scatter_add_rows(const float* ids, const float* dy, float* grad, int64_t n, int64_t width, int64_t rows);
}

extern "C" {
// Fused scaled dot-product attention over `heads` independent problems
// (every leading axis of q, k, v), each q [T, dh], k [S, dh], v [S, dv]:
//   o = softmax(scale · q·kᵀ, hidden keys −∞)·v,  o [T, dv],
// where with `causal` key j is hidden from query i when j > i + (S − T).
// Queries go in blocks of rows: a block's scores [rows, S] live in a
// per-thread scratch (in cache), never in the caller's memory, and each row's
// softmax is exact (its whole row is there). Threads split the heads.
void nnc_attention(const float* q, const float* k, const float* v, float* o, int64_t heads, int64_t t, int64_t s,
                   int64_t dh, int64_t dv, int64_t causal, float scale);
// Its gradient: the same blocks recomputed, then dq, dk, dv (q's, k's and v's
// shapes) written one after another into grad:
//   P = softmax(scale·q·kᵀ), dv = Pᵀ·dy, dP = dy·vᵀ,
//   dS = P ∘ (dP − rowsum(P ∘ dP)), dq = scale·dS·k, dk = scale·dSᵀ·q.
void nnc_attention_grad(const float* q, const float* k, const float* v, const float* dy, float* grad, int64_t heads,
                        int64_t t, int64_t s, int64_t dh, int64_t dv, int64_t causal, float scale);
}
