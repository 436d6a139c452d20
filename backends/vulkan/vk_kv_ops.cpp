#include "backends/vulkan/vk_kv_ops.h"

#include <algorithm>

#include "lib/core/error.h"

namespace v4::vk {
namespace {

const char* page_suffix(DType t) {
  switch (t) {
    case DType::F32:
      return "f32";
    case DType::F16:
      return "f16";
    case DType::BF16:
      return "bf16";
    case DType::FP8_KV:
      return "fp8_kv";
    default:
      return nullptr;
  }
}

const KvView& view_of(const Tensor& n) { return *static_cast<const KvView*>(n.pparam); }
uint32_t u32(size_t v) { return static_cast<uint32_t>(v); }

bool f32_rows(const Tensor* t) {
  return t && t->type == DType::F32 && t->nb[0] == 4 && t->nb[1] % 4 == 0 &&
         t->nb[2] == t->nb[1] * t->ne[1] && t->nb[3] == t->nb[2] * t->ne[2];
}

bool has_ring(const KvView& kv, int comp) { return kv.comps[comp].ring != nullptr; }

// K and V pages the shaders can read and write: same layout; f32/f16/bf16 rows of whole
// 32-bit words, FP8 rows of whole 33-byte blocks (at any byte alignment) with their
// recent-row window ring in the same device pool.
bool pages_supported(const KvView& kv, int kc, int vc) {
  if (!kv.on_device) return false;
  const KvComponentView& k = kv.comps[kc];
  const KvComponentView& v = kv.comps[vc];
  if (k.type != v.type || k.row_elems != v.row_elems || !page_suffix(k.type)) return false;
  if (k.type == DType::FP8_KV)
    return k.ring && v.ring && kv.window > 0 && k.row_elems % 32 == 0 && kv.slot_bytes % 4 == 0;
  if (k.ring || v.ring) return false;
  if (k.row_bytes % 4 != 0 || (k.type != DType::F32 && k.row_elems % 2 != 0)) return false;
  return kv.slot_bytes % 4 == 0;
}

// Bytes from a component's rows in slot 0 to sequence `seq`'s ring row `pos` (both in
// the device pool, so the shaders add it to the component's start).
uint32_t ring_offset(const KvView& kv, int comp, int32_t seq, int32_t pos) {
  const auto* ring = reinterpret_cast<const uint8_t*>(kv.ring_row(comp, seq, pos));
  return static_cast<uint32_t>(ring - kv.comps[comp].base);
}

}  // namespace

bool kv_type_supported(DType type, int64_t head_dim) {
  return page_suffix(type) && head_dim > 0 && head_dim <= kMaxAttentionHeadDim;
}

bool kv_op_supported(const Tensor& n) {
  if (!n.pparam) return false;
  const KvView& kv = view_of(n);
  const int kc = n.iparam[0], vc = n.iparam[1];
  if (!pages_supported(kv, kc, vc)) return false;
  const int64_t row = kv.comps[kc].row_elems;
  if (n.op == Op::kv_store)
    return f32_rows(n.src[0]) && f32_rows(n.src[1]) && n.src[0]->ne[0] == row &&
           n.src[1]->ne[0] == row;
  if (n.op != Op::attention) return false;
  const Tensor* q = n.src[0];
  const int64_t hd = q->ne[0], n_head = q->ne[1], n_kv = n.iparam[2];
  return q->type == DType::F32 && q->is_contiguous() && n.is_contiguous() &&
         kv_type_supported(kv.comps[kc].type, hd) && n_kv > 0 && n_head % n_kv == 0 &&
         n_kv * hd <= row;
}

size_t kv_table_words(const Tensor& n) {
  const KvView& kv = view_of(n);
  const size_t t = static_cast<size_t>(n.op == Op::attention ? n.src[0]->ne[2] : n.src[0]->ne[1]);
  // FP8 pages: each token's ring rows (kv_store) or window start and rings (attention).
  const size_t per_token = has_ring(kv, n.iparam[0]) ? (n.op == Op::kv_store ? 4 : 5) : 2;
  if (n.op == Op::kv_store) return per_token * t;
  // Each sequence of the batch lists its pages once.
  const size_t seqs = std::min<size_t>(t, static_cast<size_t>(std::max(1, kv.n_seq)));
  return per_token * t + seqs * kv.n_logical_pages;
}

namespace {
// The ring words of each token (FP8 pages), after its slot/list and position:
// kv_store: [2T, 3T) K's ring row, [3T, 4T) V's (bytes from each component's start);
// attention: [2T, 3T) the first position read from the ring (window_row's rule),
// [3T, 4T) / [4T, 5T) the token's sequence's K / V ring (its row 0, same unit).
void fill_ring_words(const Tensor& n, uint32_t* table) {
  const KvView& kv = view_of(n);
  const size_t T = static_cast<size_t>(kv.n_tokens);
  const int kc = n.iparam[0], vc = n.iparam[1];
  for (size_t t = 0; t < T; ++t) {
    const int32_t s = kv.tok_seq[t], p = kv.tok_pos[t];
    if (n.op == Op::kv_store) {
      table[2 * T + t] = ring_offset(kv, kc, s, p);
      table[3 * T + t] = ring_offset(kv, vc, s, p);
    } else {
      table[2 * T + t] = u32(static_cast<size_t>(std::max({0, p - kv.window + 1, kv.ring_valid_from[s]})));
      table[3 * T + t] = ring_offset(kv, kc, s, 0);
      table[4 * T + t] = ring_offset(kv, vc, s, 0);
    }
  }
}
}  // namespace

void fill_kv_table(const Tensor& n, uint32_t* table, size_t words, std::vector<int32_t>& scratch) {
  const KvView& kv = view_of(n);
  const size_t t_count = static_cast<size_t>(kv.n_tokens);
  const int32_t group = kv.comps[n.iparam[0]].group;
  const uint32_t* slots = kv.block_slot + static_cast<size_t>(group) * kv.n_logical_pages;
  const bool ring = has_ring(kv, n.iparam[0]);
  const size_t per_token = ring ? (n.op == Op::kv_store ? 4 : 5) : 2;
  if (per_token * t_count > words)
    fail(Status::internal, "vulkan: a batch of {} tokens overflows the KV table", t_count);
  for (size_t t = 0; t < t_count; ++t) table[t_count + t] = u32(kv.tok_pos[t]);
  if (ring) fill_ring_words(n, table);
  if (n.op == Op::kv_store) {
    for (size_t t = 0; t < t_count; ++t)
      table[t] = slots[kv.seq_pages[kv.tok_seq[t]][kv.tok_pos[t] >> kv.page_shift]];
    return;
  }
  // Per sequence of the batch: the last position any of its tokens reads, then its list.
  scratch.resize(2 * static_cast<size_t>(kv.n_seq));
  int32_t* last = scratch.data();
  int32_t* at = scratch.data() + kv.n_seq;
  for (size_t t = 0; t < t_count; ++t) {
    last[kv.tok_seq[t]] = -1;
    at[kv.tok_seq[t]] = -1;
  }
  for (size_t t = 0; t < t_count; ++t)
    last[kv.tok_seq[t]] = std::max(last[kv.tok_seq[t]], kv.tok_pos[t]);
  size_t next = per_token * t_count;
  for (size_t t = 0; t < t_count; ++t) {
    const int32_t s = kv.tok_seq[t];
    if (at[s] < 0) {
      const size_t pages = static_cast<size_t>(last[s] >> kv.page_shift) + 1;
      if (next + pages > words)
        fail(Status::internal, "vulkan: the batch's page lists overflow the KV table");
      at[s] = static_cast<int32_t>(next);
      for (size_t p = 0; p < pages; ++p) table[next + p] = slots[kv.seq_pages[s][p]];
      next += pages;
    }
    table[t] = u32(at[s]);
  }
}

Dispatch plan_kv_dispatch(const Tensor& n, size_t k_off, size_t v_off) {
  const KvView& kv = view_of(n);
  const KvComponentView& k = kv.comps[n.iparam[0]];
  Dispatch d;
  PushConstants& pc = d.pc;
  d.kind[2] = Bind::kv_table;
  pc.i[2] = u32(kv.page_shift);
  if (n.op == Op::kv_store) {
    const Tensor* src_k = n.src[0];
    const Tensor* src_v = n.src[1];
    d.shader = std::string("kv_store_") + page_suffix(k.type);
    d.bind[0] = src_k;
    d.bind[1] = src_v;
    d.kind[3] = Bind::kv_pool;  // words
    pc.stride[0] = u32(src_k->nb[1] / 4);
    pc.stride[1] = u32(src_v->nb[1] / 4);
    pc.stride[2] = u32(kv.slot_bytes / 4);
    pc.stride[3] = u32(k.row_bytes / 4);
    pc.ne0 = u32(k.row_elems);
    pc.ne1 = u32(k_off / 4);
    pc.ne2 = u32(v_off / 4);
    pc.i[3] = u32(src_k->ne[1]);
    if (k.type == DType::FP8_KV) {
      // One invocation per 32-value block, everything in bytes (rows are not word-aligned).
      d.raw[3] = true;
      pc.stride[2] = u32(kv.slot_bytes);
      pc.stride[3] = u32(k.row_bytes);
      pc.ne1 = u32(k_off);
      pc.ne2 = u32(v_off);
    }
    const int64_t words = k.type == DType::F32      ? k.row_elems
                          : k.type == DType::FP8_KV ? k.row_elems / 32
                                                    : k.row_elems / 2;
    d.groups[0] = u32((words + 63) / 64);
    d.groups[1] = u32(src_k->ne[1]);
    d.groups[2] = 2;
    return d;
  }
  const Tensor* q = n.src[0];
  d.shader = std::string("attention_") + page_suffix(k.type);
  d.bind[0] = q;
  d.kind[1] = Bind::kv_pool;
  d.raw[1] = true;  // bytes
  d.bind[3] = &n;
  pc.stride[0] = u32(q->nb[1] / 4);
  pc.stride[1] = u32(kv.slot_bytes);
  pc.stride[2] = u32(k.row_bytes);
  pc.stride[3] = u32(n.nb[1] / 4);
  pc.ne0 = u32(q->ne[0]);
  pc.ne1 = u32(k_off);
  pc.ne2 = u32(v_off);
  pc.i[0] = u32(q->ne[1]);
  pc.i[1] = u32(q->ne[1] / n.iparam[2]);
  pc.i[3] = u32(q->ne[2]);
  pc.f[0] = n.fparam[0];
  if (k.ring) {  // FP8: ring rows are row_elems floats, ring_rows of them per sequence
    pc.op = u32(static_cast<size_t>(kv.ring_rows - 1));
    pc.nrows_b = u32(static_cast<size_t>(k.row_elems) * sizeof(float));
  }
  d.groups[0] = u32(q->ne[1]);
  d.groups[1] = u32(q->ne[2]);
  return d;
}

namespace {
constexpr int64_t kSpan = 256;  // SPAN in shaders/attention_merge.glsl

// Spans of the longest sequence the view can hold.
int64_t max_spans(const KvView& kv) {
  const int64_t rows = int64_t{kv.n_logical_pages} << kv.page_shift;
  return (rows + kSpan - 1) / kSpan;
}
}  // namespace

size_t attention_split_bytes(const Tensor& n) {
  if (n.op != Op::attention) return 0;
  const Tensor* q = n.src[0];
  const int64_t spans = max_spans(view_of(n));
  if (q->ne[2] > kSplitMaxTokens || spans < 2) return 0;
  return static_cast<size_t>(q->ne[2] * q->ne[1] * spans * (q->ne[0] + 2)) * sizeof(float);
}

std::vector<Dispatch> plan_attention_split(const Tensor& n, size_t k_off, size_t v_off) {
  const Tensor* q = n.src[0];
  const uint32_t spans = u32(static_cast<size_t>(max_spans(view_of(n))));
  Dispatch part = plan_kv_dispatch(n, k_off, v_off);
  part.shader += "_split";
  part.bind[3] = nullptr;
  part.kind[3] = Bind::scratch;
  part.pc.nrows = spans;
  part.groups[2] = spans;
  Dispatch merge;
  merge.shader = "attention_merge";
  merge.kind[0] = Bind::scratch;
  merge.kind[2] = Bind::kv_table;
  merge.bind[3] = &n;
  merge.pc.ne0 = u32(static_cast<size_t>(q->ne[0]));
  merge.pc.stride[3] = u32(n.nb[1] / 4);
  merge.pc.i[0] = u32(static_cast<size_t>(q->ne[1]));
  merge.pc.i[3] = u32(static_cast<size_t>(q->ne[2]));
  merge.pc.nrows = spans;
  merge.groups[0] = u32(static_cast<size_t>(q->ne[1]));
  merge.groups[1] = u32(static_cast<size_t>(q->ne[2]));
  return {part, merge};
}

}  // namespace v4::vk
