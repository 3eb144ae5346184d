// Dataset loading for `nnc run`: image decoding (PNG, PGM/PPM) value by
// value, CSV / NPZ / NPY / IDX / image-folder datasets from the fixtures of
// tests/data/datasets (made by make_datasets.py), every corrupt case by its
// message, scaling, the seeded test and validation splits, augmentation.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include "io/augment.h"
#include "io/dataset.h"
#include "io/file_io.h"
#include "io/image_decode.h"
#include "io/npy.h"

using namespace nnc;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

std::string fixture(const std::string& rel) { return std::string(NNC_SOURCE_DIR) + "/tests/data/datasets/" + rel; }

template <class T>
std::string errorOf(const Expected<T>& e) {
  return e ? std::string("(no error)") : e.error().message;
}

struct TempDir {
  fs::path path;
  TempDir() {
    static int serial = 0;
    path = fs::temp_directory_path() / ("nnc_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(serial++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string write(const std::string& name, const std::string& text) const {
    fs::path p = path / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p.string();
  }
};

std::string bytesOf(const std::string& path) {
  auto b = readFile(path);
  REQUIRE(b);
  return *b;
}

std::vector<uint8_t> px(std::initializer_list<int> v) { return std::vector<uint8_t>(v.begin(), v.end()); }

// The 2×3 RGB image every rgb_* fixture holds.
const std::vector<uint8_t> kRgb = px({10, 20, 30, 200, 100, 50, 255, 0, 128, 5, 250, 60, 128, 128, 128, 0, 255, 1});

DataSpec csvSpec(const std::string& train, const std::string& test = "") {
  DataSpec s;
  s.kind = "csv";
  s.path = fixture(train);
  s.testPath = test.empty() ? "" : fixture(test);
  return s;
}

std::vector<float> firstFeature(const Dataset& d) {
  std::vector<float> v;
  for (int64_t i = 0; i < d.count; ++i) v.push_back(d.images[static_cast<size_t>(i * d.sampleSize())]);
  return v;
}

}  // namespace

TEST_CASE("PNG: RGB with each row filter, and split IDAT", "[data]") {
  for (const char* name : {"rgb_filter0.png", "rgb_filter1.png", "rgb_filter2.png", "rgb_filter3.png",
                           "rgb_filter4.png", "rgb_two_idat.png"}) {
    INFO(name);
    auto im = readImage(fixture(std::string("png/") + name));
    REQUIRE(im);
    CHECK(im->width == 3);
    CHECK(im->height == 2);
    CHECK(im->channels == 3);
    CHECK(im->pixels == kRgb);
  }
}

TEST_CASE("PNG: gray, gray+alpha, RGBA, palette, low and high bit depths", "[data]") {
  auto load = [](const char* name) {
    auto im = readImage(fixture(std::string("png/") + name));
    REQUIRE(im);
    return *im;
  };
  Image g = load("gray.png");
  CHECK((g.channels == 1 && g.width == 3 && g.height == 2));
  CHECK(g.pixels == px({0, 127, 255, 1, 2, 3}));
  Image ga = load("gray_alpha.png");
  CHECK(ga.channels == 2);
  CHECK(ga.pixels == px({10, 255, 20, 0, 30, 128, 40, 1, 50, 2, 60, 3}));
  Image rgba = load("rgba.png");
  CHECK(rgba.channels == 4);
  for (size_t i = 0; i < 6; ++i) {
    CHECK(std::vector<uint8_t>(rgba.pixels.begin() + 4 * i, rgba.pixels.begin() + 4 * i + 3) ==
          std::vector<uint8_t>(kRgb.begin() + 3 * i, kRgb.begin() + 3 * i + 3));
    CHECK(rgba.pixels[4 * i + 3] == 77);
  }
  Image pal = load("palette.png");
  CHECK(pal.channels == 3);
  CHECK(pal.pixels == px({255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 255, 0, 0, 255, 255, 0, 0}));
  Image pal2 = load("palette2.png");  // 2 bits per index, 5 wide: rows end mid-byte
  CHECK(pal2.width == 5);
  const int idx[10] = {0, 1, 2, 1, 0, 2, 0, 0, 1, 2};
  for (int i = 0; i < 10; ++i) {
    INFO(i);
    CHECK(pal2.pixels[3 * i + static_cast<size_t>(idx[i])] == 255);
    CHECK(pal2.pixels[3 * i] + pal2.pixels[3 * i + 1] + pal2.pixels[3 * i + 2] == 255);
  }
  Image g1 = load("gray1.png");
  CHECK(g1.width == 10);
  CHECK(g1.pixels == px({255, 0, 255, 255, 0, 0, 0, 255, 255, 0, 0, 255, 0, 0, 255, 255, 255, 0, 0, 255}));
  // 16-bit samples are downscaled: round(v / 257).
  CHECK(load("gray16.png").pixels == px({0, 100, 255, 0, 1, 156}));
}

