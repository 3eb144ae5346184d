// Internal to the GEMM: what the driver (gemm.cpp) shares with the
// per-instruction-set tile code (gemm_avx512.cpp, gemm_avx2.cpp,
// gemm_generic.cpp, all instantiating gemm_tiles.h).
#pragma once
#include <cstddef>
#include <cstdint>

namespace nnc::gemm {

struct Args {
  bool transA, transB, accumulate;
  int64_t M, N, K;
  const float* A;
  int64_t lda;
  const float* B;
  int64_t ldb;
  float* C;
  int64_t ldc;
  // The depth of one cache block, fixed for the whole call so that every C
  // element is summed in the same order whichever thread computes it.
  int64_t kc;
};

// One instruction set's implementation: computes C[m0:m1, n0:n1] (all of K),
// packing into this thread's scratch buffers.
struct Isa {
  const char* name;
  int mr, nr;  // register tile
  void (*block)(const Args&, int64_t m0, int64_t m1, int64_t n0, int64_t n1);
};

Isa avx512Isa();
Isa avx2Isa();
Isa genericIsa();

// A 64-byte aligned buffer of at least `floats` floats, owned by the calling
// thread and reused across calls; slot 0 holds packed A, slot 1 packed B.
float* scratch(int slot, size_t floats);

}  // namespace nnc::gemm
