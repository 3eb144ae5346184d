// nnc export-onnx (onnx/export.cpp): the exported ModelProto's structure,
// ONNX's checker on the examples, and the real check, ONNX Runtime
// (scripts/ort_run.js over npm's onnxruntime-node) computing what nnc's
// reference interpreter computes, at two batch sizes from one file.
#include <catch2/catch.hpp>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "compiler/interpreter/interpreter.h"
#include "io/npy.h"
#include "onnx/onnx_io.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::readText;
using nnc::test::runCli;
using nnc::test::sourcePath;
using nnc::test::tempDir;

namespace {

// `rel`: under the source tree, or an absolute path (a model a test wrote).
Elaborated build(const std::string& rel, int64_t batch) {
  SourceManager sm;
  ElaborateOptions eo;
  eo.defaults["batch"] = batch;
  auto e = cli::compileSource(sm, rel, readText(rel.starts_with('/') ? rel : sourcePath(rel)), eo);
  if (!e) FAIL(sm.render(e.error()));
  return e.take();
}

struct Export {
  Elaborated model;
  TensorMap params;
  onnxio::Exported ex;
};

// The example at `batch` (and once more at batch + 1, for its batch axes),
// its params initialized; with randomStats batchnorm's running statistics,
// scale and shift are drawn (scales 0.5 to 1.5, shifts -0.2 to 0.2) so that
// its inference form is really exercised.
Export exportExample(const std::string& rel, int64_t batch = 2, int opset = 13, bool randomStats = false) {
  Export r{build(rel, batch), {}, {}};
  const Elaborated other = build(rel, batch + 1);
  auto p = initParams(r.model.graph, 42);
  REQUIRE(p);
  r.params = p.take();
  if (randomStats) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> scale(0.5, 1.5), shift(-0.2, 0.2);
    auto endsWith = [](const std::string& s, const std::string& e) {
      return s.size() >= e.size() && s.compare(s.size() - e.size(), e.size(), e) == 0;
    };
    for (auto& [name, t] : r.params) {
      const bool isScale = endsWith(name, ".running_var") || endsWith(name, ".gamma");
      if (isScale || endsWith(name, ".running_mean") || endsWith(name, ".beta"))
        for (double& x : t.data) x = isScale ? scale(rng) : shift(rng);
    }
  }
  auto ex = onnxio::exportModel(r.model.graph, r.params, {.opset = opset, .otherBatch = &other.graph});
  if (!ex) FAIL(rel << ": " << ex.error().message);
  r.ex = ex.take();
  return r;
}

std::vector<std::string> opsOf(const onnxio::ModelOutline& o) {
  std::vector<std::string> ops;
  for (const auto& n : o.nodes) ops.push_back(n.op);
  return ops;
}

const onnxio::ModelOutline::NodeInfo* firstNode(const onnxio::ModelOutline& o, const std::string& op) {
  for (const auto& n : o.nodes)
    if (n.op == op) return &n;
  return nullptr;
}

uint32_t bitsOf(double v) { return std::bit_cast<uint32_t>(static_cast<float>(v)); }

}  // namespace

TEST_CASE("export-onnx: examples pass ONNX's checker and strict shape inference", "[onnx-export]") {
  for (const char* rel : {"examples/mnist_mlp.nn", "examples/simple_convnet.nn", "examples/cnn/vgg.nn",
                          "examples/cnn/mobile_resnet.nn", "examples/batchnorm/on.nn", "examples/overfitting/dropout.nn",
                          "examples/blocks/residual.nn", "examples/blocks/depthwise_separable.nn",
                          "examples/autoencoder/conv_anomaly.nn"}) {
    INFO(rel);
    for (int opset : {11, 13, 17}) {
      const Export e = exportExample(rel, 2, opset);
      CHECK(onnxio::checkModel(e.ex.bytes));
      auto o = onnxio::outlineModel(e.ex.bytes);
      REQUIRE(o);
      CHECK(o->opset == opset);
      CHECK(o->irVersion == (opset == 11 ? 6 : opset == 13 ? 7 : 8));
    }
  }
}

