// Training checkpoints: a folder holding
//   params-EEEEEE.npz     the model's params by name (f32), NumPy-readable
//   optimizer-EEEEEE.npz  the optimizer's state by name ("W1.m", "train.step")
//   checkpoint.json       which two files are current, the epoch and step
//                         reached, the random streams' states and the log
//   vocab.json            a model trained on text: its vocabulary
//                         (io/text_dataset.h), for nnc sample and --resume
// Each file is written atomically (temporary file, fsync, rename), the NPZs
// under new names first and checkpoint.json last: a run killed at any moment
// leaves checkpoint.json naming a complete pair. The previous pair is removed
// only once the new checkpoint.json is in place.
#pragma once
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"
#include "base/tensor.h"
#include "io/metrics.h"

namespace nnc {

struct Checkpoint {
  std::string model;
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // optimizer steps taken
  uint64_t seed = 0;
  std::string optimizer;
  std::map<std::string, Tensor> params, state;
  std::map<std::string, std::string> rng;  // stream name → Rng::save() text
  std::vector<MetricRow> metrics;          // the run's log up to here
  std::string vocab;                       // vocab.json's text; empty: not trained on text
};

// Also removes what a run killed mid-save left in `dir`: the previous pair,
// NPZs of other epochs (params-*.npz, optimizer-*.npz) and temporary files
// (NAME.tmp.PID) of nnc's names whose process is gone; nothing else.
Status writeCheckpoint(const std::string& dir, const Checkpoint& c);
// Whether `dir` holds a checkpoint.json (nnc run refuses to --save over one).
bool holdsCheckpoint(const std::string& dir);
// Errors name the folder and what is missing or malformed: every field is
// checked (type, range, whole numbers), and the NPZs it names must be plain
// names of files in `dir`.
Expected<Checkpoint> readCheckpoint(const std::string& dir);
// checkpoint.json's text, validated, without reading the NPZs it names:
// meta.params and meta.state stay empty; paramsFile and stateFile are the
// names it gives them. `what` names the text in every error.
struct CheckpointMeta {
  Checkpoint meta;
  std::string paramsFile, stateFile;
};
Expected<CheckpointMeta> parseCheckpointJson(std::string_view text, const std::string& what);
// For --weights: a checkpoint folder (its params) or an .npz of params.
Expected<std::map<std::string, Tensor>> readWeights(const std::string& path);

}  // namespace nnc
