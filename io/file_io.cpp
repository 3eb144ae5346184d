// readFile and writeFileAtomic (io/file_io.h): POSIX calls
// rather than iostreams, so every failure comes with its errno text.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

}  // namespace

Expected<std::string> readFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error("cannot open '{}': {}", path, std::strerror(errno));
  std::string out;
  struct stat st;
  if (::fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return error("cannot read '{}': {}", path, std::strerror(EISDIR));
    }
    // Only a hint: pipes and /proc files report 0 and are read to EOF anyway.
    if (S_ISREG(st.st_mode) && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  }
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      return error("cannot read '{}': {}", path, std::strerror(e));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
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
