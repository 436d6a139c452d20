// A node of a compute graph: shape, strides, the op that produces it and its sources.
// Leaves are weights (data points into the model) or inputs (filled before each run).
// Shapes follow GGUF/ggml order: ne[0] is the innermost (row) dimension.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "lib/core/dtype.h"

namespace v4 {

constexpr int kMaxDims = 4;
constexpr int kMaxSrc = 4;

enum class Op : uint8_t {
  none,       // leaf: weight or input
  view,       // reinterpretation of src[0] (reshape / byte offset), no computation
  get_rows,   // rows of src[0] (any type) picked by I32 ids src[1] -> F32
  mul_mat,    // src[0] weights [K, N] (any type) x src[1] F32 [K, M] -> F32 [N, M]
  add,        // src[0] + src[1] (src[1] broadcast over rows when it has one row)
  mul,        // src[0] * src[1] (same broadcast)
  scale,      // src[0] * f[0]
  rms_norm,   // per row: x / sqrt(mean(x^2) + f[0])
  rope,       // rotary embedding of src[0] [head_dim, n_head, T] by positions src[1]
  softmax,    // per row softmax of src[0] * f[0]; i[0]=1: causal mask by row index
  silu,       // x * sigmoid(x)
  swiglu,     // silu(src[0]) * src[1]
  kv_store,   // writes K src[0] and V src[1] rows into the paged KV cache (p = KvBinding)
  attention,  // q src[0] [head_dim, n_head, T] over the paged cache (dep src[1]) -> [head_dim*n_head, T]
  copy,       // convert src[0] to this node's type
  kCount,
};
const char* op_name(Op op);

// How rope pairs elements of a head.
enum class RopeMode : int32_t { norm = 0, neox = 2 };

struct RopeParams {
  int32_t n_dims = 0;       // rotated elements per head
  int32_t dim_offset = 0;   // first rotated element inside the head (DeepSeek rotates the tail)
  RopeMode mode = RopeMode::norm;
  float freq_base = 10000.0f;
  float freq_scale = 1.0f;  // 1/linear factor
  float ext_factor = 0.0f;  // YaRN mix (0 = off)
  float attn_factor = 1.0f;
  float beta_fast = 32.0f;
  float beta_slow = 1.0f;
  int32_t n_ctx_orig = 0;
};

struct Tensor {
  DType type = DType::F32;
  int64_t ne[kMaxDims] = {1, 1, 1, 1};
  size_t nb[kMaxDims] = {0, 0, 0, 0};  // byte strides
  Op op = Op::none;
  std::array<Tensor*, kMaxSrc> src{};
  int32_t iparam[8] = {};
  float fparam[8] = {};
  void* pparam = nullptr;      // op-specific runtime object (e.g. the KV binding)
  const void* extra = nullptr; // op-specific constant (e.g. RopeParams*)

  void* data = nullptr;        // leaves: set by the owner; others: set by the memory plan
  size_t view_offset = 0;      // Op::view: byte offset into src[0]
  bool is_input = false;       // filled by the caller before each run
  bool is_output = false;      // must survive until the end of the run
  int32_t id = -1;             // index in its graph
  int32_t layer = -1;          // transformer layer computing it (layer placement): -1 before
                               // the first layer, n_layer for the output layer
  std::string name;

  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  int64_t n_rows() const { return ne[1] * ne[2] * ne[3]; }
  size_t nbytes() const;
  bool is_contiguous() const;
  bool is_leaf() const { return op == Op::none; }
  template <class T>
  T* as() const { return static_cast<T*>(data); }
};

// Fills nb[] for a contiguous tensor of t->type and t->ne.
void set_contiguous_strides(Tensor* t);

}  // namespace v4
