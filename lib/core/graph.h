// Builds a compute graph. Each builder call checks shapes and types, creates the node
// and appends it in execution order, so the node list is always topologically sorted.
// Tensors live as long as the graph; pointers to them stay valid.
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "lib/core/tensor.h"

namespace v4 {

struct KvView;

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Leaves.
  Tensor* input(DType type, int64_t ne0, int64_t ne1 = 1, int64_t ne2 = 1, const char* name = "");
  // Wraps existing memory (a weight) as a leaf; does not own it.
  Tensor* weight(DType type, const int64_t ne[kMaxDims], const void* data, const std::string& name);

  // Shape changes without copying; `src` must be contiguous.
  Tensor* reshape(Tensor* src, int64_t ne0, int64_t ne1 = 1, int64_t ne2 = 1, int64_t ne3 = 1);
  // A contiguous range of rows [row0, row0 + n) of a 2-D tensor.
  Tensor* rows_view(Tensor* src, int64_t row0, int64_t n);

  Tensor* get_rows(Tensor* table, Tensor* ids);
  Tensor* mul_mat(Tensor* w, Tensor* x);
  Tensor* add(Tensor* a, Tensor* b);
  Tensor* mul(Tensor* a, Tensor* b);
  Tensor* scale(Tensor* a, float s);
  Tensor* rms_norm(Tensor* a, float eps);
  Tensor* rope(Tensor* x, Tensor* positions, const RopeParams* params, Tensor* freq_factors);
  Tensor* softmax(Tensor* a, float scale, bool causal);
  Tensor* silu(Tensor* a);
  Tensor* swiglu(Tensor* gate, Tensor* up);
  Tensor* copy(Tensor* a, DType type);
  // Writes K and V rows of the batch into KV components k_comp / v_comp.
  Tensor* kv_store(Tensor* k, Tensor* v, KvView* kv, int k_comp, int v_comp);
  // Attention of q [head_dim, n_head, T] over the rows of each token's sequence up to its
  // position. `after` orders it behind the kv_store of the same layer.
  Tensor* attention(Tensor* q, Tensor* after, KvView* kv, int k_comp, int v_comp, int n_kv_head,
                    float scale);

  void mark_output(Tensor* t) { t->is_output = true; }
  // Nodes created from now on belong to transformer layer l (see Tensor::layer).
  void set_layer(int32_t l) { layer_ = l; }

  const std::vector<Tensor*>& nodes() const { return nodes_; }   // computed, in order
  const std::vector<Tensor*>& leaves() const { return leaves_; }
  size_t n_tensors() const { return storage_.size(); }

 private:
  Tensor* make(Op op, DType type, const int64_t ne[kMaxDims]);
  Tensor* unary_like(Op op, Tensor* a);

  std::deque<Tensor> storage_;
  std::vector<Tensor*> nodes_;
  std::vector<Tensor*> leaves_;
  int32_t layer_ = -1;
};

}  // namespace v4
