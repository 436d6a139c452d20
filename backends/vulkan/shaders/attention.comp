#version 450
// Attention over the paged KV pool in device memory: one workgroup per (query head,
// token), streaming over the token's sequence in chunks of 64 positions with an online
// softmax (running max and sum, the output rescaled when the max grows), so any context
// length runs in fixed shared memory. GQA: query head h reads KV head h / i1. Causal by
// position: a token at position p reads rows 0..p of its sequence, which covers prefill
// (rows written by this batch's kv_store) and decode alike. Pages are WTYPE_F32/F16/BF16,
// or WTYPE_FP8_KV: rows from the token's window start on are read from its sequence's f32
// ring (KvView::window_row's rule), older ones dequantised, as the CPU does.
// Positions are taken in spans of SPAN (attention_merge.glsl), each with its own online
// softmax, merged in order; with -DSPLIT a workgroup (head, token, span) does one span and
// writes its partial state to binding 3 (scratch), and attention_merge.comp merges them:
// a long decode then uses n_head x spans workgroups instead of n_head.
// Table (binding 2): [0, T) each token's page list (word offset from the table start),
// [T, 2T) its position, then per sequence the pool slot of each of its pages.
// Push constants: off_a q (floats), off_b pool (bytes), off_c table (words), off_d out;
// ne0 head_dim; sa q row stride per head, sd out row stride per token (floats); ne1/ne2
// K/V component starts in slot 0, sb slot, sc row (bytes); i0 query heads, i1 query
// heads per KV head, i2 log2(rows per page), i3 tokens; f0 scale. FP8: table words
// [2T, 3T) each token's first ring position, [3T, 4T) / [4T, 5T) its K / V ring (bytes
// from the component's start); op ring rows - 1, nrows_b ring row bytes.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer Pool { uint RAW[]; };
layout(binding = 2) readonly buffer Table { uint tbl[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
#include "raw_read.glsl"

const uint WG = 64u;
#include "attention_merge.glsl"
shared float qs[MAX_HD];
shared float red[WG];
shared float prob[WG];

uint row_byte(uint list, uint j) {
  return pc.off_b + tbl[list + (j >> pc.i2)] * pc.sb + (j & ((1u << pc.i2) - 1u)) * pc.sc;
}

// Value e of row j of the component starting at `comp` (K: ne1, V: ne2); `ring`: the
// token's ring of that component.
#if defined(WTYPE_FP8_KV)
uint exact_from;  // the token's first position read from the ring
float kv_value(uint comp, uint ring, uint list, uint j, uint e) {
  if (j >= exact_from) return raw_f32(pc.off_b + comp + ring + (j & pc.op) * pc.nrows_b + 4u * e);
  return raw_elem(comp + row_byte(list, j), e);
}
#else
float kv_value(uint comp, uint ring, uint list, uint j, uint e) {
  return raw_elem(comp + row_byte(list, j), e);
}
#endif

// Online softmax over positions [j_begin, j_end] (inclusive) in chunks of 64: the span's
// running max m, sum l and unnormalised output acc. The whole workgroup calls it.
void attend_span(uint list, uint ring_k, uint ring_v, uint head, uint j_begin, uint j_end,
                 out float m, out float l, out float acc[ACC_N]) {
  const uint tid = gl_LocalInvocationID.x, hd = pc.ne0;
  const float neg_inf = uintBitsToFloat(0xff800000u);
  m = neg_inf;
  l = 0.0;
  [[unroll]] for (uint k = 0u; k < ACC_N; ++k) acc[k] = 0.0;
  for (uint j0 = j_begin; j0 <= j_end; j0 += WG) {
    const uint j = j0 + tid;
    float s = neg_inf;
    if (j <= j_end) {
      float dot = 0.0;
      for (uint e = 0u; e < hd; ++e) dot += qs[e] * kv_value(pc.ne1, ring_k, list, j, head + e);
      s = dot * pc.f0;
    }
    red[tid] = s;
    barrier();
    [[unroll]] for (uint w = WG / 2u; w > 0u; w >>= 1u) {
      if (tid < w) red[tid] = max(red[tid], red[tid + w]);
      barrier();
    }
    const float m_new = max(m, red[0]);
    prob[tid] = j <= j_end ? exp(s - m_new) : 0.0;
    barrier();
    const float corr = exp(m - m_new);  // 0 for the first chunk (m = -inf)
    const uint n = min(WG, j_end + 1u - j0);
    float sum = 0.0;
    for (uint i = 0u; i < n; ++i) sum += prob[i];
    l = l * corr + sum;
    [[unroll]] for (uint k = 0u; k < ACC_N; ++k) {
      const uint e = tid + k * WG;
      if (e < hd) {
        float a = acc[k] * corr;
        for (uint i = 0u; i < n; ++i) a += prob[i] * kv_value(pc.ne2, ring_v, list, j0 + i, head + e);
        acc[k] = a;
      }
    }
    m = m_new;
    barrier();  // red and prob are rewritten by the next chunk
  }
}

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
  const uint hd = pc.ne0;
  const uint head = (h / pc.i1) * hd;  // first value of the KV head inside a row
  const uint list = pc.off_c + tbl[pc.off_c + t];
  const uint pos = tbl[pc.off_c + pc.i3 + t];
#if defined(WTYPE_FP8_KV)
  exact_from = tbl[pc.off_c + 2u * pc.i3 + t];
  const uint ring_k = tbl[pc.off_c + 3u * pc.i3 + t], ring_v = tbl[pc.off_c + 4u * pc.i3 + t];
#else
  const uint ring_k = 0u, ring_v = 0u;
#endif
#ifdef SPLIT
  const uint span = gl_WorkGroupID.z;
  if (span * SPAN > pos) return;  // uniform: the token's sequence is shorter
#endif
  const uint qb = pc.off_a + (t * pc.i0 + h) * pc.sa;
  for (uint e = tid; e < hd; e += WG) qs[e] = q[qb + e];
  barrier();
#ifdef SPLIT
  // Partial state of one span: max, sum, then head_dim values (attention_merge.comp).
  float m, l, acc[ACC_N];
  attend_span(list, ring_k, ring_v, head, span * SPAN, min(span * SPAN + SPAN - 1u, pos), m, l, acc);
  const uint r = pc.off_d + ((t * pc.i0 + h) * pc.nrows + span) * (hd + 2u);
  if (tid == 0u) {
    d[r] = m;
    d[r + 1u] = l;
  }
  [[unroll]] for (uint k = 0u; k < ACC_N; ++k) {
    const uint e = tid + k * WG;
    if (e < hd) d[r + 2u + e] = acc[k];
  }
#else
  float M = uintBitsToFloat(0xff800000u), L = 0.0;
  float ACC[ACC_N];
  [[unroll]] for (uint k = 0u; k < ACC_N; ++k) ACC[k] = 0.0;
  for (uint s0 = 0u; s0 <= pos; s0 += SPAN) {
    float m, l, acc[ACC_N];
    attend_span(list, ring_k, ring_v, head, s0, min(s0 + SPAN - 1u, pos), m, l, acc);
    merge_state(M, L, ACC, m, l, acc);
  }
  const uint ob = pc.off_d + t * pc.sd + h * hd;
  [[unroll]] for (uint k = 0u; k < ACC_N; ++k) {
    const uint e = tid + k * WG;
    if (e < hd) d[ob + e] = ACC[k] / L;
  }
#endif
}
