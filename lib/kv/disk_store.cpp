#include "lib/kv/disk_store.h"

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "lib/kv/spill_files.h"

namespace v4 {
namespace {

constexpr size_t kAlign = 4096;       // O_DIRECT alignment of buffers, offsets and lengths
constexpr int kZstdLevel = 1;         // fast: cold pages are written on the decode path
constexpr uint32_t kMaxRetries = 64;  // resubmissions of one operation that made no progress
constexpr size_t kMaxSlotBytes = size_t{1} << 30;  // one io_uring request moves < 2 GiB

size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlign == 0; }

// The seed folds in the stored length and the compression flag, so a slot whose length or
// format were mixed up fails the check as surely as one whose bytes changed.
uint64_t slot_checksum(const void* data, uint32_t len, bool compressed) {
  return XXH3_64bits_withSeed(data, len, (uint64_t{len} << 1) | (compressed ? 1 : 0));
}

std::string errno_text(int err) { return std::strerror(err); }

std::atomic<uint32_t> g_file_counter{0};

}  // namespace

struct DiskStore::Ring {
  io_uring ring{};
};

DiskStore::DiskStore(const DiskStoreOptions& o)
    : dir_(o.dir),
      slot_bytes_(o.slot_bytes),
      compress_(o.compress),
      depth_(o.queue_depth),
      faults_(o.faults),
      log_(o.log ? *o.log : Logger{}) {
  if (dir_.empty())
    fail(Status::invalid_arg, "KV disk tier: no directory given; name one with --kv-disk");
  if (slot_bytes_ == 0 || slot_bytes_ > kMaxSlotBytes)
    fail(Status::invalid_arg, "KV disk tier: slot size {} bytes is outside 1 .. {}", slot_bytes_,
         kMaxSlotBytes);
  if (o.n_slots == 0) fail(Status::invalid_arg, "KV disk tier: capacity of 0 slots");
  if (depth_ == 0 || depth_ > 4096)
    fail(Status::invalid_arg, "KV disk tier: queue depth {} is outside 1 .. 4096", depth_);
  stride_ = round_up(slot_bytes_, kAlign);
  slots_.resize(o.n_slots);
  try {
    setup_buffers();
    open_file(o);  // last: nothing after it can fail, so no failure leaves a file behind
  } catch (...) {
    drain_quietly();
    throw;
  }
}

DiskStore::~DiskStore() { drain_quietly(); }

void DiskStore::setup_buffers() {
  ring_ = std::make_unique<Ring>();
  const int r = io_uring_queue_init(depth_, &ring_->ring, 0);
  if (r < 0) {
    ring_.reset();
    fail(Status::unsupported,
         "KV disk tier: io_uring is not available ({}); it needs Linux 5.6 or later and is "
         "sometimes disabled (sysctl kernel.io_uring_disabled, container seccomp policy)",
         errno_text(-r));
  }
  pool_ = static_cast<uint8_t*>(std::aligned_alloc(kAlign, stride_ * depth_));
  if (!pool_)
    fail(Status::out_of_memory, "KV disk tier: cannot allocate {} bounce buffers of {} bytes",
         depth_, stride_);
  std::memset(pool_, 0, stride_ * depth_);
  // Registered buffers spare the kernel pinning pages per request. Registration counts against
  // RLIMIT_MEMLOCK; where it is refused, plain reads and writes do the same job a little slower.
  std::vector<iovec> iov(depth_);
  for (uint32_t i = 0; i < depth_; ++i) iov[i] = {pool_ + size_t{i} * stride_, stride_};
  registered_ = io_uring_register_buffers(&ring_->ring, iov.data(), depth_) == 0;
  ops_.resize(depth_);
  for (uint32_t i = depth_; i-- > 0;) free_ids_.push_back(i);
  if (compress_) {
    zstd_c_ = ZSTD_createCCtx();
    zstd_d_ = ZSTD_createDCtx();
    if (!zstd_c_ || !zstd_d_)
      fail(Status::out_of_memory, "KV disk tier: cannot create zstd contexts");
  }
}

