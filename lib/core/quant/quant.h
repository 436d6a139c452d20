// Reference quantisers and dequantisers of every weight type the engine computes with.
// Block layouts are GGUF's (llama.cpp's ggml) byte for byte; the quantisers reproduce
// ggml's `quantize_row_*_ref` output bit for bit (same F32 operation order and rounding),
// checked against the reference quantiser's vectors in tests/data/quant. The type table in
// lib/core/dtype.cpp points at these functions. Layouts are documented in docs/FORMAT.md.
//
// Every function converts n elements, n a multiple of the type's block size; src and dst
// never overlap.
#pragma once

#include <cstdint>

#include "lib/core/dtype.h"
#include "lib/core/float_conv.h"  // V4_HD: k4_scale_min runs on GPUs too

namespace v4 {

inline constexpr int kQK = 32;     // values per block of the 32-blocks (Q4_0 ... Q8_0)
inline constexpr int kQK_K = 256;  // values per super-block of the K-quants

// ---- Block layouts (BlockQ8_0, BlockQ4_0 and BlockFP8_B32 are in dtype.h) ---------------

// x = d * q + m
struct BlockQ4_1 {
  uint16_t d;      // f16 scale
  uint16_t m;      // f16 minimum
  uint8_t qs[16];  // low nibbles: elements 0..15, high nibbles: 16..31
};
static_assert(sizeof(BlockQ4_1) == 20);

// x = d * (q - 16), q = 4 low bits from qs (nibbles as Q4_0) | bit j of qh << 4
struct BlockQ5_0 {
  uint16_t d;     // f16 scale
  uint8_t qh[4];  // 5th bits, little-endian u32: bit j belongs to element j
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_0) == 22);

// x = d * q + m, q as Q5_0
struct BlockQ5_1 {
  uint16_t d;  // f16 scale
  uint16_t m;  // f16 minimum
  uint8_t qh[4];
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ5_1) == 24);

// 256 values in 8 sub-blocks of 32; sub-block j: x = d * sc_j * q - dmin * m_j with 6-bit
// sc_j, m_j packed in `scales` (see k4_scale_min) and 4-bit q.
struct BlockQ4_K {
  uint16_t d;          // f16 super-block scale of the sub-block scales
  uint16_t dmin;       // f16 super-block scale of the sub-block minimums
  uint8_t scales[12];  // 8 x (6-bit scale, 6-bit min)
  uint8_t qs[128];     // per 64 values: 32 bytes, low nibbles the first 32, high the next 32
};
static_assert(sizeof(BlockQ4_K) == 144);

// As Q4_K with a 5th bit per value in qh: bit 2c of qh[l] for value 64c + l, bit 2c+1 for
// value 64c + 32 + l.
struct BlockQ5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qh[32];
  uint8_t qs[128];
};
static_assert(sizeof(BlockQ5_K) == 176);

// 256 values in 16 sub-blocks of 16; x = d * scales[s] * (q - 32) with 6-bit q: 4 low bits
// in ql, 2 high bits in qh (see docs/FORMAT.md for the interleaving).
struct BlockQ6_K {
  uint8_t ql[128];
  uint8_t qh[64];
  int8_t scales[16];
  uint16_t d;  // f16
};
static_assert(sizeof(BlockQ6_K) == 210);

// Sub-block j's 6-bit scale and min of a Q4_K/Q5_K `scales` array.
V4_HD void k4_scale_min(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

namespace quant {

// Plain and FP8 element types, and the FP8 weight block (float_types.cpp).
void dequantize_f32(const void* src, float* dst, int64_t n);
void quantize_f32(const float* src, void* dst, int64_t n);
void dequantize_f16(const void* src, float* dst, int64_t n);
void quantize_f16(const float* src, void* dst, int64_t n);
void dequantize_bf16(const void* src, float* dst, int64_t n);
void quantize_bf16(const float* src, void* dst, int64_t n);
void dequantize_e4m3(const void* src, float* dst, int64_t n);
void quantize_e4m3(const float* src, void* dst, int64_t n);
void dequantize_e5m2(const void* src, float* dst, int64_t n);
void quantize_e5m2(const float* src, void* dst, int64_t n);
void dequantize_fp8_b32(const void* src, float* dst, int64_t n);
void quantize_fp8_b32(const float* src, void* dst, int64_t n);
void dequantize_fp8_kv(const void* src, float* dst, int64_t n);
void quantize_fp8_kv(const float* src, void* dst, int64_t n);

// The 32-value blocks (q4_q5_q8.cpp).
void dequantize_q4_0(const void* src, float* dst, int64_t n);
void quantize_q4_0(const float* src, void* dst, int64_t n);
void dequantize_q4_1(const void* src, float* dst, int64_t n);
void quantize_q4_1(const float* src, void* dst, int64_t n);
void dequantize_q5_0(const void* src, float* dst, int64_t n);
void quantize_q5_0(const float* src, void* dst, int64_t n);
void dequantize_q5_1(const void* src, float* dst, int64_t n);
void quantize_q5_1(const float* src, void* dst, int64_t n);
void dequantize_q8_0(const void* src, float* dst, int64_t n);
void quantize_q8_0(const float* src, void* dst, int64_t n);

// The K-quants, 256-value super-blocks (k_quants.cpp).
void dequantize_q4_k(const void* src, float* dst, int64_t n);
void quantize_q4_k(const float* src, void* dst, int64_t n);
void dequantize_q5_k(const void* src, float* dst, int64_t n);
void quantize_q5_k(const float* src, void* dst, int64_t n);
void dequantize_q6_k(const void* src, float* dst, int64_t n);
void quantize_q6_k(const float* src, void* dst, int64_t n);

}  // namespace quant
}  // namespace v4
