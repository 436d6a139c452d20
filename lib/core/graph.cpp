#include "lib/core/graph.h"

#include "lib/core/error.h"
#include "lib/core/kv_view.h"

namespace v4 {
namespace {

bool same_shape(const Tensor* a, const Tensor* b) {
  for (int i = 0; i < kMaxDims; ++i)
    if (a->ne[i] != b->ne[i]) return false;
  return true;
}

void require(bool ok, const char* op, const char* what) {
  if (!ok) fail(Status::internal, "graph: {}: {}", op, what);
}

}  // namespace

Tensor* Graph::make(Op op, DType type, const int64_t ne[kMaxDims]) {
  Tensor& t = storage_.emplace_back();
  t.op = op;
  t.type = type;
  for (int i = 0; i < kMaxDims; ++i) t.ne[i] = ne[i];
  set_contiguous_strides(&t);
  t.id = static_cast<int32_t>(storage_.size() - 1);
  t.layer = layer_;
  if (op == Op::none)
    leaves_.push_back(&t);
  else
    nodes_.push_back(&t);
  return &t;
}

Tensor* Graph::input(DType type, int64_t ne0, int64_t ne1, int64_t ne2, const char* name) {
  const int64_t ne[kMaxDims] = {ne0, ne1, ne2, 1};
  Tensor* t = make(Op::none, type, ne);
  t->is_input = true;
  t->name = name;
  return t;
}

Tensor* Graph::weight(DType type, const int64_t ne[kMaxDims], const void* data,
                      const std::string& name) {
  Tensor* t = make(Op::none, type, ne);
  t->data = const_cast<void*>(data);  // weights are never written
  t->name = name;
  return t;
}

Tensor* Graph::reshape(Tensor* src, int64_t ne0, int64_t ne1, int64_t ne2, int64_t ne3) {
  require(src->is_contiguous(), "reshape", "source is not contiguous");
  require(ne0 * ne1 * ne2 * ne3 == src->n_elements(), "reshape", "element count differs");
  const int64_t ne[kMaxDims] = {ne0, ne1, ne2, ne3};
  Tensor* t = make(Op::view, src->type, ne);
  t->src[0] = src;
  return t;
}

Tensor* Graph::rows_view(Tensor* src, int64_t row0, int64_t n) {
  require(row0 >= 0 && n >= 1 && row0 + n <= src->ne[1] && src->ne[2] == 1 && src->ne[3] == 1,
          "rows_view", "row range outside the source");
  const int64_t ne[kMaxDims] = {src->ne[0], n, 1, 1};
  Tensor* t = make(Op::view, src->type, ne);
  t->src[0] = src;
  t->view_offset = static_cast<size_t>(row0) * src->nb[1];
  return t;
}

Tensor* Graph::get_rows(Tensor* table, Tensor* ids) {
  require(ids->type == DType::I32 && ids->ne[1] == 1, "get_rows", "ids must be a 1-D I32 tensor");
  require(traits(table->type).to_f32 != nullptr, "get_rows", "table type has no conversion");
  const int64_t ne[kMaxDims] = {table->ne[0], ids->ne[0], 1, 1};
  Tensor* t = make(Op::get_rows, DType::F32, ne);
  t->src[0] = table;
  t->src[1] = ids;
  return t;
}

Tensor* Graph::mul_mat(Tensor* w, Tensor* x) {
  require(w->ne[0] == x->ne[0], "mul_mat", "inner dimensions differ");
  require(x->type == DType::F32, "mul_mat", "activations must be F32");
  require(w->ne[2] == 1 && w->ne[3] == 1, "mul_mat", "weights must be 2-D");
  const int64_t ne[kMaxDims] = {w->ne[1], x->ne[1], x->ne[2], x->ne[3]};
  Tensor* t = make(Op::mul_mat, DType::F32, ne);
  t->src[0] = w;
  t->src[1] = x;
  return t;
}

Tensor* Graph::unary_like(Op op, Tensor* a) {
  require(a->type == DType::F32 && a->is_contiguous(), op_name(op), "input must be contiguous F32");
  Tensor* t = make(op, DType::F32, a->ne);
  t->src[0] = a;
  return t;
}

Tensor* Graph::add(Tensor* a, Tensor* b) {
  require(same_shape(a, b) || (b->ne[0] == a->ne[0] && b->n_rows() == 1), "add",
          "shapes differ and b is not one broadcast row");
  Tensor* t = unary_like(Op::add, a);
  t->src[1] = b;
  return t;
}

Tensor* Graph::mul(Tensor* a, Tensor* b) {
  require(same_shape(a, b) || (b->ne[0] == a->ne[0] && b->n_rows() == 1), "mul",
          "shapes differ and b is not one broadcast row");
  require(b->type == DType::F32, "mul", "b must be F32");
  Tensor* t = unary_like(Op::mul, a);
  t->src[1] = b;
  return t;
}

Tensor* Graph::scale(Tensor* a, float s) {
  Tensor* t = unary_like(Op::scale, a);
  t->fparam[0] = s;
  return t;
}

Tensor* Graph::rms_norm(Tensor* a, float eps) {
  Tensor* t = unary_like(Op::rms_norm, a);
  t->fparam[0] = eps;
  return t;
}

Tensor* Graph::rope(Tensor* x, Tensor* positions, const RopeParams* params, Tensor* freq_factors) {
  require(positions->type == DType::I32 && positions->ne[0] == x->ne[2], "rope",
          "positions must be I32 with one entry per token");
  require(params->n_dims > 0 && params->n_dims % 2 == 0 &&
              params->dim_offset + params->n_dims <= x->ne[0],
          "rope", "rotated range must be an even count inside the head");
  require(freq_factors == nullptr ||
              (freq_factors->type == DType::F32 && freq_factors->ne[0] >= params->n_dims / 2),
          "rope", "frequency factors must be F32 with n_dims/2 entries");
  Tensor* t = unary_like(Op::rope, x);
  t->src[1] = positions;
  t->src[2] = freq_factors;
  t->extra = params;
  return t;
}

Tensor* Graph::softmax(Tensor* a, float scale, bool causal) {
  Tensor* t = unary_like(Op::softmax, a);
  t->fparam[0] = scale;
  t->iparam[0] = causal ? 1 : 0;
  return t;
}

Tensor* Graph::silu(Tensor* a) { return unary_like(Op::silu, a); }

Tensor* Graph::swiglu(Tensor* gate, Tensor* up) {
  require(same_shape(gate, up), "swiglu", "gate and up differ in shape");
  Tensor* t = unary_like(Op::swiglu, gate);
  t->src[1] = up;
  return t;
}

Tensor* Graph::copy(Tensor* a, DType type) {
  require(traits(type).from_f32 != nullptr && traits(a->type).to_f32 != nullptr, "copy",
          "no conversion between these types");
  require(a->ne[0] % traits(type).block_size == 0, "copy", "row is not a whole number of blocks");
  Tensor* t = make(Op::copy, type, a->ne);
  t->src[0] = a;
  return t;
}

Tensor* Graph::kv_store(Tensor* k, Tensor* v, KvView* kv, int k_comp, int v_comp) {
  require(k->type == DType::F32 && v->type == DType::F32 && k->ne[1] == v->ne[1], "kv_store",
          "K and V must be F32 with one row per token");
  const int64_t ne[kMaxDims] = {1, 1, 1, 1};
  Tensor* t = make(Op::kv_store, DType::F32, ne);
  t->src[0] = k;
  t->src[1] = v;
  t->pparam = kv;
  t->iparam[0] = k_comp;
  t->iparam[1] = v_comp;
  return t;
}

Tensor* Graph::attention(Tensor* q, Tensor* after, KvView* kv, int k_comp, int v_comp,
                         int n_kv_head, float scale) {
  require(q->type == DType::F32 && q->is_contiguous(), "attention", "q must be contiguous F32");
  require(n_kv_head > 0 && q->ne[1] % n_kv_head == 0, "attention",
          "query heads must be a multiple of KV heads");
  const int64_t ne[kMaxDims] = {q->ne[0] * q->ne[1], q->ne[2], 1, 1};
  Tensor* t = make(Op::attention, DType::F32, ne);
  t->src[0] = q;
  t->src[1] = after;
  t->pparam = kv;
  t->iparam[0] = k_comp;
  t->iparam[1] = v_comp;
  t->iparam[2] = n_kv_head;
  t->fparam[0] = scale;
  return t;
}

}  // namespace v4
