// Training data for `nnc run`: labelled splits loaded from IDX folders, NPZ
// archives, folders of .npy files, CSV files or folders of class-named image
// folders; scaling, test and validation splits (augmentation: io/augment.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "base/tensor.h"

namespace nnc {

struct Dataset {              // one split
  std::vector<float> images;  // count × (channels·rows·cols) features, row-major, NCHW per sample
  std::vector<int32_t> labels;  // class ids, count of them (classification); empty for regression
  std::vector<float> targets;   // count × targetSize (regression); empty for classification
  int64_t count = 0, rows = 0, cols = 0, channels = 1, targetSize = 0;
  int32_t classes = 0;                  // max label + 1 (loadData: over both splits), or DataSpec::classes
  std::vector<std::string> classNames;  // image folders: subfolder names in sorted order; else empty
  std::string labelSource;  // where the labels were read, for messages: a file ('x.csv', 'dir/y_train.npy', 'a.npz:y_train') or image folder
  int64_t sampleSize() const { return channels * rows * cols; }
};

struct DataSpec {
  std::string kind = "idx";   // "idx" | "npz" | "npy" | "csv" | "images" | "text"
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
  // text (io/text_dataset.h): the window length and the unit, "byte" or
  // "char" (UTF-8 code points); testFraction is its test part.
  int64_t context = 128;
  std::string unit = "byte";
};

struct DataSplits {
  Dataset train, test;
  // scale = "standardize": the train split's per-feature mean and the
  // divisor used (its standard deviation, 1 for a constant feature).
  std::vector<float> mean, stddev;
  // Text data: the vocabulary (sorted units, id = index; empty for other
  // data), its unit, and a line on what was read (counts, files skipped).
  std::vector<uint32_t> vocab;
  std::string unit, readNote;
};

// Every error names the file (or folder) and says what is wrong in words.
Expected<DataSplits> loadData(const DataSpec& spec, uint64_t seed);  // seed: for the test-fraction split only

// Moves `fraction` of `d` (chosen by the seed, reproducibly) into a validation split.
// Both parts keep their samples' original order; neither may end up empty.
Expected<Dataset> splitValidation(Dataset& d, double fraction, uint64_t seed);

// A labelled split of IDX files (io/idx_dataset.cpp): images holds
// count*rows*cols pixels scaled to [0, 1] (pixel / 255.0f), row-major;
// labels are 0..255; classes is max label + 1. Loads
// DIR/{train|t10k}-images-idx3-ubyte[.gz] and
// DIR/{train|t10k}-labels-idx1-ubyte[.gz]; split is "train" or "test"
// ("t10k" is accepted for "test"). The uncompressed name is tried first.
Expected<Dataset> loadIdxDataset(const std::string& dir, const std::string& split);

// The images as f32 [N, rows*cols], or [N, 1, rows, cols] with
// keepImageShape (for convolutions); the labels as i32 [N].
Tensor datasetImages(const Dataset& d, bool keepImageShape = false);
Tensor datasetLabels(const Dataset& d);

}  // namespace nnc