TEST_CASE("PGM and PPM: binary and ASCII, comments, maxval rescaled", "[data]") {
  auto g = readImage(fixture("pnm/gray.pgm"));
  REQUIRE(g);
  CHECK((g->channels == 1 && g->width == 3 && g->height == 2));
  CHECK(g->pixels == px({0, 64, 255, 1, 2, 3}));
  auto a = readImage(fixture("pnm/gray_ascii.pgm"));  // maxval 15
  REQUIRE(a);
  CHECK(a->pixels == px({0, 85, 255, 17, 34, 51}));
  auto c = readImage(fixture("pnm/rgb.ppm"));
  REQUIRE(c);
  CHECK(c->channels == 3);
  CHECK(c->pixels == kRgb);
  CHECK_THAT(errorOf(readImage(fixture("pnm/truncated.ppm"))), Contains("truncated.ppm' is truncated"));
  CHECK_THAT(errorOf(decodeImage("P5 3 2 65535\n", "deep.pgm")), Contains("deep.pgm' has maxval 65535"));
  CHECK_THAT(errorOf(decodeImage("P2 2 1 255 7 300\n", "big.pgm")), Contains("big.pgm': sample 1 is beyond"));
  CHECK_THAT(errorOf(decodeImage("P2 2 1 255 7 x\n", "bad.pgm")), Contains("sample 1 of 2 is missing"));
  CHECK_THAT(errorOf(decodeImage("P5 99999 99999 255\n", "huge.pgm")), Contains("more than the"));
  CHECK_THAT(errorOf(decodeImage("P4 1 1\n\x80", "bits.pbm")), Contains("P4 Netpbm"));
}

TEST_CASE("PNG: corrupt files give errors naming the file", "[data]") {
  const std::string good = bytesOf(fixture("png/rgb_filter4.png"));
  auto err = [](const std::string& bytes) { return errorOf(decodeImage(bytes, "x.png")); };
  std::string b = good;
  b[1] = 'Q';
  CHECK_THAT(err(b), Contains("'x.png' is neither a PNG nor a PGM/PPM file (bad signature"));
  b = good;
  b[16] ^= 1;  // inside IHDR's width
  CHECK_THAT(err(b), Contains("'x.png': chunk 'IHDR' at byte 8 has a bad CRC"));
  CHECK_THAT(err(good.substr(0, good.size() - 20)), Contains("'x.png' is truncated"));
  CHECK_THAT(err(good.substr(0, 5)), Contains("'x.png' is truncated: 5 bytes"));
  CHECK_THAT(err(""), Contains("the file is empty"));
  CHECK_THAT(errorOf(readImage(fixture("png/interlaced.png"))), Contains("interlaced.png' is an interlaced (Adam7) PNG"));
  CHECK_THAT(errorOf(readImage(fixture("png/palette_bad_index.png"))),
             Contains("palette_bad_index.png': pixel (0, 2) uses palette entry 3, but the palette has 3"));
  CHECK_THAT(errorOf(readImage(fixture("png/nowhere.png"))), Contains("nowhere.png"));
  // Every prefix and every single-bit flip is refused or decoded, never a crash.
  for (size_t n = 0; n < good.size(); ++n) CHECK_FALSE(decodeImage(good.substr(0, n), "x.png"));
  int decoded = 0;
  for (size_t i = 0; i < good.size() * 8; ++i) {
    b = good;
    b[i / 8] ^= static_cast<char>(1 << (i % 8));
    decoded += decodeImage(b, "x.png").ok();
  }
  CHECK(decoded == 0);  // every byte is under a CRC, a length or the signature
}

