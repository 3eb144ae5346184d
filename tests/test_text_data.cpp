// Text as language-model data (io/text_dataset.h): the reader, the
// vocabulary, the split and the windows, worked out by hand; then a bigram
// model trained by nnc run on "abcabc..." and continued by nnc sample.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <regex>

#include "io/npy.h"
#include "io/text_dataset.h"
#include "test_util.h"

using namespace nnc;
using nnc::test::runCli;
using nnc::test::tempDir;

namespace {

void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::vector<float> floats(std::initializer_list<int> v) { return std::vector<float>(v.begin(), v.end()); }

}  // namespace

TEST_CASE("text folder: sorted files concatenated, binary files skipped, subfolders and links left out", "[text]") {
  const std::string dir = tempDir("text_folder");
  writeBytes(dir + "/b.txt", "cab");
  writeBytes(dir + "/a.txt", "ba\n");
  writeBytes(dir + "/c.dat", std::string("x\0y", 3));  // fortunes' .dat index files hold NULs
  std::filesystem::create_directories(dir + "/off");
  writeBytes(dir + "/off/z", "zzz");
  std::filesystem::create_symlink(dir + "/a.txt", dir + "/a.u8");
  auto c = readTextCorpus(dir, "byte", 0.5);
  REQUIRE(c);
  // "ba\n" + "cab": vocabulary '\n' a b c (sorted), ids b a \n c a b.
  CHECK(c->vocab == std::vector<uint32_t>{'\n', 'a', 'b', 'c'});
  CHECK(c->ids == std::vector<int32_t>{2, 1, 0, 3, 1, 2});
  CHECK(c->files == 2);
  CHECK(c->skipped == std::vector<std::string>{"c.dat"});
  CHECK(c->trainTokens == 3);
  // Windows of 2 over all 6 ids: x [2 1] with labels [1 0], x [0 3] with [3 1];
  // the last id is only a label.
  Dataset w = textWindows(*c, 0, 6, 2);
  CHECK(w.count == 2);
  CHECK(w.images == floats({2, 1, 0, 3}));
  CHECK(w.targets == floats({1, 0, 3, 1}));
  CHECK(w.targetSize == 2);

  DataSpec spec;
  spec.kind = "text", spec.path = dir, spec.context = 1, spec.testFraction = 0.5;
  auto s = loadData(spec, 7);
  REQUIRE(s);
  // Train: ids [2 1 0] → windows [2]→1, [1]→0; test: ids [3 1 2] → [3]→1, [1]→2.
  CHECK(s->train.images == floats({2, 1}));
  CHECK(s->train.targets == floats({1, 0}));
  CHECK(s->test.images == floats({3, 1}));
  CHECK(s->test.targets == floats({1, 2}));
  CHECK(s->vocab.size() == 4);
  CHECK_THAT(s->readNote, Catch::Contains("6 bytes (3 train, 3 test), vocabulary of 4, from 2 files; 1 skipped as "
                                          "not text (c.dat)"));
  // No window of context + 1 in the 3 training ids.
  spec.context = 3;
  auto shortText = loadData(spec, 7);
  REQUIRE(!shortText);
  CHECK_THAT(shortText.error().message, Catch::Contains("its training part (3 bytes of 6) is shorter than one window "
                                                        "of context + 1 = 4"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("text units: UTF-8 code points or bytes; invalid UTF-8, NULs, empty and missing files are errors", "[text]") {
  const std::string dir = tempDir("text_units");
  writeBytes(dir + "/u.txt", "h\xC3\xA9llo\xE2\x82\xAC");  // héllo€: é U+00E9 (2 bytes), € U+20AC (3 bytes)
  auto chars = readTextCorpus(dir + "/u.txt", "char", 0.1);
  REQUIRE(chars);
  CHECK(chars->vocab == std::vector<uint32_t>{'h', 'l', 'o', 0xE9, 0x20AC});
  CHECK(chars->ids == std::vector<int32_t>{0, 3, 1, 1, 2, 4});
  auto bytes = readTextCorpus(dir + "/u.txt", "byte", 0.1);
  REQUIRE(bytes);
  CHECK(bytes->vocab == std::vector<uint32_t>{0x68, 0x6C, 0x6F, 0x82, 0xA9, 0xAC, 0xC3, 0xE2});
  CHECK(bytes->ids.size() == 9);
  // floor(9 · 0.9) = 8 training bytes.
  CHECK(bytes->trainTokens == 8);
  // Decoding gives the text back; encoding a prompt refuses what is not in the vocabulary.
  const Vocab v{"char", chars->vocab};
  CHECK(decodeIds(v, chars->ids) == "h\xC3\xA9llo\xE2\x82\xAC");
  auto enc = encodeText(v, "ol\xC3\xA9");
  REQUIRE(enc);
  CHECK(*enc == std::vector<int32_t>{2, 1, 3});
  auto bad = encodeText(v, "hex");
  REQUIRE(!bad);
  CHECK_THAT(bad.error().message, Catch::Contains("the prompt's char 2 ('e', U+0065) is not in the model's vocabulary of 5 chars"));

  writeBytes(dir + "/bad.txt", "ab\xFF" "c");
  auto invalid = readTextCorpus(dir + "/bad.txt", "char", 0.1);
  REQUIRE(!invalid);
  CHECK_THAT(invalid.error().message, Catch::Contains("bad.txt': invalid UTF-8 at byte 2"));
  CHECK(readTextCorpus(dir + "/bad.txt", "byte", 0.1));  // any byte is a byte
  writeBytes(dir + "/nul.txt", std::string("a\0b", 3));
  auto nul = readTextCorpus(dir + "/nul.txt", "byte", 0.1);
  REQUIRE(!nul);
  CHECK_THAT(nul.error().message, Catch::Contains("nul.txt': it holds a NUL byte (at byte 1): binary, not text"));
  writeBytes(dir + "/empty.txt", "");
  auto empty = readTextCorpus(dir + "/empty.txt", "byte", 0.1);
  REQUIRE(!empty);
  CHECK_THAT(empty.error().message, Catch::Contains("empty.txt' holds no text"));
  auto missing = readTextCorpus(dir + "/nothing", "byte", 0.1);
  REQUIRE(!missing);
  CHECK_THAT(missing.error().message, Catch::Contains("nothing': no such file or folder"));
  auto unit = readTextCorpus(dir + "/u.txt", "word", 0.1);
  REQUIRE(!unit);
  CHECK_THAT(unit.error().message, Catch::Contains("unit 'word'"));
  // In a folder, the files that are not text (with unit "char": bad.txt,
  // nul.txt) are skipped, and empty.txt adds nothing.
  auto folder = readTextCorpus(dir, "char", 0.1);
  REQUIRE(folder);
  CHECK(folder->skipped == std::vector<std::string>{"bad.txt", "nul.txt"});
  CHECK(folder->ids.size() == 6);
  std::filesystem::remove_all(dir);
}

TEST_CASE("vocab.json round trip and malformed vocabularies", "[text]") {
  const std::string j = vocabJson("char", {10, 97, 0x20AC});
  CHECK(j == "{\"format\": \"nnc-vocab\", \"unit\": \"char\", \"units\": [10, 97, 8364]}\n");
  auto v = parseVocabJson(j, "v.json");
  REQUIRE(v);
  CHECK(v->unit == "char");
  CHECK(v->units == std::vector<uint32_t>{10, 97, 0x20AC});
  auto unsorted = parseVocabJson("{\"format\": \"nnc-vocab\", \"unit\": \"byte\", \"units\": [98, 97]}", "v.json");
  REQUIRE(!unsorted);
  CHECK_THAT(unsorted.error().message, Catch::Contains("units must be increasing whole numbers from 0 to 255; 97 is not"));
  auto big = parseVocabJson("{\"format\": \"nnc-vocab\", \"unit\": \"byte\", \"units\": [300]}", "v.json");
  REQUIRE(!big);
  CHECK(!parseVocabJson("{\"format\": \"other\", \"unit\": \"byte\", \"units\": [1]}", "v.json"));
}

namespace {

// A bigram model: the logits at each position are row x of E, plus b.
const char* kBigram = R"(model lm(batch = 4, context = 16, vocab = 2) {
    input x: i32[batch, context]
    label t: i32[batch, context]
    param E: f32[vocab, vocab] = zeros()
    param b: f32[vocab] = zeros()
    output logits = one_hot(x, vocab) @ E + b
    loss = softmax_cross_entropy(reshape(logits, [batch * context, vocab]), reshape(t, [batch * context]))
}
train lm {
    data = text("abc.txt", context = 16, unit = "char", test_fraction = 0.2)
    optimizer = adam(lr = 0.1)
    epochs = 3
}
)";

struct LmDir {
  std::string dir, model;
  explicit LmDir(const std::string& name) : dir(tempDir(name)), model(dir + "/lm.nn") {
    std::ofstream(model) << kBigram;
    writeBytes(dir + "/abc.txt", [] {
      std::string s;
      for (int i = 0; i < 400; ++i) s += "abc";
      return s;
    }());
  }
  ~LmDir() { std::filesystem::remove_all(dir); }
};

// The numbers after "test loss " and before " bits/char" of the last epoch line.
std::pair<double, double> lastTestLoss(const std::string& out) {
  std::smatch m;
  std::string rest = out;
  std::pair<double, double> r{-1, -1};
  const std::regex re("test loss ([0-9.e-]+) \\(([0-9.]+) bits/char\\)");
  while (std::regex_search(rest, m, re)) {
    r = {std::stod(m[1]), std::stod(m[2])};
    rest = m.suffix();
  }
  return r;
}

}  // namespace

TEST_CASE("nnc run trains a bigram model on text; nnc sample continues it", "[text][cli]") {
  LmDir d("text_lm");
  auto r = runCli({"run", d.model, "--save", d.dir + "/ck", "--plot", d.dir + "/p.svg"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // 1200 chars, the first 960 training: 59 windows of 16 (the 960th is only a label).
  CHECK_THAT(r.out, Catch::Contains("text: 1200 chars (960 train, 240 test), vocabulary of 3, from 1 file"));
  CHECK_THAT(r.out, Catch::Contains("56 samples of 59"));
  // The vocabulary (3) replaced the model's vocab = 2, and a bigram table
  // learns "abc" exactly: the loss falls towards 0.
  const auto [loss, bits] = lastTestLoss(r.out);
  CHECK(loss > 0);
  CHECK(loss < 0.05);
  CHECK(bits == Approx(loss / std::numbers::ln2).epsilon(2e-3));  // both printed rounded
  std::ifstream svg(d.dir + "/p.svg");
  CHECK_THAT(std::string(std::istreambuf_iterator<char>(svg), {}), Catch::Contains("bits/char"));
  REQUIRE(std::filesystem::exists(d.dir + "/ck/vocab.json"));

  // Greedy: after "ab" comes c, then a, b, c, ... (a→b, b→c, c→a); 40 units
  // run past the context of 16, so the window slides.
  auto greedy = runCli({"sample", d.model, "--weights", d.dir + "/ck", "--prompt", "ab", "--temperature", "0",
                        "--tokens", "40"});
  INFO(greedy.err);
  REQUIRE(greedy.code == 0);
  std::string want = "ab";
  for (int i = 0; i < 40; ++i) want += "cab"[i % 3];
  CHECK(greedy.out == want + "\n");
  // Drawn at temperature 1: the same seed gives the same text, of the vocabulary's units.
  auto s1 = runCli({"sample", d.model, "--weights", d.dir + "/ck", "--prompt", "ca", "--seed", "5", "--tokens", "50"});
  auto s2 = runCli({"sample", d.model, "--weights", d.dir + "/ck", "--prompt", "ca", "--seed", "5", "--tokens", "50"});
  REQUIRE(s1.code == 0);
  CHECK(s1.out == s2.out);
  CHECK(s1.out.size() == 53);
  CHECK(s1.out.find_first_not_of("abc\n") == std::string::npos);
  // --top-k 1 is greedy whatever the temperature.
  auto top1 = runCli({"sample", d.model, "--weights", d.dir + "/ck", "--prompt", "ab", "--top-k", "1", "--tokens", "40",
                      "--temperature", "5"});
  CHECK(top1.out == want + "\n");

  auto unknown = runCli({"sample", d.model, "--weights", d.dir + "/ck", "--prompt", "abd"});
  CHECK(unknown.code == 1);
  CHECK_THAT(unknown.err, Catch::Contains("the prompt's char 3 ('d', U+0064) is not in the model's vocabulary of 3 chars"));
  auto temp = runCli({"sample", d.model, "--weights", d.dir + "/ck", "--temperature", "-1"});
  CHECK(temp.code == 1);
  CHECK_THAT(temp.err, Catch::Contains("--temperature takes a number >= 0"));

  // nnc eval scores the checkpoint on the test windows, the model's vocab set from the text as in training.
  auto eval = runCli({"eval", d.model, "--weights", d.dir + "/ck"});
  INFO(eval.err);
  CHECK(eval.code == 0);
  CHECK_THAT(eval.out, Catch::Contains("lm with " + d.dir + "/ck on the test split of"));
  CHECK_THAT(eval.out, Catch::Contains("(14 samples)"));

  // Resuming on a text with another vocabulary is refused.
  writeBytes(d.dir + "/abd.txt", std::string(600, 'a') + std::string(600, 'd'));
  auto other = runCli({"run", d.model, "--resume", d.dir + "/ck", "--save", d.dir + "/ck", "--epochs", "4", "--data",
                       d.dir + "/abd.txt"});
  CHECK(other.code == 1);
  CHECK_THAT(other.err, Catch::Contains("has another vocabulary than this text"));
  // The same text resumes.
  auto same = runCli({"run", d.model, "--resume", d.dir + "/ck", "--save", d.dir + "/ck", "--epochs", "4"});
  CHECK(same.code == 0);
  CHECK_THAT(same.out, Catch::Contains("resuming from"));

  // A checkpoint without vocab.json cannot be sampled from.
  std::filesystem::remove(d.dir + "/ck/vocab.json");
  auto novocab = runCli({"sample", d.model, "--weights", d.dir + "/ck"});
  CHECK(novocab.code == 1);
  CHECK_THAT(novocab.err, Catch::Contains("has no vocabulary (vocab.json): nnc sample needs a model trained on text"));
  auto resumeNone = runCli({"run", d.model, "--resume", d.dir + "/ck", "--save", d.dir + "/ck", "--epochs", "5"});
  CHECK(resumeNone.code == 1);
  CHECK_THAT(resumeNone.err, Catch::Contains("was not trained on text, but these data are text"));
}

TEST_CASE("text runs: JIT and interpreter agree, the seed reproduces, models that do not fit are refused",
          "[text][cli]") {
  LmDir d("text_fit");
  auto jit = runCli({"run", d.model, "--epochs", "1", "--save", d.dir + "/jit", "-q"});
  auto jit2 = runCli({"run", d.model, "--epochs", "1", "--save", d.dir + "/jit2", "-q"});
  auto interp = runCli({"run", d.model, "--epochs", "1", "--save", d.dir + "/interp", "--backend", "interp", "-q"});
  auto seed = runCli({"run", d.model, "--epochs", "1", "--save", d.dir + "/seed", "--seed", "9", "-q"});
  REQUIRE(jit.code == 0);
  REQUIRE(interp.code == 0);
  REQUIRE(seed.code == 0);
  auto params = [&](const std::string& ck) { return readNpz(d.dir + "/" + ck + "/params-000001.npz").take(); };
  const auto a = params("jit"), b = params("interp"), a2 = params("jit2"), c = params("seed");
  for (const char* name : {"E", "b"}) {
    const auto &x = a.at(name).data, &y = b.at(name).data;
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i) CHECK(x[i] == Approx(y[i]).epsilon(1e-4).margin(1e-5));
    CHECK(a2.at(name).data == x);  // the same seed: the same windows in the same order, the same bits
  }
  CHECK(c.at("E").data != a.at("E").data);  // another seed shuffles the windows otherwise

  // The model's vocabulary must hold the text's: --set vocab=2 is refused.
  auto small = runCli({"run", d.model, "--set", "vocab=2"});
  CHECK(small.code == 1);
  CHECK_THAT(small.err, Catch::Contains("the text's vocabulary has 3 chars, but model 'lm' has vocab = 2"));
  // An f32 input is not token ids.
  std::ofstream(d.dir + "/f.nn") << R"(model lm(batch = 4, context = 16) {
    input x: f32[batch, context]
    label t: i32[batch, context]
    param w: f32[] = zeros()
    loss = mse(x * w, x)
}
train lm { data = text("abc.txt", context = 16) }
)";
  auto f32 = runCli({"run", d.dir + "/f.nn"});
  CHECK(f32.code == 1);
  CHECK_THAT(f32.err, Catch::Contains("text data are windows of 16 token ids, but model 'lm' takes input 'x' f32[4, 16] "
                                      "(expected i32[4, 16]: batch, context)"));
  std::ofstream(d.dir + "/arg.nn") << R"(model lm { input x: f32[1, 2] loss = mse(x, x) }
train lm { data = text("abc.txt", label = "y") }
)";
  auto arg = runCli({"run", d.dir + "/arg.nn"});
  CHECK(arg.code == 1);
  CHECK_THAT(arg.err, Catch::Contains("text(...) has no argument 'label' (its arguments: context, unit, test_fraction)"));
}

