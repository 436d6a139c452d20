#include "lib/core/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/core/error.h"

namespace v4 {

int write_all(int fd, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, b, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (w == 0) return EIO;
    b += w;
    n -= static_cast<size_t>(w);
  }
  return 0;
}

void write_file_atomic(const std::string& path, const std::function<int(int fd)>& body) {
  std::string tmp = path + ".tmp-XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0)
    fail(Status::io, "{}: cannot create temporary file {}: {}; choose a writable location", path,
         tmp, std::strerror(errno));
  // On failure: close, remove the temporary file, and report.
  auto give_up = [&](const char* step, int err, bool fd_open) {
    if (fd_open) ::close(fd);
    ::unlink(tmp.c_str());
    fail(Status::io, "{}: {} failed: {}", path, step, std::strerror(err));
  };
  if (::fchmod(fd, 0644) != 0) give_up("chmod of the temporary file", errno, true);
  int err;
  try {
    err = body(fd);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (err != 0) give_up("write", err, true);
  if (::fsync(fd) != 0) give_up("fsync", errno, true);
  if (::close(fd) != 0) give_up("close", errno, false);
  if (::rename(tmp.c_str(), path.c_str()) != 0) give_up("rename", errno, false);

  // Make the rename durable; failure here does not undo a complete file.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(Status::io, "cannot open {}: {}", path, std::strerror(errno));
  std::vector<uint8_t> data;
  uint8_t buf[1 << 16];
  for (;;) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      ::close(fd);
      fail(Status::io, "cannot read {}: {}", path, std::strerror(e));
    }
    if (r == 0) break;
    data.insert(data.end(), buf, buf + r);
  }
  ::close(fd);
  return data;
}

}  // namespace v4
