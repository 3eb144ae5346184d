#include "io/text_dataset.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "io/file_io.h"
#include "io/json.h"

namespace nnc {
namespace {

constexpr const char* kVocabFormat = "nnc-vocab";
// A text corpus is read whole and held as ids (4 bytes a unit): 1 GiB of
// text is far beyond what a CPU trains a language model on.
constexpr uint64_t kMaxTextBytes = uint64_t{1} << 30;
constexpr uint32_t kNoUnit = 0xFFFFFFFF;

// The length of the UTF-8 sequence at s[at] and its code point; 0 when it
// is not one (a stray continuation byte, an overlong form, a surrogate,
// beyond U+10FFFF, or cut short by the end).
size_t utf8At(std::string_view s, size_t at, uint32_t& cp) {
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[at + i]); };
  const unsigned char c = b(0);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || at + n > s.size()) return 0;
  cp = n == 1 ? c : n == 2 ? c & 0x1Fu : n == 3 ? c & 0x0Fu : c & 0x07u;
  for (size_t i = 1; i < n; ++i) {
    if ((b(i) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i) & 0x3Fu);
  }
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

// The units of `bytes`: bytes, or code points. Why it is not text, or "".
std::string unitsOf(std::string_view bytes, bool chars, std::vector<uint32_t>& units) {
  if (bytes.find('\0') != std::string_view::npos)
    return fmt::format("it holds a NUL byte (at byte {}): binary, not text", bytes.find('\0'));
  units.reserve(units.size() + bytes.size());
  for (size_t at = 0; at < bytes.size();) {
    uint32_t cp = static_cast<unsigned char>(bytes[at]);
    const size_t n = chars ? utf8At(bytes, at, cp) : 1;
    if (n == 0) return fmt::format("invalid UTF-8 at byte {}", at);
    units.push_back(cp);
    at += n;
  }
  return "";
}

// The files a path names: itself, or a folder's regular files by name.
Expected<std::vector<std::string>> textFiles(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return error("text data '{}': no such file or folder", path);
  if (!S_ISDIR(st.st_mode)) return std::vector<std::string>{path};
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path, ec))
    if (e.is_regular_file(ec) && !e.is_symlink(ec)) files.push_back(e.path().string());
  if (ec) return error("text data '{}': cannot list the folder: {}", path, ec.message());
  std::sort(files.begin(), files.end());
  if (files.empty()) return error("text data '{}': the folder holds no regular file", path);
  return files;
}

}  // namespace

Expected<TextCorpus> readTextCorpus(const std::string& path, const std::string& unit, double testFraction) {
  if (unit != "byte" && unit != "char")
    return error("text data '{}': unit '{}': the units are \"byte\" and \"char\" (UTF-8 code points)", path, unit);
  if (!(testFraction > 0 && testFraction < 1))
    return error("text data '{}': test_fraction {} is not between 0 and 1", path, testFraction);
  NNC_TRY(const std::vector<std::string> files, textFiles(path));
  const bool one = files.size() == 1 && files[0] == path;
  TextCorpus c;
  c.unit = unit;
  std::vector<uint32_t> units;
  uint64_t total = 0;
  for (const std::string& f : files) {
    NNC_TRY(const std::string bytes, readFile(f, kMaxTextBytes, "a text file"));
    total += bytes.size();
    if (total > kMaxTextBytes) return error("text data '{}' is larger than nnc reads (1 GiB)", path);
    const size_t before = units.size();
    const std::string why = unitsOf(bytes, unit == "char", units);
    if (why.empty()) {
      ++c.files;
      continue;
    }
    if (one) return error("text file '{}': {}", f, why);
    units.resize(before);
    c.skipped.push_back(std::filesystem::path(f).filename().string());
  }
  if (units.empty()) return error("text data '{}' holds no text{}", path, c.skipped.empty() ? "" : " (every file was skipped as not text)");
  c.vocab = units;
  std::sort(c.vocab.begin(), c.vocab.end());
  c.vocab.erase(std::unique(c.vocab.begin(), c.vocab.end()), c.vocab.end());
  c.ids.resize(units.size());
  for (size_t i = 0; i < units.size(); ++i)
    c.ids[i] = static_cast<int32_t>(std::lower_bound(c.vocab.begin(), c.vocab.end(), units[i]) - c.vocab.begin());
  c.trainTokens = static_cast<int64_t>(std::floor(static_cast<double>(c.ids.size()) * (1 - testFraction)));
  return c;
}

Dataset textWindows(const TextCorpus& c, int64_t begin, int64_t end, int64_t context) {
  Dataset d;
  d.count = std::max<int64_t>(end - begin - 1, 0) / context;
  d.rows = 1;
  d.cols = context;
  d.targetSize = context;
  d.images.resize(static_cast<size_t>(d.count * context));
  d.targets.resize(d.images.size());
  for (int64_t k = 0; k < d.count; ++k)
    for (int64_t i = 0; i < context; ++i) {
      const auto at = static_cast<size_t>(begin + k * context + i), to = static_cast<size_t>(k * context + i);
      d.images[to] = static_cast<float>(c.ids[at]);
      d.targets[to] = static_cast<float>(c.ids[at + 1]);
    }
  return d;
}