TEST_CASE("imageToPlanes: channel conversion and bilinear resizing", "[data]") {
  Image rgb{3, 2, 3, kRgb};
  std::vector<float> gray = imageToPlanes(rgb, 1, 2, 3);
  REQUIRE(gray.size() == 6);
  CHECK(gray[0] == Approx(0.299 * 10 + 0.587 * 20 + 0.114 * 30));
  CHECK(gray[5] == Approx(0.587 * 255 + 0.114 * 1));
  std::vector<float> planes = imageToPlanes(rgb, 3, 2, 3);  // CHW
  CHECK(planes == std::vector<float>{10, 200, 255, 5, 128, 0, 20, 100, 0, 250, 128, 255, 30, 50, 128, 60, 128, 1});
  Image g{3, 2, 1, px({0, 127, 255, 1, 2, 3})};
  CHECK(imageToPlanes(g, 3, 2, 3) == std::vector<float>{0, 127, 255, 1, 2, 3, 0, 127, 255, 1, 2, 3, 0, 127, 255, 1, 2, 3});
  // Half-pixel centres: one output pixel samples the middle (row 0.5, col 1).
  CHECK(imageToPlanes(g, 1, 1, 1) == std::vector<float>{64.5f});
  std::vector<float> up = imageToPlanes(g, 1, 4, 6);
  REQUIRE(up.size() == 24);
  CHECK(up[0] == 0);  // clamped at the edge
  CHECK(up[1 * 6 + 1] == Approx(0.75 * (0.75 * 0 + 0.25 * 127) + 0.25 * (0.75 * 1 + 0.25 * 2)));
  CHECK(up[3 * 6 + 5] == 3);
}

TEST_CASE("CSV: known rows, label column by name, separate test file", "[data]") {
  DataSpec s = csvSpec("csv/known.csv", "csv/known_test.csv");
  s.scale = "none";
  auto d = loadData(s, 1);
  REQUIRE(d);
  const Dataset& tr = d->train;
  CHECK((tr.count == 3 && tr.rows == 1 && tr.cols == 3 && tr.channels == 1));
  CHECK(tr.images == std::vector<float>{1.5f, 2, -3, 4, 5.25f, 6, 7, 8, 90});
  CHECK(tr.labels == std::vector<int32_t>{0, 2, 1});
  CHECK(tr.targets.empty());
  CHECK(tr.classes == 3);
  CHECK(d->test.images == std::vector<float>{0, 0, 0.5f});
  CHECK(d->test.labels == std::vector<int32_t>{1});
  CHECK(d->test.classes == 3);
  s.scale = "auto";  // floats are left as they are
  auto a = loadData(s, 1);
  REQUIRE(a);
  CHECK(a->train.images == tr.images);
}

