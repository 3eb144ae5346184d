// Inputs a new user got wrong, each refused in words naming the file: test
// splits of another shape, bool and 8-bit data under scale = "auto", counts
// of 0, files larger than their headers say, FIFOs and devices as inputs,
// messages about missing IDX files and out-of-range labels, and eval --f64's
// .npy outputs in f8.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "io/dataset.h"
#include "io/file_io.h"
#include "io/idx.h"
#include "io/image_decode.h"
#include "io/npy.h"
#include "io/zip.h"
#include "test_util.h"

using namespace nnc;
using Catch::Contains;
using nnc::test::runCli;
using nnc::test::sourcePath;
using nnc::test::tempDir;
namespace fs = std::filesystem;

namespace {

template <class T>
std::string errorOf(const Expected<T>& e) {
  return e ? std::string("(no error)") : e.error().message;
}

void writeBytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}

// A u8 IDX file of `dims` holding i % 256 at element i.
std::string idxU8(std::vector<uint32_t> dims) {
  std::string b = {0, 0, 8, static_cast<char>(dims.size())};
  size_t n = 1;
  for (uint32_t d : dims) {
    b += be32(d);
    n *= d;
  }
  for (size_t i = 0; i < n; ++i) b.push_back(static_cast<char>(i % 256));
  return b;
}

std::string idxLabels(uint32_t n) {
  std::string b = std::string{0, 0, 8, 1} + be32(n);
  for (uint32_t i = 0; i < n; ++i) b.push_back(static_cast<char>(i % 2));
  return b;
}

Tensor f32(Shape s) {
  Tensor t(TensorType{DType::F32, s});
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<double>(i % 7) / 7;
  return t;
}
Tensor i32Labels(int64_t n) {
  Tensor t(TensorType{DType::I32, {n}});
  for (int64_t i = 0; i < n; ++i) t.data[static_cast<size_t>(i)] = static_cast<double>(i % 2);
  return t;
}

std::string pgm(int w, int h) {
  std::string b = "P5\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n";
  b.append(static_cast<size_t>(w * h), '\x40');
  return b;
}

// An NPY file of 4 f32 values, then `extra` bytes (a hole: no disk used).
std::string sparseNpy(const std::string& dir, off_t size) {
  const std::string path = dir + "/big.npy";
  REQUIRE(writeNpy(path, f32({4})));
  int fd = ::open(path.c_str(), O_WRONLY);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, size) == 0);
  ::close(fd);
  return path;
}

const char* kModel10 =
    "model m(batch = 2) {\n"
    "    input x: f32[batch, 4]\n"
    "    label t: i32[batch]\n"
    "    logits = dense(x, 10, name = \"fc\")\n"
    "    loss = softmax_cross_entropy(logits, t)\n"
    "    output probs = softmax(logits)\n"
    "}\n";

}  // namespace

