// Where KV blocks live. A block is one group's page (e.g. layer 3's K and V rows for 32
// positions); a tier holds a fixed number of block slots of equal size. The cache
// (lib/kv/kv_cache.h) moves blocks between tiers by copying their bytes, so a block reads
// the same wherever it is. Host tiers are byte-addressable; a disk tier is reached through
// queued reads and writes that complete at wait().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/dtype.h"

namespace v4 {

struct KvComponentSpec {
  std::string name;    // "blk.3.k"
  DType type;          // row storage type
  int64_t row_elems;   // elements per row (one token's K for all KV heads, ...)
  int32_t group = 0;   // components read by the same attention (Llama: one layer's K and V)
  size_t row_bytes() const { return v4::row_bytes(type, row_elems); }
};

struct KvTierIoStats {
  uint64_t bytes_read = 0, bytes_written = 0, reads = 0, writes = 0;
};

class KvTier {
 public:
  virtual ~KvTier() = default;
  virtual const char* name() const = 0;
  virtual uint32_t n_slots() const = 0;
  virtual size_t slot_bytes() const = 0;
  // The slot's bytes for a host-addressable tier; nullptr for a tier the host cannot
  // address (disk, device memory).
  virtual uint8_t* slot_data(uint32_t slot) = 0;
  // The address kernels use for slot 0 (slot i at + i * slot_bytes()): host memory for a
  // host tier, device memory (or a backend's stand-in range for it) for a device tier;
  // nullptr for a tier no kernel reads (disk).
  virtual uint8_t* address_base() { return slot_data(0); }
  // Queued copies between a slot and host memory. `src`/`dst` must stay valid until
  // wait() returns; wait() throws v4::Error if any queued copy failed.
  virtual void write_slot(uint32_t slot, const void* src) = 0;
  virtual void read_slot(uint32_t slot, void* dst) = 0;
  virtual void submit() {}
  virtual void wait() {}
  virtual KvTierIoStats io_stats() const { return {}; }
};

// Makes the hot tier in a backend's memory (Backend::make_kv_tier); null: host memory.
// Its slots also hold the cache's device staging slots and FP8 window rings (KvCache).
using KvTierFactory = std::function<std::unique_ptr<KvTier>(uint32_t n_slots, size_t slot_bytes)>;

// A tier over host memory the caller owns: slot i is base + i * slot_bytes.
std::unique_ptr<KvTier> make_host_tier(const char* name, uint8_t* base, uint32_t n_slots,
                                       size_t slot_bytes);

struct Logger;
struct KvDiskOptions {
  std::string dir;
  uint64_t max_bytes = 0;  // 0: no limit
  bool compress = false;
};
// Slots in one file under opts.dir (created now, removed with the tier).
std::unique_ptr<KvTier> make_disk_tier(const KvDiskOptions& opts, uint32_t n_slots,
                                       size_t slot_bytes, const Logger* log);

}  // namespace v4