TEST_CASE("CSV: regression targets", "[data]") {
  DataSpec s = csvSpec("csv/regress.csv");
  s.label = std::string("y");  // not = "y": GCC 12 warns falsely (-Wrestrict, PR 105329)
  s.regression = true;
  s.scale = "none";  // the features 1, 3, 5 would pass for 8-bit data under "auto"
  s.testFraction = 0.34;
  auto d = loadData(s, 5);
  REQUIRE(d);
  CHECK(d->train.count == 2);
  CHECK(d->test.count == 1);
  CHECK((d->train.targetSize == 1 && d->train.labels.empty() && d->train.classes == 0));
  std::vector<float> all = d->train.targets;
  all.insert(all.end(), d->test.targets.begin(), d->test.targets.end());
  std::sort(all.begin(), all.end());
  CHECK(all == std::vector<float>{-1.25f, 0.5f, 2});
  // Each target stays with its features: x1 = 1, 3, 5 go with 0.5, -1.25, 2.
  for (const Dataset* p : {&d->train, &d->test})
    for (int64_t i = 0; i < p->count; ++i) {
      const float x1 = p->images[static_cast<size_t>(2 * i)], y = p->targets[static_cast<size_t>(i)];
      CHECK(y == (x1 == 1 ? 0.5f : x1 == 3 ? -1.25f : 2.0f));
    }
}

TEST_CASE("CSV: malformed files are errors naming the file and line", "[data]") {
  TempDir dir;
  auto load = [&](const std::string& text, const std::string& label = "label") {
    DataSpec s;
    s.kind = "csv";
    s.path = dir.write("f.csv", text);
    s.label = label;
    return errorOf(loadData(s, 1));
  };
  CHECK_THAT(load("a,b,y\n1,2,3\n"), Contains("f.csv' has no label column 'label'; its header names: a, b, y"));
  CHECK_THAT(load("a,label\n1,0\n2,x1\n"), Contains("f.csv:3: column 'label' holds 'x1', which is not a number"));
  CHECK_THAT(load("a,b,label\n1,2,0\n1,two,0\n"), Contains("f.csv:3: column 'b' holds 'two'"));
  CHECK_THAT(load("a,b,label\n1,2,0\n1,2\n"), Contains("f.csv:3: 2 cells, but the header has 3 columns"));
  CHECK_THAT(load("a,b,label\n1,2,0,4\n"), Contains("f.csv:2: 4 cells"));
  CHECK_THAT(load(""), Contains("f.csv' is empty"));
  CHECK_THAT(load("\n\n"), Contains("f.csv' is empty"));
  CHECK_THAT(load("a,label\n"), Contains("f.csv' has a header but no data rows"));
  CHECK_THAT(load("a,label\n\"1,5\",0\n"), Contains("f.csv:2: quoted fields are not supported"));
  CHECK_THAT(load("a,label\n1,-1\n"), Contains("f.csv:2: label '-1' is not a class id"));
  CHECK_THAT(load("a,label\n1,0.5\n"), Contains("f.csv:2: label '0.5' is not a class id"));
  CHECK_THAT(load("a,label\n1,\n"), Contains("f.csv:2: column 'label' is empty"));
  CHECK_THAT(load("a,label\nnan,1\n"), Contains("not a finite number"));
  CHECK_THAT(load("label\n1\n"), Contains("no feature columns"));
  CHECK(load("\xEF\xBB\xBF" "label,a\n0,1\n1,2\n") == "(no error)");  // a UTF-8 byte-order mark is skipped
  CHECK_THAT(load("a,label,label\n1,1,1\n"), Contains("2 columns named 'label'"));
  CHECK_THAT(load("a,label\n1,1\n"), Contains("too few to split off a test set"));
  CHECK_THAT(errorOf(loadData(csvSpec("csv/none.csv"), 1)), Contains("cannot open '"));
  DataSpec s = csvSpec("csv/known.csv", "csv/known_test.csv");
  s.classes = 2;  // the data hold label 2
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("known.csv': label 2 of sample 1 is out of range for 2 classes (0..1)"));
}

