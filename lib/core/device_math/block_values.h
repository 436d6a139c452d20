// One element of a weight row, for every block type the engine computes with, in code that
// compiles for the host and for CUDA devices. GPU kernels dequantise element by element
// (each thread takes the elements it multiplies); the host tests check every element against
// the reference dequantisers of lib/core/quant bit for bit, so the layouts cannot drift.
// The arithmetic is the reference's, operation by operation (exact_ops.h keeps the device
// from fusing the multiply-adds).
#pragma once

#include <cstdint>
#include <type_traits>

#include "lib/core/device_math/exact_ops.h"
#include "lib/core/dtype.h"
#include "lib/core/float_conv.h"
#include "lib/core/quant/quant.h"

namespace v4::dm {

V4_HD float q8_0_value(const BlockQ8_0& b, int j) {
  return mul_rn(static_cast<float>(b.qs[j]), f16_to_f32(b.d));
}

// Low nibbles hold elements 0..15, high nibbles 16..31 (Q4_0, Q4_1, and Q5's low bits).
V4_HD int nibble32(const uint8_t* qs, int j) { return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4); }

V4_HD float q4_0_value(const BlockQ4_0& b, int j) {
  return mul_rn(static_cast<float>(nibble32(b.qs, j) - 8), f16_to_f32(b.d));
}

V4_HD float q4_1_value(const BlockQ4_1& b, int j) {
  return add_rn(mul_rn(static_cast<float>(nibble32(b.qs, j)), f16_to_f32(b.d)), f16_to_f32(b.m));
}

// The 5-bit level of element j: the nibble plus bit j of the little-endian qh word.
V4_HD int level5(const uint8_t* qs, const uint8_t* qh, int j) {
  return nibble32(qs, j) | (((qh[j >> 3] >> (j & 7)) & 1) << 4);
}

V4_HD float q5_0_value(const BlockQ5_0& b, int j) {
  return mul_rn(static_cast<float>(level5(b.qs, b.qh, j) - 16), f16_to_f32(b.d));
}

V4_HD float q5_1_value(const BlockQ5_1& b, int j) {
  return add_rn(mul_rn(static_cast<float>(level5(b.qs, b.qh, j)), f16_to_f32(b.d)),
                f16_to_f32(b.m));
}

V4_HD float fp8_b32_value(const BlockFP8_B32& b, int j) {
  return mul_rn(bf16_to_f32(b.d), fp8_e4m3_to_f32(b.qs[j]));
}

// Q4_K / Q5_K: element j (0..255) sits in chunk c = j / 64 (32 bytes of qs), sub-block
// 2c (low nibbles) or 2c + 1 (high nibbles).
V4_HD float k4_value(uint16_t d16, uint16_t dmin16, const uint8_t* scales, int j, int q) {
  uint8_t sc, m;
  k4_scale_min(j >> 5, scales, &sc, &m);
  const float d = mul_rn(f16_to_f32(d16), static_cast<float>(sc));
  const float mn = mul_rn(f16_to_f32(dmin16), static_cast<float>(m));
  return sub_rn(mul_rn(d, static_cast<float>(q)), mn);
}

V4_HD int k4_nibble(const uint8_t* qs, int j) {
  const uint8_t byte = qs[(j >> 6) * 32 + (j & 31)];
  return (j & 32) ? (byte >> 4) : (byte & 0x0F);
}

V4_HD float q4_k_value(const BlockQ4_K& b, int j) {
  return k4_value(b.d, b.dmin, b.scales, j, k4_nibble(b.qs, j));
}

V4_HD float q5_k_value(const BlockQ5_K& b, int j) {
  // The 5th bit of element j: bit (2c + high) of qh[j % 32].
  const int bit = 2 * (j >> 6) + ((j >> 5) & 1);
  const int q = k4_nibble(b.qs, j) | (((b.qh[j & 31] >> bit) & 1) << 4);
  return k4_value(b.d, b.dmin, b.scales, j, q);
}

// Q6_K: two halves of 128; in each, quarter k of 32 takes its low 4 bits from ql[l] (k even)
// or ql[l + 32] (k odd), low nibble for k < 2, and 2 high bits from qh[l] >> 2k.
V4_HD float q6_k_value(const BlockQ6_K& b, int j) {
  const int half = j >> 7, quarter = (j >> 5) & 3, l = j & 31;
  const uint8_t* ql = b.ql + 64 * half;
  const uint8_t* qh = b.qh + 32 * half;
  const uint8_t lo_byte = ql[l + 32 * (quarter & 1)];
  const int lo = quarter < 2 ? (lo_byte & 0x0F) : (lo_byte >> 4);
  const int q = (lo | (((qh[l] >> (2 * quarter)) & 3) << 4)) - 32;
  const int8_t sc = b.scales[8 * half + (l >> 4) + 2 * quarter];
  return mul_rn(mul_rn(f16_to_f32(b.d), static_cast<float>(sc)), static_cast<float>(q));
}

