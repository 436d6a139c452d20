// The disk tier's I/O layer: a fixed number of equally sized slots in one file under a
// user-named directory, read and written asynchronously through io_uring. O_DIRECT with
// 4096-aligned, registered bounce buffers (or the caller's buffer when it is aligned); buffered
// I/O with one warning where the filesystem refuses O_DIRECT. Optional zstd per slot, an XXH3
// checksum per slot kept in memory and verified on every read. The file is removed when the store
// is destroyed. One thread uses a store at a time. See docs/DESIGN.md, "KV disk tier I/O".
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/kv/io_faults.h"

namespace v4 {

struct DiskStoreOptions {
  std::string dir;        // directory the user named; the store creates one uniquely named file
  size_t slot_bytes = 0;  // payload bytes per slot (any size; padded to 4096 on disk)
  uint32_t n_slots = 0;   // capacity; the file grows as slots are written
  bool compress = false;  // zstd (fast level) per slot; a slot that does not shrink is stored raw
  uint32_t queue_depth = 64;   // operations in flight at once (and bounce buffers)
  IoFaults* faults = nullptr;  // tests only
  Logger* log = nullptr;       // nullptr: the global sink
};

struct DiskStoreStats {
  uint64_t bytes_read = 0;     // bytes moved from the file (padded, compressed sizes)
  uint64_t bytes_written = 0;  // bytes moved to the file
  uint64_t reads = 0;          // slot reads completed successfully
  uint64_t writes = 0;         // slot writes completed successfully
  double wait_seconds = 0;     // time blocked in wait() for completions
};

class DiskStore {
 public:
  // Throws v4::Error naming the directory when the file cannot be created.
  explicit DiskStore(const DiskStoreOptions& o);
  ~DiskStore();  // waits for in-flight I/O, closes and removes the file
  DiskStore(const DiskStore&) = delete;
  DiskStore& operator=(const DiskStore&) = delete;

  size_t slot_bytes() const { return slot_bytes_; }
  uint32_t n_slots() const { return static_cast<uint32_t>(slots_.size()); }
  bool direct_io() const { return direct_; }
  const std::string& path() const { return path_; }

  // Queue a write of slot_bytes() bytes from src into `slot`; src must stay valid until wait().
  void write(uint32_t slot, const void* src);
  // Queue a read of `slot` into dst (slot_bytes() bytes); dst holds the data once wait() returns
  // without throwing (its contents are unspecified if the read failed).
  void read(uint32_t slot, void* dst);
  // Operations on one slot run in the order they were queued; others overlap freely.
  void submit();  // hand queued operations to the kernel (one io_uring_submit), do not wait
  // Wait for everything queued. Throws v4::Error for the first failure (ENOSPC, EIO, short read,
  // checksum mismatch, never-written slot) naming slot and file, with advice. The store stays
  // usable; a slot whose write failed reads as lost until it is written again.
  void wait();
  DiskStoreStats stats() const { return stats_; }

 private:
  enum class SlotState : uint8_t { empty, valid, lost };
  struct SlotMeta {
    uint64_t checksum = 0;
    uint32_t stored_len = 0;  // bytes of payload on disk (compressed length or slot_bytes)
    bool compressed = false;
    SlotState state = SlotState::empty;
    bool busy = false;  // an operation on this slot is with the kernel
  };
  struct Op {
    uint32_t slot = 0;
    bool is_write = false;
    void* dst = nullptr;        // read target
    const void* src = nullptr;  // write source
    uint8_t* io_buf = nullptr;  // what the kernel reads into / writes from
    bool fixed = false;         // io_buf is a registered bounce buffer
    uint32_t io_len = 0;        // bytes to transfer (padded in O_DIRECT mode)
    uint32_t done = 0;          // bytes transferred so far
    uint32_t retries = 0;       // resubmissions (EAGAIN, partial transfers)
    bool sent_direct = false;   // the last request for it went out under O_DIRECT
    SlotMeta meta;              // write: what the slot holds once it completes; read: expected
  };
  struct Ring;

  void open_file(const DiskStoreOptions& o);
  void setup_buffers();
  void check_slot(uint32_t slot, const char* what) const;
  bool in_place_ok(const void* p) const;  // the kernel may use the caller's buffer directly
  uint64_t offset_of(uint32_t slot) const { return uint64_t{slot} * stride_; }
  uint32_t io_len_for(uint32_t stored_len) const;
  void start_ready_ops();  // moves queued ops whose slot is free into the SQ
  void flush();            // io_uring_submit of the prepared SQEs
  void prepare_write(Op& op, uint32_t id);
  bool prepare_read(Op& op, uint32_t id);
  void push_sqe(uint32_t id);
  void reap(bool block);  // handles available completions; waits for one when block
  void complete(uint32_t id, int res);
  void finish_write(Op& op);
  void finish_read(Op& op);
  void release(uint32_t id);
  void record_failure(Status s, std::string text);
  void drain_quietly();
  std::string errno_advice(int err) const;
  void warn_buffered();
  bool fall_back_to_buffered();  // after O_DIRECT I/O was refused

  std::string dir_, path_;
  size_t slot_bytes_ = 0;
  size_t stride_ = 0;  // bytes per slot on disk (multiple of 4096)
  bool compress_ = false;
  bool direct_ = true;
  int fd_ = -1;
  uint32_t depth_ = 0;
  IoFaults* faults_ = nullptr;
  Logger log_;

  std::unique_ptr<Ring> ring_;
  uint8_t* pool_ = nullptr;  // depth_ bounce buffers of stride_ bytes, 4096-aligned
  bool registered_ = false;
  void* zstd_c_ = nullptr;
  void* zstd_d_ = nullptr;

  std::vector<SlotMeta> slots_;
  std::deque<Op> queued_;  // not yet handed to the kernel
  std::vector<Op> ops_;    // in flight, indexed by bounce-buffer id
  std::vector<uint32_t> free_ids_;
  uint32_t in_flight_ = 0;
  uint32_t unsubmitted_ = 0;  // SQEs prepared since the last io_uring_submit

  bool draining_ = false;  // the destructor is waiting out in-flight I/O
  bool failed_ = false;    // a failure since the last wait()
  Status fail_status_ = Status::ok;
  std::string fail_text_;
  uint32_t more_failures_ = 0;

  DiskStoreStats stats_;
};

}  // namespace v4
