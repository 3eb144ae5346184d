// Text as language-model data: `data = text("PATH", context, unit,
// test_fraction)`. A file, or every regular file directly in a folder
// (sorted by name, concatenated), read as bytes or as UTF-8 code points;
// the vocabulary is the sorted set of the units that occur, so a text gives
// the same ids every time. Samples are windows of `context` ids, labelled
// with the ids one position on (next-token prediction).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/diagnostics.h"
#include "io/dataset.h"

namespace nnc {

struct TextCorpus {
  std::string unit;             // "byte" or "char"
  std::vector<uint32_t> vocab;  // sorted distinct units: byte values or code points; id = index
  std::vector<int32_t> ids;     // the whole text, file after file, as ids
  int64_t trainTokens = 0;      // ids[0, trainTokens) are training, the rest test
  int64_t files = 0;            // files read
  std::vector<std::string> skipped;  // files that are not text (a NUL byte; with "char", invalid UTF-8)
};

// `path`: a file, or a folder (its regular files; subfolders and symbolic
// links are left out). In a folder, files that are not text are skipped
// (TextCorpus::skipped); a file given by name that is not text is an error,
// as are invalid UTF-8 with unit "char" (naming the file and byte offset), a
// missing path and a text without a unit.
Expected<TextCorpus> readTextCorpus(const std::string& path, const std::string& unit, double testFraction);

// Non-overlapping windows of `context` ids of ids[begin, end): sample k is
// x = ids[begin + k·context, +context) and its next-token labels, one
// position on; as a Dataset, x in `images` and the labels in `targets`
// (targetSize = context), ids as floats.
Dataset textWindows(const TextCorpus& c, int64_t begin, int64_t end, int64_t context);

// The splits: the first trainTokens ids make the training windows, the rest
// the test windows; each split must hold at least one window of context + 1
// ids. Errors name the path.
Expected<DataSplits> loadTextData(const DataSpec& spec);

// vocab.json: {"format": "nnc-vocab", "unit": "char", "units": [10, 32, 97]}.
std::string vocabJson(const std::string& unit, const std::vector<uint32_t>& vocab);
struct Vocab {
  std::string unit;
  std::vector<uint32_t> units;
};
Expected<Vocab> parseVocabJson(std::string_view text, const std::string& what);

// A prompt as ids (a unit not in the vocabulary is an error naming it), and
// ids back as text (UTF-8 for "char", the bytes for "byte").
Expected<std::vector<int32_t>> encodeText(const Vocab& v, std::string_view text);
std::string decodeIds(const Vocab& v, const std::vector<int32_t>& ids);

}  // namespace nnc
