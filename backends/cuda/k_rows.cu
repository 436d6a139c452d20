// get_rows (embedding lookup: rows of any weight type picked by I32 ids, to f32) and copy
// (any readable type to F32/F16/BF16/E4M3). One block per output row; threads stride the row.
#include "backends/cuda/kernel_common.cuh"

namespace v4::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void get_rows_kernel(DevTensor table, DevTensor ids, DevTensor out) {
  const int64_t i = blockIdx.x;
  const int32_t id = static_cast<const int32_t*>(ids.data)[i];
  const auto* src =
      static_cast<const uint8_t*>(table.data) + static_cast<int64_t>(id) * table.nb[1];
  float* dst = frow_mut(out, i);
  for (int64_t j = threadIdx.x; j < out.ne[0]; j += blockDim.x)
    dst[j] = dm::row_value(table.type, src, j);
}

__global__ void copy_kernel(DevTensor x, DevTensor out) {
  const int64_t i = blockIdx.x;
  const auto* src = static_cast<const uint8_t*>(x.data) + i * x.nb[1];
  auto* dst = static_cast<uint8_t*>(out.data) + i * out.nb[1];
  for (int64_t j = threadIdx.x; j < out.ne[0]; j += blockDim.x)
    store_as(out.type, dst, j, dm::row_value(x.type, src, j));
}

}  // namespace

bool copy_dst_supported(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F8_E4M3;
}

void launch_get_rows(const DevTensor& table, const DevTensor& ids, const DevTensor& out,
                     cudaStream_t s) {
  if (out.ne[1] == 0) return;
  get_rows_kernel<<<static_cast<unsigned>(out.ne[1]), kThreads, 0, s>>>(table, ids, out);
  check_launch("get_rows");
}

void launch_copy(const DevTensor& x, const DevTensor& out, cudaStream_t s) {
  if (out.n_rows() == 0) return;
  copy_kernel<<<static_cast<unsigned>(out.n_rows()), kThreads, 0, s>>>(x, out);
  check_launch("copy");
}

}  // namespace v4::cuda
