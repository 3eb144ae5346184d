// Training data for `nnc run`: labelled splits loaded from IDX folders, NPZ
// archives, folders of .npy files, CSV files or folders of class-named image
// folders; scaling, test and validation splits, and batch augmentation.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "dsl/diagnostics.h"
#include "runtime/rng.h"

namespace nnc {

struct Dataset {              // one split
  std::vector<float> images;  // count × (channels·rows·cols) features, row-major, NCHW per sample
  std::vector<int32_t> labels;  // class ids, count of them (classification); empty for regression
  std::vector<float> targets;   // count × targetSize (regression); empty for classification
  int64_t count = 0, rows = 0, cols = 0, channels = 1, targetSize = 0;
  int32_t classes = 0;                  // max label + 1 (loadData: over both splits), or DataSpec::classes
  std::vector<std::string> classNames;  // image folders: subfolder names in sorted order; else empty
  int64_t sampleSize() const { return channels * rows * cols; }
};

struct DataSpec {
  std::string kind = "idx";   // "idx" | "npz" | "npy" | "csv" | "images"
  std::string path;           // idx/images: folder; npz: file; npy: folder holding x_train.npy, y_train.npy, x_test.npy, y_test.npy; csv: train file
  std::string testPath;       // csv/images: separate test file/folder; empty: none (then split off `testFraction`)
  std::string label = "label";  // csv: the label column's header name
  bool regression = false;      // csv/npz/npy: targets are floats (label column or y array taken as float targets)
  int64_t height = 0, width = 0;  // images: bilinear resize to this (both or neither); 0: keep (all images must then agree)
  int64_t channels = 0;           // images: 1 gray, 3 RGB; 0: from the first file (gray for gray and gray+alpha)
  std::string scale = "auto";   // "auto": u8 data /255 (IDX, images, npz/npy of u1), floats unchanged; "none"; "standardize": (x−mean)/std per feature computed on the TRAIN split and applied to both
  double testFraction = 0.2;    // only when no test split exists (csv without testPath, images without testPath); in (0, 1)
  int32_t classes = 0;          // classification: 0: max label + 1; else every label must be below it
  // Class ids to keep, in this order: both splits keep only them, renumbered
  // 0, 1, ... (a two-class task cut from a ten-class set).
  std::vector<int32_t> select;
  // Class ids the training split keeps, ids unchanged; the test split keeps
  // all (an anomaly detector trained on normal samples, tested on every class).
  std::vector<int32_t> trainClasses;
};

struct DataSplits {
  Dataset train, test;
  // scale = "standardize": the train split's per-feature mean and the
  // divisor used (its standard deviation, 1 for a constant feature).
  std::vector<float> mean, stddev;
};

// Every error names the file (or folder) and says what is wrong in words.
Expected<DataSplits> loadData(const DataSpec& spec, uint64_t seed);  // seed: for the test-fraction split only

// Moves `fraction` of `d` (chosen by the seed, reproducibly) into a validation split.
// Both parts keep their samples' original order; neither may end up empty.
Expected<Dataset> splitValidation(Dataset& d, double fraction, uint64_t seed);

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