// The CPU's regrouped layouts (lib/core/quant/repack.h), which weights have after a
// read-mode load: element i of a row, the plain block's arithmetic on the moved bytes.
V4_HD float f16_at(const uint8_t* p) { return f16_to_f32(*reinterpret_cast<const uint16_t*>(p)); }

V4_HD float q4_0_r4_value(const uint8_t* row, int64_t i) {
  const uint8_t* grp = row + (i >> 7) * 72;
  const int b = static_cast<int>((i >> 5) & 3), e = static_cast<int>(i & 31);
  return mul_rn(static_cast<float>(nibble32(grp + 8 + 16 * b, e) - 8), f16_at(grp + 2 * b));
}
V4_HD float q8_0_r4_value(const uint8_t* row, int64_t i) {
  const uint8_t* grp = row + (i >> 7) * 136;
  const int b = static_cast<int>((i >> 5) & 3), e = static_cast<int>(i & 31);
  const int at = e < 16 ? 16 * b + e : 64 + 16 * b + e - 16;
  return mul_rn(static_cast<float>(static_cast<int8_t>(grp[8 + at])), f16_at(grp + 2 * b));
}
// X16: byte 4b + (e & 3) of step s; for Q4_0 the step pair (2t, 2t + 1) shares a byte's two
// nibbles, so the byte index uses t = (e & 15) >> 2 and the nibble e >> 4.
V4_HD float q4_0_x16_value(const uint8_t* row, int64_t i) {
  const uint8_t* grp = row + (i >> 9) * 288;
  const int b = static_cast<int>((i >> 5) & 15), e = static_cast<int>(i & 31), f = e & 15;
  const int raw = grp[32 + 64 * (f >> 2) + 4 * b + (f & 3)];
  const int q = e < 16 ? (raw & 0x0F) : (raw >> 4);
  return mul_rn(static_cast<float>(q - 8), f16_at(grp + 2 * b));
}
V4_HD float q8_0_x16_value(const uint8_t* row, int64_t i) {
  const uint8_t* grp = row + (i >> 9) * 544;
  const int b = static_cast<int>((i >> 5) & 15), e = static_cast<int>(i & 31), f = e & 15;
  const int s = 2 * (f >> 2) + (e >> 4);
  const int q = static_cast<int>(grp[32 + 64 * s + 4 * b + (f & 3)]) - 128;  // stored biased
  return mul_rn(static_cast<float>(q), f16_at(grp + 2 * b));
}

// Whether row_value knows type t.
V4_HD bool row_value_supported(DType t) {
  switch (t) {
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::F8_E4M3:
    case DType::Q8_0:
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K:
    case DType::Q6_K:
    case DType::FP8_B32:
    case DType::Q4_0_R4:
    case DType::Q8_0_R4:
    case DType::Q4_0_X16:
    case DType::Q8_0_X16:
      return true;
    default:
      return false;
  }
}

template <class Block>
V4_HD const Block& block_of(const uint8_t* row, int64_t i, int64_t block_size) {
  return reinterpret_cast<const Block*>(row)[i / block_size];
}

// Element i of a row of type t starting at `row`, or 0 for a type without a value here
// (callers check row_value_supported first).
V4_HD float row_value(DType t, const uint8_t* row, int64_t i) {
  const int j32 = static_cast<int>(i & 31), j256 = static_cast<int>(i & 255);
  switch (t) {
    case DType::F32:
      return reinterpret_cast<const float*>(row)[i];
    case DType::F16:
      return f16_to_f32(reinterpret_cast<const uint16_t*>(row)[i]);
    case DType::BF16:
      return bf16_to_f32(reinterpret_cast<const uint16_t*>(row)[i]);
    case DType::F8_E4M3:
      return fp8_e4m3_to_f32(row[i]);
    case DType::Q8_0:
      return q8_0_value(block_of<BlockQ8_0>(row, i, kQK), j32);
    case DType::Q4_0:
      return q4_0_value(block_of<BlockQ4_0>(row, i, kQK), j32);
    case DType::Q4_1:
      return q4_1_value(block_of<BlockQ4_1>(row, i, kQK), j32);
    case DType::Q5_0:
      return q5_0_value(block_of<BlockQ5_0>(row, i, kQK), j32);
    case DType::Q5_1:
      return q5_1_value(block_of<BlockQ5_1>(row, i, kQK), j32);
    case DType::FP8_B32:
      return fp8_b32_value(block_of<BlockFP8_B32>(row, i, kQK), j32);
    case DType::Q4_K:
      return q4_k_value(block_of<BlockQ4_K>(row, i, kQK_K), j256);
    case DType::Q5_K:
      return q5_k_value(block_of<BlockQ5_K>(row, i, kQK_K), j256);
    case DType::Q6_K:
      return q6_k_value(block_of<BlockQ6_K>(row, i, kQK_K), j256);
    case DType::Q4_0_R4:
      return q4_0_r4_value(row, i);
    case DType::Q8_0_R4:
      return q8_0_r4_value(row, i);
    case DType::Q4_0_X16:
      return q4_0_x16_value(row, i);
    case DType::Q8_0_X16:
      return q8_0_x16_value(row, i);
    default:
      return 0.0f;
  }
}

}  // namespace v4::dm

