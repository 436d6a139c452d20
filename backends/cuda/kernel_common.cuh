// Helpers shared by the .cu kernels: row addressing and warp/block reductions.
#pragma once

#include <cstdint>

#include "backends/cuda/kernels.h"

namespace v4::cuda {

constexpr int kWarp = 32;

__device__ __forceinline__ const float* frow(const DevTensor& t, int64_t r) {
  return reinterpret_cast<const float*>(static_cast<const uint8_t*>(t.data) + r * t.nb[1]);
}
__device__ __forceinline__ float* frow_mut(const DevTensor& t, int64_t r) {
  return reinterpret_cast<float*>(static_cast<uint8_t*>(t.data) + r * t.nb[1]);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = kWarp / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum (or max) over the whole block; every thread gets the result. blockDim.x is a multiple
// of 32 and at most 1024. `scratch` holds 32 floats.
template <bool kMax>
__device__ float block_reduce(float v, float* scratch) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const int n_warps = blockDim.x / kWarp;
  v = kMax ? warp_max(v) : warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous reduction
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float r = lane < n_warps ? scratch[lane] : (kMax ? -INFINITY : 0.0f);
  return kMax ? warp_max(r) : warp_sum(r);
}

}  // namespace v4::cuda

#include <type_traits>

#include "lib/core/device_math/block_values.h"

namespace v4::cuda {

template <DType T>
using TypeTag = std::integral_constant<DType, T>;

// Calls f(TypeTag<t>{}) so a kernel is instantiated per weight type (the element decoding
// then compiles to straight-line code for that type).
template <class F>
void with_weight_type(DType t, F&& f) {
  switch (t) {
    case DType::F32:
      f(TypeTag<DType::F32>{});
      break;
    case DType::F16:
      f(TypeTag<DType::F16>{});
      break;
    case DType::BF16:
      f(TypeTag<DType::BF16>{});
      break;
    case DType::F8_E4M3:
      f(TypeTag<DType::F8_E4M3>{});
      break;
    case DType::Q8_0:
      f(TypeTag<DType::Q8_0>{});
      break;
    case DType::Q4_0:
      f(TypeTag<DType::Q4_0>{});
      break;
    case DType::Q4_1:
      f(TypeTag<DType::Q4_1>{});
      break;
    case DType::Q5_0:
      f(TypeTag<DType::Q5_0>{});
      break;
    case DType::Q5_1:
      f(TypeTag<DType::Q5_1>{});
      break;
    case DType::Q4_K:
      f(TypeTag<DType::Q4_K>{});
      break;
    case DType::Q5_K:
      f(TypeTag<DType::Q5_K>{});
      break;
    case DType::Q6_K:
      f(TypeTag<DType::Q6_K>{});
      break;
    case DType::FP8_B32:
      f(TypeTag<DType::FP8_B32>{});
      break;
    // The CPU's regrouped layouts, which read-mode weights have (decoded element by element).
    case DType::Q4_0_R4:
      f(TypeTag<DType::Q4_0_R4>{});
      break;
    case DType::Q8_0_R4:
      f(TypeTag<DType::Q8_0_R4>{});
      break;
    case DType::Q4_0_X16:
      f(TypeTag<DType::Q4_0_X16>{});
      break;
    case DType::Q8_0_X16:
      f(TypeTag<DType::Q8_0_X16>{});
      break;
    default:
      fail_weight_type(t);
  }
}

// Stores v as element j of a row of type t (F32, F16, BF16 or E4M3; others are never asked).
__device__ __forceinline__ void store_as(DType t, uint8_t* row, int64_t j, float v) {
  switch (t) {
    case DType::F32:
      reinterpret_cast<float*>(row)[j] = v;
      break;
    case DType::F16:
      reinterpret_cast<uint16_t*>(row)[j] = f32_to_f16(v);
      break;
    case DType::BF16:
      reinterpret_cast<uint16_t*>(row)[j] = f32_to_bf16(v);
      break;
    case DType::F8_E4M3:
      row[j] = f32_to_fp8_e4m3(v);
      break;
    default:
      break;
  }
}

}  // namespace v4::cuda
