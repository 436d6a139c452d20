// The disk tier: KV blocks in one file under the directory the user named, through the
// io_uring disk store (lib/kv/disk_store.h).
#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/kv/disk_store.h"
#include "lib/kv/kv_tier.h"

namespace v4 {
namespace {

class DiskTier final : public KvTier {
 public:
  DiskTier(const KvDiskOptions& o, uint32_t n_slots, size_t slot_bytes, const Logger* log)
      : log_(log ? *log : Logger{}), store_(store_options(o, n_slots, slot_bytes, &log_)),
        n_slots_(n_slots) {}

  const char* name() const override { return "disk"; }
  uint32_t n_slots() const override { return n_slots_; }
  size_t slot_bytes() const override { return store_.slot_bytes(); }
  uint8_t* slot_data(uint32_t) override { return nullptr; }
  void write_slot(uint32_t slot, const void* src) override { store_.write(slot, src); }
  void read_slot(uint32_t slot, void* dst) override { store_.read(slot, dst); }
  void submit() override { store_.submit(); }
  void wait() override { store_.wait(); }
  KvTierIoStats io_stats() const override {
    const DiskStoreStats s = store_.stats();
    return {s.bytes_read, s.bytes_written, s.reads, s.writes};
  }

 private:
  static DiskStoreOptions store_options(const KvDiskOptions& o, uint32_t n_slots,
                                        size_t slot_bytes, Logger* log) {
    DiskStoreOptions d;
    d.dir = o.dir;
    d.slot_bytes = slot_bytes;
    d.n_slots = n_slots;
    d.compress = o.compress;
    d.log = log;
    return d;
  }
  Logger log_;
  DiskStore store_;
  uint32_t n_slots_;
};

}  // namespace

std::unique_ptr<KvTier> make_disk_tier(const KvDiskOptions& opts, uint32_t n_slots,
                                       size_t slot_bytes, const Logger* log) {
  return std::make_unique<DiskTier>(opts, n_slots, slot_bytes, log);
}

}  // namespace v4
