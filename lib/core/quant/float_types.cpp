// Plain float element types (F32, F16, BF16, FP8 E4M3/E5M2) and the FP8 weight block
// FP8_B32. Every conversion rounds to nearest even (lib/core/float_conv.h); F16 and BF16
// match ggml's ggml_fp32_to_fp16_row / ggml_fp32_to_bf16_row bit for bit.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "lib/core/float_conv.h"
#include "lib/core/quant/quant.h"

namespace v4::quant {

void dequantize_f32(const void* src, float* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * 4);
}
void quantize_f32(const float* src, void* dst, int64_t n) {
  std::memcpy(dst, src, static_cast<size_t>(n) * 4);
}

void dequantize_f16(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
}
void quantize_f16(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
}

void dequantize_bf16(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
}
void quantize_bf16(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
}

void dequantize_e4m3(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp8_e4m3_to_f32(s[i]);
}
void quantize_e4m3(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_fp8_e4m3(src[i]);
}

void dequantize_e5m2(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp8_e5m2_to_f32(s[i]);
}
void quantize_e5m2(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_fp8_e5m2(src[i]);
}

// FP8_B32: x = d * e4m3(q), d = bf16(max|x| / 448); the values are divided by the stored
// (bf16-rounded) d, so the largest one lands at most one E4M3 step from 448 and never
// saturates by more than rounding.
void dequantize_fp8_b32(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockFP8_B32*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float d = bf16_to_f32(b[i].d);
    for (int j = 0; j < kQK; ++j) dst[i * kQK + j] = d * fp8_e4m3_to_f32(b[i].qs[j]);
  }
}
void quantize_fp8_b32(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockFP8_B32*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    b[i].d = f32_to_bf16(amax / 448.0f);
    const float d = bf16_to_f32(b[i].d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = f32_to_fp8_e4m3(x[j] * id);
  }
}

// FP8_KV: s = 2^ceil(log2(max|x| / 448)), stored as its biased exponent, so dividing by s
// and multiplying back are exact and the largest value never exceeds 448. E4M3 is a
// floating-point format, so a power-of-two scale costs no relative precision; it only
// moves the exponent window (DeepSeek's FP8 KV pages make the same choice).
void dequantize_fp8_kv(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockFP8_KV*>(src);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float s = std::ldexp(1.0f, static_cast<int>(b[i].e) - 127);
    for (int j = 0; j < kQK; ++j) dst[i * kQK + j] = s * fp8_e4m3_to_f32(b[i].qs[j]);
  }
}
void quantize_fp8_kv(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockFP8_KV*>(dst);
  for (int64_t i = 0; i < n / kQK; ++i) {
    const float* x = src + i * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    int e = -127;  // an all-zero block keeps the smallest scale
    if (amax > 0.0f && std::isfinite(amax)) {
      int exp2;
      const float m = std::frexp(amax / 448.0f, &exp2);  // amax/448 = m * 2^exp2, m in [0.5, 1)
      e = m == 0.5f ? exp2 - 1 : exp2;                    // ceil(log2(amax / 448))
      e = std::clamp(e, -127, 127);
    }
    b[i].e = static_cast<uint8_t>(e + 127);
    for (int j = 0; j < kQK; ++j) b[i].qs[j] = f32_to_fp8_e4m3(std::ldexp(x[j], -e));
  }
}

}  // namespace v4::quant