TEST_CASE("test fraction: a seeded, reproducible, disjoint split", "[data]") {
  DataSpec s = csvSpec("csv/many.csv");  // feature id = row number 0..19
  s.scale = "none";                      // which "auto" would take for 8-bit data and divide
  auto a = loadData(s, 7), b = loadData(s, 7), c = loadData(s, 8);
  REQUIRE((a && b && c));
  CHECK(a->train.count == 16);
  CHECK(a->test.count == 4);
  CHECK(firstFeature(a->train) == firstFeature(b->train));
  CHECK(firstFeature(a->test) == firstFeature(b->test));
  CHECK(firstFeature(a->test) != firstFeature(c->test));
  std::vector<float> tr = firstFeature(a->train), te = firstFeature(a->test);
  CHECK(std::is_sorted(tr.begin(), tr.end()));
  CHECK(std::is_sorted(te.begin(), te.end()));
  std::set<float> all(tr.begin(), tr.end());
  all.insert(te.begin(), te.end());
  CHECK(all.size() == 20);  // disjoint and complete
  for (const Dataset* d : {&a->train, &a->test})
    for (int64_t i = 0; i < d->count; ++i)  // labels travel with their rows
      CHECK(d->labels[static_cast<size_t>(i)] == static_cast<int>(d->images[static_cast<size_t>(i)]) % 3);
  s.testFraction = 1;
  CHECK_THAT(errorOf(loadData(s, 7)), Contains("test fraction 1 is not between 0 and 1"));
}

TEST_CASE("splitValidation: seeded and disjoint, too small is an error", "[data]") {
  auto d = loadData(csvSpec("csv/many.csv"), 7);
  REQUIRE(d);
  Dataset train = d->train, again = d->train;
  const std::vector<float> before = firstFeature(train);
  auto val = splitValidation(train, 0.25, 3);
  auto val2 = splitValidation(again, 0.25, 3);
  REQUIRE((val && val2));
  CHECK(val->count == 4);
  CHECK(train.count == 12);
  CHECK(train.images.size() == 12);
  CHECK(val->classes == d->train.classes);
  CHECK(firstFeature(*val) == firstFeature(*val2));
  std::vector<float> merged = firstFeature(train), v = firstFeature(*val);
  merged.insert(merged.end(), v.begin(), v.end());
  std::sort(merged.begin(), merged.end());
  CHECK(merged == before);
  CHECK_THAT(errorOf(splitValidation(train, 0, 1)), Contains("validation fraction 0 is not between 0 and 1"));
  Dataset one = d->test;
  one.count = 1;
  CHECK_THAT(errorOf(splitValidation(one, 0.5, 1)), Contains("1 sample(s), too few"));
}

TEST_CASE("scale: standardize with the train split's statistics", "[data]") {
  DataSpec s = csvSpec("csv/known.csv", "csv/known_test.csv");
  s.scale = "standardize";
  auto d = loadData(s, 1);
  REQUIRE(d);
  const std::vector<std::vector<double>> raw = {{1.5, 4, 7}, {2, 5.25, 8}, {-3, 6, 90}};  // per feature
  const std::vector<double> test = {0, 0, 0.5};
  for (size_t j = 0; j < 3; ++j) {
    INFO("feature " << j);
    double m = 0, v = 0, m2 = 0, v2 = 0;
    for (double x : raw[j]) m += x / 3;
    for (double x : raw[j]) v += (x - m) * (x - m) / 3;
    for (int i = 0; i < 3; ++i) m2 += d->train.images[3 * i + j] / 3.0;
    for (int i = 0; i < 3; ++i) v2 += (d->train.images[3 * i + j] - m2) * (d->train.images[3 * i + j] - m2) / 3;
    CHECK(m2 == Approx(0).margin(1e-6));
    CHECK(v2 == Approx(1).epsilon(1e-5));
    CHECK(d->mean[j] == Approx(m));
    CHECK(d->stddev[j] == Approx(std::sqrt(v)));
    CHECK(d->test.images[j] == Approx((test[j] - m) / std::sqrt(v)));
  }
  TempDir dir;
  DataSpec c;
  c.kind = "csv";
  c.path = dir.write("c.csv", "k,label\n0.1,0\n0.1,1\n0.1,0\n");
  c.testPath = dir.write("t.csv", "k,label\n0.3,0\n");
  c.scale = "standardize";
  auto k = loadData(c, 1);  // a constant feature is centred, not divided by ~0
  REQUIRE(k);
  CHECK(k->train.images == std::vector<float>{0, 0, 0});
  CHECK(k->test.images[0] == Approx(0.2));
  c.scale = "minmax";
  CHECK_THAT(errorOf(loadData(c, 1)), Contains("unknown scale 'minmax'"));
}

