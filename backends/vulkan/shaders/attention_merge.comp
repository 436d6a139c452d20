#version 450
// Second pass of split decode attention: one workgroup per (query head, token) merges the
// partial states its token's spans left in the scratch buffer (attention.comp -DSPLIT),
// in span order, and writes the output row.
// Bindings: 0 partials (floats: per (token, head, span) max, sum, head_dim values),
// 2 the attention's page table (positions at [T, 2T)), 3 output.
// Push constants: off_a partials, off_c table, off_d out; ne0 head_dim; sd out row stride
// per token; i0 query heads; i3 tokens; nrows spans per (token, head).
#include "common.glsl"
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer P { float part[]; };
layout(binding = 2) readonly buffer Table { uint tbl[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
#include "attention_merge.glsl"

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, tid = gl_LocalInvocationID.x;
  const uint hd = pc.ne0, rec = hd + 2u;
  const uint pos = tbl[pc.off_c + pc.i3 + t];
  const float neg_inf = uintBitsToFloat(0xff800000u);
  float M = neg_inf, L = 0.0;
  float ACC[ACC_N];
  [[unroll]] for (uint k = 0u; k < ACC_N; ++k) ACC[k] = 0.0;
  const uint base = pc.off_a + (t * pc.i0 + h) * pc.nrows * rec;
  for (uint s = 0u; s <= pos / SPAN; ++s) {
    const uint r = base + s * rec;
    float acc[ACC_N];
    [[unroll]] for (uint k = 0u; k < ACC_N; ++k) {
      const uint e = tid + k * 64u;
      acc[k] = e < hd ? part[r + 2u + e] : 0.0;
    }
    merge_state(M, L, ACC, part[r], part[r + 1u], acc);
  }
  const uint ob = pc.off_d + t * pc.sd + h * hd;
  [[unroll]] for (uint k = 0u; k < ACC_N; ++k) {
    const uint e = tid + k * 64u;
    if (e < hd) d[ob + e] = ACC[k] / L;
  }
}