namespace v4::dm {

// Elements i0 .. i0 + 7 of a row of type T (i0 a multiple of 8, all 8 inside the row): the
// scales of their block are decoded once for the 8 (eight consecutive elements never straddle a
// block or a K-quant sub-block), so a GPU lane reads each byte it needs once. Same arithmetic as
// row_value, element for element.
template <DType T>
V4_HD void decode8(const uint8_t* row, int64_t i0, float* out) {
  const int j0 = static_cast<int>(
      i0 & (T == DType::Q4_K || T == DType::Q5_K || T == DType::Q6_K ? kQK_K - 1 : kQK - 1));
  if constexpr (T == DType::Q8_0) {
    const BlockQ8_0& b = block_of<BlockQ8_0>(row, i0, kQK);
    const float d = f16_to_f32(b.d);
    for (int e = 0; e < 8; ++e) out[e] = mul_rn(static_cast<float>(b.qs[j0 + e]), d);
  } else if constexpr (T == DType::Q4_0 || T == DType::Q4_1) {
    using Block = std::conditional_t<T == DType::Q4_0, BlockQ4_0, BlockQ4_1>;
    const Block& b = block_of<Block>(row, i0, kQK);
    const uint8_t* q = b.qs + (j0 & 15);
    const int shift = j0 >= 16 ? 4 : 0;
    const float d = f16_to_f32(b.d);
    for (int e = 0; e < 8; ++e) {
      const int level = (q[e] >> shift) & 0x0F;
      if constexpr (T == DType::Q4_0)
        out[e] = mul_rn(static_cast<float>(level - 8), d);
      else
        out[e] = add_rn(mul_rn(static_cast<float>(level), d), f16_to_f32(b.m));
    }
  } else if constexpr (T == DType::Q5_0 || T == DType::Q5_1) {
    using Block = std::conditional_t<T == DType::Q5_0, BlockQ5_0, BlockQ5_1>;
    const Block& b = block_of<Block>(row, i0, kQK);
    const uint8_t* q = b.qs + (j0 & 15);
    const int shift = j0 >= 16 ? 4 : 0;
    const uint8_t high = b.qh[j0 >> 3];  // the 5th bits of these 8 elements
    const float d = f16_to_f32(b.d);
    for (int e = 0; e < 8; ++e) {
      const int level = ((q[e] >> shift) & 0x0F) | (((high >> e) & 1) << 4);
      if constexpr (T == DType::Q5_0)
        out[e] = mul_rn(static_cast<float>(level - 16), d);
      else
        out[e] = add_rn(mul_rn(static_cast<float>(level), d), f16_to_f32(b.m));
    }
  } else if constexpr (T == DType::FP8_B32) {
    const BlockFP8_B32& b = block_of<BlockFP8_B32>(row, i0, kQK);
    const float d = bf16_to_f32(b.d);
    for (int e = 0; e < 8; ++e) out[e] = mul_rn(d, fp8_e4m3_to_f32(b.qs[j0 + e]));
  } else if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    using Block = std::conditional_t<T == DType::Q4_K, BlockQ4_K, BlockQ5_K>;
    const Block& b = block_of<Block>(row, i0, kQK_K);
    uint8_t sc, m;
    k4_scale_min(j0 >> 5, b.scales, &sc, &m);
    const float d = mul_rn(f16_to_f32(b.d), static_cast<float>(sc));
    const float mn = mul_rn(f16_to_f32(b.dmin), static_cast<float>(m));
    const uint8_t* q = b.qs + (j0 >> 6) * 32 + (j0 & 31);
    const int shift = (j0 & 32) ? 4 : 0;
    for (int e = 0; e < 8; ++e) {
      int level = (q[e] >> shift) & 0x0F;
      if constexpr (T == DType::Q5_K) {
        const int bit = 2 * (j0 >> 6) + ((j0 >> 5) & 1);
        level |= ((b.qh[(j0 & 31) + e] >> bit) & 1) << 4;
      }
      out[e] = sub_rn(mul_rn(d, static_cast<float>(level)), mn);
    }
  } else if constexpr (T == DType::Q6_K) {
    const BlockQ6_K& b = block_of<BlockQ6_K>(row, i0, kQK_K);
    const int half = j0 >> 7, quarter = (j0 >> 5) & 3, l0 = j0 & 31;
    const uint8_t* ql = b.ql + 64 * half + l0 + 32 * (quarter & 1);
    const uint8_t* qh = b.qh + 32 * half + l0;
    const int shift = quarter < 2 ? 0 : 4;
    const float d =
        mul_rn(f16_to_f32(b.d), static_cast<float>(b.scales[8 * half + (l0 >> 4) + 2 * quarter]));
    for (int e = 0; e < 8; ++e) {
      const int q = (((ql[e] >> shift) & 0x0F) | (((qh[e] >> (2 * quarter)) & 3) << 4)) - 32;
      out[e] = mul_rn(d, static_cast<float>(q));
    }
  } else {
    for (int e = 0; e < 8; ++e) out[e] = row_value(T, row, i0 + e);
  }
}

}  // namespace v4::dm
