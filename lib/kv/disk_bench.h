// Read throughput of the disk tier, for `v4 bench --kv-disk`: writes a file through DiskStore,
// then reads every slot once in random order with queue_depth reads in flight (O_DIRECT, so the
// page cache does not flatter the figure). Compare with bench/fio_read.sh on the same directory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace v4 {

struct DiskReadBench {
  size_t slot_bytes = 0;
  int queue_depth = 0;
  uint64_t bytes = 0;  // bytes read (= bytes written)
  double write_seconds = 0;
  double read_seconds = 0;
  double write_gbps = 0;  // 1e9 bytes per second
  double read_gbps = 0;
  bool direct_io = false;  // false: the filesystem refused O_DIRECT (figures include caching)
};

// Throws v4::Error when the directory is unusable or an I/O fails.
DiskReadBench bench_disk_reads(const std::string& dir, size_t slot_bytes, uint64_t total_bytes,
                               int queue_depth);

}  // namespace v4
