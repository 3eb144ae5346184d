// The ONNX conformance runner behind `nnc onnx-test` (issue 20): ONNX's own
// test folders (model.onnx, test_data_set_N/input_K.pb, output_K.pb) are
// imported in memory, compiled, run and compared with the stored outputs.
// Each test runs in a child process with a time limit, so that a crash or a
// hang in the importer, the compiler or the generated code is one failed
// test and not the end of the run.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/diagnostics.h"
#include "onnx/model_info.h"
#include "onnx/onnx_io.h"

namespace nnc::cli {

struct OnnxTestOptions {
  double rtol = 1e-4, atol = 1e-5;  // |got - want| <= atol + rtol * |want| for floats; integers exactly
  bool interpreter = false;         // also run the reference interpreter and compare it too
  double timeoutSeconds = 60;       // per test, import to the last comparison
  int64_t maxInputElements = 50'000'000;  // a test whose inputs hold more is skipped
  bool isolate = true;              // a child process per test (off: in this process, for debugging)
  int64_t maxMemoryBytes = int64_t{8} << 30;  // each child's address space (0: no limit)
  int jobs = 1;                     // tests run at once (each child runs on one thread)
  int optLevel = 3;
  // For the runner's own tests: called just before the import (in the
  // child when isolated), to crash or hang a test on purpose.
  std::function<void()> beforeImport;
};

enum class OnnxOutcome { Pass, Fail, Unsupported, Skipped };
const char* outcomeName(OnnxOutcome o);  // "pass", "fail", "unsupported", "skipped"

struct OnnxTestResult {
  std::string dir;      // the test's folder as given
  std::string name;     // "node/test_relu": its parent folder's name and its own
  std::string folder;   // "node"
  OnnxOutcome outcome = OnnxOutcome::Fail;
  std::string message;  // why it failed, was unsupported or skipped; details with -v
  std::vector<std::string> ops;  // the model's op types (onnx/model_info.h)
  int dataSets = 0;     // test_data_set_N compared
  double seconds = 0;
};

// The test folders `paths` name: a folder holding model.onnx (or data.json,
// ONNX's pointer to a model to download) is one; any other folder stands
// for the test folders directly inside it, in name order.
Expected<std::vector<std::string>> onnxTestDirs(const std::vector<std::string>& paths);

// One test, isolated as `opt` says. Never throws.
OnnxTestResult runOnnxTest(const std::string& dir, const OnnxTestOptions& opt);

// Every test of `dirs`, opt.jobs at a time; `done` sees each result as it
// comes (in completion order); the results are returned in `dirs`' order.
std::vector<OnnxTestResult> runOnnxTests(const std::vector<std::string>& dirs, const OnnxTestOptions& opt,
                                         const std::function<void(const OnnxTestResult&)>& done = {});

// The comparison part alone, in this process, of a model already imported
// (the runner's own tests give it a hand-written one): compile `imported`,
// feed each data set of `dir` by `info`'s input names, run, compare.
OnnxTestResult checkImported(const std::string& dir, const onnxio::Imported& imported, const onnxio::ModelInfo& info,
                             const OnnxTestOptions& opt);

// The .nn name the importer gives an ONNX name: every character outside
// [A-Za-z0-9_] becomes '_', and a leading digit gets a 'v' in front.
std::string nnName(const std::string& onnxName);

// All results as JSON (for scripts/onnx_conformance.py).
std::string resultsJson(const std::vector<OnnxTestResult>& results, const OnnxTestOptions& opt);

}  // namespace nnc::cli
