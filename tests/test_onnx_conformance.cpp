// The ONNX conformance runner (cli/onnx_conformance.h) over Debian's
// libonnx-testdata, and readTensorProto on its files. Without the package
// (/usr/share/libonnx-testdata) these tests pass with a warning.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <array>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "cli/onnx_conformance.h"
#include "io/file_io.h"
#include "onnx/model_info.h"
#include "onnx/onnx_io.h"
#include "test_util.h"

using namespace nnc;
using namespace nnc::cli;

namespace {

const std::string kData = "/usr/share/libonnx-testdata/data";

bool haveData() {
  std::error_code ec;
  if (std::filesystem::is_directory(kData + "/node/test_relu", ec)) return true;
  WARN("no ONNX test data at " << kData << " (Debian's libonnx-testdata): not checked");
  return false;
}

std::string read(const std::string& path) {
  auto b = readFile(path);
  REQUIRE(b);
  return b.take();
}

}  // namespace

TEST_CASE("readTensorProto reads node/test_relu's input and output", "[onnx-conformance]") {
  if (!haveData()) return;
  const std::string dir = kData + "/node/test_relu/test_data_set_0/";
  std::string name;
  auto x = onnxio::readTensorProto(read(dir + "input_0.pb"), "input_0.pb", &name);
  REQUIRE(x);
  CHECK(x->type.shape == Shape{3, 4, 5});
  CHECK(name == "x");
  auto type = onnxio::tensorProtoElemType(read(dir + "input_0.pb"), "input_0.pb");
  REQUIRE(type);
  CHECK(*type == 1);  // float
  auto y = onnxio::readTensorProto(read(dir + "output_0.pb"), "output_0.pb");
  REQUIRE(y);
  REQUIRE(y->type.shape == Shape{3, 4, 5});
  for (size_t i = 0; i < x->data.size(); ++i) CHECK(y->data[i] == std::max(x->data[i], 0.0));
}

TEST_CASE("readTensorProto refuses a truncated file in words", "[onnx-conformance]") {
  if (!haveData()) return;
  const std::string bytes = read(kData + "/node/test_relu/test_data_set_0/input_0.pb");
  // Cut inside the raw data: either the parse fails or the byte count does not match the dims.
  for (size_t keep : {bytes.size() / 2, bytes.size() - 1, size_t{3}}) {
    auto t = onnxio::readTensorProto(bytes.substr(0, keep), "cut.pb");
    REQUIRE_FALSE(t);
    CHECK_THAT(t.error().message, Catch::StartsWith("cut.pb: "));
  }
}

TEST_CASE("modelInfo lists node/test_add_bcast's ops, inputs and outputs", "[onnx-conformance]") {
  if (!haveData()) return;
  auto info = onnxio::modelInfo(read(kData + "/node/test_add_bcast/model.onnx"), "model.onnx");
  REQUIRE(info);
  CHECK(info->opTypes == std::vector<std::string>{"Add"});
  CHECK(info->inputs == std::vector<std::string>{"x", "y"});
  CHECK(info->outputs == std::vector<std::string>{"sum"});
  CHECK_FALSE(onnxio::modelInfo("not a model", "junk"));
}

TEST_CASE("the runner compares a hand-written model with node/test_relu's data", "[onnx-conformance]") {
  if (!haveData()) return;
  const std::string dir = kData + "/node/test_relu";
  const onnxio::ModelInfo info{{"Relu"}, {"x"}, {"y"}, 13};
  OnnxTestOptions opt;
  opt.interpreter = true;
  onnxio::Imported right{"model test_relu {\n  input x: f32[3, 4, 5]\n  output y = relu(x)\n}\n", {}};
  OnnxTestResult r = checkImported(dir, right, info, opt);
  INFO(r.message);
  CHECK(r.outcome == OnnxOutcome::Pass);
  CHECK(r.dataSets == 1);

  onnxio::Imported wrong{"model test_relu {\n  input x: f32[3, 4, 5]\n  output y = identity(x)\n}\n", {}};
  r = checkImported(dir, wrong, info, opt);
  CHECK(r.outcome == OnnxOutcome::Fail);
  CHECK_THAT(r.message, Catch::Contains("output 'y' (JIT):") && Catch::Contains("values differ"));

  onnxio::Imported shape{"model test_relu {\n  input x: f32[3, 4, 5]\n  output y = sum(relu(x))\n}\n", {}};
  r = checkImported(dir, shape, info, opt);
  CHECK(r.outcome == OnnxOutcome::Fail);
  CHECK_THAT(r.message, Catch::Contains("shape [], the test expects [3, 4, 5]"));

  onnxio::Imported bad{"model test_relu { input x: f32[3, 4, 5] output y = nosuchop(x) }", {}};
  r = checkImported(dir, bad, info, opt);
  CHECK(r.outcome == OnnxOutcome::Fail);
  CHECK_THAT(r.message, Catch::StartsWith("the imported .nn does not compile"));
}

