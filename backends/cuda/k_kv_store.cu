// kv_store: converts each batch token's f32 K and V rows into the cache's row type and writes
// them at the token's (sequence, position) row, found through the page table. One block per
// token; threads stride the row.
#include "backends/cuda/kernel_common.cuh"
#include "lib/core/device_math/kv_rows.h"

namespace v4::cuda {
namespace {

__global__ void kv_store_kernel(DevTensor k, DevTensor v, DevKvView kv) {
  const int32_t i = blockIdx.x;
  const uint32_t* pages = kv.pages + static_cast<int64_t>(kv.tok_seq[i]) * kv.pages_stride;
  const int32_t pos = kv.tok_pos[i];
  auto* krow = const_cast<uint8_t*>(dm::kv_row_ptr(kv.k.base, kv.slot_bytes, kv.k.row_bytes, pages,
                                                   kv.k.slots, kv.page_shift, pos));
  auto* vrow = const_cast<uint8_t*>(dm::kv_row_ptr(kv.v.base, kv.slot_bytes, kv.v.row_bytes, pages,
                                                   kv.v.slots, kv.page_shift, pos));
  for (int64_t j = threadIdx.x; j < k.ne[0]; j += blockDim.x)
    store_as(kv.k.type, krow, j, frow(k, i)[j]);
  for (int64_t j = threadIdx.x; j < v.ne[0]; j += blockDim.x)
    store_as(kv.v.type, vrow, j, frow(v, i)[j]);
}

}  // namespace

bool kv_type_supported(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

void launch_kv_store(const DevTensor& k, const DevTensor& v, const DevKvView& kv, cudaStream_t s) {
  if (kv.n_tokens == 0) return;
  kv_store_kernel<<<static_cast<unsigned>(kv.n_tokens), 128, 0, s>>>(k, v, kv);
  check_launch("kv_store");
}

}  // namespace v4::cuda
