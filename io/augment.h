// Augmentation of training batches: shifts, flips, binarizing.
#pragma once
#include <cstdint>

#include "io/dataset.h"
#include "runtime/rng.h"

namespace nnc {

// Augmentation options applied to a batch of training samples (copied), the seeds' ones:
struct Augment { int64_t shift = 0; bool hflip = false; double binarize = -1; /* <0: off; else threshold: x>thr ? 1 : 0 */ };

// Augments `n` samples in place (n × d.sampleSize() floats), shapes from d; rng state advanced deterministically.
// Per sample, in this order: with shift > 0, dy = rng.below(2k+1) − k then
// dx likewise, and the sample moves dy rows down and dx columns right
// (out[r][c] = in[r−dy][c−dx], 0 where that is outside); with hflip, it is
// mirrored left-right when rng.below(2) == 1. Binarizing comes last and
// draws nothing. Only shift and hflip advance the rng.
void augmentBatch(const Augment& a, const Dataset& d, float* samples, int64_t n, Rng& rng);

}  // namespace nnc