TEST_CASE("export-onnx: mnist_mlp is Gemms on the params, bit for bit, with a dynamic batch", "[onnx-export]") {
  const Export e = exportExample("examples/mnist_mlp.nn");
  auto o = onnxio::outlineModel(e.ex.bytes);
  REQUIRE(o);
  CHECK(opsOf(*o) == std::vector<std::string>{"Gemm", "Relu", "Gemm", "Relu", "Gemm", "Softmax", "Identity"});
  // The labels and the loss are left out.
  REQUIRE(o->inputs.size() == 1);
  CHECK(o->inputs[0].name == "x");
  CHECK(o->inputs[0].elemType == 1);
  CHECK(o->inputs[0].dims == std::vector<std::string>{"batch", "784"});
  REQUIRE(o->outputs.size() == 1);
  CHECK(o->outputs[0].name == "probs");
  CHECK(o->outputs[0].dims == std::vector<std::string>{"batch", "10"});
  CHECK(o->nodes[0].inputs == std::vector<std::string>{"x", "W1", "b1"});
  REQUIRE(o->initializers.size() == 6);
  for (const auto& [name, t] : e.params) {
    INFO(name);
    REQUIRE(o->initializers.count(name));
    const Tensor& init = o->initializers.at(name);
    CHECK(init.type.shape == t.type.shape);
    size_t same = 0;
    for (size_t i = 0; i < t.data.size(); ++i) same += bitsOf(init.data[i]) == bitsOf(t.data[i]);
    CHECK(same == t.data.size());
  }
  // W1 is He-initialized: the comparison above is of real values.
  CHECK(std::abs(o->initializers.at("W1").data[0]) > 0);
}

TEST_CASE("export-onnx: batchnorm in inference form, dropout removed, convolution attributes", "[onnx-export]") {
  const Export bn = exportExample("examples/cnn/mobile_resnet.nn", 2, 13, true);
  auto o = onnxio::outlineModel(bn.ex.bytes);
  REQUIRE(o);
  const auto* b = firstNode(*o, "BatchNormalization");
  REQUIRE(b);
  CHECK(b->inputs.size() == 5);  // scale, bias and the running mean and variance
  CHECK(b->attrs.at("momentum") == "0.9");  // nnc's (PyTorch's) 0.1
  CHECK(b->attrs.at("epsilon") == "1e-05");
  const auto* conv = firstNode(*o, "Conv");
  REQUIRE(conv);
  CHECK(conv->attrs.at("pads") == "[1, 1, 1, 1]");
  CHECK(conv->attrs.at("kernel_shape") == "[3, 3]");
  size_t depthwise = 0;
  for (const auto& n : o->nodes) depthwise += n.op == "Conv" && n.attrs.at("group") == "64";
  CHECK(depthwise == 1);
  CHECK(firstNode(*o, "ReduceMean"));
  for (ValueId v : bn.model.graph.params) {
    const std::string& name = bn.model.graph.node(v).name;
    REQUIRE(o->initializers.count(name));
    CHECK(bitsOf(o->initializers.at(name).data.back()) == bitsOf(bn.params.at(name).data.back()));
  }

  const Export dr = exportExample("examples/overfitting/dropout.nn");
  auto d = onnxio::outlineModel(dr.ex.bytes);
  REQUIRE(d);
  for (const auto& n : d->nodes) {
    CHECK(n.op != "Dropout");
    CHECK(n.op != "ConstantOfShape");
    CHECK(n.op != "Mul");
  }
  CHECK(opsOf(*d).size() == 6 * 2 + 3);  // (Gemm, Relu) x 6, Gemm, Softmax, Identity

  const Export cnn = exportExample("examples/simple_convnet.nn");
  auto c = onnxio::outlineModel(cnn.ex.bytes);
  REQUIRE(c);
  const auto* pool = firstNode(*c, "MaxPool");
  REQUIRE(pool);
  CHECK(pool->attrs.at("strides") == "[2, 2]");
  CHECK(firstNode(*c, "Flatten"));
  CHECK(c->inputs[0].dims == std::vector<std::string>{"batch", "1", "28", "28"});
}