// Item 4: the whole sample shape is compared, not the pixel count.
TEST_CASE("loadData: test samples of another shape with the same pixel count are refused", "[data][input]") {
  const std::string dir = tempDir("shape_split");
  const std::string want = "has samples of 1×28×28, but its test split has 1×14×56: both splits must have samples "
                           "of the same shape";
  SECTION("idx") {
    writeBytes(dir + "/train-images-idx3-ubyte", idxU8({2, 28, 28}));
    writeBytes(dir + "/train-labels-idx1-ubyte", idxLabels(2));
    writeBytes(dir + "/t10k-images-idx3-ubyte", idxU8({2, 14, 56}));
    writeBytes(dir + "/t10k-labels-idx1-ubyte", idxLabels(2));
    DataSpec s;
    s.path = dir;
    const std::string e = errorOf(loadData(s, 1));
    CHECK_THAT(e, Contains("the training split of '" + dir + "' " + want));
    CHECK_THAT(e, !Contains("targets"));
  }
  SECTION("npz") {
    REQUIRE(writeNpz(dir + "/d.npz", {{"x_train", f32({2, 28, 28})},
                                      {"y_train", i32Labels(2)},
                                      {"x_test", f32({2, 14, 56})},
                                      {"y_test", i32Labels(2)}}));
    DataSpec s;
    s.kind = "npz";
    s.path = dir + "/d.npz";
    CHECK_THAT(errorOf(loadData(s, 1)), Contains("the training split of '" + s.path + "' " + want));
  }
  SECTION("npy") {
    REQUIRE(writeNpy(dir + "/x_train.npy", f32({2, 1, 28, 28})));
    REQUIRE(writeNpy(dir + "/y_train.npy", i32Labels(2)));
    REQUIRE(writeNpy(dir + "/x_test.npy", f32({2, 1, 14, 56})));
    REQUIRE(writeNpy(dir + "/y_test.npy", i32Labels(2)));
    DataSpec s;
    s.kind = "npy";
    s.path = dir;
    CHECK_THAT(errorOf(loadData(s, 1)), Contains(want));
  }
  SECTION("csv: another feature count") {
    writeBytes(dir + "/tr.csv", "label,a,b,c,d\n0,1,2,3,4\n1,1,2,3,4\n");
    writeBytes(dir + "/te.csv", "label,a,b\n0,1,2\n");
    DataSpec s;
    s.kind = "csv";
    s.path = dir + "/tr.csv";
    s.testPath = dir + "/te.csv";
    CHECK_THAT(errorOf(loadData(s, 1)), Contains("'" + s.path + "' (training) has samples of 4 features, but '" +
                                                 s.testPath + "' (test) has 2 features"));
  }
  SECTION("images") {
    writeBytes(dir + "/train/a/0.pgm", pgm(28, 28));
    writeBytes(dir + "/test/a/0.pgm", pgm(56, 14));
    DataSpec s;
    s.kind = "images";
    s.path = dir + "/train";
    s.testPath = dir + "/test";
    CHECK_THAT(errorOf(loadData(s, 1)), Contains("is 14×56 but"));
  }
  fs::remove_all(dir);
}

// Item 5: bool features are 0 and 1, not bytes to divide by 255.
TEST_CASE("loadData: bool .npy features stay 0 and 1 under scale auto", "[data][input]") {
  const std::string dir = tempDir("bool_npy");
  // np.save of a bool array: '|b1', one byte per value.
  std::string dict = "{'descr': '|b1', 'fortran_order': False, 'shape': (2, 2), }";
  dict.append(64 - (10 + dict.size() + 1) % 64, ' ');
  dict += '\n';
  std::string b = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(dict.size()) + '\0' + dict;
  b += std::string("\x01\x00\x00\x01", 4);
  for (const char* s : {"train", "test"}) {
    writeBytes(dir + "/x_" + s + ".npy", b);
    REQUIRE(writeNpy(dir + "/y_" + s + ".npy", i32Labels(2)));
  }
  DataSpec s;
  s.kind = "npy";
  s.path = dir;
  auto d = loadData(s, 1);
  REQUIRE(d);
  CHECK(d->train.images == std::vector<float>{1, 0, 0, 1});
  CHECK(d->test.images == std::vector<float>{1, 0, 0, 1});
  fs::remove_all(dir);
}

