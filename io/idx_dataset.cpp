// Labelled image splits stored as IDX files (MNIST / Fashion-MNIST layout).
#include <sys/stat.h>

#include <algorithm>

#include <fmt/format.h>

#include "io/dataset.h"
#include "io/file_io.h"
#include "io/idx.h"

namespace nnc {
namespace {

bool isFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && !S_ISDIR(st.st_mode);
}

// The first of NAME and NAME.gz in dir that exists, or an error listing both.
Expected<std::string> findFile(const std::string& dir, const std::string& name, const std::string& what) {
  std::string base = dir.empty() ? name : (dir.back() == '/' ? dir + name : dir + "/" + name);
  for (const std::string& p : {base, base + ".gz"})
    if (isFile(p)) return p;
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return error("no {} in '{}': that folder does not exist (looked for '{}' and '{}.gz')", what, dir, name, name);
  return error("no {} in '{}': tried '{}' and '{}.gz'", what, dir, name, name);
}

}  // namespace

Expected<Dataset> loadIdxDataset(const std::string& dir, const std::string& split) {
  std::string prefix;
  if (split == "train") prefix = "train";
  else if (split == "test" || split == "t10k") prefix = "t10k";
  else return error("unknown dataset split '{}': expected 'train' or 'test'", split);

  NNC_TRY(std::string imagesPath, findFile(dir, prefix + "-images-idx3-ubyte", split + " images"));
  NNC_TRY(std::string labelsPath, findFile(dir, prefix + "-labels-idx1-ubyte", split + " labels"));
  NNC_TRY(IdxArray images, readIdx(imagesPath, /*scaleU8=*/true));
  if (images.type != kIdxU8 || images.shape.size() != 3)
    return error("'{}' should hold u8 images [count, rows, cols], but holds {} {}", imagesPath,
                 idxTypeName(images.type), shapeString(images.shape));
  NNC_TRY(IdxArray labels, readIdx(labelsPath));
  if (labels.shape.size() != 1)
    return error("'{}' should hold labels [count], but holds {} {}", labelsPath, idxTypeName(labels.type),
                 shapeString(labels.shape));
  if (labels.type == kIdxF32 || labels.type == kIdxF64)
    return error("'{}' holds {} labels; class labels must be integers", labelsPath, idxTypeName(labels.type));
  if (labels.shape[0] != images.shape[0])
    return error("'{}' has {} images but '{}' has {} labels", imagesPath, images.shape[0], labelsPath,
                 labels.shape[0]);

  Dataset d;
  d.count = images.shape[0];
  d.rows = images.shape[1];
  d.cols = images.shape[2];
  d.labels.resize(labels.values.size());
  int32_t maxLabel = 0;
  for (size_t i = 0; i < labels.values.size(); ++i) {
    float v = labels.values[i];
    // i32 labels above 2^24 were rounded to float, but those are out of
    // range anyway, and every label in range is exact.
    if (!(v >= 0 && v <= 255))
      return error("'{}': label {} is {}, outside the class range 0..255", labelsPath, i, static_cast<double>(v));
    d.labels[i] = static_cast<int32_t>(v);
    maxLabel = std::max(maxLabel, d.labels[i]);
  }
  d.classes = maxLabel + 1;
  d.labelSource = labelsPath;
  d.images = std::move(images.values);  // already scaled by readIdx
  return d;
}

Tensor datasetImages(const Dataset& d, bool keepImageShape) {
  Shape shape = keepImageShape ? Shape{d.count, 1, d.rows, d.cols} : Shape{d.count, d.rows * d.cols};
  return Tensor(TensorType{DType::F32, std::move(shape)}, std::vector<double>(d.images.begin(), d.images.end()));
}

Tensor datasetLabels(const Dataset& d) {
  return Tensor(TensorType{DType::I32, {d.count}}, std::vector<double>(d.labels.begin(), d.labels.end()));
}

}  // namespace nnc