TEST_CASE("export-onnx: reshape copies the batch axis, softmax before opset 13, avgpool counts padding",
          "[onnx-export]") {
  const std::string src = R"(
model m(batch = 3) {
    input x: f32[batch, 2, 4, 4]
    a = avgpool2d(x, kernel = 3, stride = 1, pad = 1)
    r = reshape(a, shape = [batch, 2, 16])
    s = softmax(r, axis = 1)
    output y = reshape(square(s) + step(r), shape = [batch, 32])
}
)";
  SourceManager sm;
  auto a = cli::compileSource(sm, "m.nn", src, {.defaults = {{"batch", 3}}});
  auto b = cli::compileSource(sm, "m.nn", src, {.defaults = {{"batch", 4}}});
  REQUIRE(a);
  REQUIRE(b);
  for (int opset : {11, 13}) {
    auto ex = onnxio::exportModel(a->graph, {}, {.opset = opset, .otherBatch = &b->graph});
    if (!ex) FAIL(ex.error().message);
    auto o = onnxio::outlineModel(ex->bytes);
    REQUIRE(o);
    CHECK(firstNode(*o, "AveragePool")->attrs.at("count_include_pad") == "1");
    std::vector<std::vector<double>> shapes;
    for (const auto& n : o->nodes)
      if (n.op == "Reshape") shapes.push_back(o->initializers.at(n.inputs[1]).data);
    CHECK(shapes == std::vector<std::vector<double>>{{0, 2, 16}, {0, 32}});
    // Opset 11's Softmax flattens from its axis: axis 1 of 3 goes last and back.
    const auto ops = opsOf(*o);
    CHECK(std::count(ops.begin(), ops.end(), "Transpose") == (opset == 11 ? 2 : 0));
    CHECK(std::count(ops.begin(), ops.end(), "Cast") == 1);  // step
    CHECK(o->outputs[0].dims == std::vector<std::string>{"batch", "32"});
  }
}

TEST_CASE("export-onnx: every op without an ONNX form is named at once", "[onnx-export]") {
  const std::string src = R"(
model m(batch = 2) {
    input x: f32[batch, 4]
    label t: i32[batch]
    param W: f32[4, 3] = he()
    h = x @ W
    loss = softmax_cross_entropy(h, t)
    output a = l2(h)
    output b = l1(h)
    output acc = accuracy(h, t)
}
)";
  SourceManager sm;
  auto m = cli::compileSource(sm, "m.nn", src);
  REQUIRE(m);
  auto p = initParams(m->graph, 42);
  REQUIRE(p);
  auto ex = onnxio::exportModel(m->graph, *p, {});
  REQUIRE_FALSE(ex);
  const std::string& msg = ex.error().message;
  CHECK_THAT(msg, Catch::Contains("export-onnx: node 'a' (op l2) has no ONNX form"));
  CHECK_THAT(msg, Catch::Contains("export-onnx: node 'b' (op l1) has no ONNX form"));
  // accuracy reads the labels: it is left out, not refused.
  CHECK_THAT(msg, !Catch::Contains("accuracy"));

  const std::string dir = tempDir("onnx_export_bad");
  std::ofstream(dir + "/m.nn") << src;
  auto r = runCli({"export-onnx", dir + "/m.nn", "-o", dir + "/m.onnx"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("(op l2) has no ONNX form"));
  CHECK_FALSE(std::filesystem::exists(dir + "/m.onnx"));
}

TEST_CASE("export-onnx: a value that changes with the batch is refused, or fixed with --static-batch",
          "[onnx-export]") {
  const std::string dir = tempDir("onnx_export_static");
  std::ofstream(dir + "/m.nn") << R"(
model m(batch = 4) {
    input x: f32[batch, 3]
    output avg = sum(x, axis = 1) / batch
}
)";
  auto r = runCli({"export-onnx", dir + "/m.nn", "-o", dir + "/m.onnx"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("(op const) changes with the batch size") && Catch::Contains("--static-batch"));
  CHECK_FALSE(std::filesystem::exists(dir + "/m.onnx"));
  r = runCli({"export-onnx", dir + "/m.nn", "-o", dir + "/m.onnx", "--static-batch", "--set", "batch=6"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, !Catch::Contains("dynamic"));
  auto o = onnxio::outlineModel(readText(dir + "/m.onnx"));
  REQUIRE(o);
  CHECK(o->inputs[0].dims == std::vector<std::string>{"6", "3"});
  CHECK(o->outputs[0].dims == std::vector<std::string>{"6"});

  // An axis of half the batch is dynamic too, but not "batch" (the model is
  // built at 4 and, as it needs an even batch, at 8 to see it).
  std::ofstream(dir + "/h.nn") << "model h(batch = 4) {\n input x: f32[batch, 3]\n"
                                  " output y = reshape(x, shape = [batch // 2, 6])\n}\n";
  r = runCli({"export-onnx", dir + "/h.nn", "-o", dir + "/h.onnx"});
  REQUIRE(r.code == 0);
  o = onnxio::outlineModel(readText(dir + "/h.onnx"));
  REQUIRE(o);
  CHECK(o->inputs[0].dims == std::vector<std::string>{"batch", "3"});
  CHECK(o->outputs[0].dims == std::vector<std::string>{"y_0", "6"});
  CHECK(o->initializers.begin()->second.data == std::vector<double>{-1, 6});

  // Shapes ONNX cannot write for every batch: a reshape with two axes to
  // infer, a broadcast that creates the batch axis.
  for (const auto& [body, want] :
       {std::pair{"input x: f32[batch, 2 * batch]\n output y = reshape(x, shape = [2 * batch, batch])",
                  "makes 2 axes follow the batch"},
        std::pair{"input x: f32[batch, 4]\n param p: f32[4] = he()\n output y = x + broadcast_to(p, shape = [batch, 4])",
                  "(op broadcast_to) makes a new axis of the batch's size"}}) {
    INFO(body);
    std::ofstream(dir + "/b.nn") << "model b(batch = 2) {\n" << body << "\n}\n";
    r = runCli({"export-onnx", dir + "/b.nn", "-o", dir + "/b.onnx"});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains(want) && Catch::Contains("--static-batch"));
    r = runCli({"export-onnx", dir + "/b.nn", "-o", dir + "/b.onnx", "--static-batch"});
    CHECK(r.code == 0);
  }
}

