#include "lib/core/quant/repack.h"

#include <cstring>

#include "lib/core/dtype.h"
#include "lib/core/quant/quant.h"

namespace v4 {
namespace {

void group_to_r4(const BlockQ4_0* in, uint8_t* out) {
  for (int b = 0; b < 4; ++b) std::memcpy(out + 2 * b, &in[b].d, 2);
  for (int b = 0; b < 4; ++b) std::memcpy(out + 8 + 16 * b, in[b].qs, 16);
}
void group_from_r4(const uint8_t* in, BlockQ4_0* out) {
  for (int b = 0; b < 4; ++b) std::memcpy(&out[b].d, in + 2 * b, 2);
  for (int b = 0; b < 4; ++b) std::memcpy(out[b].qs, in + 8 + 16 * b, 16);
}
void group_to_r4(const BlockQ8_0* in, uint8_t* out) {
  for (int b = 0; b < 4; ++b) std::memcpy(out + 2 * b, &in[b].d, 2);
  for (int b = 0; b < 4; ++b) {
    std::memcpy(out + 8 + 16 * b, in[b].qs, 16);
    std::memcpy(out + 8 + 64 + 16 * b, in[b].qs + 16, 16);
  }
}
void group_from_r4(const uint8_t* in, BlockQ8_0* out) {
  for (int b = 0; b < 4; ++b) std::memcpy(&out[b].d, in + 2 * b, 2);
  for (int b = 0; b < 4; ++b) {
    std::memcpy(out[b].qs, in + 8 + 16 * b, 16);
    std::memcpy(out[b].qs + 16, in + 8 + 64 + 16 * b, 16);
  }
}

template <class Block>
void repack(void* data, int64_t n_groups) {
  auto* p = static_cast<uint8_t*>(data);
  Block tmp[4];
  for (int64_t g = 0; g < n_groups; ++g, p += sizeof tmp) {
    std::memcpy(tmp, p, sizeof tmp);
    group_to_r4(tmp, p);
  }
}

template <class Block>
void dequantize_r4(const void* src, float* dst, int64_t n, void (*deq)(const void*, float*, int64_t)) {
  const auto* p = static_cast<const uint8_t*>(src);
  Block tmp[4];
  for (int64_t g = 0; g < n / 128; ++g, p += sizeof tmp) {
    group_from_r4(p, tmp);
    deq(tmp, dst + g * 128, 128);
  }
}

template <class Block>
void quantize_r4(const float* src, void* dst, int64_t n, void (*q)(const float*, void*, int64_t)) {
  auto* p = static_cast<uint8_t*>(dst);
  Block tmp[4];
  for (int64_t g = 0; g < n / 128; ++g, p += sizeof tmp) {
    q(src + g * 128, tmp, 128);
    group_to_r4(tmp, p);
  }
}

}  // namespace

static_assert(sizeof(BlockQ4_0) * 4 == 72 && sizeof(BlockQ8_0) * 4 == 136);

void repack_q4_0_to_r4(void* data, int64_t n_groups) { repack<BlockQ4_0>(data, n_groups); }
void repack_q8_0_to_r4(void* data, int64_t n_groups) { repack<BlockQ8_0>(data, n_groups); }

void dequantize_q4_0_r4(const void* src, float* dst, int64_t n) {
  dequantize_r4<BlockQ4_0>(src, dst, n, traits(DType::Q4_0).to_f32);
}
void quantize_q4_0_r4(const float* src, void* dst, int64_t n) {
  quantize_r4<BlockQ4_0>(src, dst, n, traits(DType::Q4_0).from_f32);
}
void dequantize_q8_0_r4(const void* src, float* dst, int64_t n) {
  dequantize_r4<BlockQ8_0>(src, dst, n, traits(DType::Q8_0).to_f32);
}
void quantize_q8_0_r4(const float* src, void* dst, int64_t n) {
  quantize_r4<BlockQ8_0>(src, dst, n, traits(DType::Q8_0).from_f32);
}

}  // namespace v4