// Item 5: nnc predict divided every integer array, bool included, by 255.
TEST_CASE("nnc predict: a bool .npy is 0 and 1, not divided by 255", "[cli][input]") {
  const std::string dir = tempDir("predict_bool");
  writeBytes(dir + "/m.nn", kModel10);
  std::string csv = "label,a,b,c,d\n";
  for (int i = 0; i < 6; ++i) csv += std::to_string(i % 2) + ",1,0,0,1\n";
  writeBytes(dir + "/d.csv", csv);
  auto train = runCli({"run", dir + "/m.nn", "--data", dir + "/d.csv", "--save", dir + "/ck", "-q"});
  INFO(train.err);
  REQUIRE(train.code == 0);
  std::string dict = "{'descr': '|b1', 'fortran_order': False, 'shape': (1, 4), }";
  dict.append(64 - (10 + dict.size() + 1) % 64, ' ');
  dict += '\n';
  writeBytes(dir + "/b.npy", std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(dict.size()) + '\0' + dict +
                                 std::string("\x01\x00\x00\x01", 4));
  REQUIRE(writeNpy(dir + "/f.npy", Tensor(TensorType{DType::F32, {1, 4}}, {1, 0, 0, 1})));
  auto asBool = runCli({"predict", dir + "/m.nn", "--weights", dir + "/ck", "--input", dir + "/b.npy"});
  auto asFloat = runCli({"predict", dir + "/m.nn", "--weights", dir + "/ck", "--input", dir + "/f.npy"});
  REQUIRE(asBool.code == 0);
  REQUIRE(asFloat.code == 0);
  CHECK(asBool.out == asFloat.out);
  fs::remove_all(dir);
}

// Item 5: an i32 label (or input) takes whole numbers only.
TEST_CASE("nnc eval: fractional values for an i32 label are refused naming the file", "[cli][input]") {
  const std::string dir = tempDir("frac_label");
  writeBytes(dir + "/m.nn", kModel10);
  REQUIRE(writeNpy(dir + "/x.npy", f32({2, 4})));
  REQUIRE(writeNpy(dir + "/t.npy", Tensor(TensorType{DType::F32, {2}}, {1, 1.5})));
  auto r = runCli({"eval", dir + "/m.nn", "--input", "x=" + dir + "/x.npy", "--input", "t=" + dir + "/t.npy"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("'" + dir + "/t.npy' holds 1.5 at index 1, but label 't' of model 'm' is i32[2]"));
  REQUIRE(writeNpy(dir + "/t.npy", Tensor(TensorType{DType::F32, {2}}, {1, 0})));  // whole floats are fine
  auto whole = runCli({"eval", dir + "/m.nn", "--input", "x=" + dir + "/x.npy", "--input", "t=" + dir + "/t.npy"});
  CHECK(whole.code == 0);
  fs::remove_all(dir);
}

// Items 5 and 21: 0 would mean "all" (or, for --epochs, print checkpoint '').
TEST_CASE("nnc run: counts of 0 are refused in words", "[cli][input]") {
  const std::string dir = tempDir("zero_counts");
  writeBytes(dir + "/m.nn", kModel10);
  std::string csv = "label,a,b,c,d\n";
  for (int i = 0; i < 10; ++i) csv += std::to_string(i % 2) + ",0.5,0.25,1,0\n";
  writeBytes(dir + "/d.csv", csv);
  for (const char* opt : {"--iterations", "--limit", "--test-limit", "--epochs"}) {
    auto r = runCli({"run", dir + "/m.nn", "--data", dir + "/d.csv", opt, "0"});
    INFO(opt);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Contains(std::string(opt) + " 0: give a positive count"));
    CHECK_THAT(r.out + r.err, !Contains("checkpoint ''"));
  }
  auto limit = runCli({"eval", dir + "/m.nn", "--weights", dir, "--limit", "0"});
  CHECK(limit.code == 1);
  CHECK_THAT(limit.err, Contains("--limit 0: give a positive count"));
  writeBytes(dir + "/b.nn", std::string(kModel10) + "train m {\n    data = csv(\"d.csv\")\n    limit = 0\n}\n");
  auto block = runCli({"run", dir + "/b.nn"});
  CHECK(block.code == 1);
  CHECK_THAT(block.err, Contains("b.nn:10:"));
  CHECK_THAT(block.err, Contains("limit is a positive whole number"));
  fs::remove_all(dir);
}