// O_EXCL with a per-process counter gives each store its own file; a name left by a crashed
// process with the same pid is skipped, never reused.
void DiskStore::open_file(const DiskStoreOptions& o) {
  const int base = O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    path_ = fmt::format("{}/v4kv-{}-{}.bin", dir_, ::getpid(), g_file_counter++);
    int err = 0;
    if (direct_) {
      if (o.faults && o.faults->refuse_direct) {
        ++o.faults->injected;
        err = EINVAL;
      } else {
        fd_ = ::open(path_.c_str(), base | O_DIRECT, 0600);
        err = fd_ < 0 ? errno : 0;
      }
      if (err == EINVAL) {
        // Some kernels create the file before refusing O_DIRECT; O_EXCL guarantees it is ours.
        ::unlink(path_.c_str());
        direct_ = false;
        warn_buffered();
      }
    }
    if (!direct_) {
      fd_ = ::open(path_.c_str(), base, 0600);
      err = fd_ < 0 ? errno : 0;
    }
    if (fd_ >= 0) {
      spill_file_created(path_);
      return;
    }
    if (err != EEXIST)
      fail(Status::io,
           "cannot create KV spill file in {}: {}; choose a writable directory with --kv-disk",
           dir_, errno_text(err));
  }
  fail(Status::io,
       "cannot create KV spill file in {}: 1000 names taken; remove stale v4kv-*.bin files", dir_);
}

void DiskStore::warn_buffered() {
  log_(LogLevel::warn,
       "KV disk tier: {} does not support O_DIRECT; using buffered I/O (cold pages will also "
       "occupy the page cache)",
       dir_);
}

// Some filesystems accept O_DIRECT at open and refuse it per request (EINVAL). Clearing the flag
// on the open file turns every later request into buffered I/O; alignment stays as it was.
bool DiskStore::fall_back_to_buffered() {
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0 || ::fcntl(fd_, F_SETFL, flags & ~O_DIRECT) != 0) return false;
  direct_ = false;
  warn_buffered();
  return true;
}

void DiskStore::drain_quietly() {
  queued_.clear();
  draining_ = true;
  while (ring_ && in_flight_ > 0) {
    if (unsubmitted_ > 0 && io_uring_submit(&ring_->ring) >= 0) unsubmitted_ = 0;
    try {
      reap(true);
    } catch (const Error&) {
      break;  // the ring itself failed; nothing more will complete
    }
  }
  if (ring_) io_uring_queue_exit(&ring_->ring);  // also unregisters the buffers
  ring_.reset();
  std::free(pool_);
  pool_ = nullptr;
  ZSTD_freeCCtx(static_cast<ZSTD_CCtx*>(zstd_c_));
  ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(zstd_d_));
  zstd_c_ = zstd_d_ = nullptr;
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
    spill_file_removed(path_);
    fd_ = -1;
  }
}

void DiskStore::check_slot(uint32_t slot, const char* what) const {
  if (slot >= slots_.size())
    fail(Status::invalid_arg, "KV disk tier: {} of slot {} in {}, which has {} slots", what, slot,
         path_, slots_.size());
}

void DiskStore::write(uint32_t slot, const void* src) {
  check_slot(slot, "write");
  Op op;
  op.slot = slot;
  op.is_write = true;
  op.src = src;
  queued_.push_back(op);
}

void DiskStore::read(uint32_t slot, void* dst) {
  check_slot(slot, "read");
  Op op;
  op.slot = slot;
  op.dst = dst;
  queued_.push_back(op);
}

void DiskStore::submit() {
  reap(false);
  start_ready_ops();
  flush();
}

void DiskStore::wait() {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    reap(false);
    start_ready_ops();
    flush();
    if (in_flight_ == 0) {
      if (queued_.empty()) break;
      continue;  // everything that started failed at once; start the next ones
    }
    reap(true);
  }
  stats_.wait_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!failed_) return;
  std::string text = std::move(fail_text_);
  if (more_failures_ > 0) text += fmt::format(" ({} more operations failed)", more_failures_);
  const Status s = fail_status_;
  failed_ = false;
  fail_text_.clear();
  more_failures_ = 0;
  throw Error(s, std::move(text));
}

void DiskStore::flush() {
  if (unsubmitted_ == 0) return;
  int r;
  do {
    r = io_uring_submit(&ring_->ring);
  } while (r == -EINTR);
  if (r < 0)
    fail(Status::io, "KV disk tier: io_uring_submit on {} failed: {}", path_, errno_text(-r));
  unsubmitted_ = 0;
}

// Operations on one slot run one at a time in queue order (a read queued after a write of the
// same slot sees the new bytes); an operation whose slot is busy waits and the scan moves on.
void DiskStore::start_ready_ops() {
  for (auto it = queued_.begin(); it != queued_.end() && !free_ids_.empty();) {
    if (slots_[it->slot].busy) {
      ++it;
      continue;
    }
    const uint32_t id = free_ids_.back();
    free_ids_.pop_back();
    ops_[id] = *it;
    it = queued_.erase(it);
    ++in_flight_;
    slots_[ops_[id].slot].busy = true;
    if (ops_[id].is_write) {
      prepare_write(ops_[id], id);
    } else if (!prepare_read(ops_[id], id)) {
      release(id);
      continue;
    }
    push_sqe(id);
  }
}

