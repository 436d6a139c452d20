#include <cstring>

#include "lib/kv/kv_tier.h"

namespace v4 {
namespace {

class HostTier final : public KvTier {
 public:
  HostTier(const char* name, uint8_t* base, uint32_t n_slots, size_t slot_bytes)
      : name_(name), base_(base), n_slots_(n_slots), slot_bytes_(slot_bytes) {}

  const char* name() const override { return name_; }
  uint32_t n_slots() const override { return n_slots_; }
  size_t slot_bytes() const override { return slot_bytes_; }
  uint8_t* slot_data(uint32_t slot) override { return base_ + slot * slot_bytes_; }
  void write_slot(uint32_t slot, const void* src) override {
    std::memcpy(slot_data(slot), src, slot_bytes_);
  }
  void read_slot(uint32_t slot, void* dst) override {
    std::memcpy(dst, slot_data(slot), slot_bytes_);
  }

 private:
  const char* name_;
  uint8_t* base_;
  uint32_t n_slots_;
  size_t slot_bytes_;
};

}  // namespace

std::unique_ptr<KvTier> make_host_tier(const char* name, uint8_t* base, uint32_t n_slots,
                                       size_t slot_bytes) {
  return std::make_unique<HostTier>(name, base, n_slots, slot_bytes);
}

}  // namespace v4
