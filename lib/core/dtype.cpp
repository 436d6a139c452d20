#include "lib/core/dtype.h"

#include <cassert>
#include <cctype>
#include <cmath>
#include <cstring>
#include <string>

#include "lib/core/float_conv.h"

namespace v4 {
namespace {

void f32_to_f32(const void* src, float* dst, int64_t n) { std::memcpy(dst, src, n * 4); }
void f32_from_f32(const float* src, void* dst, int64_t n) { std::memcpy(dst, src, n * 4); }

void f16_to(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
}
void f16_from(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
}
void bf16_to(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint16_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
}
void bf16_from(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint16_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
}
void e4m3_to(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp8_e4m3_to_f32(s[i]);
}
void e4m3_from(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_fp8_e4m3(src[i]);
}
void e5m2_to(const void* src, float* dst, int64_t n) {
  const auto* s = static_cast<const uint8_t*>(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = fp8_e5m2_to_f32(s[i]);
}
void e5m2_from(const float* src, void* dst, int64_t n) {
  auto* d = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n; ++i) d[i] = f32_to_fp8_e5m2(src[i]);
}

void q8_0_to(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ8_0*>(src);
  for (int64_t i = 0; i < n / 32; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < 32; ++j) dst[i * 32 + j] = d * static_cast<float>(b[i].qs[j]);
  }
}
// Same rounding as GGUF's reference quantiser: d = amax / 127, q = round(x / d).
void q8_0_from(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ8_0*>(dst);
  for (int64_t i = 0; i < n / 32; ++i) {
    const float* x = src + i * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    for (int j = 0; j < 32; ++j) b[i].qs[j] = static_cast<int8_t>(std::lround(x[j] * id));
  }
}

void q4_0_to(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockQ4_0*>(src);
  for (int64_t i = 0; i < n / 32; ++i) {
    const float d = f16_to_f32(b[i].d);
    for (int j = 0; j < 16; ++j) {
      dst[i * 32 + j] = d * static_cast<float>((b[i].qs[j] & 0x0f) - 8);
      dst[i * 32 + j + 16] = d * static_cast<float>((b[i].qs[j] >> 4) - 8);
    }
  }
}
// GGUF's reference: the signed value of largest magnitude maps to -8.
void q4_0_from(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockQ4_0*>(dst);
  for (int64_t i = 0; i < n / 32; ++i) {
    const float* x = src + i * 32;
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < 32; ++j) {
      if (std::fabs(x[j]) > amax) {
        amax = std::fabs(x[j]);
        max = x[j];
      }
    }
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    b[i].d = f32_to_f16(d);
    for (int j = 0; j < 16; ++j) {
      const int lo = std::min(15, static_cast<int>(x[j] * id + 8.5f));
      const int hi = std::min(15, static_cast<int>(x[j + 16] * id + 8.5f));
      b[i].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void fp8b_to(const void* src, float* dst, int64_t n) {
  const auto* b = static_cast<const BlockFP8_B32*>(src);
  for (int64_t i = 0; i < n / 32; ++i) {
    const float d = bf16_to_f32(b[i].d);
    for (int j = 0; j < 32; ++j) dst[i * 32 + j] = d * fp8_e4m3_to_f32(b[i].qs[j]);
  }
}
void fp8b_from(const float* src, void* dst, int64_t n) {
  auto* b = static_cast<BlockFP8_B32*>(dst);
  for (int64_t i = 0; i < n / 32; ++i) {
    const float* x = src + i * 32;
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
    b[i].d = f32_to_bf16(amax / 448.0f);
    const float d = bf16_to_f32(b[i].d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) b[i].qs[j] = f32_to_fp8_e4m3(x[j] * id);
  }
}

const TypeTraits kTypes[] = {
    {DType::F32, "F32", 1, 4, false, f32_to_f32, f32_from_f32},
    {DType::F16, "F16", 1, 2, false, f16_to, f16_from},
    {DType::Q4_0, "Q4_0", 32, 18, true, q4_0_to, q4_0_from},
    {DType::Q4_1, "Q4_1", 32, 20, true, nullptr, nullptr},
    {DType::Q5_0, "Q5_0", 32, 22, true, nullptr, nullptr},
    {DType::Q5_1, "Q5_1", 32, 24, true, nullptr, nullptr},
    {DType::Q8_0, "Q8_0", 32, 34, true, q8_0_to, q8_0_from},
    {DType::Q8_1, "Q8_1", 32, 36, true, nullptr, nullptr},
    {DType::Q2_K, "Q2_K", 256, 84, true, nullptr, nullptr},
    {DType::Q3_K, "Q3_K", 256, 110, true, nullptr, nullptr},
    {DType::Q4_K, "Q4_K", 256, 144, true, nullptr, nullptr},
    {DType::Q5_K, "Q5_K", 256, 176, true, nullptr, nullptr},
    {DType::Q6_K, "Q6_K", 256, 210, true, nullptr, nullptr},
    {DType::Q8_K, "Q8_K", 256, 292, true, nullptr, nullptr},
    {DType::IQ2_XXS, "IQ2_XXS", 256, 66, true, nullptr, nullptr},
    {DType::IQ2_XS, "IQ2_XS", 256, 74, true, nullptr, nullptr},
    {DType::IQ3_XXS, "IQ3_XXS", 256, 98, true, nullptr, nullptr},
    {DType::IQ1_S, "IQ1_S", 256, 50, true, nullptr, nullptr},
    {DType::IQ4_NL, "IQ4_NL", 32, 18, true, nullptr, nullptr},
    {DType::IQ3_S, "IQ3_S", 256, 110, true, nullptr, nullptr},
    {DType::IQ2_S, "IQ2_S", 256, 82, true, nullptr, nullptr},
    {DType::IQ4_XS, "IQ4_XS", 256, 136, true, nullptr, nullptr},
    {DType::I8, "I8", 1, 1, false, nullptr, nullptr},
    {DType::I16, "I16", 1, 2, false, nullptr, nullptr},
    {DType::I32, "I32", 1, 4, false, nullptr, nullptr},
    {DType::I64, "I64", 1, 8, false, nullptr, nullptr},
    {DType::F64, "F64", 1, 8, false, nullptr, nullptr},
    {DType::IQ1_M, "IQ1_M", 256, 56, true, nullptr, nullptr},
    {DType::BF16, "BF16", 1, 2, false, bf16_to, bf16_from},
    {DType::TQ1_0, "TQ1_0", 256, 54, true, nullptr, nullptr},
    {DType::TQ2_0, "TQ2_0", 256, 66, true, nullptr, nullptr},
    {DType::MXFP4, "MXFP4", 32, 17, true, nullptr, nullptr},
    {DType::F8_E4M3, "F8_E4M3", 1, 1, false, e4m3_to, e4m3_from},
    {DType::F8_E5M2, "F8_E5M2", 1, 1, false, e5m2_to, e5m2_from},
    {DType::FP8_B32, "FP8_B32", 32, 34, true, fp8b_to, fp8b_from},
};

}  // namespace

const TypeTraits* find_type(uint32_t id) {
  for (const TypeTraits& t : kTypes)
    if (static_cast<uint32_t>(t.type) == id) return &t;
  return nullptr;
}

const TypeTraits& traits(DType t) {
  const TypeTraits* tt = find_type(static_cast<uint32_t>(t));
  assert(tt != nullptr);
  return *tt;
}

const char* type_name(DType t) {
  const TypeTraits* tt = find_type(static_cast<uint32_t>(t));
  return tt ? tt->name : "unknown";
}

bool parse_type_name(std::string_view name, DType* out) {
  for (const TypeTraits& t : kTypes) {
    std::string_view n(t.name);
    if (n.size() != name.size()) continue;
    bool same = true;
    for (size_t i = 0; i < n.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(n[i])) ==
             std::toupper(static_cast<unsigned char>(name[i]));
    if (same) {
      *out = t.type;
      return true;
    }
  }
  return false;
}

}  // namespace v4