bool DiskStore::in_place_ok(const void* p) const {
  return direct_ ? aligned(p) && slot_bytes_ % kAlign == 0 : true;
}

uint32_t DiskStore::io_len_for(uint32_t stored_len) const {
  return static_cast<uint32_t>(direct_ ? round_up(stored_len, kAlign) : stored_len);
}

void DiskStore::prepare_write(Op& op, uint32_t id) {
  uint8_t* bounce = pool_ + size_t{id} * stride_;
  const bool in_place = !compress_ && in_place_ok(op.src);
  uint32_t len = static_cast<uint32_t>(slot_bytes_);
  bool compressed = false;
  if (compress_) {
    const size_t r = ZSTD_compressCCtx(static_cast<ZSTD_CCtx*>(zstd_c_), bounce, slot_bytes_,
                                       op.src, slot_bytes_, kZstdLevel);
    // A page that does not shrink (already dense data) is stored raw: never larger than the slot.
    if (!ZSTD_isError(r) && r < slot_bytes_) {
      len = static_cast<uint32_t>(r);
      compressed = true;
    }
  }
  if (!compressed && !in_place) std::memcpy(bounce, op.src, slot_bytes_);
  op.io_buf = in_place ? static_cast<uint8_t*>(const_cast<void*>(op.src)) : bounce;
  op.fixed = !in_place && registered_;
  op.io_len = io_len_for(len);
  if (!in_place && op.io_len > len) std::memset(bounce + len, 0, op.io_len - len);
  op.meta.checksum = slot_checksum(op.io_buf, len, compressed);
  op.meta.stored_len = len;
  op.meta.compressed = compressed;
  op.meta.state = SlotState::valid;
}

bool DiskStore::prepare_read(Op& op, uint32_t id) {
  const SlotMeta& m = slots_[op.slot];
  if (m.state != SlotState::valid) {
    record_failure(
        Status::invalid_arg,
        m.state == SlotState::empty
            ? fmt::format("KV disk tier: read of slot {} of {}, which was never written", op.slot,
                          path_)
            : fmt::format("KV disk tier: read of slot {} of {}, whose last write failed; "
                          "its page is lost until it is written again",
                          op.slot, path_));
    return false;
  }
  op.meta = m;
  op.io_len = io_len_for(m.stored_len);
  const bool in_place = !m.compressed && m.stored_len == slot_bytes_ && in_place_ok(op.dst);
  op.io_buf = in_place ? static_cast<uint8_t*>(op.dst) : pool_ + size_t{id} * stride_;
  op.fixed = !in_place && registered_;
  return true;
}

void DiskStore::push_sqe(uint32_t id) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_->ring);
  if (!sqe) {  // cannot happen with at most depth_ operations in flight; stay safe anyway
    flush();
    sqe = io_uring_get_sqe(&ring_->ring);
    if (!sqe) fail(Status::internal, "KV disk tier: io_uring submission queue full");
  }
  const Op& op = ops_[id];
  uint8_t* buf = op.io_buf + op.done;
  const unsigned len = op.io_len - op.done;
  const uint64_t off = offset_of(op.slot) + op.done;
  if (op.is_write && op.fixed)
    io_uring_prep_write_fixed(sqe, fd_, buf, len, off, static_cast<int>(id));
  else if (op.is_write)
    io_uring_prep_write(sqe, fd_, buf, len, off);
  else if (op.fixed)
    io_uring_prep_read_fixed(sqe, fd_, buf, len, off, static_cast<int>(id));
  else
    io_uring_prep_read(sqe, fd_, buf, len, off);
  io_uring_sqe_set_data64(sqe, id);
  ops_[id].sent_direct = direct_;
  ++unsubmitted_;
}

void DiskStore::reap(bool block) {
  io_uring_cqe* cqe = nullptr;
  if (block) {
    int r;
    do {
      r = io_uring_wait_cqe(&ring_->ring, &cqe);
    } while (r == -EINTR);
    if (r < 0)
      fail(Status::io, "KV disk tier: waiting for I/O on {} failed: {}", path_, errno_text(-r));
  }
  while (io_uring_peek_cqe(&ring_->ring, &cqe) == 0) {
    const auto id = static_cast<uint32_t>(io_uring_cqe_get_data64(cqe));
    const int res = cqe->res;
    io_uring_cqe_seen(&ring_->ring, cqe);
    complete(id, res);
  }
}