TEST_CASE("nnName sanitizes ONNX names as the importer does", "[onnx-conformance]") {
  CHECK(nnName("x") == "x");
  CHECK(nnName("input:0") == "input_0");
  CHECK(nnName("0") == "v0");
  CHECK(nnName("conv1/W.b") == "conv1_W_b");
}

TEST_CASE("the runner finds test folders and skips real/'s download pointers", "[onnx-conformance]") {
  if (!haveData()) return;
  auto dirs = onnxTestDirs({kData + "/real"});
  REQUIRE(dirs);
  REQUIRE_FALSE(dirs->empty());
  const OnnxTestResult r = runOnnxTest(dirs->front(), {});
  CHECK(r.outcome == OnnxOutcome::Skipped);
  CHECK(r.folder == "real");
  CHECK_FALSE(onnxTestDirs({kData + "/node/test_relu/test_data_set_0"}));
  CHECK_FALSE(onnxTestDirs({kData + "/no/such/folder"}));
}

TEST_CASE("a test that crashes or hangs fails alone", "[onnx-conformance]") {
  if (!haveData()) return;
  const std::vector<std::string> dirs = {kData + "/node/test_relu", kData + "/node/test_abs"};
  OnnxTestOptions opt;
  opt.timeoutSeconds = 0.5;
  opt.jobs = 2;
  opt.beforeImport = [] { std::raise(SIGSEGV); };
  auto rs = runOnnxTests(dirs, opt);
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].name == "node/test_relu");
  CHECK(rs[1].name == "node/test_abs");
  for (const OnnxTestResult& r : rs) {
    CHECK(r.outcome == OnnxOutcome::Fail);
    CHECK_THAT(r.message, Catch::StartsWith("crashed (Segmentation fault) while importing"));
  }
  opt.beforeImport = [] { ::sleep(30); };
  const OnnxTestResult r = runOnnxTest(dirs[0], opt);
  CHECK(r.outcome == OnnxOutcome::Fail);
  CHECK(r.message == "timed out after 0.5 s while importing");
  CHECK(r.seconds < 5);
}

// Models the importer supports from the start (issue 20), one by one.
TEST_CASE("known-supported ONNX tests pass", "[onnx-conformance]") {
  if (!haveData()) return;
  for (const char* t : {"node/test_relu", "node/test_add_bcast", "node/test_conv_with_strides_padding",
                        "pytorch-converted/test_Conv2d",
                        // rows near 1e4: the JIT's softmax once subtracted a log-sum-exp rounded to f32
                        "node/test_softmax_large_number", "node/test_logsoftmax_large_number",
                        // asymmetric pads and ceil_mode: a wider symmetric pad and a slice
                        "node/test_maxpool_2d_same_upper", "node/test_maxpool_2d_same_lower",
                        "node/test_averagepool_2d_same_upper", "node/test_averagepool_2d_ceil",
                        "node/test_maxpool_2d_ceil", "node/test_convtranspose_autopad_same",
                        "node/test_convtranspose_output_shape", "node/test_conv_with_autopad_same",
                        // batchnorm statistics as graph inputs; opset 1
                        "node/test_batchnorm_example", "node/test_globalaveragepool"}) {
    const OnnxTestResult r = runOnnxTest(kData + "/" + t, {});
    INFO(t << ": " << outcomeName(r.outcome) << ": " << r.message);
    CHECK(r.outcome == OnnxOutcome::Pass);
  }
}

// Every node test of a supported op and attribute set must pass: the
// importer may refuse a model (unsupported), but what it imports must be
// right. Two at a time, each on one thread.
TEST_CASE("no ONNX conformance test fails", "[onnx-conformance]") {
  if (!haveData()) return;
  auto dirs = onnxTestDirs({kData + "/node", kData + "/pytorch-converted", kData + "/pytorch-operator",
                            kData + "/simple"});
  REQUIRE(dirs);
  OnnxTestOptions opt;
  opt.jobs = 2;
  opt.timeoutSeconds = 30;
  const auto start = std::chrono::steady_clock::now();
  std::array<int, 4> n{};
  for (const OnnxTestResult& r : runOnnxTests(*dirs, opt)) {
    ++n[static_cast<size_t>(r.outcome)];
    if (r.outcome == OnnxOutcome::Fail) FAIL_CHECK(r.name << ": " << r.message);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN(dirs->size() << " tests in " << s << " s: " << n[0] << " passed, " << n[1] << " failed, " << n[2]
                    << " unsupported, " << n[3] << " skipped");
  CHECK(n[1] == 0);
}