TEST_CASE("export-onnx: the command writes a checked file, refuses bad paths and opsets", "[onnx-export]") {
  const std::string dir = tempDir("onnx_export_cli");
  const std::string model = sourcePath("examples/mnist_mlp.nn");
  auto r = runCli({"export-onnx", model, "-o", dir + "/m.onnx", "--opset", "15"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("opset 15") && Catch::Contains("dynamic batch"));
  const std::string bytes = readText(dir + "/m.onnx");
  CHECK(onnxio::checkModel(bytes));
  CHECK(onnxio::outlineModel(bytes)->opset == 15);

  // --weights: the file's values, not the initial ones.
  auto p = initParams(build("examples/mnist_mlp.nn", 100).graph, 42);
  REQUIRE(p);
  for (auto& [_, t] : *p)
    for (double& v : t.data) v = 0.25;
  REQUIRE(writeNpz(dir + "/w.npz", *p));
  r = runCli({"export-onnx", model, "--weights", dir + "/w.npz", "-o", dir + "/w.onnx"});
  REQUIRE(r.code == 0);
  CHECK(onnxio::outlineModel(readText(dir + "/w.onnx"))->initializers.at("b2").data[3] == 0.25);

  std::ofstream(dir + "/file") << "x";
  for (const std::string& bad : {dir + "/file/m.onnx", dir + "/no/such/folder/m.onnx", dir}) {
    INFO(bad);
    r = runCli({"export-onnx", model, "-o", bad});
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("-o"));
  }
  CHECK(std::distance(std::filesystem::directory_iterator(dir), {}) == 4);  // m.onnx, w.npz, w.onnx, file
  r = runCli({"export-onnx", model, "-o", dir + "/x.onnx", "--opset", "9"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("--opset takes 11 to 17"));
  r = runCli({"export-onnx", model});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("needs -o"));
}

