#include "backends/cuda/cuda_memory_pool.h"

#include <cuda_runtime.h>

#include "backends/cuda/cuda_check.h"

namespace v4::cuda {

size_t MemoryPool::rounded(size_t bytes) {
  constexpr size_t kGranule = size_t{2} << 20;  // 2 MiB
  if (bytes == 0) return 256;
  if (bytes >= kGranule) return (bytes + kGranule - 1) / kGranule * kGranule;
  size_t p = 256;
  while (p < bytes) p <<= 1;
  return p;
}

void* MemoryPool::alloc(size_t bytes, size_t align) {
  if (align > 256)
    fail(Status::invalid_arg, "cuda pool: alignment {} above the 256 bytes device memory has",
         align);
  const size_t size = rounded(bytes);
  void* p = nullptr;
  const auto hit = cached_.find(size);
  if (hit != cached_.end()) {
    p = hit->second;
    cached_.erase(hit);
    cached_bytes_ -= size;
  } else {
    V4_CUDA_CHECK(cudaSetDevice(device_));
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation && !cached_.empty()) {
      cudaGetLastError();
      trim();  // give the cache back and try once more
      err = cudaMalloc(&p, size);
    }
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      fail(Status::out_of_memory,
           "cuda device {}: cannot allocate {} bytes ({} in use); use a "
           "smaller context or batch, or place fewer layers on this device",
           device_, size, in_use_bytes_);
    }
    check(err, "cudaMalloc");
  }
  in_use_[p] = size;
  in_use_bytes_ += size;
  return p;
}

void MemoryPool::free(void* ptr) {
  if (!ptr) return;
  const auto it = in_use_.find(ptr);
  if (it == in_use_.end())
    fail(Status::internal, "cuda pool: free of a pointer it did not allocate");
  cached_.emplace(it->second, ptr);
  cached_bytes_ += it->second;
  in_use_bytes_ -= it->second;
  in_use_.erase(it);
}

void MemoryPool::trim() {
  cudaSetDevice(device_);
  for (const auto& [size, p] : cached_) cudaFree(p);
  cached_.clear();
  cached_bytes_ = 0;
}

MemoryPool::~MemoryPool() {
  trim();
  for (const auto& [p, size] : in_use_) cudaFree(p);  // destructor: no throwing, best effort
}

}  // namespace v4::cuda