// Item 6: a CSV of integers 0..255 is 8-bit data.
TEST_CASE("loadData: CSV pixel values 0-255 are divided by 255 under scale auto", "[data][input]") {
  const std::string dir = tempDir("csv_u8");
  writeBytes(dir + "/px.csv", "label,p0,p1,p2\n0,0,255,51\n1,17,0,1\n");
  writeBytes(dir + "/frac.csv", "label,p0,p1,p2\n0,0,255,51.5\n1,17,0,1\n");
  writeBytes(dir + "/bits.csv", "label,p0,p1,p2\n0,0,1,1\n1,1,0,1\n");
  writeBytes(dir + "/big.csv", "label,p0,p1,p2\n0,0,256,51\n1,17,0,1\n");
  DataSpec s;
  s.kind = "csv";
  s.path = dir + "/px.csv";
  s.testPath = s.path;
  auto d = loadData(s, 1);
  REQUIRE(d);
  CHECK(d->train.images == std::vector<float>{0, 1, 51 / 255.0f, 17 / 255.0f, 0, 1 / 255.0f});
  s.scale = "none";
  auto n = loadData(s, 1);
  REQUIRE(n);
  CHECK(n->train.images == std::vector<float>{0, 255, 51, 17, 0, 1});
  s.scale = "auto";
  for (const char* f : {"frac.csv", "bits.csv", "big.csv"}) {  // not 8-bit: unchanged
    s.path = s.testPath = dir + "/" + f;
    auto u = loadData(s, 1);
    REQUIRE(u);
    INFO(f);
    CHECK(u->train.images[1] >= 1);
  }
  fs::remove_all(dir);
}

// Item 7: a file larger than its header says is refused before it is read.
TEST_CASE("readers: a sparse 2 GB file is refused from its header, not read", "[data][npy][input]") {
  const std::string dir = tempDir("sparse");
  const std::string npy = sparseNpy(dir, off_t{2} << 30);
  CHECK(errorOf(readNpy(npy)) ==
        "'" + npy + "' has 2147483504 bytes after the 4 values of 4 bytes its header describes (shape [4])");
  // The npy data kind reads the same way.
  fs::copy_file(npy, dir + "/x_train.npy");
  REQUIRE(writeNpy(dir + "/y_train.npy", i32Labels(4)));
  DataSpec s;
  s.kind = "npy";
  s.path = dir;
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("x_train.npy' has 2147483504 bytes after the 4 values"));
  // IDX: the header says 2×2 bytes.
  const std::string idx = dir + "/i.idx";
  writeBytes(idx, idxU8({2, 2}));
  REQUIRE(::truncate(idx.c_str(), off_t{2} << 30) == 0);
  CHECK_THAT(errorOf(readIdx(idx)), Contains("has 2147483632 bytes after the 2×2 bytes its IDX header describes"));
  // NPZ: the end record must end the file.
  REQUIRE(writeNpz(dir + "/z.npz", {{"a", f32({4})}}));
  REQUIRE(::truncate((dir + "/z.npz").c_str(), off_t{2} << 30) == 0);
  CHECK_THAT(errorOf(readNpz(dir + "/z.npz")), Contains("is not a ZIP archive (no end-of-central-directory record"));
  // CSV and other text: zeros are no text.
  writeBytes(dir + "/d.csv", "label,a\n");
  REQUIRE(::truncate((dir + "/d.csv").c_str(), off_t{2} << 30) == 0);
  s.kind = "csv";
  s.path = dir + "/d.csv";
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("d.csv' holds a NUL byte at offset 8: it is not a CSV file"));
  // The model source.
  writeBytes(dir + "/m.nn", "model m {}\n");
  REQUIRE(::truncate((dir + "/m.nn").c_str(), off_t{2} << 30) == 0);
  auto r = runCli({"check", dir + "/m.nn"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("m.nn' is 2147483648 bytes, more than the 16777216 nnc reads as a model source"));
  fs::remove_all(dir);
}

