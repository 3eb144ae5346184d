// loadData and splitValidation: the dataset formats of `nnc run`.
#include "io/dataset.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <map>

#include "io/file_io.h"
#include "io/idx.h"
#include "io/image_decode.h"
#include "io/npy.h"
#include "io/text_dataset.h"
#include "io/zip.h"
#include "runtime/rng.h"

namespace nnc {
namespace {

namespace fs = std::filesystem;

// A label this large is a corrupt file or a regression target, not a class:
// refusing it keeps per-class tables (scores, confusion counts) small.
constexpr int64_t kMaxClasses = int64_t{1} << 20;
constexpr int64_t kMaxSampleSize = int64_t{1} << 26;

// Both splits as read, before labels are checked across them and before
// scaling; the names are what errors about each split quote.
struct Loaded {
  Dataset train, test;
  std::string trainName, testName;
  bool hasTest = true;
  bool u8 = false;         // the features are bytes: "auto" divides them by 255
  bool prescaled = false;  // already divided (loadIdxDataset does it while reading)
};

std::string joinNames(const std::vector<std::string>& names) {
  std::string s;
  for (const std::string& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// The first `shown` names, then "… and N more" for the rest.
std::string fewNames(const std::vector<std::string>& names, size_t shown) {
  if (names.size() <= shown + 1) return joinNames(names);
  std::vector<std::string> first(names.begin(), names.begin() + static_cast<std::ptrdiff_t>(shown));
  return fmt::format("{} … and {} more", joinNames(first), names.size() - shown);
}

// A whole text file (a CSV file): a NUL byte in its first 64 KiB means it
// is no text at all (a binary file, /dev/zero's copy, a sparse file), which
// is said before the rest is read.
Expected<std::string> readTextFile(const std::string& path, std::string_view kind) {
  NNC_TRY(InputFile f, InputFile::open(path));
  NNC_TRY(std::string head, f.readUpTo(0, 64 << 10));
  if (const size_t nul = head.find('\0'); nul != std::string::npos)
    return error("'{}' holds a NUL byte at offset {}: it is not {} (a text file)", path, nul, kind);
  return f.read(0, f.size());
}

// Class ids from any numbers: integers, or floats holding integers.
Status setLabels(Dataset& d, const std::vector<double>& v, const std::string& what) {
  d.labels.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const double x = v[i];
    if (x < 0) return error("'{}': label {} of sample {} is negative; class ids start at 0", what, x, i);
    if (x != std::floor(x))
      return error("'{}': label {} of sample {} is not an integer class id (regression data?)", what, x, i);
    if (!(x < static_cast<double>(kMaxClasses)))
      return error("'{}': label {} of sample {} is beyond the {} classes nnc allows", what, x, i, kMaxClasses);
    d.labels[i] = static_cast<int32_t>(x);
  }
  return ok();
}

Expected<Dataset> fromArrays(const Tensor& x, const Tensor& y, const std::string& xName, const std::string& yName,
                             bool regression) {
  const Shape& xs = x.shape();
  if (xs.empty() || xs.size() > 4)
    return error("'{}' has shape {}; expected [N, F], [N, H, W] or [N, C, H, W]", xName, shapeString(xs));
  Dataset d;
  d.count = xs[0];
  d.channels = xs.size() == 4 ? xs[1] : 1;
  d.rows = xs.size() >= 3 ? xs[xs.size() - 2] : 1;
  d.cols = xs.size() >= 2 ? xs.back() : 1;
  if (d.count == 0) return error("'{}' holds no samples (shape {})", xName, shapeString(xs));
  if (d.sampleSize() == 0) return error("'{}' has empty samples (shape {})", xName, shapeString(xs));
  const Shape& ys = y.shape();
  if (ys.empty() || ys[0] != d.count)
    return error("'{}' has {} samples but '{}' has shape {}: the counts must agree", xName, d.count, yName,
                 shapeString(ys));
  if (regression) {
    if (ys.size() > 2) return error("'{}' has shape {}; regression targets are [N] or [N, T]", yName, shapeString(ys));
    d.targetSize = ys.size() == 2 ? ys[1] : 1;
    if (d.targetSize == 0) return error("'{}' has empty targets (shape {})", yName, shapeString(ys));
    d.targets.assign(y.data.begin(), y.data.end());
  } else {
    if (ys.size() > 2 || (ys.size() == 2 && ys[1] != 1))
      return error("'{}' has shape {}; class labels are [N] (floats as targets need regression)", yName,
                   shapeString(ys));
    NNC_CHECK(setLabels(d, y.data, yName));
    d.labelSource = yName;
  }
  d.images.assign(x.data.begin(), x.data.end());
  return d;
}

Expected<Loaded> loadNpz(const DataSpec& spec) {
  NNC_TRY(std::string bytes, readZipFile(spec.path));
  NNC_TRY(std::vector<ZipMember> members, parseZip(bytes, spec.path));
  std::map<std::string, const ZipMember*> byKey;
  std::vector<std::string> keys;
  for (const ZipMember& m : members)
    if (m.name.size() > 4 && m.name.ends_with(".npy")) {
      byKey[m.name.substr(0, m.name.size() - 4)] = &m;
      keys.push_back(m.name.substr(0, m.name.size() - 4));
    }
  for (const char* k : {"x_train", "y_train", "x_test", "y_test"})
    if (!byKey.count(k))
      return error("'{}' has no array '{}': it needs x_train, y_train, x_test and y_test (it holds {})", spec.path, k,
                   keys.empty() ? "no arrays" : joinNames(keys));
  Loaded l;
  l.trainName = l.testName = spec.path;
  auto split = [&](const std::string& s) -> Expected<Dataset> {
    const std::string xName = spec.path + ":x_" + s, yName = spec.path + ":y_" + s;
    NNC_TRY(Tensor x, parseNpy(byKey["x_" + s]->data, xName));
    NNC_TRY(Tensor y, parseNpy(byKey["y_" + s]->data, yName));
    return fromArrays(x, y, xName, yName, spec.regression);
  };
  NNC_TRY(l.train, split("train"));
  NNC_TRY(l.test, split("test"));
  l.u8 = npyIsU8(byKey["x_train"]->data) && npyIsU8(byKey["x_test"]->data);
  return l;
}

Expected<Loaded> loadNpyFolder(const DataSpec& spec) {
  Loaded l;
  l.trainName = l.testName = spec.path;
  l.u8 = true;
  auto split = [&](const std::string& s) -> Expected<Dataset> {
    const std::string xName = (fs::path(spec.path) / ("x_" + s + ".npy")).string();
    const std::string yName = (fs::path(spec.path) / ("y_" + s + ".npy")).string();
    NNC_TRY(std::string xb, readNpyBytes(xName));
    NNC_TRY(std::string yb, readNpyBytes(yName));
    l.u8 = l.u8 && npyIsU8(xb);
    NNC_TRY(Tensor x, parseNpy(xb, xName));
    NNC_TRY(Tensor y, parseNpy(yb, yName));
    return fromArrays(x, y, xName, yName, spec.regression);
  };
  NNC_TRY(l.train, split("train"));
  NNC_TRY(l.test, split("test"));
  return l;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> splitCells(std::string_view line) {
  std::vector<std::string_view> cells;
  for (size_t start = 0;;) {
    const size_t comma = line.find(',', start);
    cells.push_back(trim(line.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start)));
    if (comma == std::string_view::npos) return cells;
    start = comma + 1;
  }
}

Expected<Dataset> loadCsv(const std::string& path, const DataSpec& spec) {
  NNC_TRY(std::string text, readTextFile(path, "a CSV file"));
  std::vector<std::string_view> header;
  size_t labelCol = 0, lineNo = 0;
  Dataset d;
  std::string_view rest = text;
  if (rest.starts_with("\xEF\xBB\xBF")) rest.remove_prefix(3);  // the UTF-8 mark spreadsheets write
  while (!rest.empty()) {
    const size_t nl = rest.find('\n');
    const std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    ++lineNo;
    if (trim(line).empty()) continue;  // blank lines, as pandas skips them
    if (line.find('"') != std::string_view::npos)
      return error("{}:{}: quoted fields are not supported; write the CSV without quotes", path, lineNo);
    std::vector<std::string_view> cells = splitCells(line);
    if (header.empty()) {
      header = cells;
      std::vector<std::string> names(header.begin(), header.end());
      const auto n = std::count(names.begin(), names.end(), spec.label);
      if (n == 0)
        return error("'{}' has no label column '{}'; its header names: {} (csv(..., label = \"NAME\") names "
                     "the label column)",
                     path, spec.label, fewNames(names, 5));
      if (n > 1) return error("'{}' has {} columns named '{}'", path, n, spec.label);
      if (header.size() < 2) return error("'{}' has no feature columns, only the label '{}'", path, spec.label);
      labelCol = static_cast<size_t>(std::find(names.begin(), names.end(), spec.label) - names.begin());
      d.cols = static_cast<int64_t>(header.size()) - 1;
      d.rows = 1;
      continue;
    }
    if (cells.size() != header.size())
      return error("{}:{}: {} cells, but the header has {} columns", path, lineNo, cells.size(), header.size());
    for (size_t c = 0; c < cells.size(); ++c) {
      std::string_view cell = cells[c];
      if (cell.empty()) return error("{}:{}: column '{}' is empty", path, lineNo, header[c]);
      const std::string_view digits = cell.front() == '+' ? cell.substr(1) : cell;
      double v = 0;
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
      if (ec != std::errc{} || end != digits.data() + digits.size())
        return error("{}:{}: column '{}' holds '{}', which is not a number", path, lineNo, header[c], cell);
      if (!std::isfinite(v))
        return error("{}:{}: column '{}' holds '{}', which is not a finite number", path, lineNo, header[c], cell);
      if (c != labelCol) {
        d.images.push_back(static_cast<float>(v));
      } else if (spec.regression) {
        d.targets.push_back(static_cast<float>(v));
      } else if (v < 0 || v != std::floor(v) || v >= static_cast<double>(kMaxClasses)) {
        return error("{}:{}: label '{}' is not a class id (an integer from 0 to {})", path, lineNo, cell,
                     kMaxClasses - 1);
      } else {
        d.labels.push_back(static_cast<int32_t>(v));
      }
    }
    ++d.count;
  }
  if (header.empty()) return error("'{}' is empty: a CSV file needs a header line and data rows", path);
  if (d.count == 0) return error("'{}' has a header but no data rows", path);
  d.targetSize = spec.regression ? 1 : 0;
  d.labelSource = path;
  return d;
}

bool isImageFile(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext == ".png" || ext == ".pgm" || ext == ".ppm";
}

// Sorted names of the entries of `dir` that pass `keep`, skipping hidden ones.
template <class Keep>
Expected<std::vector<std::string>> listSorted(const std::string& dir, Keep keep) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return error("'{}' does not exist or is not a folder", dir);
  std::vector<std::string> names;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.starts_with(".") && keep(*it)) names.push_back(name);
  }
  if (ec) return error("cannot list '{}': {}", dir, ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// The shape images are brought to: fixed by the spec, else by the first
// file read (train before test), with which every later file must agree.
struct ImageShape {
  int64_t channels = 0, height = 0, width = 0;
  std::string from;  // the file that fixed height and width, when the spec did not
};

Expected<Dataset> loadImageFolder(const std::string& dir, std::vector<std::string>& classNames, ImageShape& shape) {
  auto isDir = [](const fs::directory_entry& e) {
    std::error_code ec;
    return e.is_directory(ec);
  };
  NNC_TRY(std::vector<std::string> folders, listSorted(dir, isDir));
  if (folders.empty()) return error("'{}' holds no class folders (expected {}/CLASS/*.png|pgm|ppm)", dir, dir);
  const bool isTrain = classNames.empty();
  if (isTrain) classNames = folders;
  Dataset d;
  for (const std::string& cls : folders) {
    const auto found = std::find(classNames.begin(), classNames.end(), cls);
    if (found == classNames.end())
      return error("'{}' has class folder '{}', which the training data lack (their classes: {})", dir, cls,
                   joinNames(classNames));
    const int32_t label = static_cast<int32_t>(found - classNames.begin());
    const std::string folder = (fs::path(dir) / cls).string();
    auto isImage = [](const fs::directory_entry& e) {
      std::error_code ec;
      return e.is_regular_file(ec) && isImageFile(e.path());
    };
    NNC_TRY(std::vector<std::string> files, listSorted(folder, isImage));
    if (files.empty()) return error("'{}' holds no .png, .pgm or .ppm images", folder);
    for (const std::string& f : files) {
      const std::string file = (fs::path(folder) / f).string();
      NNC_TRY(Image im, readImage(file));
      if (shape.channels == 0) shape.channels = im.channels >= 3 ? 3 : 1;
      if (shape.height == 0) {
        shape.height = im.height;
        shape.width = im.width;
        shape.from = file;
      } else if (!shape.from.empty() && (im.height != shape.height || im.width != shape.width)) {
        return error("'{}' is {}×{} but '{}' is {}×{}; set height and width to resize them all", file, im.height,
                     im.width, shape.from, shape.height, shape.width);
      }
      if (shape.channels * shape.height * shape.width > kMaxSampleSize)
        return error("'{}': {}×{}×{} samples are more than the {} values nnc allows", file, shape.channels,
                     shape.height, shape.width, kMaxSampleSize);
      const std::vector<float> planes = imageToPlanes(im, static_cast<int>(shape.channels), shape.height, shape.width);
      d.images.insert(d.images.end(), planes.begin(), planes.end());
      d.labels.push_back(label);
      ++d.count;
    }
  }
  d.channels = shape.channels;
  d.rows = shape.height;
  d.cols = shape.width;
  d.labelSource = dir;
  return d;
}

Expected<Loaded> loadImages(const DataSpec& spec) {
  Loaded l;
  l.u8 = true;
  ImageShape shape{spec.channels, spec.height, spec.width, ""};
  std::vector<std::string> names;
  NNC_TRY(l.train, loadImageFolder(spec.path, names, shape));
  l.trainName = spec.path;
  l.hasTest = !spec.testPath.empty();
  if (l.hasTest) {
    NNC_TRY(l.test, loadImageFolder(spec.testPath, names, shape));
    l.testName = spec.testPath;
  }
  l.train.classNames = l.test.classNames = names;
  return l;
}

// 8-bit data, which scale = "auto" divides by 255: every feature value of
// every split is an integer from 0 to 255, and some value is above 1 (so
// 0/1 data, already in [0, 1], stay as they are).
bool looksU8(const std::vector<const Dataset*>& splits) {
  float most = 0;
  for (const Dataset* d : splits)
    for (float v : d->images) {
      if (!(v >= 0 && v <= 255 && v == std::floor(v))) return false;
      most = std::max(most, v);
    }
  return most > 1;
}

Expected<Loaded> loadCsvs(const DataSpec& spec) {
  Loaded l;
  NNC_TRY(l.train, loadCsv(spec.path, spec));
  l.trainName = spec.path;
  l.hasTest = !spec.testPath.empty();
  if (l.hasTest) {
    NNC_TRY(l.test, loadCsv(spec.testPath, spec));
    l.testName = spec.testPath;
  }
  l.u8 = l.hasTest ? looksU8({&l.train, &l.test}) : looksU8({&l.train});
  return l;
}

Expected<Loaded> loadIdx(const DataSpec& spec) {
  Loaded l;
  NNC_TRY(l.train, loadIdxDataset(spec.path, "train"));
  NNC_TRY(l.test, loadIdxDataset(spec.path, "test"));
  l.trainName = l.testName = spec.path;
  l.u8 = l.prescaled = true;
  return l;
}

Dataset subset(const Dataset& d, const std::vector<int64_t>& idx) {
  Dataset s;
  s.rows = d.rows;
  s.cols = d.cols;
  s.channels = d.channels;
  s.targetSize = d.targetSize;
  s.classes = d.classes;
  s.classNames = d.classNames;
  s.labelSource = d.labelSource;
  s.count = static_cast<int64_t>(idx.size());
  const int64_t size = d.sampleSize();
  s.images.reserve(idx.size() * static_cast<size_t>(size));
  for (int64_t i : idx) {
    s.images.insert(s.images.end(), d.images.begin() + i * size, d.images.begin() + (i + 1) * size);
    if (!d.labels.empty()) s.labels.push_back(d.labels[static_cast<size_t>(i)]);
    if (!d.targets.empty())
      s.targets.insert(s.targets.end(), d.targets.begin() + i * d.targetSize, d.targets.begin() + (i + 1) * d.targetSize);
  }
  return s;
}

// Splits `d` into (kept, held out): a seeded shuffle picks round(n·fraction)
// samples, at least one, leaving at least one; each part stays in order.
Expected<std::pair<Dataset, Dataset>> holdOut(const Dataset& d, double fraction, uint64_t seed,
                                              const std::string& what, const char* part) {
  if (!(fraction > 0 && fraction < 1))
    return error("{} fraction {} is not between 0 and 1 (exclusive)", part, fraction);
  if (d.count < 2) return error("{} has {} sample(s), too few to split off a {} set", what, d.count, part);
  std::vector<int64_t> perm(static_cast<size_t>(d.count));
  for (int64_t i = 0; i < d.count; ++i) perm[static_cast<size_t>(i)] = i;
  Rng rng(seed);
  for (size_t i = perm.size() - 1; i > 0; --i) std::swap(perm[i], perm[rng.below(i + 1)]);
  const int64_t k = std::clamp<int64_t>(std::llround(static_cast<double>(d.count) * fraction), 1, d.count - 1);
  std::vector<int64_t> out(perm.begin(), perm.begin() + k), in(perm.begin() + k, perm.end());
  std::sort(out.begin(), out.end());
  std::sort(in.begin(), in.end());
  return std::pair{subset(d, in), subset(d, out)};
}

Status checkSpec(const DataSpec& s) {
  static const std::vector<std::string> kinds = {"idx", "npz", "npy", "csv", "images"};
  if (std::find(kinds.begin(), kinds.end(), s.kind) == kinds.end())
    return error("unknown data kind '{}': expected one of {}", s.kind, joinNames(kinds));
  if (s.scale != "auto" && s.scale != "none" && s.scale != "standardize")
    return error("unknown scale '{}': expected auto, none or standardize", s.scale);
  const bool images = s.kind == "images";
  if (!s.testPath.empty() && s.kind != "csv" && !images)
    return error("a separate test path is for csv and images data; {} data hold their own test split", s.kind);
  if (!images && (s.height || s.width || s.channels))
    return error("height, width and channels apply to images data, not {}", s.kind);
  if (s.regression && (images || s.kind == "idx"))
    return error("{} data hold class labels; regression needs csv, npz or npy data", s.kind);
  if (s.height < 0 || s.width < 0 || (s.height == 0) != (s.width == 0))
    return error("image size {}×{}: give both height and width (positive), or neither", s.height, s.width);
  if (s.height > 65536 || s.width > 65536)
    return error("image size {}×{} is larger than nnc resizes to (65536 per side)", s.height, s.width);
  if (s.channels != 0 && s.channels != 1 && s.channels != 3)
    return error("channels {}: images are read as 1 (gray) or 3 (RGB) channels", s.channels);
  if (s.classes < 0) return error("classes {} is negative", s.classes);
  if ((!s.select.empty() || !s.trainClasses.empty()) && s.regression)
    return error("select and train_classes pick classes; regression data have none");
  for (const auto* list : {&s.select, &s.trainClasses})
    for (size_t i = 0; i < list->size(); ++i) {
      if ((*list)[i] < 0) return error("class id {} is negative", (*list)[i]);
      if (std::find(list->begin(), list->begin() + static_cast<std::ptrdiff_t>(i), (*list)[i]) !=
          list->begin() + static_cast<std::ptrdiff_t>(i))
        return error("class id {} is named twice", (*list)[i]);
    }
  return ok();
}

// Keeps the samples whose class is in `keep`; with `renumber`, class keep[k]
// becomes k.
Status keepClasses(Dataset& d, const std::vector<int32_t>& keep, bool renumber, const std::string& what) {
  std::vector<int32_t> to(static_cast<size_t>(std::max<int32_t>(d.classes, 0)), -1);
  for (size_t k = 0; k < keep.size(); ++k) {
    if (keep[k] >= d.classes) return error("{} has no class {} (its classes are 0 to {})", what, keep[k], d.classes - 1);
    to[static_cast<size_t>(keep[k])] = renumber ? static_cast<int32_t>(k) : keep[k];
  }
  const int64_t n = d.sampleSize();
  int64_t kept = 0;
  for (int64_t i = 0; i < d.count; ++i) {
    const int32_t c = to[static_cast<size_t>(d.labels[static_cast<size_t>(i)])];
    if (c < 0) continue;
    std::copy_n(d.images.begin() + i * n, n, d.images.begin() + kept * n);
    d.labels[static_cast<size_t>(kept++)] = c;
  }
  if (kept == 0) return error("{} has no sample of the classes selected", what);
  d.images.resize(static_cast<size_t>(kept * n));
  d.labels.resize(static_cast<size_t>(kept));
  d.count = kept;
  if (renumber) {
    if (!d.classNames.empty()) {
      std::vector<std::string> names;
      for (int32_t c : keep) names.push_back(d.classNames[static_cast<size_t>(c)]);
      d.classNames = std::move(names);
    }
    d.classes = static_cast<int32_t>(keep.size());
  }
  return ok();
}

Status checkSplits(const Loaded& l, const DataSpec& spec) {
  const Dataset &a = l.train, &b = l.test;
  // The whole shape, not only the count: 14×56 test images are not 28×28.
  if (a.channels != b.channels || a.rows != b.rows || a.cols != b.cols || a.targetSize != b.targetSize) {
    auto shapeOf = [&](const Dataset& d) {
      std::string t = d.rows == 1 && d.channels == 1 ? fmt::format("{} features", d.cols)
                                                     : fmt::format("{}×{}×{}", d.channels, d.rows, d.cols);
      if (spec.regression) t += fmt::format(", {} target{}", d.targetSize, d.targetSize == 1 ? "" : "s");
      return t;
    };
    const std::string where = l.trainName == l.testName
                                  ? fmt::format("the training split of '{}' has samples of {}, but its test split "
                                                "has {}",
                                                l.trainName, shapeOf(a), shapeOf(b))
                                  : fmt::format("'{}' (training) has samples of {}, but '{}' (test) has {}",
                                                l.trainName, shapeOf(a), l.testName, shapeOf(b));
    return error("{}: both splits must have samples of the same shape", where);
  }
  if (spec.classes > 0)
    for (const auto* s : {&l.train, &l.test})
      for (size_t i = 0; i < s->labels.size(); ++i)
        if (s->labels[i] >= spec.classes)
          return error("'{}': label {} of sample {} is out of range for {} classes (0..{})",
                       s == &l.train ? l.trainName : l.testName, s->labels[i], i, spec.classes, spec.classes - 1);
  return ok();
}

void scale(DataSplits& s, const Loaded& l, const std::string& mode) {
  auto all = [&](auto f) {
    for (float& x : s.train.images) x = f(x);
    for (float& x : s.test.images) x = f(x);
  };
  if (mode == "auto" && l.u8 && !l.prescaled) all([](float x) { return x / 255.0f; });
  if (mode == "none" && l.prescaled) all([](float x) { return std::round(x * 255.0f); });
  if (mode != "standardize") return;
  const int64_t f = s.train.sampleSize(), n = s.train.count;
  std::vector<double> sum(static_cast<size_t>(f)), sq(static_cast<size_t>(f));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) sum[static_cast<size_t>(j)] += s.train.images[static_cast<size_t>(i * f + j)];
  s.mean.resize(static_cast<size_t>(f));
  s.stddev.resize(static_cast<size_t>(f));
  for (int64_t j = 0; j < f; ++j) sum[static_cast<size_t>(j)] /= static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < f; ++j) {
      const double dev = s.train.images[static_cast<size_t>(i * f + j)] - sum[static_cast<size_t>(j)];
      sq[static_cast<size_t>(j)] += dev * dev;
    }
  for (size_t j = 0; j < sum.size(); ++j) {
    double sd = std::sqrt(sq[j] / static_cast<double>(n));
    // A constant feature (an always-black border pixel) is only centred:
    // dividing by its rounding-noise deviation would blow it up.
    if (sd <= 1e-6 * std::max(1.0, std::fabs(sum[j]))) sd = 1;
    s.mean[j] = static_cast<float>(sum[j]);
    s.stddev[j] = static_cast<float>(sd);
  }
  for (Dataset* d : {&s.train, &s.test})
    for (int64_t i = 0; i < d->count; ++i)
      for (int64_t j = 0; j < f; ++j) {
        float& x = d->images[static_cast<size_t>(i * f + j)];
        x = static_cast<float>((x - sum[static_cast<size_t>(j)]) / s.stddev[static_cast<size_t>(j)]);
      }
}

}  // namespace

