// Regrouped in-memory layouts of Q4_0 and Q8_0 for SIMD kernels. Four consecutive blocks
// of a row become one group: their four f16 scales first, then their quants with the
// first 16 values of each block together and the last 16 together, so one 64-byte load
// holds the same half of four blocks. A group has exactly the bytes of the four blocks it
// replaces, so a row can be regrouped in place.
//   Q4_0_R4 group (72 bytes): f16 d[4]; u8 qs[64]: bytes 16b..16b+15 = block b's qs
//     (low nibbles elements 0..15, high nibbles 16..31, as in Q4_0).
//   Q8_0_R4 group (136 bytes): f16 d[4]; i8 q[128]: q[16b + i] = block b element i,
//     q[64 + 16b + i] = block b element 16 + i.
//
// The X16 layouts interleave sixteen consecutive blocks (512 values) 4 bytes at a time, so
// that 32-bit lane j of every 64-byte vector holds values of block j only: an integer dot
// product (vpdpbusd) then sums within a block by itself, and one conversion, scale product
// and fma serve 16 blocks. Values are taken in "step" order: step s (0..7) of a block is
// its elements idx(s)..idx(s)+3 with idx(2t) = 4t and idx(2t+1) = 16 + 4t (so a Q4_0
// byte's low and high nibble land in consecutive steps).
//   Q4_0_X16 super-group (288 bytes): f16 d[16]; u8 qs[256]: byte 64t + 4j + i = block j's
//     qs[4t + i] (low nibble: element 4t + i, high nibble: element 16 + 4t + i).
//   Q8_0_X16 super-group (544 bytes): f16 d[16]; u8 q[512]: byte 64s + 4j + i = block j's
//     element idx(s) + i, stored biased (q + 128, i.e. q ^ 0x80) for unsigned dot products.
#pragma once

#include <cstdint>

namespace v4 {

// In place; n_groups groups of four blocks.
void repack_q4_0_to_r4(void* data, int64_t n_groups);
void repack_q8_0_to_r4(void* data, int64_t n_groups);

// In place; n_groups groups of sixteen blocks.
void repack_q4_0_to_x16(void* data, int64_t n_groups);
void repack_q8_0_to_x16(void* data, int64_t n_groups);

// Step s of the X16 layouts starts at this element of a block.
constexpr int x16_step_start(int s) { return (s & 1) * 16 + (s >> 1) * 4; }

void dequantize_q4_0_r4(const void* src, float* dst, int64_t n);
void quantize_q4_0_r4(const float* src, void* dst, int64_t n);
void dequantize_q8_0_r4(const void* src, float* dst, int64_t n);
void quantize_q8_0_r4(const float* src, void* dst, int64_t n);
void dequantize_q4_0_x16(const void* src, float* dst, int64_t n);
void quantize_q4_0_x16(const float* src, void* dst, int64_t n);
void dequantize_q8_0_x16(const void* src, float* dst, int64_t n);
void quantize_q8_0_x16(const float* src, void* dst, int64_t n);

}  // namespace v4