namespace {

std::string ortDir() {
  const char* d = std::getenv("NNC_ORT_DIR");
  return d && *d ? d : "/opt/nnc-ort";
}

bool ortAvailable() {
  if (std::system("node --version >/dev/null 2>&1") != 0) {
    WARN("node is not installed: the ONNX Runtime cross-check is skipped");
    return false;
  }
  if (!std::filesystem::exists(ortDir() + "/node_modules/onnxruntime-node")) {
    WARN("onnxruntime-node is not in " << ortDir() << " (scripts/install-deps.sh installs it; NNC_ORT_DIR moves "
                                          "it): the ONNX Runtime cross-check is skipped");
    return false;
  }
  return true;
}

// The example exported once (at batch 2, dynamic), then run by ONNX Runtime
// and by the reference interpreter (f32, inference) on the same random
// inputs at each batch size.
// With requireSpread, each output must not be one value throughout (random
// inputs that do reach it); the every-example test leaves that out (a step
// of random inputs can be all zeros, and that is still a comparison).
void crossCheck(const std::string& rel, const std::string& dir, int opset = 13, bool requireSpread = true) {
  const Export e = exportExample(rel, 2, opset, true);
  const std::string file = dir + "/model.onnx";
  std::ofstream(file, std::ios::binary) << e.ex.bytes;
  std::mt19937 rng(1);
  std::uniform_real_distribution<double> u(-1, 1);
  for (int64_t batch : {1, 5}) {
    INFO(rel << " at batch " << batch << ", opset " << opset);
    const Elaborated m = build(rel, batch);
    TensorMap feeds = e.params;
    std::string args;
    for (ValueId v : m.graph.inputs) {
      Tensor t(m.graph.type(v));
      for (double& x : t.data) x = static_cast<float>(u(rng));
      const std::string npy = fmt::format("{}/{}_{}.npy", dir, m.graph.node(v).name, batch);
      REQUIRE(writeNpy(npy, t));
      args += fmt::format(" '{}={}'", m.graph.node(v).name, npy);
      feeds[m.graph.node(v).name] = std::move(t);
    }
    const std::string out = fmt::format("{}/out_{}", dir, batch);
    const std::string cmd = fmt::format("node '{}' '{}' '{}'{} >'{}/ort.log' 2>&1", sourcePath("scripts/ort_run.js"),
                                        file, out, args, dir);
    const int rc = std::system(cmd.c_str());
    INFO(readText(dir + "/ort.log"));
    REQUIRE(rc == 0);
    // The outputs the file has: those that read labels were left out.
    std::vector<std::pair<std::string, ValueId>> outputs;
    std::vector<ValueId> targets;
    for (const auto& [name, v] : m.graph.outputs)
      if (std::find(e.ex.skipped.begin(), e.ex.skipped.end(), name) == e.ex.skipped.end()) {
        outputs.emplace_back(name, v);
        targets.push_back(v);
      }
    REQUIRE_FALSE(outputs.empty());
    auto want = interpret(m.graph, feeds, EvalOptions{}, targets);
    REQUIRE(want);
    for (const auto& [name, v] : outputs) {
      INFO("output " << name);
      auto got = readNpy(out + "/" + name + ".npy");
      REQUIRE(got);
      const Tensor& w = (*want)[static_cast<size_t>(v)];
      REQUIRE(got->type.shape == w.type.shape);
      size_t bad = 0;
      double spread = 0;
      for (size_t i = 0; i < w.data.size(); ++i) {
        bad += !(std::abs(got->data[i] - w.data[i]) <= 1e-5 + 1e-4 * std::abs(w.data[i]));
        spread = std::max(spread, std::abs(w.data[i] - w.data[0]));
      }
      CHECK(bad == 0);
      if (requireSpread && w.data.size() > 1) CHECK(spread > 0);  // not all one value: the comparison says something
    }
  }
}

}  // namespace

TEST_CASE("export-onnx: ONNX Runtime computes what the interpreter does (mnist_mlp, dropout, rnn)",
          "[onnx-export][ort]") {
  if (!ortAvailable()) return;
  const std::string dir = tempDir("onnx_ort_mlp");
  crossCheck("examples/mnist_mlp.nn", dir);
  crossCheck("examples/overfitting/dropout.nn", dir);
  crossCheck("examples/rnn/binary_addition.nn", dir);  // slices and reshapes of the batch, concat; accuracy left out
}

TEST_CASE("export-onnx: ONNX Runtime computes what the interpreter does (simple_convnet, conv_anomaly)",
          "[onnx-export][ort]") {
  if (!ortAvailable()) return;
  crossCheck("examples/simple_convnet.nn", tempDir("onnx_ort_convnet"));
  crossCheck("examples/autoencoder/conv_anomaly.nn", tempDir("onnx_ort_convnet"));  // ConvTranspose, output_padding
}

TEST_CASE("export-onnx: ONNX Runtime computes what the interpreter does (mobile_resnet, batchnorm)",
          "[onnx-export][ort]") {
  if (!ortAvailable()) return;
  crossCheck("examples/cnn/mobile_resnet.nn", tempDir("onnx_ort_resnet"));
}

