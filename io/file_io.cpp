// readFile and writeFileAtomic (io/file_io.h): POSIX calls
// rather than iostreams, so every failure comes with its errno text.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>
#include <string>

#include "io/file_io.h"

namespace nnc {
namespace {

// Writes everything, resuming after short writes and signals. Returns 0 or
// an errno value.
int writeAll(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    size_t chunk = std::min<size_t>(bytes.size(), 1u << 30);
    ssize_t n = ::write(fd, bytes.data(), chunk);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    // A regular file or device that accepts nothing is as good as full;
    // looping on it would never end.
    if (n == 0) return ENOSPC;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return 0;
}

std::string parentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Why `dir` cannot hold new files, or "" when it can.
std::string folderProblem(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT) return fmt::format("the folder '{}' does not exist", dir);
    if (errno == ENOTDIR) return fmt::format("'{}' is not a folder (a part of it is a file)", dir);
    return fmt::format("'{}': {}", dir, std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return fmt::format("'{}' is a file, not a folder", dir);
  // W for the new entry, X to reach it; EROFS too (a read-only mount).
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return fmt::format("the folder '{}' is not writable: {}", dir, std::strerror(errno));
  return "";
}

}  // namespace

Status checkWritableFile(const std::string& path, std::string_view what) {
  if (path.empty()) return error("{}: the file name is empty", what);
  if (path.back() == '/') return error("{} {}: that names a folder, not a file", what, path);
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode)) return error("{} {}: it is a folder, not a file", what, path);
    if (!S_ISREG(st.st_mode)) return ok();  // a device or FIFO: written into, not replaced
  }
  if (std::string why = folderProblem(parentDir(path)); !why.empty()) return error("{} {}: {}", what, path, why);
  return ok();
}

Status checkWritableFolder(const std::string& dir, std::string_view what) {
  if (dir.empty()) return error("{}: the folder name is empty", what);
  struct stat st;
  if (::stat(dir.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) return error("{} {}: it is a file, not a folder", what, dir);
    if (std::string why = folderProblem(dir); !why.empty()) return error("{} {}: {}", what, dir, why);
    return ok();
  }
  if (errno == ENOTDIR) return error("{} {}: a part of the path is a file, not a folder", what, dir);
  std::string d = dir;
  while (d.size() > 1 && d.back() == '/') d.pop_back();
  if (std::string why = folderProblem(parentDir(d)); !why.empty())
    return error("{} {}: cannot create it there: {}", what, dir, why);
  return ok();
}

const char* nodeKind(mode_t m) {
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a plain file";
}

Expected<InputFile> InputFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return error("cannot open '{}': {}", path, std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return error("cannot read '{}': {}", path, std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return error("cannot read '{}': {}", path, std::strerror(EISDIR));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return error("cannot read '{}': it is {}, not a regular file; nnc reads its inputs from files", path,
                 nodeKind(st.st_mode));
  }
  // Reads of a regular file never block; clearing the flag is only tidiness.
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return InputFile(fd, static_cast<uint64_t>(st.st_size), path);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

Expected<std::string> InputFile::readUpTo(uint64_t offset, uint64_t n) const {
  if (offset >= size_) return std::string();
  n = std::min(n, size_ - offset);
  std::string out;
  try {
    out.resize(static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    return error("cannot read '{}': out of memory for its {} bytes", path_, n);
  }
  uint64_t got = 0;
  while (got < n) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(n - got, uint64_t{1} << 30));
    ssize_t r = ::pread(fd_, out.data() + got, chunk, static_cast<off_t>(offset + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      return error("cannot read '{}': {}", path_, std::strerror(errno));
    }
    if (r == 0) break;  // shorter than fstat said: it shrank
    got += static_cast<uint64_t>(r);
  }
  out.resize(static_cast<size_t>(got));
  return out;
}

Expected<std::string> InputFile::read(uint64_t offset, uint64_t n) const {
  NNC_TRY(std::string out, readUpTo(offset, n));
  if (out.size() != n)
    return error("cannot read '{}': it ends after {} bytes, though it was {} bytes when opened (did it shrink?)",
                 path_, offset + out.size(), size_);
  return out;
}

Expected<std::string> readFile(const std::string& path, uint64_t maxBytes, std::string_view kind) {
  NNC_TRY(InputFile f, InputFile::open(path));
  if (f.size() > maxBytes)
    return error("'{}' is {} bytes, more than the {} nnc reads as {}", path, f.size(), maxBytes, kind);
  return f.read(0, f.size());
}

Status writeFileAtomic(const std::string& path, std::string_view bytes) {
  struct stat st;
  bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) return error("cannot write '{}': {}", path, std::strerror(EISDIR));
  if (exists && !S_ISREG(st.st_mode)) {
    // A device or pipe (/dev/stdout, /dev/null, a FIFO) has no contents to
    // replace, and renaming a temporary file over it would destroy the
    // node itself: write straight into it.
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return error("cannot write '{}': {}", path, std::strerror(errno));
    int e = writeAll(fd, bytes);
    if (::close(fd) != 0 && e == 0 && errno != EINTR) e = errno;
    if (e != 0) return error("cannot write '{}': {}", path, std::strerror(e));
    return ok();
  }

  // Same folder as the target, so the rename cannot cross file systems; the
  // pid keeps two processes writing the same path from sharing a temporary.
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0) return error("cannot write '{}': {}", path, std::strerror(errno));
  auto fail = [&](const char* step, int e) -> Status {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return error("cannot {} '{}': {}", step, path, std::strerror(e));
  };
  // Replacing a file should not silently widen or narrow who may read it.
  if (exists) (void)::fchmod(fd, st.st_mode & 07777);
  if (int e = writeAll(fd, bytes)) return fail("write", e);
  // Without the fsync a crash soon after the rename can leave an empty file
  // under the new name on some file systems, defeating the point.
  if (::fsync(fd) != 0) return fail("write", errno);
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0) return fail("write", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("replace", errno);
  // Make the rename itself durable; a failure here loses nothing already
  // visible, so it is not reported.
  int dfd = ::open(parentDir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return ok();
}

}  // namespace nnc
