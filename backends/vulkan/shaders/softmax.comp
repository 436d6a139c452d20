#version 450
// One workgroup per row: softmax(x * scale); causal (op = 1) keeps columns 0..(row % ne1).
#define WG 128u
#include "common.glsl"
#include "reduce.glsl"
layout(local_size_x = 128) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 3) buffer D { float d[]; };

void main() {
  const uint row = row_index();
  if (row >= pc.nrows) return;
  const uint visible = pc.op == 1u ? min(pc.ne0, row % pc.ne1 + 1u) : pc.ne0;
  const uint ia = pc.off_a + row * pc.sa, id = pc.off_d + row * pc.sd;
  float mx = -3.402823466e38;
  for (uint j = gl_LocalInvocationID.x; j < visible; j += WG) mx = max(mx, a[ia + j] * pc.f0);
  mx = wg_reduce(mx, true);
  float sum = 0.0;
  for (uint j = gl_LocalInvocationID.x; j < visible; j += WG) {
    const float e = exp(a[ia + j] * pc.f0 - mx);
    d[id + j] = e;
    sum += e;
  }
  sum = wg_reduce(sum, false);
  for (uint j = gl_LocalInvocationID.x; j < pc.ne0; j += WG) d[id + j] = j < visible ? d[id + j] / sum : 0.0;
}