// Every op the exporter maps, through ONNX Runtime: the ranks, attributes
// and broadcasts the examples do not reach (a rank-3 MatMul, transposed
// operands, softmax off the last axis, slice steps, ConvTranspose with
// output_padding, padded pooling, Expand, step, normal's inference form, an
// i32 argmax output).
TEST_CASE("export-onnx: ONNX Runtime computes what the interpreter does (every mapped op)", "[onnx-export][ort]") {
  if (!ortAvailable()) return;
  const std::string dir = tempDir("onnx_ort_ops");
  std::ofstream(dir + "/ops.nn") << R"(
model ops(batch = 3) {
    input x: f32[batch, 4, 6]
    input y: f32[batch, 2, 6, 6]
    param W: f32[6, 5] = he()
    param V: f32[6, 5] = he()
    param K: f32[3, 2, 3, 3] = he()
    param kb: f32[3] = [0.1, -0.2, 0.3]
    param T: f32[3, 2, 2, 2] = he()

    pm = matmul(W, V, transpose_a = 1)                           # [5, 5]
    a  = (x @ W) @ pm                                             # [batch, 4, 5]
    b  = matmul(a, V, transpose_b = 1)                            # [batch, 4, 6]
    e  = leaky_relu(b, 0.1) + abs(x) * sign(x) - exp(neg(square(x))) / sqrt(1 + square(x))
    f  = maximum(e, minimum(x, 0.5))
    g  = pow(sigmoid(f) + 0.5, tanh(x))
    h  = log(1 + square(g)) + identity(x)
    c  = concat([h, transpose(transpose(x, perm = [0, 2, 1]), perm = [0, 2, 1])], axis = 1)  # [batch, 8, 6]
    sl = slice(c, axis = 1, start = 1, end = 7, step = 2)         # [batch, 3, 6]
    r  = reshape(sl, shape = [batch, 18])
    output lsm = log_softmax(r)
    output red = sum(softmax(sl, axis = 1), axis = 2) + mean(sl, axis = 2) + max(sl, axis = [1, 2], keepdims = 1)
    output am  = argmax(r, axis = 1)

    cv = relu(conv2d(y, K, kb, stride = 1, pad = 1))              # [batch, 3, 6, 6]
    ct = conv_transpose2d(cv, T, stride = 2, pad = 1, output_pad = 1)  # [batch, 2, 11, 11]
    mp = maxpool2d(ct, kernel = 3, stride = 2, pad = 1)           # [batch, 2, 6, 6]
    ap = avgpool2d(ct, kernel = 3, stride = 2, pad = 1)
    output pools = flatten(mp + ap, axis = 2)                     # [batch, 2, 36]
    bc = broadcast_to(sum(y, axis = 1, keepdims = 1), shape = [batch, 2, 6, 6])
    output masked = bc * step(y) + normal(y, mean = 0.5)
}
)";
  for (int opset : {11, 13, 17}) crossCheck(dir + "/ops.nn", dir, opset);  // 11: Softmax's transposes, ReduceSum's axes
  const Export e = exportExample(dir + "/ops.nn");
  auto o = onnxio::outlineModel(e.ex.bytes);
  REQUIRE(o);
  for (const char* op : {"MatMul", "Gemm", "Transpose", "LeakyRelu", "Sign", "Max", "Min", "Pow", "Concat", "Slice",
                         "Reshape", "LogSoftmax", "ReduceSum", "ReduceMax", "ArgMax", "ConvTranspose", "AveragePool",
                         "Expand", "Greater", "ConstantOfShape"})
    CHECK(firstNode(*o, op));
  CHECK(o->outputs[2].elemType == 6);  // int32
}

// Every example of the repository whose ops all have ONNX forms, through
// ONNX Runtime; the others must be refused by name (the issue: "exported
// models of every example that has only supported ops").
TEST_CASE("export-onnx: every example that exports runs in ONNX Runtime as in the interpreter", "[onnx-export][ort]") {
  if (!ortAvailable()) return;
  std::vector<std::string> files;
  for (const auto& f : std::filesystem::recursive_directory_iterator(sourcePath("examples")))
    if (f.path().extension() == ".nn") files.push_back(f.path().string());
  std::sort(files.begin(), files.end());
  int checked = 0;
  std::string refused;
  for (const std::string& file : files) {
    const std::string rel = std::filesystem::relative(file, sourcePath("")).string();
    INFO(rel);
    const Elaborated m = build(rel, 2), other = build(rel, 3);
    auto p = initParams(m.graph, 42);
    REQUIRE(p);
    auto ex = onnxio::exportModel(m.graph, *p, {.otherBatch = &other.graph});
    if (!ex) {
      INFO(ex.error().message);
      CHECK(ex.error().message.find("has no ONNX form") != std::string::npos);
      refused += " " + rel;
      continue;
    }
    crossCheck(rel, tempDir("onnx_ort_every"), 13, false);
    ++checked;
  }
  CHECK(checked >= 25);
  WARN(checked << " examples checked in ONNX Runtime; refused by export-onnx (ops without an ONNX form):" << refused);
}