TEST_CASE("npy and npz: bytes after the described data are refused", "[npy][input]") {
  const std::string t = serializeNpy(f32({4}));
  CHECK(errorOf(parseNpy(t + "xyz", "t.npy")) ==
        "'t.npy' has 3 bytes after the 4 values of 4 bytes its header describes (shape [4])");
  const std::string dir = tempDir("trailing");
  REQUIRE(writeNpz(dir + "/z.npz", {{"a", f32({4})}}));
  auto z = readFile(dir + "/z.npz");
  REQUIRE(z);
  writeBytes(dir + "/z.npz", *z + "junk");
  CHECK(errorOf(readNpz(dir + "/z.npz")) ==
        "'" + dir + "/z.npz' has 4 bytes after the end of its ZIP archive (its end record and comment)");
  fs::remove_all(dir);
}

// Item 7: a FIFO would hang in open; /dev/zero never ends.
TEST_CASE("readers: FIFOs and devices are refused in words, without hanging", "[data][npy][input]") {
  const std::string dir = tempDir("fifo");
  const std::string fifo = dir + "/f";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string asFifo = "cannot read '" + fifo + "': it is a FIFO (named pipe), not a regular file";
  CHECK_THAT(errorOf(readFile(fifo)), Contains(asFifo));
  CHECK_THAT(errorOf(readNpy(fifo)), Contains(asFifo));
  CHECK_THAT(errorOf(readNpz(fifo)), Contains(asFifo));
  CHECK_THAT(errorOf(readIdx(fifo)), Contains(asFifo));
  CHECK_THAT(errorOf(readImage(fifo)), Contains(asFifo));
  auto check = runCli({"check", fifo});
  CHECK(check.code == 1);
  CHECK_THAT(check.err, Contains(asFifo));
  const std::string zero = "cannot read '/dev/zero': it is a character device, not a regular file";
  CHECK_THAT(errorOf(readNpy("/dev/zero")), Contains(zero));
  CHECK_THAT(errorOf(readIdx("/dev/zero")), Contains(zero));
  CHECK_THAT(errorOf(readNpz("/dev/zero")), Contains(zero));
  DataSpec s;
  s.kind = "csv";
  s.path = "/dev/zero";
  CHECK_THAT(errorOf(loadData(s, 1)), Contains(zero));
  auto run = runCli({"check", "/dev/zero"});
  CHECK_THAT(run.err, Contains(zero));
  auto eval = runCli({"eval", sourcePath("examples/three_layer.nn"), "--input", "x=/dev/zero"});
  CHECK(eval.code == 1);
  CHECK_THAT(eval.err, Contains(zero));
  fs::remove_all(dir);
}

// Item 21: messages that named the wrong thing.
TEST_CASE("nnc run: an IDX folder missing one file names that file", "[cli][data][input]") {
  const std::string dir = tempDir("idx_missing");
  writeBytes(dir + "/train-labels-idx1-ubyte", idxLabels(2));
  writeBytes(dir + "/t10k-images-idx3-ubyte", idxU8({2, 28, 28}));
  writeBytes(dir + "/t10k-labels-idx1-ubyte", idxLabels(2));
  auto r = runCli({"run", sourcePath("examples/mnist_mlp.nn"), "--data", dir});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("no train images in '" + dir + "': tried 'train-images-idx3-ubyte'"));
  CHECK_THAT(r.err, !Contains("class folders"));
  fs::remove_all(dir);
}

