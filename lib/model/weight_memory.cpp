#include "lib/model/weight_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "lib/core/error.h"

namespace v4 {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kChunk = size_t{16} << 20;
// Below this, O_DIRECT's set-up is not worth it.
constexpr size_t kDirectMin = size_t{64} << 20;

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Reads [offset, offset + n) of fd into dst with pread; returns bytes read (short only at
// end of file) or -errno.
ssize_t read_fully(int fd, uint8_t* dst, size_t n, off_t offset) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, dst + done, n - done, offset + static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

}  // namespace

const char* load_mode_name(LoadMode m) {
  switch (m) {
    case LoadMode::automatic: return "auto";
    case LoadMode::mmap: return "mmap";
    case LoadMode::read: return "read";
    case LoadMode::mlock: return "mlock";
  }
  return "?";
}

WeightMemory::~WeightMemory() {
  if (map_) ::munmap(map_, map_size_);
}

std::unique_ptr<WeightMemory> WeightMemory::read_impl(const gguf::File& f,
                                                      bool (*progress)(float, void*), void* user) {
  std::unique_ptr<WeightMemory> w(new WeightMemory());
  const size_t start = f.data_offset();
  w->size_ = f.file_size() - start;
  // Read from a page-aligned file offset so O_DIRECT can be used; the data section then
  // begins `lead` bytes into the buffer.
  const size_t aligned_start = start / kPage * kPage;
  const size_t lead = start - aligned_start;
  const size_t total = round_up(lead + w->size_, kPage);
  w->map_size_ = round_up(total, kHugePage);
  void* p = ::mmap(nullptr, w->map_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    fail(Status::out_of_memory, "{}: cannot allocate {} bytes for the weights ({}); try --load mmap",
         f.path(), w->map_size_, std::strerror(errno));
  w->map_ = static_cast<uint8_t*>(p);
#ifdef MADV_HUGEPAGE
  w->huge_ = ::madvise(w->map_, w->map_size_, MADV_HUGEPAGE) == 0;
#endif
  w->data_ = w->map_ + lead;

  Fd file;
  if (total >= kDirectMin) {
    file.fd = ::open(f.path().c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    w->direct_ = file.fd >= 0;
  }
  if (file.fd < 0) file.fd = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0)
    fail(Status::io, "{}: cannot open for reading: {}", f.path(), std::strerror(errno));

  for (size_t off = 0; off < total; off += kChunk) {
    const size_t n = std::min(kChunk, total - off);
    ssize_t r = read_fully(file.fd, w->map_ + off, n, static_cast<off_t>(aligned_start + off));
    if (r == -EINVAL && w->direct_) {
      // The file system refuses O_DIRECT (tmpfs): continue with buffered reads.
      ::close(file.fd);
      file.fd = ::open(f.path().c_str(), O_RDONLY | O_CLOEXEC);
      w->direct_ = false;
      if (file.fd < 0)
        fail(Status::io, "{}: cannot open for reading: {}", f.path(), std::strerror(errno));
      r = read_fully(file.fd, w->map_ + off, n, static_cast<off_t>(aligned_start + off));
    }
    if (r < 0)
      fail(Status::io, "{}: read error at byte {}: {}", f.path(), aligned_start + off,
           std::strerror(static_cast<int>(-r)));
    if (static_cast<size_t>(r) < n && aligned_start + off + static_cast<size_t>(r) < f.file_size())
      fail(Status::io, "{}: the file shrank while it was being read", f.path());
    if (!w->direct_)  // drop the page cache behind us: the copy is what we keep
      ::posix_fadvise(file.fd, static_cast<off_t>(aligned_start + off), static_cast<off_t>(n),
                      POSIX_FADV_DONTNEED);
    if (progress && !progress(static_cast<float>(off + n) / static_cast<float>(total), user))
      fail(Status::cancelled, "{}: loading cancelled by the progress callback", f.path());
  }
  return w;
}

void lock_tensor_data(const gguf::File& f) {
  const uint8_t* begin = f.base() + f.data_offset() / kPage * kPage;
  const size_t len = f.file_size() - static_cast<size_t>(begin - f.base());
  if (::mlock(begin, len) != 0)
    fail(Status::out_of_memory,
         "{}: cannot lock {} bytes of weights in memory ({}); raise the limit (ulimit -l) or "
         "use --load read",
         f.path(), len, std::strerror(errno));
}

}  // namespace v4