Expected<DataSplits> loadData(const DataSpec& spec, uint64_t seed) {
  if (spec.kind == "text") return loadTextData(spec);  // windows of a token stream, split by position
  NNC_CHECK(checkSpec(spec));
  Expected<Loaded> got = spec.kind == "idx"   ? loadIdx(spec)
                         : spec.kind == "npz" ? loadNpz(spec)
                         : spec.kind == "npy" ? loadNpyFolder(spec)
                         : spec.kind == "csv" ? loadCsvs(spec)
                                              : loadImages(spec);
  if (!got) return std::move(got.error());
  Loaded& l = *got;
  if (!l.hasTest) {
    if (!(spec.testFraction > 0 && spec.testFraction < 1))
      return error("'{}' has no separate test split and the test fraction {} is not between 0 and 1", spec.path,
                   spec.testFraction);
    NNC_TRY(auto parts, holdOut(l.train, spec.testFraction, seed, fmt::format("'{}'", spec.path), "test"));
    l.train = std::move(parts.first);
    l.test = std::move(parts.second);
    l.testName = fmt::format("{} (the held-out test part)", spec.path);
  }
  NNC_CHECK(checkSplits(l, spec));
  if (!spec.regression) {
    int32_t classes = spec.classes;
    for (const Dataset* d : {&l.train, &l.test})
      for (int32_t v : d->labels) classes = std::max(classes, v + 1);
    if (!l.train.classNames.empty()) classes = std::max(classes, static_cast<int32_t>(l.train.classNames.size()));
    l.train.classes = l.test.classes = classes;
    if (!spec.select.empty()) {
      NNC_CHECK(keepClasses(l.train, spec.select, true, fmt::format("the training split of '{}'", spec.path)));
      NNC_CHECK(keepClasses(l.test, spec.select, true, fmt::format("the test split of '{}'", spec.path)));
    }
    if (!spec.trainClasses.empty())
      NNC_CHECK(keepClasses(l.train, spec.trainClasses, false, fmt::format("the training split of '{}'", spec.path)));
  }
  DataSplits s;
  s.train = std::move(l.train);
  s.test = std::move(l.test);
  scale(s, l, spec.scale);
  return s;
}

Expected<Dataset> splitValidation(Dataset& d, double fraction, uint64_t seed) {
  NNC_TRY(auto parts, holdOut(d, fraction, seed, "the training split", "validation"));
  d = std::move(parts.first);
  return std::move(parts.second);
}

}  // namespace nnc
