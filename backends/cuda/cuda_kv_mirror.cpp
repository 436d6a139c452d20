#include "backends/cuda/cuda_kv_mirror.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "backends/cuda/cuda_check.h"

namespace v4::cuda {

KvMirror::~KvMirror() {
  if (device_) pool_.free(device_);
  for (auto& [group, table] : slots_) pool_.free(table.device);
}

const uint32_t* KvMirror::group_slots(const KvView& kv, int32_t group, cudaStream_t s) {
  const size_t bytes = static_cast<size_t>(kv.n_logical_pages) * 4;
  SlotTable& t = slots_[group];
  if (t.bytes < bytes) {
    if (t.device) pool_.free(t.device);
    t.device = pool_.alloc(bytes, 256);
    t.bytes = bytes;
  }
  // From pageable memory: the call returns once the bytes are staged, so the cache may change
  // the table right after; kernels queued earlier on `s` finish before the copy lands.
  V4_CUDA_CHECK(cudaMemcpyAsync(t.device,
                                kv.block_slot + static_cast<size_t>(group) * kv.n_logical_pages,
                                bytes, cudaMemcpyHostToDevice, s));
  return static_cast<const uint32_t*>(t.device);
}

void KvMirror::upload(const KvView& kv, cudaStream_t s) {
  if (uploaded_ == &kv) return;
  const int32_t n = kv.n_tokens;
  int32_t n_seq = 0;
  max_rows_ = 0;
  for (int32_t i = 0; i < n; ++i) {
    n_seq = std::max(n_seq, kv.tok_seq[i] + 1);
    max_rows_ = std::max(max_rows_, kv.tok_pos[i] + 1);
  }
  stride_ = std::max(1, ((max_rows_ - 1) >> kv.page_shift) + 1);
  // Layout: tok_seq[n], tok_pos[n], pages[n_seq][stride_], all 4-byte values.
  const size_t bytes = (2 * static_cast<size_t>(n) + static_cast<size_t>(n_seq) * stride_) * 4;
  if (!staging_ || staging_->size() < bytes) staging_ = std::make_unique<PinnedBuffer>(bytes * 2);
  if (device_bytes_ < bytes) {
    if (device_) pool_.free(device_);
    device_ = pool_.alloc(bytes * 2, 256);
    device_bytes_ = bytes * 2;
  }
  auto* host = static_cast<uint32_t*>(staging_->data());
  std::memcpy(host, kv.tok_seq, static_cast<size_t>(n) * 4);
  std::memcpy(host + n, kv.tok_pos, static_cast<size_t>(n) * 4);
  uint32_t* pages = host + 2 * n;
  std::fill(pages, pages + static_cast<size_t>(n_seq) * stride_, 0u);
  // Pages each sequence of the batch reaches (only those are known to exist).
  std::vector<int32_t> need(static_cast<size_t>(n_seq), 0);
  for (int32_t i = 0; i < n; ++i) {
    int32_t& k = need[static_cast<size_t>(kv.tok_seq[i])];
    k = std::max(k, (kv.tok_pos[i] >> kv.page_shift) + 1);
  }
  for (int32_t q = 0; q < n_seq; ++q)
    if (need[static_cast<size_t>(q)] > 0)
      std::memcpy(pages + static_cast<size_t>(q) * stride_, kv.seq_pages[q],
                  static_cast<size_t>(need[static_cast<size_t>(q)]) * 4);
  V4_CUDA_CHECK(cudaMemcpyAsync(device_, host, bytes, cudaMemcpyHostToDevice, s));
  uploaded_ = &kv;
}

DevKvView KvMirror::view(const KvView& kv, int kc, int vc, cudaStream_t s) {
  DevKvView d;
  d.page_shift = kv.page_shift;
  d.slot_bytes = kv.slot_bytes;
  const KvComponentView& k = kv.comps[kc];
  const KvComponentView& v = kv.comps[vc];
  d.k = {k.base, k.row_bytes, k.type, group_slots(kv, k.group, s)};
  d.v = {v.base, v.row_bytes, v.type, v.group == k.group ? d.k.slots : group_slots(kv, v.group, s)};
  const auto* dev = static_cast<const uint32_t*>(device_);
  d.tok_seq = reinterpret_cast<const int32_t*>(dev);
  d.tok_pos = reinterpret_cast<const int32_t*>(dev + kv.n_tokens);
  d.pages = dev + 2 * kv.n_tokens;
  d.pages_stride = stride_;
  d.n_tokens = kv.n_tokens;
  return d;
}

}  // namespace v4::cuda