TEST_CASE("nnc run: labels beyond the model's classes name the label file", "[cli][data][input]") {
  const std::string dir = tempDir("label_range");
  writeBytes(dir + "/m.nn", kModel10);
  std::string csv = "label,a,b,c,d\n";
  for (int i = 0; i < 10; ++i) csv += std::to_string(i == 3 ? 12 : i % 2) + ",0.5,0.25,1,0\n";
  writeBytes(dir + "/d.csv", csv);
  writeBytes(dir + "/t.csv", "label,a,b,c,d\n0,0.5,0.25,1,0\n1,0.5,0.25,1,0\n");
  auto r = runCli({"run", dir + "/m.nn", "--data", dir + "/d.csv"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Contains("error: '" + dir + "/d.csv': label 12 (sample "));
  CHECK_THAT(r.err, Contains("is out of range for model 'm', whose output 'probs' scores 10 classes (0..9)"));
  CHECK_THAT(r.err, Contains("note: output 'probs' is f32[2, 10]"));
  fs::remove_all(dir);
}

TEST_CASE("loadData: a CSV without its label column names a few of its columns", "[data][input]") {
  const std::string dir = tempDir("csv_nolabel");
  std::string header = "y";
  for (int i = 0; i < 784; ++i) header += ",p" + std::to_string(i);
  writeBytes(dir + "/d.csv", header + "\n");
  DataSpec s;
  s.kind = "csv";
  s.path = dir + "/d.csv";
  const std::string e = errorOf(loadData(s, 1));
  CHECK_THAT(e, Contains("has no label column 'label'; its header names: y, p0, p1, p2, p3 … and 780 more"));
  CHECK(e.size() < 300);
  fs::remove_all(dir);
}

// Item 25: eval --f64 keeps the doubles it computed.
TEST_CASE("nnc eval --f64 writes outputs and gradients as f8 .npy", "[cli][npy][input]") {
  Tensor t(TensorType{DType::F32, {2}}, {0.1, 1.0 / 3});
  const std::string b = serializeNpy(t, true);
  CHECK(b.find("'descr': '<f8'") != std::string::npos);
  REQUIRE(b.size() == 128 + 16);
  double back[2];
  std::memcpy(back, b.data() + 128, 16);
  CHECK(std::bit_cast<uint64_t>(back[0]) == std::bit_cast<uint64_t>(0.1));
  CHECK(std::bit_cast<uint64_t>(back[1]) == std::bit_cast<uint64_t>(1.0 / 3));
  CHECK(serializeNpy(Tensor(TensorType{DType::I32, {1}}, {3}), true).find("'<i4'") != std::string::npos);

  const std::string dir = tempDir("eval_f64");
  writeBytes(dir + "/lin.nn", "model lin { input x: f32[1, 2] label t: i32[1] param W: f32[2, 2] = zeros()\n"
                              "loss = softmax_cross_entropy(x @ W, t)\noutput y = x @ W }\n");
  REQUIRE(writeNpy(dir + "/x.npy", Tensor(TensorType{DType::F32, {1, 2}}, {1, 2})));
  REQUIRE(writeNpy(dir + "/t.npy", Tensor(TensorType{DType::I32, {1}}, {1})));
  auto r = runCli({"eval", dir + "/lin.nn", "--f64", "--grads", "--input", "x=" + dir + "/x.npy", "--input",
                   "t=" + dir + "/t.npy", "--output-dir", dir + "/out"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  for (const char* f : {"y", "loss", "grad_W"}) {
    auto bytes = readFile(dir + "/out/" + f + ".npy");
    REQUIRE(bytes);
    INFO(f);
    CHECK(bytes->find("'descr': '<f8'") != std::string::npos);
  }
  auto loss = readFile(dir + "/out/loss.npy");
  double l = 0;
  std::memcpy(&l, loss->data() + loss->size() - 8, 8);
  CHECK(l == std::log(2.0));  // softmax of two equal scores, in double
  auto plain = runCli({"eval", dir + "/lin.nn", "--input", "x=" + dir + "/x.npy", "--input", "t=" + dir + "/t.npy",
                       "--output-dir", dir + "/out32"});
  REQUIRE(plain.code == 0);
  CHECK(readFile(dir + "/out32/loss.npy")->find("'<f4'") != std::string::npos);
  fs::remove_all(dir);
}
