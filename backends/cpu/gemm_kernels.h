// Matrix-matrix kernels for prefill (many activation columns). A GEMM kernel computes a
// tile of several weight rows x several activation columns with the accumulators in
// registers, so each unpacked weight group is reused by every column of the tile and each
// activation group by every row. Contract shared with dot_kernels.h: every (row, column)
// result is bit-identical to the matvec kernel's for the same weight type, whatever the
// tile, panel or thread split, so prefill equals decode exactly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lib/core/dtype.h"

namespace v4::cpu {

// q8r4x activation format (for the Q4_0_R4 / Q8_0_R4 GEMM): per row of g = k / 128 groups,
// 256 bytes per group: int8 q[128] in q8r4 order, int32 corr[16] (lane 4b holds
// -(sum of block b's q) << shift, the re-centring of the unsigned weights; other lanes 0),
// float d[16] (lanes 4b..4b+3 hold block b's scale). The kernel then loads the per-lane
// vectors it needs instead of rebuilding them for every weight row.
inline size_t q8r4x_row_bytes(int64_t k) { return static_cast<size_t>(k / 128) * 256; }
// Same values as quantize_q8r4_row (k a multiple of 128); shift 3 for Q4_0_R4 weights
// (offset 8), 7 for Q8_0_R4 (offset 128).
void quantize_q8r4x_row(const float* x, uint8_t* out, int64_t k, int shift);

struct GemmArgs {
  const uint8_t* w;   // weight row 0
  size_t w_stride;    // bytes per weight row
  const uint8_t* x;   // activation row 0, in the kernel's format
  size_t x_stride;    // bytes per activation row
  float* out;         // out[c * out_stride + r]
  size_t out_stride;  // floats per output column
  int64_t k;          // values per row
  int64_t m;          // activation columns
  int64_t row_begin, row_end;  // the weight rows this call computes
};

struct GemmKernel {
  size_t (*act_row_bytes)(int64_t k);
  // One activation row into the kernel's format; nullptr: the kernel reads f32 rows as
  // they are (float weights).
  void (*quantize_row)(const float* x, uint8_t* out, int64_t k);
  void (*gemm)(const GemmArgs& a);
  const char* isa;
};

// The GEMM kernel for a weight type on this CPU, or nullptr (use the matvec kernel).
// V4_CPU_GEMM=off disables them (A/B benchmarks, tests of the matvec path).
const GemmKernel* find_gemm_kernel(DType weight_type);

const GemmKernel* avx512_gemm_kernel(DType weight_type);
const GemmKernel* avx512_x16_gemm_kernel(DType weight_type);
const GemmKernel* avx512_k4_gemm_kernel(DType weight_type);
const GemmKernel* avx512_q6_k_gemm_kernel();

// The fewest activation columns for which the GEMM beats the matvec kernel.
constexpr int64_t kGemmMinCols = 4;

}  // namespace v4::cpu
