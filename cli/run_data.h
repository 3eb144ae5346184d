// Where `nnc run`, `nnc eval` and `nnc predict` get their data: the train
// block's `data = ...` (or --data), matched against the model's input and
// label, and cut into batches.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/run_stepper.h"
#include "runtime/dataset.h"

namespace nnc::cli {

inline constexpr const char* kDefaultData = "/usr/share/datasets/fashion-mnist";

// From `data = csv("f.csv", label = "y", test = "t.csv", scale = "standardize")`
// and the like; --data PATH overrides the path (its kind told from the name:
// .npz, .csv, a folder with x_train.npy, an IDX folder, else image folders).
Expected<DataSpec> dataSpecFrom(const Options& o, const std::optional<TrainConfig>& train);
// "shift=2,hflip,binarize=0.5"
Expected<Augment> augmentFrom(const std::string& text);

// How the model takes the data: checked once, before anything is compiled.
struct DataFit {
  int64_t batch = 0;
  bool classify = true;       // class ids (accuracy), else regression targets (loss)
  ValueId scores = kNoValue;  // the model's [batch, classes] output
  ValueId trainScores = kNoValue;
};
Expected<DataFit> fitData(const Graph& g, const DataSplits& d);

// Samples order[first .. first + batch) as one batch.
void makeBatch(const Dataset& d, const std::vector<int64_t>& order, int64_t first, int64_t batch, Batch& b);

struct Score {
  double accuracy = 0, loss = 0;  // accuracy NaN for regression
  int64_t seen = 0;
  std::vector<int64_t> right, total;  // per class
};
// The first `limit` samples (0: all) of `d`, in whole batches, in eval mode.
Expected<Score> evaluate(Stepper& s, const DataFit& fit, const Dataset& d, int64_t limit);

}  // namespace nnc::cli
