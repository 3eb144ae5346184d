// nnc import against PyTorch: the models tests/reference/export_onnx_models.py
// exported with torch.onnx.export (PyTorch 1.13), with PyTorch's outputs on a
// batch of 4. Each is imported, compiled as .nn text (as every command does),
// run by the interpreter and by the JIT at batch 4 and compared with
// PyTorch's output; bad files (tests/reference/make_bad_onnx.py) give errors
// that name what is wrong.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>

#include "compiler/interpreter/interpreter.h"
#include "compiler/jit/compiled.h"
#include "io/npy.h"
#include "onnx/onnx_io.h"
#include "test_util.h"

namespace nnc {
namespace {

const char* const kModels[] = {"mlp", "simple_convnet", "small_convnet", "resnet_small", "resnet_small_fused", "mlp_ops"};

std::string fixture(const std::string& name) { return test::sourcePath("tests/data/onnx/" + name); }

struct ImportedModel {
  SourceManager sm;
  std::optional<Elaborated> model;
  onnxio::Imported im;
};

void importAt(ImportedModel& out, const std::string& name, int64_t batch, const onnxio::ImportOptions& base = {}) {
  onnxio::ImportOptions opt = base;
  opt.batch = batch;
  opt.weightsFile = name + ".npz";
  auto im = onnxio::importFile(fixture(name + ".onnx"), opt);
  if (!im) FAIL(im.error().message);
  out.im = im.take();
  cli::MemoryWeights mem{opt.weightsFile, out.im.weights};
  auto m = cli::compileSource(out.sm, name + ".nn", out.im.source, {}, &mem);
  if (!m) FAIL(out.sm.render(m.error()) << "\n" << out.im.source);
  out.model = m.take();
}

void requireMatches(const std::string& what, const std::vector<double>& got, const Tensor& want) {
  REQUIRE(got.size() == want.data.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO(what << "[" << i << "]: nnc " << got[i] << ", PyTorch " << want.data[i]);
    REQUIRE(std::abs(got[i] - want.data[i]) <= 1e-5 + 1e-4 * std::abs(want.data[i]));
  }
}

TEST_CASE("onnx import: PyTorch-exported models match PyTorch, interpreter and JIT", "[onnx-import]") {
  for (const char* name : kModels) {
    DYNAMIC_SECTION(name) {
      ImportedModel m;
      importAt(m, name, 4);
      const Graph& g = m.model->graph;
      auto x = readNpy(fixture(std::string(name) + ".input.npy"));
      auto want = readNpy(fixture(std::string(name) + ".output.npy"));
      REQUIRE(x);
      REQUIRE(want);
      REQUIRE(g.inputs.size() == 1);
      REQUIRE(g.outputs.size() == 1);
      REQUIRE(g.type(g.inputs[0]).shape == x->shape());
      const ValueId out = g.outputs[0].second;
      REQUIRE(g.type(out).shape == want->shape());
      auto params = initParams(g, 42);
      REQUIRE(params);
      TensorMap feeds = *params;
      feeds[g.node(g.inputs[0]).name] = *x;
      auto ref = interpret(g, feeds, EvalOptions{}, {out});
      REQUIRE(ref);
      requireMatches("interpreter", (*ref)[static_cast<size_t>(out)].data, *want);

      auto cp = jit::CompiledProgram::create(g, {out}, LowerOptions{}, jit::CompileOptions{});
      if (!cp) FAIL(cp.error().message);
      for (ValueId v = 0; v < static_cast<ValueId>(g.size()); ++v) {
        float* d = (*cp)->data(v);
        if (!d || g.node(v).op->kind != OpKind::Source || g.node(v).op->name == "const") continue;
        const Tensor& t = (*ref)[static_cast<size_t>(v)];
        for (size_t i = 0; i < t.data.size(); ++i) d[i] = static_cast<float>(t.data[i]);
      }
      (*cp)->run();
      const float* y = (*cp)->data(out);
      requireMatches("JIT", std::vector<double>(y, y + want->numel()), *want);
    }
  }
}

TEST_CASE("onnx import: the source names ONNX's values, declares weights and buffers, keeps the batch dynamic",
          "[onnx-import]") {
  ImportedModel m;
  importAt(m, "resnet_small", 1);
  const std::string& src = m.im.source;
  CHECK(src.find("model resnet_small(batch = 1) {") != std::string::npos);
  CHECK(src.find("input x: f32[batch, 1, 28, 28]") != std::string::npos);
  CHECK(src.find("param conv1_weight: f32[16, 1, 3, 3] = load(\"resnet_small.npz\")") != std::string::npos);
  // Batchnorm's running statistics are buffers: not trained, updated by batchnorm.
  CHECK(src.find("buffer bn1_running_mean: f32[16] = load(\"resnet_small.npz\")") != std::string::npos);
  CHECK(src.find("# BatchNormalization '/bn1/BatchNormalization': [batch, 16, 28, 28]") != std::string::npos);
  CHECK(src.find("momentum = 0.1)") != std::string::npos);
  const Graph& g = m.model->graph;
  CHECK(g.paramCount(true) + 160 == g.paramCount(false));  // 4 batchnorms' mean and var, 16+16+16+32 channels each
  // PyTorch shared bn1's default weights with block.bn2 through Identity: imported as two params.
  CHECK(g.findByName("block_bn2_weight") != kNoValue);
  CHECK(g.findByName("bn1_weight") != kNoValue);

  // x.view(x.size(0), -1): Shape, Gather, Unsqueeze, Concat fold into a reshape by batch.
  ImportedModel c;
  importAt(c, "small_convnet", 1);
  CHECK(c.im.source.find("reshape(MaxPool, [batch, 1152])") != std::string::npos);
  CHECK(c.im.source.find("Shape") == std::string::npos);
  REQUIRE(c.im.inputs == std::vector<std::pair<std::string, std::string>>{{"x", "x"}});
  REQUIRE(c.im.outputs == std::vector<std::pair<std::string, std::string>>{{"logits", "logits"}});
}

TEST_CASE("onnx import: nnc import writes a .nn and an .npz that eval, check and emit-cpp take unchanged",
          "[onnx-import]") {
  const std::string dir = test::tempDir("onnx_import_cli");
  auto r = test::runCli({"import", fixture("resnet_small.onnx"), "-o", dir + "/res.nn"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  REQUIRE(std::filesystem::exists(dir + "/res.npz"));
  CHECK(test::readText(dir + "/res.nn").find("load(\"res.npz\")") != std::string::npos);
  r = test::runCli({"eval", dir + "/res.nn", "--set", "batch=4", "--input", "x=" + fixture("resnet_small.input.npy"),
                    "--output-dir", dir + "/out"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto got = readNpy(dir + "/out/logits.npy");
  auto want = readNpy(fixture("resnet_small.output.npy"));
  REQUIRE(got);
  REQUIRE(want);
  requireMatches("nnc eval of the imported file", got->data, *want);
  // The .onnx file itself, imported in memory.
  r = test::runCli({"eval", fixture("resnet_small.onnx"), "--set", "batch=4", "--input",
                    "x=" + fixture("resnet_small.input.npy"), "--output-dir", dir + "/out2"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  got = readNpy(dir + "/out2/logits.npy");
  REQUIRE(got);
  requireMatches("nnc eval of the .onnx file", got->data, *want);
  // A weights file that no longer matches the source: the param and both shapes named, with a caret.
  REQUIRE(writeNpz(dir + "/res.npz", {{"conv1_weight", Tensor(TensorType{DType::F32, {2, 2}})}}));
  r = test::runCli({"check", dir + "/res.nn"});
  CHECK(r.code == 1);
  CHECK(r.err.find("res.nn:") != std::string::npos);
  CHECK(r.err.find("param 'conv1_weight' is declared [16, 1, 3, 3] but 'conv1_weight' in") != std::string::npos);
  CHECK(r.err.find("^") != std::string::npos);
  // An .onnx file has no loss: nnc run says how to give it one.
  r = test::runCli({"run", fixture("mlp.onnx"), "--iterations", "1"});
  CHECK(r.code == 1);
  CHECK(r.err.find("an ONNX model holds no loss; `nnc import") != std::string::npos);
  std::filesystem::remove(dir + "/res.npz");
  r = test::runCli({"check", dir + "/res.nn"});
  CHECK(r.code == 1);
  CHECK(r.err.find("load(\"res.npz\")") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("onnx import: --loss adds a label, the loss and a train block; fine-tuning lowers the loss",
          "[onnx-import]") {
  const std::string dir = test::tempDir("onnx_finetune");
  auto r = test::runCli({"import", fixture("small_convnet.onnx"), "-o", dir + "/cnn.nn", "--batch", "32", "--loss",
                         "softmax_cross_entropy"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  const std::string src = test::readText(dir + "/cnn.nn");
  CHECK(src.find("label t: i32[batch]") != std::string::npos);
  CHECK(src.find("loss = softmax_cross_entropy(logits, t)") != std::string::npos);
  CHECK(src.find("train small_convnet {") != std::string::npos);
  // 100 steps of Adam on Fashion-MNIST from PyTorch's (untrained) weights.
  r = test::runCli({"run", dir + "/cnn.nn", "--iterations", "100", "--log-every", "10", "--metrics",
                    dir + "/m.csv", "-q", "--threads", "1"});
  INFO(r.err << r.out);
  REQUIRE(r.code == 0);
  const std::string csv = test::readText(dir + "/m.csv");
  // The train losses logged every 10 steps (columns epoch,step,split,loss,...).
  std::vector<double> losses;
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);
  REQUIRE(line.rfind("epoch,step,split,loss,", 0) == 0);
  while (std::getline(lines, line)) {
    std::vector<std::string> cells;
    std::istringstream cs(line);
    for (std::string c; std::getline(cs, c, ',');) cells.push_back(c);
    if (cells.size() > 3 && cells[2] == "train" && !cells[3].empty()) losses.push_back(std::stod(cells[3]));
  }
  INFO(csv);
  REQUIRE(losses.size() >= 5);
  CHECK(losses.front() > 2.0);  // ten classes from untrained weights: about ln 10
  CHECK(losses.back() < 0.5 * losses.front());
  std::filesystem::remove_all(dir);
}

TEST_CASE("onnx round trip: .nn -> export-onnx -> import -> .nn gives the same outputs", "[onnx-import]") {
  struct Case {
    const char* example;
    std::vector<int64_t> input;  // per sample
  };
  const Case cases[] = {{"examples/mnist_mlp.nn", {784}},
                        {"examples/simple_convnet.nn", {1, 28, 28}},
                        {"examples/cnn/mobile_resnet.nn", {1, 28, 28}},
                        {"examples/cnn/vgg.nn", {1, 28, 28}}};
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.example) {
      const std::string dir = test::tempDir("onnx_round_trip");
      Shape shape = {3};
      shape.insert(shape.end(), c.input.begin(), c.input.end());
      Tensor x(TensorType{DType::F32, shape});
      for (size_t i = 0; i < x.data.size(); ++i) x.data[i] = std::sin(0.37 * double(i)) * 0.8;
      REQUIRE(writeNpy(dir + "/x.npy", x));
      const std::string src = test::sourcePath(c.example);
      auto r = test::runCli({"export-onnx", src, "-o", dir + "/m.onnx"});
      INFO(r.err);
      REQUIRE(r.code == 0);
      r = test::runCli({"import", dir + "/m.onnx", "-o", dir + "/back.nn"});
      INFO(r.err);
      REQUIRE(r.code == 0);
      for (const auto& [file, out] : {std::pair{src, "/a"}, std::pair{dir + "/back.nn", "/b"}}) {
        r = test::runCli({"eval", file, "--set", "batch=3", "--input", "x=" + dir + "/x.npy", "--output-dir", dir + out});
        INFO(r.err);
        REQUIRE(r.code == 0);
      }
      auto a = readNpy(dir + "/a/probs.npy"), b = readNpy(dir + "/b/probs.npy");
      REQUIRE(a);
      REQUIRE(b);
      REQUIRE(a->shape() == b->shape());
      requireMatches("round trip", b->data, *a);
      std::filesystem::remove_all(dir);
    }
  }
}

TEST_CASE("onnx import: malformed and unsupported models are refused in words, every problem listed",
          "[onnx-import]") {
  struct Case {
    const char* file;
    std::vector<std::string> fragments;
  };
  const Case cases[] = {
      {"truncated.onnx", {"not an ONNX model", "does not parse"}},
      {"random.onnx", {"not an ONNX model"}},
      {"tensor.onnx", {"not an ONNX model"}},
      {"opset99.onnx", {"opset 99", "nnc imports opsets 1 to 17"}},
      {"domain.onnx", {"not a valid ONNX model", "com.example", "custom1"}},
      {"dim0.onnx", {"graph input 'x'", "size 0 on axis 1"}},
      {"dim2p40.onnx", {"graph input 'x'", "size 1099511627776 on axis 1"}},
      {"init2p40.onnx", {"not a valid ONNX model", "tensor name: h"}},
      {"external_missing.onnx", {"missing_weights.bin", "doesn't exist"}},
      {"cycle.onnx", {"topologically sorted", "r1"}},
      {"undefined_input.onnx", {"'nowhere'", "add_undef"}},
      {"unsupported3.onnx",
       {"3 problems", "node 'erf1' (Erf): op not supported", "node 'conv_dilated' (Conv): attribute dilations = [2, 2]",
        "node 'pad1' (Pad): op not supported"}},
  };
  for (const Case& c : cases) {
    DYNAMIC_SECTION(c.file) {
      auto r = onnxio::importFile(fixture(std::string("bad/") + c.file), {});
      REQUIRE_FALSE(r);
      for (const std::string& f : c.fragments) {
        INFO(r.error().message);
        CHECK(r.error().message.find(f) != std::string::npos);
      }
      // The command says the same and exits 1.
      auto cli = test::runCli({"check", fixture(std::string("bad/") + c.file)});
      CHECK(cli.code == 1);
      CHECK(cli.err.find(c.fragments[0]) != std::string::npos);
    }
  }
  auto missing = onnxio::importFile(fixture("bad/no_such_file.onnx"), {});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("cannot be read") != std::string::npos);
}

}  // namespace
}  // namespace nnc
