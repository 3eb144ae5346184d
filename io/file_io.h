// Whole-file reads and atomic writes, with errno's words on failure.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "base/diagnostics.h"

namespace nnc {

// Writes `bytes` to `path` through a temporary file and rename, so a reader
// never sees a half-written file. Errors (full disk, missing folder) in words.
Status writeFileAtomic(const std::string& path, std::string_view bytes);

// Whether `writeFileAtomic(path, ...)` can succeed, checked before any work
// is done: the folder holding `path` exists, is a folder and is writable, and
// `path` itself is not a folder. `what` names the option in the message
// ("--metrics"). A device or FIFO (/dev/stdout) passes: it is written into.
Status checkWritableFile(const std::string& path, std::string_view what);
// Whether `dir` is, or can be created as, a writable folder: an existing
// folder that is writable, or a name not taken in a writable existing folder
// (one level is created, as mkdir does).
Status checkWritableFolder(const std::string& dir, std::string_view what);

// A regular file open for reading. Anything else (a FIFO, which would block
// in open, /dev/zero, which never ends, a socket, a folder) is refused in
// words: every nnc input is a file whose size says how much there is to read.
// The file is opened with O_NONBLOCK, so opening a FIFO cannot hang.
class InputFile {
 public:
  static Expected<InputFile> open(const std::string& path);
  InputFile(InputFile&& o) noexcept : fd_(o.fd_), size_(o.size_), path_(std::move(o.path_)) { o.fd_ = -1; }
  InputFile& operator=(InputFile&&) = delete;
  InputFile(const InputFile&) = delete;
  ~InputFile();
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Exactly n bytes from `offset`; a file that ends sooner (it shrank since
  // it was opened) is an error naming it.
  Expected<std::string> read(uint64_t offset, uint64_t n) const;
  // Up to n bytes from `offset`, fewer where the file ends.
  Expected<std::string> readUpTo(uint64_t offset, uint64_t n) const;

 private:
  InputFile(int fd, uint64_t size, std::string path) : fd_(fd), size_(size), path_(std::move(path)) {}
  int fd_;
  uint64_t size_;
  std::string path_;
};

// The whole of a regular file (see InputFile). A file larger than maxBytes is
// refused before anything is read; `kind` names what it was read as ("a model
// source", "a CSV file") in that message.
Expected<std::string> readFile(const std::string& path, uint64_t maxBytes = UINT64_MAX,
                               std::string_view kind = "a file");

}  // namespace nnc