TEST_CASE("NPZ: known arrays, u1 scaled by auto, integer and float labels", "[data]") {
  DataSpec s;
  s.kind = "npz";
  s.path = fixture("npz/known.npz");
  auto d = loadData(s, 1);
  REQUIRE(d);
  CHECK((d->train.count == 3 && d->train.rows == 2 && d->train.cols == 2 && d->train.channels == 1));
  CHECK(d->train.images[1] == 51 / 255.0f);
  CHECK(d->train.images[3] == 1.0f);
  CHECK(d->train.labels == std::vector<int32_t>{0, 2, 1});
  CHECK(d->test.labels == std::vector<int32_t>{1, 1});
  CHECK(d->train.classes == 3);
  s.scale = "none";
  auto raw = loadData(s, 1);
  REQUIRE(raw);
  CHECK(raw->train.images == std::vector<float>{0, 51, 102, 255, 1, 2, 3, 4, 10, 20, 30, 40});
  CHECK(raw->test.images == std::vector<float>{255, 0, 0, 255, 5, 6, 7, 8});

  s.path = fixture("npz/float_labels.npz");
  s.scale = "auto";
  auto f = loadData(s, 1);
  REQUIRE(f);
  CHECK((f->train.rows == 1 && f->train.cols == 3));
  CHECK(f->train.images[0] == 0.5f);  // f4 features unchanged by auto
  CHECK(f->train.labels == std::vector<int32_t>{1, 0, 2, 1});

  s.path = fixture("npz/regress.npz");  // deflated members
  s.regression = true;
  auto r = loadData(s, 1);
  REQUIRE(r);
  CHECK(r->train.targetSize == 2);
  CHECK(r->train.targets == std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8});
  CHECK(r->test.targets == std::vector<float>{1, 2, 3, 4});
  CHECK(r->train.labels.empty());
}

TEST_CASE("NPZ: missing keys, count and size mismatches, bad labels", "[data]") {
  auto err = [](const std::string& file, bool regression = false) {
    DataSpec s;
    s.kind = "npz";
    s.path = fixture("npz/" + file);
    s.regression = regression;
    return errorOf(loadData(s, 1));
  };
  CHECK_THAT(err("missing_key.npz"), Contains("missing_key.npz' has no array 'y_test'"));
  CHECK_THAT(err("missing_key.npz"), Contains("(it holds x_train, y_train, x_test)"));
  CHECK_THAT(err("count_mismatch.npz"), Contains("count_mismatch.npz:x_train' has 3 samples but"));
  CHECK_THAT(err("count_mismatch.npz"), Contains("y_train' has shape [2]"));
  CHECK_THAT(err("negative_label.npz"), Contains("negative_label.npz:y_train': label -1 of sample 1 is negative"));
  CHECK_THAT(err("fraction_label.npz"), Contains("label 0.5 of sample 1 is not an integer class id"));
  CHECK_THAT(err("size_mismatch.npz"), Contains("the training split of '" + fixture("npz/size_mismatch.npz") +
                                                  "' has samples of 3 features, but its test split has 2 features"));
  CHECK_THAT(err("regress.npz"), Contains("y_train' has shape [4, 2]; class labels are [N]"));
  CHECK_THAT(err("nowhere.npz"), Contains("nowhere.npz"));
  CHECK_THAT(err("../csv/known.csv"), Contains("known.csv"));
  DataSpec s;
  s.kind = "npz";
  s.path = fixture("npz/known.npz");
  s.classes = 2;
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("known.npz': label 2 of sample 1 is out of range for 2 classes"));
  s.classes = 0;
  s.testPath = "t.npz";
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("npz data hold their own test split"));
}

