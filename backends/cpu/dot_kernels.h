// Fast dot products of weight rows with activation rows, chosen per weight type and
// CPU at run time. Quantised weights meet activations quantised to Q8_0 blocks (integer
// dot products); float weights meet f32 activations. A kernel computes one weight row
// against up to kMaxCols activation rows at once (reusing the unpacked weights), and
// every (row, column) result is bit-identical whatever the number of columns, so
// prefill and decode agree exactly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "lib/core/dtype.h"

namespace v4::cpu {

constexpr int kMaxCols = 8;

// Activation formats. q8: per row, int8 q[k] (row-major, blocks of 32) followed at byte
// q8_scales_offset(k) by float d[k / 32]; element = d[b] * q. Split so that SIMD loads of
// several blocks of q are one instruction.
//
// q8r4: for the regrouped weights (Q4_0_R4, Q8_0_R4), per row of g = k / 128 groups:
// int8 q[128 g] with each group ordered like the weights (first halves of its four blocks,
// then second halves), then float d[4 g], then int32 sum[4 g] (sum of each block's q,
// which the kernels use to re-centre unsigned weights).
// Calls f(std::integral_constant<int, nc>{}) so a kernel can take its column count as a
// compile-time constant: its accumulators then stay in registers.
template <class F>
inline void with_cols(int nc, F&& f) {
  switch (nc) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    case 4: return f(std::integral_constant<int, 4>{});
    case 5: return f(std::integral_constant<int, 5>{});
    case 6: return f(std::integral_constant<int, 6>{});
    case 7: return f(std::integral_constant<int, 7>{});
    default: return f(std::integral_constant<int, 8>{});
  }
}

// q8x16: for the X16 layouts (Q4_0_X16, Q8_0_X16), per super-group of 512 values (16
// blocks), 640 bytes: int8 q[512] in the weights' step order (bytes 64s + 4j + i = block j's
// element x16_step_start(s) + i), int32 nsum[16] (minus block j's sum of q, which the
// kernels shift by the weights' offset and use as the dot product's start value), float
// d[16].
// q8k: for the Q4_K / Q5_K kernels, per super-block of 256 values, 544 bytes: int8 q[256]
// as four 64-byte vectors holding sub-blocks (0|2), (1|3), (4|6), (5|7) (the order the
// weights' nibbles unpack in), float d[64] (each vector's 16 lanes: 8 of the first
// sub-block's scale, 8 of the second's), float s[8] (d_j times the sum of sub-block j's q,
// for the weights' minimums).
// q8q: for the Q6_K kernels, per 64-value quarter, 192 bytes: int8 q[64], int32 start[16]
// (lane l: -32 times the sum of q[4l .. 4l + 3], the re-centring of the weights' unsigned
// 6-bit values), float d[16] (lane l: the scale of the 32-value block holding q[4l]).
// q8s: the q8 format followed by float s[k / 32] (d_b times the sum of block b's q), for the
// AVX2 Q4_K / Q5_K kernels (the weights' minimums meet the blocks' sums).
enum class ActFormat { f32, q8, q8r4, q8x16, q8k, q8q, q8s };

constexpr size_t q8_scales_offset(int64_t k) { return (static_cast<size_t>(k) + 63) / 64 * 64; }
inline size_t q8_row_bytes(int64_t k) { return q8_scales_offset(k) + static_cast<size_t>(k / 32) * 4; }
// Quantises k floats (k a multiple of 32) into the q8 format: d = max|x| / 127,
// q = round-to-nearest-even(x / d). Every implementation gives identical bytes.
void quantize_q8_row(const float* x, uint8_t* out, int64_t k);
void quantize_q8_row_scalar(const float* x, uint8_t* out, int64_t k);
void quantize_q8_row_avx2(const float* x, uint8_t* out, int64_t k);

inline size_t q8r4_row_bytes(int64_t k) { return static_cast<size_t>(k / 128) * 160; }
// Same values as quantize_q8_row, in the q8r4 order (k a multiple of 128).
void quantize_q8r4_row(const float* x, uint8_t* out, int64_t k);

inline size_t q8x16_row_bytes(int64_t k) { return static_cast<size_t>(k / 512) * 640; }
// Same values as quantize_q8_row, in the q8x16 format (k a multiple of 512).
void quantize_q8x16_row(const float* x, uint8_t* out, int64_t k);

inline size_t q8k_row_bytes(int64_t k) { return static_cast<size_t>(k / 256) * 544; }
// The sub-block pair of each q8k vector: the low and high nibbles of a Q4_K super-block's
// first 64 quant bytes, then of the next 64.
constexpr int kQ8kPairs[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};
// Same values as quantize_q8_row, in the q8k format (k a multiple of 256).
void quantize_q8k_row(const float* x, uint8_t* out, int64_t k);

inline size_t q8q_row_bytes(int64_t k) { return static_cast<size_t>(k / 64) * 192; }
// Same values as quantize_q8_row, in the q8q format (k a multiple of 64).
void quantize_q8q_row(const float* x, uint8_t* out, int64_t k);

inline size_t q8s_row_bytes(int64_t k) { return q8_row_bytes(k) + static_cast<size_t>(k / 32) * 4; }
void quantize_q8s_row(const float* x, uint8_t* out, int64_t k);

const char* act_format_name(ActFormat f);

// Bytes per activation row and the quantiser of a format (q8, q8r4, q8x16, q8k, q8q, q8s).
size_t act_row_bytes(ActFormat f, int64_t k);
using ActQuantizeFn = void (*)(const float* x, uint8_t* out, int64_t k);
ActQuantizeFn act_quantizer(ActFormat f);

// out[c] = dot(w, x + c * x_stride) for c < nc (1 <= nc <= kMaxCols); k elements.
using DotFn = void (*)(const uint8_t* w, const uint8_t* x, size_t x_stride, int nc, int64_t k,
                       float* out);

struct DotKernel {
  ActFormat act;
  DotFn dot;
  const char* isa;
};

// The best kernel for a weight type on this CPU, or nullptr (use the reference kernel).
const DotKernel* find_dot_kernel(DType weight_type);

// Per-ISA tables (nullptr entries where the ISA has no kernel for the type).
const DotKernel* avx2_dot_kernel(DType weight_type);
const DotKernel* avx512_dot_kernel(DType weight_type);
const DotKernel* avx512_x16_dot_kernel(DType weight_type);

}  // namespace v4::cpu
