#include "lib/kv/disk_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "lib/core/error.h"

namespace v4 {

DiskStore::DiskStore(const DiskStoreOptions& o) : o_(o) {
  path_ = o.dir + "/v4kv-" + std::to_string(getpid()) + ".bin";
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd_ < 0) fail(Status::io, "cannot create {}: {}", path_, std::strerror(errno));
}
DiskStore::~DiskStore() {
  ::close(fd_);
  ::unlink(path_.c_str());
}
void DiskStore::write(uint32_t slot, const void* src) {
  if (::pwrite(fd_, src, o_.slot_bytes, static_cast<off_t>(slot) * o_.slot_bytes) !=
      static_cast<ssize_t>(o_.slot_bytes))
    fail(Status::io, "write to {} failed: {}", path_, std::strerror(errno));
  stats_.bytes_written += o_.slot_bytes;
  ++stats_.writes;
}
void DiskStore::read(uint32_t slot, void* dst) {
  if (::pread(fd_, dst, o_.slot_bytes, static_cast<off_t>(slot) * o_.slot_bytes) !=
      static_cast<ssize_t>(o_.slot_bytes))
    fail(Status::io, "read from {} failed: {}", path_, std::strerror(errno));
  stats_.bytes_read += o_.slot_bytes;
  ++stats_.reads;
}

}  // namespace v4
