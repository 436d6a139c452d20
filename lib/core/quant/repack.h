// Regrouped in-memory layouts of Q4_0 and Q8_0 for SIMD kernels. Four consecutive blocks
// of a row become one group: their four f16 scales first, then their quants with the
// first 16 values of each block together and the last 16 together, so one 64-byte load
// holds the same half of four blocks. A group has exactly the bytes of the four blocks it
// replaces, so a row can be regrouped in place.
//   Q4_0_R4 group (72 bytes): f16 d[4]; u8 qs[64]: bytes 16b..16b+15 = block b's qs
//     (low nibbles elements 0..15, high nibbles 16..31, as in Q4_0).
//   Q8_0_R4 group (136 bytes): f16 d[4]; i8 q[128]: q[16b + i] = block b element i,
//     q[64 + 16b + i] = block b element 16 + i.
#pragma once

#include <cstdint>

namespace v4 {

// In place; n_groups groups of four blocks.
void repack_q4_0_to_r4(void* data, int64_t n_groups);
void repack_q8_0_to_r4(void* data, int64_t n_groups);

void dequantize_q4_0_r4(const void* src, float* dst, int64_t n);
void quantize_q4_0_r4(const float* src, void* dst, int64_t n);
void dequantize_q8_0_r4(const void* src, float* dst, int64_t n);
void quantize_q8_0_r4(const float* src, void* dst, int64_t n);

}  // namespace v4