TEST_CASE("NPY folder and IDX folder", "[data]") {
  DataSpec s;
  s.kind = "npy";
  s.path = fixture("npy");
  auto d = loadData(s, 1);
  REQUIRE(d);
  CHECK((d->train.channels == 1 && d->train.rows == 2 && d->train.cols == 2 && d->train.count == 2));
  CHECK(d->train.images == std::vector<float>{0, 0.125f, 0.25f, 0.375f, 0.5f, 0.625f, 0.75f, 0.875f});
  CHECK(d->test.images == std::vector<float>{1, 1.125f, 1.25f, 1.375f});
  CHECK(d->train.labels == std::vector<int32_t>{3, 0});
  CHECK(d->train.classes == 4);
  s.path = fixture("nowhere");
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("nowhere/x_train.npy"));

  DataSpec i;
  i.path = fixture("idx");
  auto a = loadData(i, 1);
  REQUIRE(a);
  CHECK(a->train.images == std::vector<float>{0, 1, 0.2f, 0.4f, 1 / 255.0f, 2 / 255.0f, 3 / 255.0f, 4 / 255.0f});
  CHECK(a->train.classes == 5);
  CHECK(a->test.classes == 5);
  i.scale = "none";
  auto n = loadData(i, 1);
  REQUIRE(n);
  CHECK(n->train.images == std::vector<float>{0, 255, 51, 102, 1, 2, 3, 4});
  i.regression = true;
  CHECK_THAT(errorOf(loadData(i, 1)), Contains("regression needs csv, npz or npy"));
}

TEST_CASE("image folders: classes by sorted folder name, mixed formats", "[data]") {
  DataSpec s;
  s.kind = "images";
  s.path = fixture("images/train");
  s.testPath = fixture("images/test");
  auto d = loadData(s, 1);
  REQUIRE(d);
  const Dataset& tr = d->train;
  CHECK(tr.classNames == std::vector<std::string>{"cat", "dog"});
  CHECK((tr.count == 4 && tr.channels == 3 && tr.rows == 2 && tr.cols == 3 && tr.classes == 2));
  CHECK(tr.labels == std::vector<int32_t>{0, 0, 1, 1});  // cat/a.png, cat/b.ppm, dog/c.pgm, dog/d.png
  auto at = [&](const Dataset& x, int64_t i, int64_t c, int64_t y, int64_t k) {
    return x.images[static_cast<size_t>(i * x.sampleSize() + (c * x.rows + y) * x.cols + k)] * 255.0f;
  };
  CHECK(at(tr, 0, 0, 0, 1) == Approx(200));
  CHECK(at(tr, 0, 2, 1, 2) == Approx(1));
  CHECK(at(tr, 1, 0, 0, 0) == Approx(255 - 10));
  for (int c = 0; c < 3; ++c) CHECK(at(tr, 2, c, 1, 2) == Approx(150));  // gray repeated
  CHECK(at(tr, 3, 1, 0, 0) == Approx(9));
  CHECK(d->test.count == 1);
  CHECK(d->test.labels == std::vector<int32_t>{1});
  CHECK(at(d->test, 0, 0, 1, 2) == Approx(6));

  s.channels = 1;
  auto g = loadData(s, 1);
  REQUIRE(g);
  CHECK(g->train.channels == 1);
  CHECK(at(g->train, 0, 0, 0, 0) == Approx(0.299 * 10 + 0.587 * 20 + 0.114 * 30));

  s.testPath.clear();
  s.testFraction = 0.5;
  auto split = loadData(s, 3);
  REQUIRE(split);
  CHECK(split->train.count == 2);
  CHECK(split->test.count == 2);
  CHECK(split->test.classNames == tr.classNames);
}

