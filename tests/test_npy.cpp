// NPY/NPZ reading and writing against files NumPy made (tests/data, see
// make_fixtures.py there), plus corruption and I/O failure cases.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>

#include "io/file_io.h"
#include "io/npy.h"
#include "io/zip.h"

using namespace nnc;
namespace fs = std::filesystem;

namespace {

std::string dataPath(const std::string& name) { return std::string(NNC_SOURCE_DIR) + "/tests/data/" + name; }

std::string fixture(const std::string& name) {
  auto bytes = readFile(dataPath(name));
  REQUIRE(bytes.ok());
  return *bytes;
}

Tensor tensor(Shape shape, std::vector<double> data, DType dt = DType::F32) {
  return Tensor(TensorType{dt, std::move(shape)}, std::move(data));
}

// A scratch folder of our own, removed when the test case ends.
struct TempDir {
  fs::path path;
  TempDir() {
    static int serial = 0;
    path = fs::temp_directory_path() /
           ("nnc_npy_test_" + std::to_string(::getpid()) + "_" + std::to_string(serial++));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string operator/(const std::string& name) const { return (path / name).string(); }
};

// An NPY file with a hand-written header dict, for malformed-header cases.
std::string makeNpy(std::string_view dict, std::string_view data, int major = 1) {
  std::string out = "\x93NUMPY";
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  size_t n = dict.size();
  int lenBytes = major == 1 ? 2 : 4;
  for (int i = 0; i < lenBytes; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += dict;
  out += data;
  return out;
}

std::string errorOf(const Expected<Tensor>& r) {
  REQUIRE_FALSE(r.ok());
  return r.error().message;
}

void requireSame(const Tensor& got, const Tensor& want) {
  CHECK(got.type == want.type);
  REQUIRE(got.data.size() == want.data.size());
  for (size_t i = 0; i < want.data.size(); ++i) {
    INFO("index " << i);
    CHECK(got.data[i] == want.data[i]);
  }
}

double f32(double v) { return static_cast<double>(static_cast<float>(v)); }

}  // namespace

TEST_CASE("npy: f32 and i32 round trip through bytes and files", "[npy]") {
  TempDir dir;
  std::vector<Tensor> cases = {
      tensor({}, {3.25}),
      tensor({}, {-7}, DType::I32),
      tensor({5}, {0, 1.5, -2.75, f32(1e30), -0.0}),
      tensor({2, 3}, {1, 2, 3, 4, 5, 6}, DType::I32),
      tensor({4}, {-2147483648.0, -1, 0, 2147483647.0}, DType::I32),
      tensor({2, 0, 4}, {}),
      tensor({0}, {}, DType::I32),
      tensor({1, 1, 2, 1}, {f32(0.1), f32(-1.0 / 3.0)}),
  };
  for (const Tensor& t : cases) {
    INFO(typeString(t.type));
    std::string bytes = serializeNpy(t);
    CHECK(bytes.size() % 64 == (t.data.size() * 4) % 64);  // header padded to 64
    auto back = parseNpy(bytes, "mem.npy");
    REQUIRE(back.ok());
    requireSame(*back, t);

    std::string path = dir / "t.npy";
    REQUIRE(writeNpy(path, t).ok());
    auto fromFile = readNpy(path);
    REQUIRE(fromFile.ok());
    requireSame(*fromFile, t);
  }
  // Nothing but the result is left behind: the temporary was renamed.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
}

TEST_CASE("npy: f32 values are rounded to f32 and i32 values saturate on write", "[npy]") {
  auto back = parseNpy(serializeNpy(tensor({2}, {0.1, 1e300})), "m");
  REQUIRE(back.ok());
  CHECK(back->data[0] == f32(0.1));
  CHECK(std::isinf(back->data[1]));
  auto ints = parseNpy(serializeNpy(tensor({3}, {1e12, -1e12, std::nan("")}, DType::I32)), "m");
  REQUIRE(ints.ok());
  CHECK(ints->data == std::vector<double>{2147483647.0, -2147483648.0, 0});
}

TEST_CASE("npy: reads the NumPy-made fixtures exactly", "[npy]") {
  SECTION("f4") {
    auto t = readNpy(dataPath("f4.npy"));
    REQUIRE(t.ok());
    requireSame(*t, tensor({2, 3}, {f32(0.1), -2.5, f32(3e38), 0.0, -0.0, f32(1.0 / 3.0)}));
    CHECK(std::signbit(t->data[4]));
  }
  SECTION("f8 is rounded to f32") {
    auto t = readNpy(dataPath("f8.npy"));
    REQUIRE(t.ok());
    requireSame(*t, tensor({2, 2}, {f32(0.1), f32(1e-3), 1.5, -7.0}));
  }
  SECTION("i4") {
    auto t = readNpy(dataPath("i4.npy"));
    REQUIRE(t.ok());
    requireSame(*t, tensor({5}, {-2147483648.0, -1, 0, 7, 2147483647.0}, DType::I32));
  }
  SECTION("i8 within i32") {
    auto t = readNpy(dataPath("i8.npy"));
    REQUIRE(t.ok());
    requireSame(*t, tensor({2, 2}, {1, -2, 3, 2147483647.0}, DType::I32));
  }
  SECTION("u1") {
    auto t = readNpy(dataPath("u1.npy"));
    REQUIRE(t.ok());
    requireSame(*t, tensor({4}, {0, 1, 128, 255}, DType::I32));
  }
  SECTION("b1") {
    auto t = readNpy(dataPath("b1.npy"));
    REQUIRE(t.ok());
    requireSame(*t, tensor({3}, {1, 0, 1}, DType::I32));
  }
  SECTION("scalar") {
    auto t = readNpy(dataPath("scalar_f4.npy"));
    REQUIRE(t.ok());
    requireSame(*t, tensor({}, {3.5}));
  }
  SECTION("zero-length dimension") {
    auto t = readNpy(dataPath("empty_0x3.npy"));
    REQUIRE(t.ok());
    requireSame(*t, tensor({0, 3}, {}));
  }
  SECTION("format 2.0 and 3.0 headers") {
    for (const char* name : {"v2.npy", "v3.npy"}) {
      INFO(name);
      CHECK(fixture(name)[6] == (name[1] == '2' ? 2 : 3));
      auto t = readNpy(dataPath(name));
      REQUIRE(t.ok());
      requireSame(*t, tensor({2, 2}, {0, 1, 2, 3}, DType::I32));
    }
  }
}

TEST_CASE("npy: written files are byte-identical to NumPy's", "[npy]") {
  CHECK(serializeNpy(tensor({2, 3}, {1.5, -2.0, 0.25, 3.0, 4.0, 5.0})) == fixture("numpy_known_f4.npy"));
  CHECK(serializeNpy(tensor({4}, {-3, 0, 42, 2147483647.0}, DType::I32)) == fixture("numpy_known_i4.npy"));
  CHECK(serializeNpy(tensor({}, {-1.25})) == fixture("numpy_known_scalar.npy"));
  // An empty array's header is NumPy's too (its data is nothing).
  CHECK(serializeNpy(tensor({0, 3}, {})) == fixture("empty_0x3.npy"));
}

TEST_CASE("npz: reads np.savez and np.savez_compressed archives", "[npy]") {
  for (const char* name : {"stored.npz", "compressed.npz"}) {
    INFO(name);
    auto z = readNpz(dataPath(name));
    REQUIRE(z.ok());
    REQUIRE(z->size() == 3);
    requireSame(z->at("a"), tensor({2, 3}, {0, 0.25, 0.5, 0.75, 1.0, 1.25}));
    requireSame(z->at("b"), tensor({3}, {-1, 2, 3}, DType::I32));
    requireSame(z->at("c"), tensor({}, {7.5}));
  }
}

TEST_CASE("npz: round trip, and a well-formed stored archive", "[npy]") {
  TempDir dir;
  std::map<std::string, Tensor> arrays = {
      {"a", tensor({2, 3}, {0, 0.25, 0.5, 0.75, 1.0, 1.25})},
      {"b", tensor({3}, {-1, 2, 3}, DType::I32)},
      {"c", tensor({}, {7.5})},
  };
  std::string path = dir / "rt.npz";
  REQUIRE(writeNpz(path, arrays).ok());
  auto back = readNpz(path);
  REQUIRE(back.ok());
  REQUIRE(back->size() == 3);
  for (const auto& [k, t] : arrays) requireSame(back->at(k), t);

  // Members are the arrays' own NPY bytes, stored, with NumPy's names.
  auto members = parseZip(*readFile(path), path);
  REQUIRE(members.ok());
  REQUIRE(members->size() == 3);
  CHECK((*members)[0].name == "a.npy");
  CHECK((*members)[0].data == serializeNpy(arrays.at("a")));

  // An empty archive is valid too.
  REQUIRE(writeNpz(dir / "none.npz", {}).ok());
  auto none = readNpz(dir / "none.npz");
  REQUIRE(none.ok());
  CHECK(none->empty());

  // With NNC_NPY_EXPORT_DIR set, leave files for `make_fixtures.py verify`
  // to check with numpy.load and unzip -t (not run in CI: it needs NumPy).
  if (const char* out = std::getenv("NNC_NPY_EXPORT_DIR")) {
    std::string d = out;
    REQUIRE(writeNpy(d + "/rt_f4.npy", tensor({2, 3}, {1.5, -2.0, 0.25, 3.0, 4.0, 5.0})).ok());
    REQUIRE(writeNpy(d + "/rt_i4.npy", tensor({4}, {-3, 0, 42, 2147483647.0}, DType::I32)).ok());
    REQUIRE(writeNpy(d + "/rt_scalar.npy", tensor({}, {-1.25})).ok());
    REQUIRE(writeNpy(d + "/rt_empty.npy", tensor({0, 3}, {})).ok());
    REQUIRE(writeNpz(d + "/rt.npz", arrays).ok());
  }
}

TEST_CASE("npy: unreadable and malformed files are errors in words", "[npy]") {
  SECTION("missing file") {
    CHECK(errorOf(readNpy("/nonexistent/x.npy")) == "cannot open '/nonexistent/x.npy': No such file or directory");
    auto z = readNpz("/nonexistent/x.npz");
    REQUIRE_FALSE(z.ok());
    CHECK(z.error().message == "cannot open '/nonexistent/x.npz': No such file or directory");
  }
  SECTION("a folder") { CHECK_THAT(errorOf(readNpy(dataPath(""))), Catch::Contains("Is a directory")); }
  SECTION("bad magic") {
    CHECK(errorOf(parseNpy("PK\x03\x04 this is a zip", "x.npy")) == "'x.npy' is not an NPY file (bad magic)");
    CHECK(errorOf(parseNpy("abc", "x.npy")) == "'x.npy' is not an NPY file (bad magic)");
    CHECK(errorOf(parseNpy("", "x.npy")) == "'x.npy' is empty, not an NPY file");
  }
  SECTION("truncated data") {
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }";
    CHECK(errorOf(parseNpy(makeNpy(dict, std::string(20, '\0')), "x.npy")) ==
          "'x.npy' is truncated: header says 12 values of 4 bytes, file has 20 bytes of data");
  }
  SECTION("truncated header") {
    std::string f = makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", "abcd");
    f[8] = static_cast<char>(200);
    CHECK_THAT(errorOf(parseNpy(f, "x.npy")), Catch::StartsWith("'x.npy' is truncated: the header says it is 200"));
  }
  SECTION("unsupported version") {
    std::string f = fixture("f4.npy");
    f[6] = 4;
    CHECK_THAT(errorOf(parseNpy(f, "x.npy")), Catch::Contains("format version 4.0, which is not supported"));
  }
  SECTION("unsupported dtype") {
    CHECK_THAT(errorOf(readNpy(dataPath("complex.npy"))),
               Catch::Contains("complex.npy' has dtype '<c8', which is not supported"));
    CHECK_THAT(errorOf(parseNpy(makeNpy("{'descr': '<U3', 'fortran_order': False, 'shape': (1,)}", "abcdefghijkl"),
                                "x.npy")),
               Catch::Contains("dtype '<U3', which is not supported"));
    CHECK_THAT(errorOf(parseNpy(makeNpy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,)}",
                                        "abcd"),
                                "x.npy")),
               Catch::Contains("structured dtypes"));
  }
  SECTION("big-endian") {
    CHECK_THAT(errorOf(readNpy(dataPath("big_endian.npy"))), Catch::Contains("is big-endian (dtype '>f4')"));
  }
  SECTION("Fortran order") {
    CHECK_THAT(errorOf(readNpy(dataPath("fortran.npy"))), Catch::Contains("fortran.npy' is in Fortran order"));
  }
  SECTION("i64 outside i32") {
    std::string msg = errorOf(readNpy(dataPath("i8_too_big.npy")));
    CHECK_THAT(msg, Catch::Contains("i8_too_big.npy' holds 2147483648 at index 1, which does not fit in i32"));
  }
  SECTION("malformed header dicts") {
    const char* bad[] = {
        "",
        "[]",
        "{'descr': '<f4', 'fortran_order': False}",
        "{'descr': '<f4', 'shape': (1,)}",
        "{'fortran_order': False, 'shape': (1,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}",
        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': 4}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,) trailing",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk",
        "{'descr': '<f4 'fortran_order': False, 'shape': (1,)}",
        "{'descr: '<f4', 'fortran_order': False, 'shape': (1,)}",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}",
        "{'descr': <f4, 'fortran_order': False, 'shape': (1,)}",
    };
    for (const char* dict : bad) {
      INFO(dict);
      CHECK_THAT(errorOf(parseNpy(makeNpy(dict, "abcd"), "x.npy")), Catch::StartsWith("'x.npy' has a malformed header"));
    }
    // What NumPy's reader also accepts: other quotes, order, spacing, 123L.
    auto ok = parseNpy(makeNpy("{ \"shape\" : (1L ,) ,\"fortran_order\":False,'descr':'<f4' }\n", std::string("\0\0\x80?", 4)), "x");
    REQUIRE(ok.ok());
    requireSame(*ok, tensor({1}, {1.0}));
  }
  SECTION("shape products overflow") {
    for (const char* shape : {"(4294967296, 4294967296, 4)", "(9223372036854775807, 2, 0)"}) {
      std::string dict = fmt::format("{{'descr': '<f4', 'fortran_order': False, 'shape': {}}}", shape);
      CHECK_THAT(errorOf(parseNpy(makeNpy(dict, ""), "x.npy")), Catch::Contains("overflows"));
    }
    // The product fits but the bytes do not: 2^62 values of 4 bytes.
    std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904,)}";
    CHECK_THAT(errorOf(parseNpy(makeNpy(dict, ""), "x.npy")), Catch::Contains("byte size overflows"));
    // A zero dimension first makes any later size harmless.
    auto empty = parseNpy(makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 9223372036854775807)}",
                                  ""),
                          "x.npy");
    REQUIRE(empty.ok());
    CHECK(empty->data.empty());
  }
}

