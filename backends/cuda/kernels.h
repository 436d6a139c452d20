// Launchers of the CUDA kernels, callable from host C++ (the .cu files hold the kernels).
// Tensors cross as DevTensor: the shape, strides and device address of a graph tensor.
// Every launcher enqueues on `stream` and returns at once; a launch error throws.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "lib/core/dtype.h"
#include "lib/core/float_conv.h"  // V4_HD
#include "lib/core/tensor.h"

namespace v4::cuda {

struct DevTensor {
  void* data = nullptr;  // device address
  DType type = DType::F32;
  int64_t ne[kMaxDims] = {1, 1, 1, 1};
  size_t nb[kMaxDims] = {0, 0, 0, 0};

  V4_HD int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
};

enum class EltOp : int { add, mul, scale, silu, swiglu };

// Throws with the kernel's name if the last launch failed. (Errors are raised from host .cpp
// code: the .cu files stay free of fmt, which nvcc need not parse.)
void check_launch(const char* kernel);
[[noreturn]] void fail_weight_type(DType t);
[[noreturn]] void fail_unsupported(const char* what);

void launch_get_rows(const DevTensor& table, const DevTensor& ids, const DevTensor& out,
                     cudaStream_t s);
// Decode matvec: out[N, M] = W[K, N] x X[K, M] for small M, one warp per weight row.
void launch_matvec(const DevTensor& w, const DevTensor& x, const DevTensor& out, cudaStream_t s);
// Prefill: tensor-core (WMMA f16 in, f32 accumulate) tiles of dequantised weights.
void launch_matmul_mma(const DevTensor& w, const DevTensor& x, const DevTensor& out,
                       cudaStream_t s);
// Elementwise ops; b is null for unary ones, `f` is the scale factor.
void launch_eltwise(EltOp op, const DevTensor& a, const DevTensor* b, float f, const DevTensor& out,
                    cudaStream_t s);
void launch_rms_norm(const DevTensor& x, float eps, const DevTensor& out, cudaStream_t s);
void launch_rope(const DevTensor& x, const DevTensor& pos, const float* freq_factors,
                 const RopeParams& p, const DevTensor& out, cudaStream_t s);
void launch_softmax(const DevTensor& x, float scale, bool causal, const DevTensor& out,
                    cudaStream_t s);
// Converts x (any type row_value knows) into out's type (F32, F16, BF16 or F8_E4M3).
void launch_copy(const DevTensor& x, const DevTensor& out, cudaStream_t s);

// The paged KV cache as kernels see it (the two levels of lib/core/kv_view.h): component
// storage in device memory, each component's group slot table, and each batch sequence's
// logical page table flattened into one device array (row s: the pages of sequence s).
struct DevKvComp {
  uint8_t* base = nullptr;
  size_t row_bytes = 0;
  DType type = DType::F32;
  const uint32_t* slots = nullptr;  // logical page -> pool slot for this component's group
};
struct DevKvView {
  int32_t page_shift = 0;
  size_t slot_bytes = 0;
  DevKvComp k, v;
  const uint32_t* pages = nullptr;  // [n_seq][pages_stride] logical pages
  int32_t pages_stride = 0;
  const int32_t* tok_seq = nullptr;  // per batch token, device memory
  const int32_t* tok_pos = nullptr;
  int32_t n_tokens = 0;
};

// Writes the batch's K rows (k: [row_elems, n_tokens] f32) and V rows into their pages.
void launch_kv_store(const DevTensor& k, const DevTensor& v, const DevKvView& kv, cudaStream_t s);
// Split-K ("flash decoding") attention of q [head_dim, n_head, n_tokens] over each token's
// sequence rows 0..pos: n_splits parts per (token, head) run in parallel, each keeping an online
// softmax state (lib/core/device_math/softmax_merge.h), then one pass merges the parts.
// `partials` holds attention_partials_floats(...) floats of device memory.
size_t attention_partials_floats(int64_t head_dim, int64_t n_head, int32_t n_tokens, int n_splits);
int attention_splits(int32_t max_rows);
void launch_attention(const DevTensor& q, const DevKvView& kv, int n_kv_head, float scale,
                      int32_t max_rows, float* partials, const DevTensor& out, cudaStream_t s);
bool kv_type_supported(DType t);
bool attention_head_dim_supported(int64_t head_dim);

// Whether matvec/mma can read weights of type t, and copy can write type t.
bool weight_type_supported(DType t);
bool copy_dst_supported(DType t);

}  // namespace v4::cuda
