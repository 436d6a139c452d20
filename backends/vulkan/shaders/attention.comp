#version 450
// Attention over the paged KV pool in device memory: one workgroup per (query head,
// token), streaming over the token's sequence in chunks of 64 positions with an online
// softmax (running max and sum, the output rescaled when the max grows), so any context
// length runs in fixed shared memory. GQA: query head h reads KV head h / i1. Causal by
// position: a token at position p reads rows 0..p of its sequence, which covers prefill
// (rows written by this batch's kv_store) and decode alike. Pages are WTYPE_F32/F16/BF16.
// Table (binding 2): [0, T) each token's page list (word offset from the table start),
// [T, 2T) its position, then per sequence the pool slot of each of its pages.
// Push constants: off_a q (floats), off_b pool (bytes), off_c table (words), off_d out;
// ne0 head_dim; sa q row stride per head, sd out row stride per token (floats); ne1/ne2
// K/V component starts in slot 0, sb slot, sc row (bytes); i0 query heads, i1 query
// heads per KV head, i2 log2(rows per page), i3 tokens; f0 scale.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer Pool { uint RAW[]; };
layout(binding = 2) readonly buffer Table { uint tbl[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
#include "raw_read.glsl"

const uint WG = 64u;
const uint MAX_HD = 256u;  // vk_kv_ops.cpp refuses larger heads
shared float qs[MAX_HD];
shared float red[WG];
shared float prob[WG];

uint row_byte(uint list, uint j) {
  return pc.off_b + tbl[list + (j >> pc.i2)] * pc.sb + (j & ((1u << pc.i2) - 1u)) * pc.sc;
}

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
  const uint hd = pc.ne0;
  const uint head = (h / pc.i1) * hd;  // first value of the KV head inside a row
  const uint qb = pc.off_a + (t * pc.i0 + h) * pc.sa;
  for (uint e = tid; e < hd; e += WG) qs[e] = q[qb + e];
  const uint list = pc.off_c + tbl[pc.off_c + t];
  const uint pos = tbl[pc.off_c + pc.i3 + t];
  const float neg_inf = uintBitsToFloat(0xff800000u);
  float m = neg_inf, l = 0.0;
  float acc[MAX_HD / WG];
  [[unroll]] for (uint k = 0u; k < MAX_HD / WG; ++k) acc[k] = 0.0;
  barrier();

  for (uint j0 = 0u; j0 <= pos; j0 += WG) {
    const uint j = j0 + tid;
    float s = neg_inf;
    if (j <= pos) {
      const uint kb = pc.ne1 + row_byte(list, j);
      float dot = 0.0;
      for (uint e = 0u; e < hd; ++e) dot += qs[e] * raw_elem(kb, head + e);
      s = dot * pc.f0;
    }
    red[tid] = s;
    barrier();
    [[unroll]] for (uint w = WG / 2u; w > 0u; w >>= 1u) {
      if (tid < w) red[tid] = max(red[tid], red[tid + w]);
      barrier();
    }
    const float m_new = max(m, red[0]);
    prob[tid] = j <= pos ? exp(s - m_new) : 0.0;
    barrier();
    const float corr = exp(m - m_new);  // 0 for the first chunk (m = -inf)
    const uint n = min(WG, pos + 1u - j0);
    float sum = 0.0;
    for (uint i = 0u; i < n; ++i) sum += prob[i];
    l = l * corr + sum;
    [[unroll]] for (uint k = 0u; k < MAX_HD / WG; ++k) {
      const uint e = tid + k * WG;
      if (e < hd) {
        float a = acc[k] * corr;
        for (uint i = 0u; i < n; ++i) a += prob[i] * raw_elem(pc.ne2 + row_byte(list, j0 + i), head + e);
        acc[k] = a;
      }
    }
    m = m_new;
    barrier();  // red and prob are rewritten by the next chunk
  }
  const uint ob = pc.off_d + t * pc.sd + h * hd;
  [[unroll]] for (uint k = 0u; k < MAX_HD / WG; ++k) {
    const uint e = tid + k * WG;
    if (e < hd) d[ob + e] = acc[k] / l;
  }
}