void DiskStore::complete(uint32_t id, int res) {
  Op& op = ops_[id];
  const unsigned want = op.io_len - op.done;
  if (faults_) res = faults_->filter(op.is_write, res, want, op.io_buf + op.done, op.sent_direct);
  // Requests already in flight when the store fell back fail the same way; they just go again.
  if (res == -EINVAL && op.sent_direct && (!direct_ || fall_back_to_buffered())) {
    push_sqe(id);
    return;
  }
  if ((res == -EAGAIN || res == -EINTR) && ++op.retries <= kMaxRetries) {
    push_sqe(id);
    return;
  }
  if (res < 0) {
    const int err = -res;
    record_failure(Status::io, fmt::format("KV disk tier: {} slot {} of {} failed: {}; {}",
                                           op.is_write ? "writing" : "reading", op.slot, path_,
                                           errno_text(err), errno_advice(err)));
    if (op.is_write) slots_[op.slot].state = SlotState::lost;
    release(id);
    return;
  }
  if (res == 0 && want > 0) {
    record_failure(Status::io,
                   op.is_write
                       ? fmt::format("KV disk tier: writing slot {} of {} stopped after {} of {} "
                                     "bytes; free space on {} or lower --kv-disk-max",
                                     op.slot, path_, op.done, op.io_len, dir_)
                       : fmt::format("KV disk tier: short read of slot {} of {}: the file ended "
                                     "after {} of {} bytes (was it truncated behind our back?); "
                                     "the page is lost",
                                     op.slot, path_, op.done, op.io_len));
    if (op.is_write) slots_[op.slot].state = SlotState::lost;
    release(id);
    return;
  }
  op.done += static_cast<uint32_t>(res);
  if (op.done < op.io_len) {
    // A partial transfer: ask for the rest (from an aligned offset under O_DIRECT).
    if (direct_) op.done = static_cast<uint32_t>(op.done / kAlign * kAlign);
    if (++op.retries > kMaxRetries) {
      record_failure(Status::io, fmt::format("KV disk tier: {} slot {} of {} makes no progress",
                                             op.is_write ? "writing" : "reading", op.slot, path_));
      if (op.is_write) slots_[op.slot].state = SlotState::lost;
      release(id);
      return;
    }
    push_sqe(id);
    return;
  }
  if (op.is_write)
    finish_write(op);
  else
    finish_read(op);
  release(id);
}

void DiskStore::finish_write(Op& op) {
  const bool busy = slots_[op.slot].busy;
  slots_[op.slot] = op.meta;
  slots_[op.slot].busy = busy;
  ++stats_.writes;
  stats_.bytes_written += op.io_len;
}

void DiskStore::finish_read(Op& op) {
  stats_.bytes_read += op.io_len;
  if (draining_) return;  // the destructor: the caller no longer waits for dst
  const SlotMeta& m = op.meta;
  if (slot_checksum(op.io_buf, m.stored_len, m.compressed) != m.checksum) {
    record_failure(Status::io,
                   fmt::format("KV disk tier: slot {} of {} failed its checksum (its bytes on "
                               "disk changed after they were written); the page is lost; check "
                               "the disk (dmesg) or choose another directory with --kv-disk",
                               op.slot, path_));
    return;
  }
  if (m.compressed) {
    const size_t r = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(zstd_d_), op.dst, slot_bytes_,
                                         op.io_buf, m.stored_len);
    if (ZSTD_isError(r) || r != slot_bytes_) {
      record_failure(Status::internal,
                     fmt::format("KV disk tier: slot {} of {} passed its checksum but does not "
                                 "decompress to {} bytes",
                                 op.slot, path_, slot_bytes_));
      return;
    }
  } else if (op.io_buf != op.dst) {
    std::memcpy(op.dst, op.io_buf, slot_bytes_);
  }
  ++stats_.reads;
}

void DiskStore::release(uint32_t id) {
  slots_[ops_[id].slot].busy = false;
  free_ids_.push_back(id);
  --in_flight_;
}

void DiskStore::record_failure(Status s, std::string text) {
  if (failed_) {
    ++more_failures_;
    return;
  }
  failed_ = true;
  fail_status_ = s;
  fail_text_ = std::move(text);
}

std::string DiskStore::errno_advice(int err) const {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return fmt::format("free space on {} or lower --kv-disk-max", dir_);
    case EIO:
      return fmt::format(
          "the device reported an error; check the disk (dmesg) or choose another "
          "directory than {} with --kv-disk",
          dir_);
    case EACCES:
    case EPERM:
    case EROFS:
      return fmt::format("{} is not writable; choose a writable directory with --kv-disk", dir_);
    default:
      return fmt::format("check {} or choose another directory with --kv-disk", dir_);
  }
}

}  // namespace v4
