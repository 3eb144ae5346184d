// IDX reading and MNIST-style dataset loading: hand-made raw and gzipped
// files, every kind of corruption, and the installed Fashion-MNIST.
#include <unistd.h>
#include <zlib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "io/dataset.h"
#include "io/file_io.h"
#include "io/idx.h"
#include "io/npy.h"

using namespace nnc;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    static int serial = 0;
    path = fs::temp_directory_path() /
           ("nnc_idx_test_" + std::to_string(::getpid()) + "_" + std::to_string(serial++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

void put32(std::string& s, uint32_t v) {
  for (int sh = 24; sh >= 0; sh -= 8) s.push_back(static_cast<char>((v >> sh) & 0xff));
}

std::string idxHeader(uint8_t type, const std::vector<uint32_t>& dims) {
  std::string s{'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) put32(s, d);
  return s;
}

std::string idxU8(const std::vector<uint32_t>& dims, const std::vector<int>& data) {
  std::string s = idxHeader(kIdxU8, dims);
  for (int v : data) s.push_back(static_cast<char>(v));
  return s;
}

// In-memory gzip (deflate with windowBits 15 + 16 writes the gzip wrapper).
std::string gzip(std::string_view in) {
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&zs, in.size()) + 64, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

void write(const std::string& path, std::string_view bytes) { REQUIRE(writeFileAtomic(path, bytes).ok()); }

template <class T>
std::string errorOf(const Expected<T>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

// 3 images of 2x3 and their labels.
const std::vector<int> kPixels = {0, 1, 2, 3, 4, 5, 255, 254, 128, 127, 64, 17, 9, 8, 7, 6, 5, 200};
const std::vector<int> kLabels = {3, 0, 7};
std::string imagesFile() { return idxU8({3, 2, 3}, kPixels); }
std::string labelsFile() { return idxU8({3}, kLabels); }

}  // namespace

TEST_CASE("idx: u8 files, raw and gzipped, read exactly", "[data]") {
  TempDir dir;
  write(dir / "raw", imagesFile());
  write(dir / "gz.bin", gzip(imagesFile()));  // gzip is told by its magic, not its name
  for (const char* name : {"raw", "gz.bin"}) {
    INFO(name);
    auto a = readIdx(dir / name);
    REQUIRE(a.ok());
    CHECK(a->type == kIdxU8);
    CHECK(a->shape == Shape{3, 2, 3});
    REQUIRE(a->values.size() == kPixels.size());
    for (size_t i = 0; i < kPixels.size(); ++i) CHECK(a->values[i] == static_cast<float>(kPixels[i]));
  }
}

TEST_CASE("idx: the other element types are big-endian and converted to float", "[data]") {
  std::string i8 = idxHeader(kIdxI8, {3}) + std::string{'\x80', '\xff', '\x7f'};
  std::string i16 = idxHeader(kIdxI16, {2}) + std::string{'\x80', '\x00', '\x01', '\x02'};
  std::string i32 = idxHeader(kIdxI32, {2});
  put32(i32, 0xfffffffe);
  put32(i32, 0x01000000);
  std::string f32 = idxHeader(kIdxF32, {1, 2});
  float fv[2] = {-2.5f, 0.1f};
  for (float f : fv) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    put32(f32, bits);
  }
  std::string f64 = idxHeader(kIdxF64, {1});
  double dv = 1.0 / 3.0;
  uint64_t dbits;
  std::memcpy(&dbits, &dv, 8);
  put32(f64, static_cast<uint32_t>(dbits >> 32));
  put32(f64, static_cast<uint32_t>(dbits));

  auto a = parseIdx(i8, "i8");
  REQUIRE(a.ok());
  CHECK(a->values == std::vector<float>{-128, -1, 127});
  a = parseIdx(i16, "i16");
  REQUIRE(a.ok());
  CHECK(a->values == std::vector<float>{-32768, 258});
  a = parseIdx(i32, "i32");
  REQUIRE(a.ok());
  CHECK(a->values == std::vector<float>{-2, 16777216});
  a = parseIdx(f32, "f32");
  REQUIRE(a.ok());
  CHECK(a->shape == Shape{1, 2});
  CHECK(a->values == std::vector<float>{-2.5f, 0.1f});
  a = parseIdx(gzip(f64), "f64");
  REQUIRE(a.ok());
  CHECK(a->type == kIdxF64);
  CHECK(a->values == std::vector<float>{static_cast<float>(1.0 / 3.0)});
}

TEST_CASE("idx: a dataset split loads scaled images and labels", "[data]") {
  TempDir dir;
  SECTION("raw files, test split") {
    write(dir / "t10k-images-idx3-ubyte", imagesFile());
    write(dir / "t10k-labels-idx1-ubyte", labelsFile());
    auto d = loadIdxDataset(dir.path.string(), "test");
    REQUIRE(d.ok());
    CHECK(d->count == 3);
    CHECK(d->rows == 2);
    CHECK(d->cols == 3);
    CHECK(d->classes == 8);
    CHECK(d->labels == std::vector<int32_t>{3, 0, 7});
    REQUIRE(d->images.size() == kPixels.size());
    for (size_t i = 0; i < kPixels.size(); ++i) CHECK(d->images[i] == static_cast<float>(kPixels[i]) / 255.0f);
    CHECK(d->images[0] == 0.0f);
    CHECK(d->images[6] == 1.0f);

    Tensor flat = datasetImages(*d);
    CHECK(flat.type == TensorType{DType::F32, {3, 6}});
    CHECK(flat.data[8] == static_cast<double>(128.0f / 255.0f));
    CHECK(datasetImages(*d, true).type == TensorType{DType::F32, {3, 1, 2, 3}});
    Tensor labels = datasetLabels(*d);
    CHECK(labels.type == TensorType{DType::I32, {3}});
    CHECK(labels.data == std::vector<double>{3, 0, 7});
  }
  SECTION("gzipped files, train split, trailing slash") {
    write(dir / "train-images-idx3-ubyte.gz", gzip(imagesFile()));
    write(dir / "train-labels-idx1-ubyte.gz", gzip(labelsFile()));
    auto d = loadIdxDataset(dir.path.string() + "/", "train");
    REQUIRE(d.ok());
    CHECK(d->count == 3);
    CHECK(d->labels == std::vector<int32_t>{3, 0, 7});
    CHECK(d->images[17] == 200.0f / 255.0f);
  }
}

TEST_CASE("idx: missing files and unknown splits are named", "[data]") {
  TempDir dir;
  std::string msg = errorOf(loadIdxDataset(dir.path.string(), "train"));
  CHECK_THAT(msg, Catch::Contains("no train images in '" + dir.path.string() + "'"));
  CHECK_THAT(msg, Catch::Contains("tried 'train-images-idx3-ubyte' and 'train-images-idx3-ubyte.gz'"));

  write(dir / "t10k-images-idx3-ubyte.gz", gzip(imagesFile()));
  msg = errorOf(loadIdxDataset(dir.path.string(), "test"));
  CHECK_THAT(msg, Catch::Contains("no test labels"));
  CHECK_THAT(msg, Catch::Contains("'t10k-labels-idx1-ubyte.gz'"));

  msg = errorOf(loadIdxDataset(dir / "nowhere", "test"));
  CHECK_THAT(msg, Catch::Contains("does not exist"));
  CHECK_THAT(errorOf(loadIdxDataset(dir.path.string(), "validation")),
             Catch::Contains("unknown dataset split 'validation'"));
  CHECK_THAT(errorOf(readIdx(dir / "absent")), Catch::Contains("cannot open '" + (dir / "absent") + "'"));
}

TEST_CASE("idx: corrupt files give errors in words", "[data]") {
  const std::string f = "f";
  SECTION("wrong magic shows the bytes") {
    CHECK(errorOf(parseIdx("PK\x03\x04rest", f)) ==
          "'f' is not an IDX file (magic 50 4b 03 04...; an IDX file starts 00 00 <type> <rank>)");
    // Gzipped twice: after one gunzip the content still starts 1f 8b.
    CHECK_THAT(errorOf(parseIdx(gzip(gzip(imagesFile())), f)),
               Catch::Contains("is not an IDX file (gunzipped, magic 1f 8b 08 00..."));
    CHECK_THAT(errorOf(parseIdx(std::string("\0\0\x07\x01", 4) + "abcd", f)),
               Catch::Contains("unknown element type 0x07"));
    CHECK_THAT(errorOf(parseIdx("", f)), Catch::Contains("too short for an IDX header"));
  }
  SECTION("truncated header and data") {
    CHECK(errorOf(parseIdx(imagesFile().substr(0, 21), f)) ==
          "'f' is truncated: header says 3×2×3 bytes, file has 5 after the 16-byte header");
    CHECK(errorOf(parseIdx(imagesFile().substr(0, 10), f)) ==
          "'f' is truncated: its IDX header has 3 dimensions (16 bytes) but the file has 10 bytes");
    CHECK_THAT(errorOf(parseIdx(gzip(imagesFile().substr(0, 30)), f)),
               Catch::Contains("header says 3×2×3 bytes, file inflates to 14 after"));
    std::string i32 = idxHeader(kIdxI32, {4}) + std::string(15, '\0');
    CHECK_THAT(errorOf(parseIdx(i32, f)), Catch::Contains("header says 4 i32 values (16 bytes), file has 15"));
    CHECK_THAT(errorOf(parseIdx(imagesFile() + "xy", f)), Catch::Contains("has 2 bytes after the 3×2×3 bytes"));
  }
  SECTION("zero and oversized dimensions") {
    CHECK_THAT(errorOf(parseIdx(idxU8({3, 0, 2}, {}), f)), Catch::Contains("dimension 1 is 0"));
    CHECK_THAT(errorOf(parseIdx(idxHeader(kIdxU8, {}), f)), Catch::Contains("no dimensions"));
    std::string huge = idxHeader(kIdxF64, {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}) + "abc";
    CHECK_THAT(errorOf(parseIdx(huge, f)), Catch::Contains("more than the 2147483648 nnc reads"));
    CHECK_THAT(errorOf(parseIdx(gzip(huge), f)), Catch::Contains("more than the 2147483648 nnc reads"));
  }
  SECTION("corrupt and truncated gzip streams") {
    std::string gz = gzip(imagesFile());
    std::string bad = gz;
    bad[bad.size() - 6] ^= 0x55;  // inside the CRC-32 trailer
    CHECK_THAT(errorOf(parseIdx(bad, f)), Catch::Contains("'f' is a corrupt gzip stream: incorrect data check"));
    bad = gz;
    bad[3] = '\xe0';  // reserved gzip flag bits
    CHECK_THAT(errorOf(parseIdx(bad, f)), Catch::Contains("corrupt gzip stream: unknown header flags set"));
    CHECK_THAT(errorOf(parseIdx(gz.substr(0, gz.size() - 3), f)), Catch::Contains("'f' is a truncated gzip stream"));
    CHECK_THAT(errorOf(parseIdx(gz + "junk", f)), Catch::Contains("4 bytes of trailing garbage"));
    // Concatenated members are one stream, as for gzip(1).
    std::string file = imagesFile();
    auto two = parseIdx(gzip(file.substr(0, 20)) + gzip(file.substr(20)), f);
    REQUIRE(two.ok());
    CHECK(two->values.size() == 18);
  }
  SECTION("gzip bombs are refused while inflating") {
    // A one-byte array followed by 8 MiB of zeros: compresses to ~8 KiB.
    std::string bomb = idxU8({1}, {7}) + std::string(size_t{8} << 20, '\0');
    std::string msg = errorOf(parseIdx(gzip(bomb), f));
    CHECK_THAT(msg, Catch::Contains("inflates to more than 1048585 bytes, beyond the 9 its IDX header describes"));
    // Within the slack, the extra bytes are reported as such.
    CHECK_THAT(errorOf(parseIdx(gzip(idxU8({1}, {7}) + std::string(1000, '\0')), f)),
               Catch::Contains("has 1000 bytes after the 1 bytes"));
  }
}

TEST_CASE("idx: every truncation of a valid file is an error, never a crash", "[data]") {
  for (const std::string& full : {imagesFile(), gzip(imagesFile()), labelsFile(), gzip(labelsFile())}) {
    REQUIRE(parseIdx(full, "f").ok());
    for (size_t n = 0; n < full.size(); ++n) {
      INFO("length " << n << " of " << full.size());
      auto r = parseIdx(full.substr(0, n), "f");
      CHECK_FALSE(r.ok());
      if (!r.ok()) CHECK_THAT(r.error().message, Catch::StartsWith("'f'"));
    }
  }
  // Through files and the dataset loader too.
  TempDir dir;
  std::string gz = gzip(imagesFile());
  write(dir / "train-labels-idx1-ubyte", labelsFile());
  for (size_t n = 0; n < gz.size(); ++n) {
    write(dir / "train-images-idx3-ubyte.gz", gz.substr(0, n));
    CHECK_THAT(errorOf(loadIdxDataset(dir.path.string(), "train")),
               Catch::Contains(dir / "train-images-idx3-ubyte.gz"));
  }
}

TEST_CASE("idx: image and label files must agree", "[data]") {
  TempDir dir;
  const std::string images = dir / "train-images-idx3-ubyte", labels = dir / "train-labels-idx1-ubyte";
  write(images, imagesFile());
  SECTION("count mismatch names both files") {
    write(labels, idxU8({2}, {1, 2}));
    CHECK(errorOf(loadIdxDataset(dir.path.string(), "train")) ==
          "'" + images + "' has 3 images but '" + labels + "' has 2 labels");
  }
  SECTION("labels outside 0..255") {
    std::string i32 = idxHeader(kIdxI32, {3});
    for (uint32_t v : {1u, 300u, 2u}) put32(i32, v);
    write(labels, i32);
    CHECK(errorOf(loadIdxDataset(dir.path.string(), "train")) ==
          "'" + labels + "': label 1 is 300, outside the class range 0..255");
    i32 = idxHeader(kIdxI16, {3}) + std::string("\0\1\xff\xff\0\2", 6);
    write(labels, i32);
    CHECK_THAT(errorOf(loadIdxDataset(dir.path.string(), "train")), Catch::Contains("label 1 is -1"));
  }
  SECTION("i16 labels in range are accepted") {
    write(labels, idxHeader(kIdxI16, {3}) + std::string("\0\1\0\x0b\0\2", 6));
    auto d = loadIdxDataset(dir.path.string(), "train");
    REQUIRE(d.ok());
    CHECK(d->labels == std::vector<int32_t>{1, 11, 2});
    CHECK(d->classes == 12);
  }
  SECTION("float labels and misshapen files") {
    write(labels, idxHeader(kIdxF32, {3}) + std::string(12, '\0'));
    CHECK_THAT(errorOf(loadIdxDataset(dir.path.string(), "train")), Catch::Contains("f32 labels"));
    write(labels, idxU8({3, 1}, {1, 2, 3}));
    CHECK_THAT(errorOf(loadIdxDataset(dir.path.string(), "train")),
               Catch::Contains("should hold labels [count], but holds u8 [3, 1]"));
    write(images, idxU8({18}, kPixels));
    CHECK_THAT(errorOf(loadIdxDataset(dir.path.string(), "train")),
               Catch::Contains("should hold u8 images [count, rows, cols], but holds u8 [18]"));
  }
}

TEST_CASE("idx: the installed Fashion-MNIST loads", "[data]") {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir)) {
    WARN(dir << " is absent (Debian's dataset-fashion-mnist); skipping");
    return;
  }
  auto train = loadIdxDataset(dir, "train");
  REQUIRE(train.ok());
  CHECK(train->count == 60000);
  CHECK(train->rows == 28);
  CHECK(train->cols == 28);
  CHECK(train->classes == 10);
  CHECK(train->images.size() == size_t{60000} * 28 * 28);
  CHECK(train->labels.size() == 60000);
  // From Python's gzip module:
  //   d = gzip.open('.../train-labels-idx1-ubyte.gz').read(); d[8] == 9
  //   d = gzip.open('.../train-images-idx3-ubyte.gz').read(); sum(d[16:16+784]) == 76247, max == 255
  CHECK(train->labels[0] == 9);
  double sum = 0;
  float mx = 0;
  for (int i = 0; i < 784; ++i) {
    sum += std::lround(train->images[i] * 255.0f);
    mx = std::max(mx, train->images[i]);
  }
  CHECK(sum == 76247);
  CHECK(mx == 1.0f);
  for (float v : train->images) {
    if (!(v >= 0.0f && v <= 1.0f)) FAIL("pixel outside [0, 1]: " << v);
  }

  auto test = loadIdxDataset(dir, "test");
  REQUIRE(test.ok());
  CHECK(test->count == 10000);
  CHECK(test->rows == 28);
  CHECK(test->cols == 28);
  CHECK(test->classes == 10);
  CHECK(test->labels[0] == 9);  // gzip.open('.../t10k-labels-idx1-ubyte.gz').read()[8] == 9
}
