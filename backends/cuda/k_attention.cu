// Paged attention, split-K ("flash decoding"): the rows 0..pos of a token's sequence are cut
// into n_splits chunks; block (task, split) walks its chunk through the page table with four
// warps (one K/V row per warp at a time, lanes across the head), each warp keeping an online
// softmax state. The warps merge in shared memory and the block writes (m, l, acc) for its
// chunk; a second kernel merges the chunks of each (token, head) and divides by l. The state
// and merge are lib/core/device_math/softmax_merge.h, unit-tested on the CPU.
#include "backends/cuda/kernel_common.cuh"
#include "lib/core/device_math/kv_rows.h"
#include "lib/core/device_math/softmax_merge.h"

namespace v4::cuda {
namespace {

constexpr int kMaxHeadDim = 256;
constexpr int kPerLane = kMaxHeadDim / kWarp;  // head elements per lane: lane + 32 i
constexpr int kWarps = 4;
constexpr int32_t kRowsPerSplit = 256;
constexpr int kMaxSplits = 64;

__global__ void attention_part_kernel(DevTensor q, DevKvView kv, int group, float scale,
                                      int32_t chunk, float* partials) {
  __shared__ float s_ml[kWarps][2];
  __shared__ float s_acc[kWarps][kMaxHeadDim];
  const int64_t task = blockIdx.x, hd = q.ne[0], n_head = q.ne[1];
  const int split = blockIdx.y, n_splits = gridDim.y;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int64_t t = task / n_head, h = task % n_head;
  const int32_t pos = kv.tok_pos[t];
  const uint32_t* pages = kv.pages + static_cast<int64_t>(kv.tok_seq[t]) * kv.pages_stride;
  const int64_t off = (h / group) * hd;
  const float* qh = frow(q, task);

  float qv[kPerLane], acc[kPerLane], vv[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) {
    const int64_t e = lane + kWarp * i;
    qv[i] = e < hd ? qh[e] : 0.0f;
    acc[i] = 0.0f;
  }
  dm::SoftmaxPart part;
  const int32_t begin = split * chunk, end = min(begin + chunk, pos + 1);
  for (int32_t j = begin + warp; j < end; j += kWarps) {
    const uint8_t* krow = dm::kv_row_ptr(kv.k.base, kv.slot_bytes, kv.k.row_bytes, pages,
                                         kv.k.slots, kv.page_shift, j);
    const uint8_t* vrow = dm::kv_row_ptr(kv.v.base, kv.slot_bytes, kv.v.row_bytes, pages,
                                         kv.v.slots, kv.page_shift, j);
    float dot = 0.0f;
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) {
      const int64_t e = lane + kWarp * i;
      if (e < hd) dot += qv[i] * dm::row_value(kv.k.type, krow, off + e);
      vv[i] = e < hd ? dm::row_value(kv.v.type, vrow, off + e) : 0.0f;
    }
    dm::softmax_push(part, acc, warp_sum(dot) * scale, vv, kPerLane);
  }

  if (lane == 0) {
    s_ml[warp][0] = part.m;
    s_ml[warp][1] = part.l;
  }
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) s_acc[warp][lane + kWarp * i] = acc[i];
  __syncthreads();
  if (warp != 0) return;
  for (int w = 1; w < kWarps; ++w) {
    dm::SoftmaxPart other;
    other.m = s_ml[w][0];
    other.l = s_ml[w][1];
#pragma unroll
    for (int i = 0; i < kPerLane; ++i) vv[i] = s_acc[w][lane + kWarp * i];
    dm::softmax_merge(part, acc, other, vv, kPerLane);
  }
  float* dst = partials + (task * n_splits + split) * (2 + hd);
  if (lane == 0) {
    dst[0] = part.m;
    dst[1] = part.l;
  }
#pragma unroll
  for (int i = 0; i < kPerLane; ++i)
    if (lane + kWarp * i < hd) dst[2 + lane + kWarp * i] = acc[i];
}

__global__ void attention_combine_kernel(const float* partials, int n_splits, int64_t hd,
                                         int64_t n_head, DevTensor out) {
  const int64_t task = blockIdx.x;
  const int lane = threadIdx.x;
  float acc[kPerLane], other[kPerLane];
#pragma unroll
  for (int i = 0; i < kPerLane; ++i) acc[i] = 0.0f;
  dm::SoftmaxPart part;
  for (int s = 0; s < n_splits; ++s) {
    const float* src = partials + (task * n_splits + s) * (2 + hd);
    dm::SoftmaxPart p;
    p.m = src[0];
    p.l = src[1];
#pragma unroll
    for (int i = 0; i < kPerLane; ++i)
      other[i] = lane + kWarp * i < hd ? src[2 + lane + kWarp * i] : 0.0f;
    dm::softmax_merge(part, acc, p, other, kPerLane);
  }
  dm::softmax_finish(part, acc, other, kPerLane);
  float* dst = frow_mut(out, task / n_head) + (task % n_head) * hd;
#pragma unroll
  for (int i = 0; i < kPerLane; ++i)
    if (lane + kWarp * i < hd) dst[lane + kWarp * i] = other[i];
}

}  // namespace

bool attention_head_dim_supported(int64_t head_dim) { return head_dim <= kMaxHeadDim; }

int attention_splits(int32_t max_rows) {
  const int n = (max_rows + kRowsPerSplit - 1) / kRowsPerSplit;
  return n < 1 ? 1 : (n > kMaxSplits ? kMaxSplits : n);
}

size_t attention_partials_floats(int64_t head_dim, int64_t n_head, int32_t n_tokens, int n_splits) {
  return static_cast<size_t>(n_tokens) * static_cast<size_t>(n_head) *
         static_cast<size_t>(n_splits) * static_cast<size_t>(2 + head_dim);
}

void launch_attention(const DevTensor& q, const DevKvView& kv, int n_kv_head, float scale,
                      int32_t max_rows, float* partials, const DevTensor& out, cudaStream_t s) {
  if (kv.n_tokens == 0) return;
  if (q.ne[0] > kMaxHeadDim) fail_unsupported("attention: head_dim above 256");
  const int n_splits = attention_splits(max_rows);
  const int32_t chunk = (max_rows + n_splits - 1) / n_splits;
  const int group = static_cast<int>(q.ne[1] / n_kv_head);
  const dim3 grid(static_cast<unsigned>(kv.n_tokens * q.ne[1]), static_cast<unsigned>(n_splits));
  attention_part_kernel<<<grid, kWarps * kWarp, 0, s>>>(q, kv, group, scale, chunk, partials);
  check_launch("attention_part");
  attention_combine_kernel<<<grid.x, kWarp, 0, s>>>(partials, n_splits, q.ne[0], q.ne[1], out);
  check_launch("attention_combine");
}

}  // namespace v4::cuda