Expected<DataSplits> loadTextData(const DataSpec& spec) {
  if (spec.context < 1 || spec.context > (int64_t{1} << 20))
    return error("text data '{}': context {} is not a window length from 1 to 1048576", spec.path, spec.context);
  NNC_TRY(TextCorpus c, readTextCorpus(spec.path, spec.unit, spec.testFraction));
  const auto total = static_cast<int64_t>(c.ids.size());
  DataSplits s;
  s.train = textWindows(c, 0, c.trainTokens, spec.context);
  s.test = textWindows(c, c.trainTokens, total, spec.context);
  for (const Dataset* d : {&s.train, &s.test})
    if (d->count == 0) {
      const bool train = d == &s.train;
      return error("text data '{}': its {} part ({} {}s of {}) is shorter than one window of context + 1 = {} (a "
                   "smaller context or test_fraction, or more text)",
                   spec.path, train ? "training" : "test", train ? c.trainTokens : total - c.trainTokens, c.unit,
                   total, spec.context + 1);
    }
  s.vocab = std::move(c.vocab);
  s.unit = c.unit;
  s.readNote = fmt::format("{} {}s ({} train, {} test), vocabulary of {}, from {} file{}", total, c.unit,
                           c.trainTokens, total - c.trainTokens, s.vocab.size(), c.files, c.files == 1 ? "" : "s");
  if (!c.skipped.empty()) {
    std::string names;
    for (size_t i = 0; i < c.skipped.size() && i < 3; ++i) names += (i ? ", " : "") + c.skipped[i];
    s.readNote += fmt::format("; {} skipped as not text ({}{})", c.skipped.size(), names,
                              c.skipped.size() > 3 ? ", ..." : "");
  }
  return s;
}

std::string vocabJson(const std::string& unit, const std::vector<uint32_t>& vocab) {
  std::string s = fmt::format("{{\"format\": {}, \"unit\": {}, \"units\": [", jsonQuote(kVocabFormat), jsonQuote(unit));
  for (size_t i = 0; i < vocab.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", vocab[i]);
  return s + "]}\n";
}

Expected<Vocab> parseVocabJson(std::string_view text, const std::string& what) {
  NNC_TRY(Json j, parseJson(text, what));
  const Json *format = j.find("format"), *unit = j.find("unit"), *units = j.find("units");
  if (!format || format->kind != Json::Kind::String || format->text != kVocabFormat)
    return error("{}: not an nnc vocabulary (its field 'format' is not \"{}\")", what, kVocabFormat);
  if (!unit || unit->kind != Json::Kind::String || (unit->text != "byte" && unit->text != "char"))
    return error("{}: field 'unit' is not \"byte\" or \"char\"", what);
  if (!units || units->kind != Json::Kind::Array || units->items.empty())
    return error("{}: field 'units' is not a list of units", what);
  Vocab v{unit->text, {}};
  const double top = v.unit == "byte" ? 255 : 0x10FFFF;
  for (const Json& u : units->items) {
    if (u.kind != Json::Kind::Number || u.number != std::floor(u.number) || u.number < 0 || u.number > top ||
        (!v.units.empty() && u.number <= v.units.back()))
      return error("{}: units must be increasing whole numbers from 0 to {}; {} is not", what, top, u.text);
    v.units.push_back(static_cast<uint32_t>(u.number));
  }
  return v;
}

Expected<std::vector<int32_t>> encodeText(const Vocab& v, std::string_view text) {
  std::vector<uint32_t> units;
  if (const std::string why = unitsOf(text, v.unit == "char", units); !why.empty())
    return error("the prompt is not text: {}", why);
  std::vector<int32_t> ids;
  for (size_t i = 0; i < units.size(); ++i) {
    const auto it = std::lower_bound(v.units.begin(), v.units.end(), units[i]);
    if (it == v.units.end() || *it != units[i]) {
      std::string shown;
      if (units[i] >= 0x20 && units[i] != 0x7F && (v.unit == "char" || units[i] < 0x80))
        appendUtf8(shown, units[i]);
      return error("the prompt's {} {} ('{}', U+{:04X}) is not in the model's vocabulary of {} {}s", v.unit, i + 1,
                   shown, units[i], v.units.size(), v.unit);
    }
    ids.push_back(static_cast<int32_t>(it - v.units.begin()));
  }
  return ids;
}

std::string decodeIds(const Vocab& v, const std::vector<int32_t>& ids) {
  std::string out;
  for (int32_t id : ids) {
    const uint32_t u = id >= 0 && static_cast<size_t>(id) < v.units.size() ? v.units[static_cast<size_t>(id)] : kNoUnit;
    if (u == kNoUnit) continue;
    if (v.unit == "char")
      appendUtf8(out, u);
    else
      out += static_cast<char>(u);
  }
  return out;
}

}  // namespace nnc
