// The 32-value block types Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: GGUF layouts and ggml's
// reference quantisers, reproduced bit for bit. The details that decide ties matter and are
// copied exactly: the scale is computed in F32 and the values are multiplied by its F32
// inverse (not divided by it, and not by the F16-rounded scale that is stored); Q8_0 rounds
// with roundf (ties away from zero); the others truncate x*id + 8.5 / 16.5 / 0.5 and clamp
// to the top level. Q4_0/Q5_0 take the signed value of largest magnitude (the first one on
// ties) as the one that maps to the lowest level. Inputs must be finite.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "lib/core/float_conv.h"
#include "lib/core/quant/quant.h"

#if defined(__clang__)
// No fused multiply-add: the reference (and ggml's dequantisers) round each operation.
#pragma STDC FP_CONTRACT OFF
#endif

namespace v4::quant {
namespace {

// The signed value of largest magnitude; the first one wins ties.
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < kQK; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void min_max(const float* x, float* mn, float* mx) {
  float lo = FLT_MAX, hi = -FLT_MAX;
  for (int j = 0; j < kQK; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
  *mn = lo;
  *mx = hi;
}

// Truncation toward zero as C's (int) conversion, then the top level as a ceiling.
inline uint8_t trunc_level(float v, int top) {
  const int q = static_cast<int>(v);
  return static_cast<uint8_t>(q < top ? q : top);
}

// Packs 5-bit levels: low nibbles as Q4_0, the 5th bits into qh (bit j = element j).
void pack5(const uint8_t* q, uint8_t* qs, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    qs[j] = static_cast<uint8_t>((q[j] & 0x0F) | ((q[j + kQK / 2] & 0x0F) << 4));
    qh |= static_cast<uint32_t>((q[j] & 0x10u) >> 4) << j;
    qh |= static_cast<uint32_t>((q[j + kQK / 2] & 0x10u) >> 4) << (j + kQK / 2);
  }
  const uint8_t le[4] = {static_cast<uint8_t>(qh), static_cast<uint8_t>(qh >> 8),
                         static_cast<uint8_t>(qh >> 16), static_cast<uint8_t>(qh >> 24)};
  std::memcpy(qh_bytes, le, 4);
}

// The 5-bit level of element j (0..31) of a Q5_0/Q5_1 block.
inline int level5(const uint8_t* qs, const uint8_t* qh_bytes, int j) {
  const uint32_t qh =
      static_cast<uint32_t>(qh_bytes[0]) | (static_cast<uint32_t>(qh_bytes[1]) << 8) |
      (static_cast<uint32_t>(qh_bytes[2]) << 16) | (static_cast<uint32_t>(qh_bytes[3]) << 24);
  const int lo = j < kQK / 2 ? (qs[j] & 0x0F) : (qs[j - kQK / 2] >> 4);
  return lo | static_cast<int>(((qh >> j) & 1u) << 4);
}

}  // namespace

// ---- Q8_0: x = d * q, d = amax / 127 ---------------------------------------------------

void dequantize_q8_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j) dst[i * kQK + j] = static_cast<float>(b[i].qs[j]) * d;
  }
}

void quantize_q8_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float a = std::fabs(x[j]);
      amax = amax > a ? amax : a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  }
}

// ---- Q4_0: x = d * (q - 8), d = max / -8 -----------------------------------------------

void dequantize_q4_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[i * kQK + j] = static_cast<float>((b[i].qs[j] & 0x0F) - 8) * d;
      dst[i * kQK + j + kQK / 2] = static_cast<float>((b[i].qs[j] >> 4) - 8) * d;
    }
  }
}

void quantize_q4_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    const float d = signed_absmax(x) / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t lo = trunc_level(x[j] * id + 8.5f, 15);
      const uint8_t hi = trunc_level(x[j + kQK / 2] * id + 8.5f, 15);
      b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// ---- Q4_1: x = d * q + m, d = (max - min) / 15, m = min --------------------------------

void dequantize_q4_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = f16_to_f32(b[i].d);
    const float m = f16_to_f32(b[i].m);
    for (int j = 0; j < kQK / 2; ++j) {
      dst[i * kQK + j] = static_cast<float>(b[i].qs[j] & 0x0F) * d + m;
      dst[i * kQK + j + kQK / 2] = static_cast<float>(b[i].qs[j] >> 4) * d + m;
    }
  }
}

void quantize_q4_1(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float mn, mx;
    min_max(x, &mn, &mx);
    const float d = (mx - mn) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    b[i].m = f32_to_f16(mn);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t lo = trunc_level((x[j] - mn) * id + 0.5f, 15);
      const uint8_t hi = trunc_level((x[j + kQK / 2] - mn) * id + 0.5f, 15);
      b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// ---- Q5_0: x = d * (q - 16), d = max / -16 ---------------------------------------------

void dequantize_q5_0(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ5_0*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j)
      dst[i * kQK + j] = static_cast<float>(level5(b[i].qs, b[i].qh, j) - 16) * d;
  }
}

void quantize_q5_0(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_0*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    const float d = signed_absmax(x) / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    uint8_t q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = trunc_level(x[j] * id + 16.5f, 31);
    pack5(q, b[i].qs, b[i].qh);
  }
}

// ---- Q5_1: x = d * q + m, d = (max - min) / 31, m = min --------------------------------

void dequantize_q5_1(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ5_1*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = f16_to_f32(b[i].d);
    const float m = f16_to_f32(b[i].m);
    for (int j = 0; j < kQK; ++j)
      dst[i * kQK + j] = static_cast<float>(level5(b[i].qs, b[i].qh, j)) * d + m;
  }
}

void quantize_q5_1(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ5_1*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float mn, mx;
    min_max(x, &mn, &mx);
    const float d = (mx - mn) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    b[i].m = f32_to_f16(mn);
    uint8_t q[kQK];
    // ggml has no clamp here ((x - min) * id + 0.5 < 32 always); the ceiling only guards
    // against a level that would spill into the 6th bit.
    for (int j = 0; j < kQK; ++j) q[j] = trunc_level((x[j] - mn) * id + 0.5f, 31);
    pack5(q, b[i].qs, b[i].qh);
  }
}

}  // namespace v4::quant
