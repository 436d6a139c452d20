// Scalar conversions between f32 and the 16- and 8-bit float formats.
// Plain bit manipulation, usable from host code and (through V4_HD) from device
// code, so every backend rounds exactly the same way.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define V4_HD __host__ __device__ inline
#else
#define V4_HD inline
#endif

namespace v4 {

V4_HD uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
V4_HD float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE binary16, round to nearest even, overflow to infinity.
V4_HD uint16_t f32_to_f16(float f) {
  const uint32_t x = f32_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (absx >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflow -> inf
  if (absx < 0x38800000u) {  // subnormal or zero in f16
    // Add 0.5 (as f32) so the FPU does the rounding of the low bits for us.
    const float a = f32_from_bits(absx) + 0.5f;
    return static_cast<uint16_t>(sign | (f32_bits(a) - 0x3f000000u));
  }
  uint32_t mant_odd = (absx >> 13) & 1u;
  uint32_t v = absx + 0xc8000fffu + mant_odd;  // rebias exponent (-112 << 23) and round
  return static_cast<uint16_t>(sign | (v >> 13));
}

V4_HD float f16_to_f32(uint16_t h) {
  const uint32_t sign = (static_cast<uint32_t>(h) & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    if (mant == 0) return f32_from_bits(sign);
    // subnormal: value = mant * 2^-24
    const float v = static_cast<float>(mant) * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (exp == 31) return f32_from_bits(sign | 0x7f800000u | (mant << 13));
  return f32_from_bits(sign | ((exp + 112u) << 23) | (mant << 13));
}

// bfloat16: the top half of an f32, round to nearest even; NaN stays NaN.
V4_HD uint16_t f32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);
  x += 0x7fffu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}
V4_HD float bf16_to_f32(uint16_t b) { return f32_from_bits(static_cast<uint32_t>(b) << 16); }

// OCP FP8 E4M3 ("fn"): bias 7, no infinities, max finite 448, NaN = S.1111.111.
V4_HD float fp8_e4m3_to_f32(uint8_t v) {
  const uint32_t sign = (v & 0x80u) << 24;
  const uint32_t exp = (v >> 3) & 0xfu;
  const uint32_t mant = v & 0x7u;
  if (exp == 0xf && mant == 0x7) return f32_from_bits(sign | 0x7fc00000u);
  if (exp == 0) {
    const float m = static_cast<float>(mant) * 0.001953125f;  // mant * 2^-9
    return sign ? -m : m;
  }
  return f32_from_bits(sign | ((exp + 120u) << 23) | (mant << 20));
}

// Saturating conversion (values beyond 448 clamp to +-448), round to nearest even.
V4_HD uint8_t f32_to_fp8_e4m3(float f) {
  const uint32_t x = f32_bits(f);
  const uint8_t sign = static_cast<uint8_t>((x >> 24) & 0x80u);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) return static_cast<uint8_t>(sign | 0x7f);  // NaN
  const float a = f32_from_bits(absx);
  if (a >= 448.0f) return static_cast<uint8_t>(sign | 0x7e);
  if (a < 0.015625f) {  // below 2^-6: subnormal, step 2^-9
    const float q = a * 512.0f;
    uint32_t m = static_cast<uint32_t>(q);
    const float r = q - static_cast<float>(m);
    if (r > 0.5f || (r == 0.5f && (m & 1u))) ++m;
    return static_cast<uint8_t>(sign | m);  // m == 8 rolls into the first normal
  }
  uint32_t e = (absx >> 23) - 120u;
  uint32_t mant = absx & 0x7fffffu;
  uint32_t m3 = mant >> 20;
  const uint32_t rest = mant & 0xfffffu;
  if (rest > 0x80000u || (rest == 0x80000u && (m3 & 1u))) ++m3;
  if (m3 == 8) { m3 = 0; ++e; }
  if (e > 15 || (e == 15 && m3 == 7)) return static_cast<uint8_t>(sign | 0x7e);
  return static_cast<uint8_t>(sign | (e << 3) | m3);
}

// FP8 E5M2: bias 15, IEEE-like with infinities.
V4_HD float fp8_e5m2_to_f32(uint8_t v) { return f16_to_f32(static_cast<uint16_t>(v) << 8); }
V4_HD uint8_t f32_to_fp8_e5m2(float f) {
  const uint16_t h = f32_to_f16(f);
  if ((h & 0x7fffu) > 0x7c00u) return static_cast<uint8_t>((h >> 8) | 0x02u);  // NaN
  // Round the f16's low 8 bits to nearest even.
  uint32_t r = h + 0x7fu + ((h >> 8) & 1u);
  return static_cast<uint8_t>(r >> 8);
}

}  // namespace v4