TEST_CASE("image folders: sizes, resizing, empty and unknown folders", "[data]") {
  DataSpec s;
  s.kind = "images";
  s.path = fixture("images/mixed");
  s.testFraction = 0.5;
  const std::string e = errorOf(loadData(s, 1));
  CHECK_THAT(e, Contains("large.pgm' is 4×6 but"));
  CHECK_THAT(e, Contains("small.pgm' is 2×3; set height and width"));
  s.height = 2;
  s.width = 3;
  auto d = loadData(s, 1);
  REQUIRE(d);
  CHECK((d->train.rows == 2 && d->train.cols == 3 && d->train.channels == 1));
  s.width = 0;
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("give both height and width"));

  TempDir dir;
  s.height = s.width = 0;
  s.path = dir.path.string();
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("' holds no class folders"));
  fs::create_directories(dir.path / "zebra");
  dir.write("zebra/readme.txt", "no images here");
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("zebra' holds no .png, .pgm or .ppm images"));
  s.path = (dir.path / "missing").string();
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("missing' does not exist or is not a folder"));
  s.path = fixture("images/train");
  s.testPath = dir.path.string();
  dir.write("zebra/z.pgm", "P5 3 2 255\n123456");
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("has class folder 'zebra', which the training data lack"));
  fs::remove_all(dir.path / "zebra");
  dir.write("cat/broken.png", "\x89PNG\r\n\x1a\n");
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("broken.png' is truncated"));
}

TEST_CASE("augmentBatch: shift by known offsets, hflip, binarize", "[data]") {
  Dataset d;
  d.rows = d.cols = 4;
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[static_cast<size_t>(i)] = static_cast<float>(i % 16 + 1);
  Rng probe(5);  // the draws the contract promises: dy then dx per sample
  CHECK(static_cast<int>(probe.below(3)) - 1 == 1);
  CHECK(static_cast<int>(probe.below(3)) - 1 == -1);
  CHECK(static_cast<int>(probe.below(3)) - 1 == -1);
  CHECK(static_cast<int>(probe.below(3)) - 1 == -1);
  Rng rng(5);
  augmentBatch(Augment{1, false, -1}, d, x.data(), 2, rng);
  // Sample 0 moves 1 down and 1 left; sample 1 moves 1 up and 1 left.
  const std::vector<float> expected = {0, 0, 0,  0,  2,  3,  4,  0, 6, 7, 8, 0, 10, 11, 12, 0,
                                       6, 7, 8, 0, 10, 11, 12, 0, 14, 15, 16, 0, 0, 0, 0, 0};
  CHECK(x == expected);
  CHECK(rng.next() == probe.next());

  Dataset c;
  c.channels = 2;
  c.rows = 1;
  c.cols = 3;
  std::vector<float> y = {1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6};
  Rng flips(1);  // below(2) gives 1, 0, 0, 1: samples 0 and 3 are mirrored
  augmentBatch(Augment{0, true, -1}, c, y.data(), 4, flips);
  CHECK(y == std::vector<float>{3, 2, 1, 6, 5, 4, 1, 2, 3, 4, 5, 6, 1, 2, 3, 4, 5, 6, 3, 2, 1, 6, 5, 4});

  std::vector<float> z = {0.2f, 0.5f, 0.7f, 0.0f};
  Rng r(9), fresh(9);
  Dataset b;
  b.rows = 2;
  b.cols = 2;
  augmentBatch(Augment{0, false, 0.5}, b, z.data(), 1, r);
  CHECK(z == std::vector<float>{0, 0, 1, 0});
  CHECK(r.next() == fresh.next());  // binarizing draws nothing
}

TEST_CASE("loadData: bad specs", "[data]") {
  DataSpec s;
  s.kind = "parquet";
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("unknown data kind 'parquet': expected one of idx, npz, npy, csv, images"));
  s.kind = "csv";
  s.height = 28;
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("apply to images data, not csv"));
  s.kind = "images";
  s.width = 28;
  s.channels = 2;
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("channels 2"));
  s.kind = "idx";
  s.height = s.width = s.channels = 0;
  s.path = fixture("nowhere");
  CHECK_THAT(errorOf(loadData(s, 1)), Contains("nowhere"));
}
