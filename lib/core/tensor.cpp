#include "lib/core/tensor.h"

namespace v4 {

const char* op_name(Op op) {
  switch (op) {
    case Op::none: return "leaf";
    case Op::view: return "view";
    case Op::get_rows: return "get_rows";
    case Op::mul_mat: return "mul_mat";
    case Op::add: return "add";
    case Op::mul: return "mul";
    case Op::scale: return "scale";
    case Op::rms_norm: return "rms_norm";
    case Op::rope: return "rope";
    case Op::softmax: return "softmax";
    case Op::silu: return "silu";
    case Op::swiglu: return "swiglu";
    case Op::kv_store: return "kv_store";
    case Op::attention: return "attention";
    case Op::copy: return "copy";
    case Op::kCount: break;
  }
  return "?";
}

void set_contiguous_strides(Tensor* t) {
  const TypeTraits& tt = traits(t->type);
  t->nb[0] = tt.block_bytes;  // per block for quantised types
  t->nb[1] = row_bytes(t->type, t->ne[0]);
  t->nb[2] = t->nb[1] * static_cast<size_t>(t->ne[1]);
  t->nb[3] = t->nb[2] * static_cast<size_t>(t->ne[2]);
}

size_t Tensor::nbytes() const { return row_bytes(type, ne[0]) * static_cast<size_t>(n_rows()); }

bool Tensor::is_contiguous() const {
  return nb[1] == row_bytes(type, ne[0]) && nb[2] == nb[1] * static_cast<size_t>(ne[1]) &&
         nb[3] == nb[2] * static_cast<size_t>(ne[2]);
}

}  // namespace v4