TEST_CASE("npy: every truncation of a valid file is an error, never a crash", "[npy]") {
  for (const char* name : {"f4.npy", "i8.npy", "v2.npy", "scalar_f4.npy", "u1.npy"}) {
    std::string full = fixture(name);
    REQUIRE(parseNpy(full, name).ok());
    for (size_t n = 0; n < full.size(); ++n) {
      INFO(name << " cut to " << n << " bytes");
      auto r = parseNpy(std::string_view(full).substr(0, n), name);
      REQUIRE_FALSE(r.ok());
      CHECK_THAT(r.error().message, Catch::StartsWith(fmt::format("'{}'", name)));
    }
  }
}

TEST_CASE("npz: every truncation of a valid archive is an error, never a crash", "[npy]") {
  for (const char* name : {"stored.npz", "compressed.npz"}) {
    std::string full = fixture(name);
    REQUIRE(parseNpz(full, name).ok());
    for (size_t n = 0; n < full.size(); ++n) {
      INFO(name << " cut to " << n << " bytes");
      auto r = parseNpz(std::string_view(full).substr(0, n), name);
      REQUIRE_FALSE(r.ok());
      CHECK_THAT(r.error().message, Catch::StartsWith(fmt::format("'{}'", name)));
    }
  }
}

TEST_CASE("npz: corrupt archives are errors in words", "[npy]") {
  TempDir dir;
  auto readBytes = [&](const std::string& bytes) {
    std::string path = dir / "x.npz";
    REQUIRE(writeFileAtomic(path, bytes).ok());
    auto r = readNpz(path);
    REQUIRE_FALSE(r.ok());
    return r.error().message;
  };
  std::string stored = fixture("stored.npz");
  std::string compressed = fixture("compressed.npz");
  const std::string p = dir / "x.npz";

  SECTION("not a zip") {
    CHECK(readBytes(fixture("f4.npy")) ==
          "'" + p + "' is not a ZIP archive (no end-of-central-directory record)");
  }
  SECTION("CRC mismatch in a stored member") {
    std::string s = stored;
    size_t at = s.find("NUMPY");
    s[at - 1 + 128 + 4] ^= 1;  // inside a.npy's data, after its 128-byte header
    CHECK_THAT(readBytes(s), Catch::Contains("member 'a.npy' fails its CRC-32 check"));
  }
  SECTION("damaged deflate stream") {
    std::string s = compressed;
    for (size_t i = 60; i < 70; ++i) s[i] = static_cast<char>(0xff);
    CHECK_THAT(readBytes(s), Catch::Contains("'" + p + "' "));
  }
  SECTION("central directory outside the file") {
    std::string s = stored;
    size_t eocd = s.rfind("PK\x05\x06");
    s[eocd + 18] = 0x10;  // offset + 1 MiB
    CHECK_THAT(readBytes(s), Catch::Contains("is a corrupt ZIP archive: central directory"));
  }
  SECTION("ZIP64 is refused") {
    std::string s = stored;
    size_t eocd = s.rfind("PK\x05\x06");
    for (int i = 12; i < 20; ++i) s[eocd + i] = static_cast<char>(0xff);
    CHECK(readBytes(s) == "'" + p + "' is a ZIP64 archive, which is not supported");
  }
  SECTION("unsupported compression method") {
    std::string s = stored;
    size_t cd = s.find("PK\x01\x02");
    s[cd + 10] = 12;  // bzip2
    CHECK_THAT(readBytes(s), Catch::Contains("member 'a.npy' uses compression method 12"));
  }
  SECTION("a member that is not .npy") {
    auto zip = buildZip({{"notes.txt", "hello"}});
    REQUIRE(zip.ok());
    CHECK(readBytes(*zip) == "'" + p + "' member 'notes.txt' is not a .npy array");
  }
  SECTION("a broken member names the archive and the member") {
    auto zip = buildZip({{"w.npy", std::string("\x93NUMPY\x01\x00", 8)}});
    REQUIRE(zip.ok());
    CHECK(readBytes(*zip) == "'" + p + "' member 'w.npy' is truncated: 8 bytes, too short for the NPY preamble");
  }
}

