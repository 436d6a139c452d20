// TEMPORARY synchronous stand-in for the io_uring disk store (replaced by branch disk-io).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "lib/core/log.h"

namespace v4 {

struct IoFaults;
struct DiskStoreOptions {
  std::string dir;
  size_t slot_bytes = 0;
  uint32_t n_slots = 0;
  bool compress = false;
  uint32_t queue_depth = 64;
  IoFaults* faults = nullptr;
  Logger* log = nullptr;
};
struct DiskStoreStats {
  uint64_t bytes_read = 0, bytes_written = 0, reads = 0, writes = 0;
  double wait_seconds = 0;
};
class DiskStore {
 public:
  explicit DiskStore(const DiskStoreOptions& o);
  ~DiskStore();
  size_t slot_bytes() const { return o_.slot_bytes; }
  bool direct_io() const { return false; }
  void write(uint32_t slot, const void* src);
  void read(uint32_t slot, void* dst);
  void submit() {}
  void wait() {}
  DiskStoreStats stats() const { return stats_; }

 private:
  DiskStoreOptions o_;
  std::string path_;
  int fd_ = -1;
  DiskStoreStats stats_;
};

}  // namespace v4
