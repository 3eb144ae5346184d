// Random numbers for generated code: dropout masks and normal samples drawn
// from one process-wide generator (runtime/rng.h), so that a seeded run
// replays the same draws. Calls are serialized: a mask is one call, not a
// per-thread stream, so the draws do not depend on the thread count.
#pragma once
#include <cstdint>
#include <string>

namespace nnc {

// Reseeds the process-wide generator (at startup it is seeded with 0).
void setRandomSeed(uint64_t seed);
// The generator's state (Rng::save's text), for checkpoints; restoring
// returns false, changing nothing, on text save() did not write.
std::string saveRandomState();
bool restoreRandomState(const std::string& text);

}  // namespace nnc

extern "C" {
// For generated code (loop IR call `nnc_dropout_mask`): out[i] = scale with
// probability 1 − rate, else 0, for i < n. scale is 1/(1 − rate), passed by
// the caller so that it is rounded once, from the double attribute.
void nnc_dropout_mask(float* out, int64_t n, float rate, float scale);
// For generated code (loop IR call `nnc_normal`): out[i] = mean + stddev * z_i,
// i < n, with z drawn in pairs by Rng::normalPair in double (the second of
// the last pair is dropped when n is odd), as the `normal` op's reference.
void nnc_normal(float* out, int64_t n, float mean, float stddev);
}
