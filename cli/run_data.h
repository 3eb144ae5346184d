// Where `nnc run`, `nnc eval` and `nnc predict` get their data: the train
// block's `data = ...` (or --data), matched against the model's input and
// label, and cut into batches.
#pragma once
#include <iosfwd>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/run_stepper.h"
#include "compiler/elaborate/train_settings.h"
#include "io/augment.h"
#include "io/dataset.h"

namespace nnc::cli {

inline constexpr const char* kDefaultData = "/usr/share/datasets/fashion-mnist";

// From `data = csv("f.csv", label = "y", test = "t.csv", scale = "standardize")`
// and the like; --data PATH overrides the path (its kind told from the name:
// .npz, .csv, a folder with x_train.npy, an IDX folder, else image folders).
// The classes' names where the data say them (image folders' subfolders,
// Fashion-MNIST's ten, in `select`'s order); else empty.
std::vector<std::string> classNames(const DataSpec& spec, const Dataset& d);

Expected<DataSpec> dataSpecFrom(const Options& o, const std::optional<TrainConfig>& train);
// "shift=2,hflip,binarize=0.5"
Expected<Augment> augmentFrom(const std::string& text);

// How the model takes the data: checked once, before anything is compiled.
struct DataFit {
  int64_t batch = 0;
  bool classify = true;       // class ids (accuracy), else regression targets or none (loss)
  bool hasLabel = true;       // false: the model learns from its input alone (an autoencoder)
  ValueId scores = kNoValue;  // the model's [batch, classes] output
  ValueId trainScores = kNoValue;
  // A scalar output named `accuracy`: the model's own measure of right
  // answers (a whole binary sum right, say), averaged over batches where the
  // data have no class ids to count.
  ValueId metric = kNoValue;
  // A label-less model's f32[batch] output (a reconstruction error): reported
  // per class when the data have classes.
  ValueId perSample = kNoValue;
};
Expected<DataFit> fitData(const Elaborated& m, const DataSplits& d);

// Text data set a model's `vocab` and `context` parameters (the vocabulary's
// size, the windows' length) where --set does not give them: the values to
// elaborate the model again with, or empty when it already has them.
std::map<std::string, int64_t> textModelParams(const Options& o, const Elaborated& m, const DataSplits& d);
// `l` elaborated again with those values, when they change anything; false
// (the error printed to `err`) when that fails. References into `l` stay valid.
bool fitModelToText(const Options& o, const DataSplits& d, Loaded& l, std::ostream& err);

// Samples order[first .. first + batch) as one batch.
void makeBatch(const Dataset& d, const std::vector<int64_t>& order, int64_t first, int64_t batch, Batch& b);

struct Score {
  double accuracy = 0, loss = 0;  // accuracy NaN for regression (unless the model has an `accuracy` output)
  int64_t seen = 0;
  std::vector<int64_t> right, total;  // per class
  std::vector<float> perSample;       // fit.perSample's values, one per sample seen
  std::vector<int32_t> sampleClass;   // their classes (when the data have them)
  double lossSum = 0, metricSum = 0;  // over the samples scored, from which finishScore
  int64_t samples = 0;                // takes the means
};
// The first `limit` samples (0: all) of `d`, every one, in eval mode: the
// last batch, if short, padded (its padding rows not scored; the loss and an
// `accuracy` output corrected to the real rows); loss and metric averaged
// per sample.
// With parts > 1: the part-th of `parts` contiguous pieces of those samples
// (a rank's share of a sharded evaluation; sumScores adds up the pieces).
Expected<Score> evaluate(Stepper& s, const DataFit& fit, const Dataset& d, int64_t limit, int part = 0,
                         int parts = 1);
// The accuracy and mean loss from the counts and sums.
void finishScore(Score& r, const DataFit& fit);

// A label-less model's per-sample output, per class of the test split: its
// mean, and how many samples exceed the `quantile` of its values on the
// training samples (an anomaly detector's flags). A table, for printing.
Expected<std::string> perClassReport(Stepper& s, const DataFit& fit, const std::string& output, const Dataset& train,
                                     int64_t trainLimit, const Dataset& test, int64_t testLimit, double quantile,
                                     const std::vector<std::string>& names);

}  // namespace nnc::cli