TEST_CASE("npz: random corruption never crashes", "[npy]") {
  // Errors or not, every read must return; under the sanitizer build this
  // also proves every read stays in bounds.
  std::mt19937 rng(12345);
  for (const char* name : {"stored.npz", "compressed.npz", "f4.npy"}) {
    std::string full = fixture(name);
    for (int iter = 0; iter < 2000; ++iter) {
      std::string s = full;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) s[rng() % s.size()] = static_cast<char>(rng());
      if (name[0] == 'f') {
        (void)parseNpy(s, name);
      } else {
        (void)parseNpz(s, name);
      }
    }
  }
  SUCCEED();
}

TEST_CASE("writeFileAtomic: failures are errors naming the path", "[npy]") {
  TempDir dir;
  SECTION("missing folder") {
    std::string path = dir / "no/such/dir/x.npy";
    Status s = writeFileAtomic(path, "data");
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message == "cannot write '" + path + "': No such file or directory");
    Status n = writeNpy(path, tensor({1}, {1}));
    REQUIRE_FALSE(n.ok());
    CHECK_THAT(n.error().message, Catch::Contains(path));
  }
  SECTION("full disk") {
    REQUIRE(fs::exists("/dev/full"));
    Status s = writeFileAtomic("/dev/full", "data");
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message == "cannot write '/dev/full': No space left on device");
    CHECK(fs::is_character_file("/dev/full"));  // still the device, not replaced
  }
  SECTION("a folder in the way") {
    Status s = writeFileAtomic(dir.path.string(), "data");
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.error().message, Catch::Contains("Is a directory"));
  }
  SECTION("replacing a file leaves no temporary behind") {
    std::string path = dir / "f.bin";
    REQUIRE(writeFileAtomic(path, "first version, longer").ok());
    REQUIRE(writeFileAtomic(path, "second").ok());
    CHECK(*readFile(path) == "second");
    CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator{}) == 1);
  }
  SECTION("a tensor whose data does not match its shape") {
    Status s = writeNpy(dir / "bad.npy", tensor({2, 3}, {1, 2}));
    REQUIRE_FALSE(s.ok());
    CHECK_THAT(s.error().message, Catch::Contains("shape [2, 3] needs 6 values but the tensor holds 2"));
    CHECK_FALSE(fs::exists(dir / "bad.npy"));
  }
}
