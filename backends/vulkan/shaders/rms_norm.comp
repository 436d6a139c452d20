#version 450
// One workgroup per row: x / sqrt(mean(x^2) + eps).
#define WG 128u
#include "common.glsl"
#include "reduce.glsl"
layout(local_size_x = 128) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 3) writeonly buffer D { float d[]; };

void main() {
  const uint row = row_index();
  if (row >= pc.nrows) return;
  const uint base = pc.off_a + row * pc.sa;
  float ss = 0.0;
  for (uint j = gl_LocalInvocationID.x; j < pc.ne0; j += WG) ss += a[base + j] * a[base + j];
  ss = wg_reduce(ss, false);
  const float s = 1.0 / sqrt(ss / float(pc.ne0) + pc.f0);
  for (uint j = gl_LocalInvocationID.x; j < pc.ne0; j += WG) d[pc.off_d + row * pc.sd + j] = s * a[base + j];
}
