// Device memory for one device: allocations are kept when freed and handed out again for a
// request of the same rounded size, so a schedule that is rebuilt (a new batch shape) reuses
// its old arena instead of calling cudaMalloc (which synchronises the device).
#pragma once

#include <cstddef>
#include <map>
#include <unordered_map>
#include <vector>

namespace v4::cuda {

class MemoryPool {
 public:
  explicit MemoryPool(int device) : device_(device) {}
  ~MemoryPool();
  MemoryPool(const MemoryPool&) = delete;
  MemoryPool& operator=(const MemoryPool&) = delete;

  // At least `bytes` of device memory, 256-byte aligned (cudaMalloc's guarantee);
  // `align` above 256 is rejected. Throws Error(out_of_memory) when the device is full.
  void* alloc(size_t bytes, size_t align);
  void free(void* ptr);
  // Returns every cached (free) block to the device.
  void trim();
  size_t bytes_in_use() const { return in_use_bytes_; }
  size_t bytes_cached() const { return cached_bytes_; }

  // Requests round up to this granularity (and a power of two below it) so that sizes that
  // differ by a few bytes share cached blocks.
  static size_t rounded(size_t bytes);

 private:
  int device_;
  std::multimap<size_t, void*> cached_;       // size -> free block
  std::unordered_map<void*, size_t> in_use_;  // block -> size
  size_t in_use_bytes_ = 0;
  size_t cached_bytes_ = 0;
};

}  // namespace v4::cuda