TEST_CASE("i32 token inputs in nnc eval: one_hot of ids, and an id out of range in words", "[text][cli]") {
  const std::string dir = tempDir("text_eval");
  std::ofstream(dir + "/m.nn") << R"(model m(batch = 1, context = 2, vocab = 3) {
    input x: i32[batch, context]
    param E: f32[vocab, vocab] = zeros()
    output probs = softmax(one_hot(x, vocab) @ E)
}
)";
  Tensor e(TensorType{DType::F32, {3, 3}});
  e.data[1] = 1;  // E[0][1] = 1
  REQUIRE(writeNpz(dir + "/w.npz", {{"E", e}}));
  REQUIRE(writeNpy(dir + "/x.npy", Tensor(TensorType{DType::I32, {1, 2}}, {0, 2})));
  auto r = runCli({"eval", dir + "/m.nn", "--weights", dir + "/w.npz", "--input", "x=" + dir + "/x.npy"});
  INFO(r.err);
  REQUIRE(r.code == 0);
  // Position 0 (id 0): softmax([0, 1, 0]) = [1, e, 1] / (2 + e) = [0.21194156, 0.57611688, 0.21194156];
  // position 1 (id 2): row 2 of E is zeros: 1/3 each.
  // (printed as the nearest f32s)
  CHECK(r.out == "probs = [[[0.21194156, 0.57611686, 0.21194156],\n  [0.33333334, 0.33333334, 0.33333334]]]\n");
  REQUIRE(writeNpy(dir + "/big.npy", Tensor(TensorType{DType::I32, {1, 2}}, {0, 3})));
  auto big = runCli({"eval", dir + "/m.nn", "--input", "x=" + dir + "/big.npy"});
  CHECK(big.code == 1);
  CHECK_THAT(big.err, Catch::Contains("one_hot: label 3 at [0, 1] is out of range [0, 3)"));
  std::filesystem::remove_all(dir);
}
