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

// Sixteen blocks <-> one X16 super-group (layouts in repack.h).
void group_to_x16(const BlockQ4_0* in, uint8_t* out) {
  for (int j = 0; j < 16; ++j) std::memcpy(out + 2 * j, &in[j].d, 2);
  for (int t = 0; t < 4; ++t)
    for (int j = 0; j < 16; ++j) std::memcpy(out + 32 + 64 * t + 4 * j, in[j].qs + 4 * t, 4);
}
void group_from_x16(const uint8_t* in, BlockQ4_0* out) {
  for (int j = 0; j < 16; ++j) std::memcpy(&out[j].d, in + 2 * j, 2);
  for (int t = 0; t < 4; ++t)
    for (int j = 0; j < 16; ++j) std::memcpy(out[j].qs + 4 * t, in + 32 + 64 * t + 4 * j, 4);
}
void group_to_x16(const BlockQ8_0* in, uint8_t* out) {
  for (int j = 0; j < 16; ++j) std::memcpy(out + 2 * j, &in[j].d, 2);
  for (int s = 0; s < 8; ++s)
    for (int j = 0; j < 16; ++j)
      for (int i = 0; i < 4; ++i)
        out[32 + 64 * s + 4 * j + i] = static_cast<uint8_t>(in[j].qs[x16_step_start(s) + i] ^ 0x80);
}
void group_from_x16(const uint8_t* in, BlockQ8_0* out) {
  for (int j = 0; j < 16; ++j) std::memcpy(&out[j].d, in + 2 * j, 2);
  for (int s = 0; s < 8; ++s)
    for (int j = 0; j < 16; ++j)
      for (int i = 0; i < 4; ++i)
        out[j].qs[x16_step_start(s) + i] = static_cast<int8_t>(in[32 + 64 * s + 4 * j + i] ^ 0x80);
}

// N blocks per group, converted by group_to_r4 (N = 4) or group_to_x16 (N = 16).
template <class Block, int N>
void to_group(const Block* in, uint8_t* out) {
  if constexpr (N == 4) group_to_r4(in, out);
  else group_to_x16(in, out);
}
template <class Block, int N>
void from_group(const uint8_t* in, Block* out) {
  if constexpr (N == 4) group_from_r4(in, out);
  else group_from_x16(in, out);
}

template <class Block, int N>
void repack(void* data, int64_t n_groups) {
  auto* p = static_cast<uint8_t*>(data);
  Block tmp[N];
  for (int64_t g = 0; g < n_groups; ++g, p += sizeof tmp) {
    std::memcpy(tmp, p, sizeof tmp);
    to_group<Block, N>(tmp, p);
  }
}

template <class Block, int N>
void dequantize_grouped(const void* src, float* dst, int64_t n, void (*deq)(const void*, float*, int64_t)) {
  const auto* p = static_cast<const uint8_t*>(src);
  Block tmp[N];
  for (int64_t g = 0; g < n / (32 * N); ++g, p += sizeof tmp) {
    from_group<Block, N>(p, tmp);
    deq(tmp, dst + g * 32 * N, 32 * N);
  }
}

template <class Block, int N>
void quantize_grouped(const float* src, void* dst, int64_t n, void (*q)(const float*, void*, int64_t)) {
  auto* p = static_cast<uint8_t*>(dst);
  Block tmp[N];
  for (int64_t g = 0; g < n / (32 * N); ++g, p += sizeof tmp) {
    q(src + g * 32 * N, tmp, 32 * N);
    to_group<Block, N>(tmp, p);
  }
}

}  // namespace

static_assert(sizeof(BlockQ4_0) * 4 == 72 && sizeof(BlockQ8_0) * 4 == 136);
static_assert(sizeof(BlockQ4_0) * 16 == 288 && sizeof(BlockQ8_0) * 16 == 544);

void repack_q4_0_to_r4(void* data, int64_t n_groups) { repack<BlockQ4_0, 4>(data, n_groups); }
void repack_q8_0_to_r4(void* data, int64_t n_groups) { repack<BlockQ8_0, 4>(data, n_groups); }
void repack_q4_0_to_x16(void* data, int64_t n_groups) { repack<BlockQ4_0, 16>(data, n_groups); }
void repack_q8_0_to_x16(void* data, int64_t n_groups) { repack<BlockQ8_0, 16>(data, n_groups); }

void dequantize_q4_0_r4(const void* src, float* dst, int64_t n) {
  dequantize_grouped<BlockQ4_0, 4>(src, dst, n, traits(DType::Q4_0).to_f32);
}
void quantize_q4_0_r4(const float* src, void* dst, int64_t n) {
  quantize_grouped<BlockQ4_0, 4>(src, dst, n, traits(DType::Q4_0).from_f32);
}
void dequantize_q8_0_r4(const void* src, float* dst, int64_t n) {
  dequantize_grouped<BlockQ8_0, 4>(src, dst, n, traits(DType::Q8_0).to_f32);
}
void quantize_q8_0_r4(const float* src, void* dst, int64_t n) {
  quantize_grouped<BlockQ8_0, 4>(src, dst, n, traits(DType::Q8_0).from_f32);
}
void dequantize_q4_0_x16(const void* src, float* dst, int64_t n) {
  dequantize_grouped<BlockQ4_0, 16>(src, dst, n, traits(DType::Q4_0).to_f32);
}
void quantize_q4_0_x16(const float* src, void* dst, int64_t n) {
  quantize_grouped<BlockQ4_0, 16>(src, dst, n, traits(DType::Q4_0).from_f32);
}
void dequantize_q8_0_x16(const void* src, float* dst, int64_t n) {
  dequantize_grouped<BlockQ8_0, 16>(src, dst, n, traits(DType::Q8_0).to_f32);
}
void quantize_q8_0_x16(const float* src, void* dst, int64_t n) {
  quantize_grouped<BlockQ8_0, 16>(src, dst, n, traits(DType::Q8_0).from_f32);
}

}  // namespace v4
