#version 450
// add, mul (b broadcast when it has one row), scale, silu, swiglu over f32 rows.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 3) writeonly buffer D { float d[]; };

float silu(float x) { return x / (1.0 + exp(-x)); }

void main() {
  const uint col = gl_GlobalInvocationID.x, row = row_index();
  if (col >= pc.ne0 || row >= pc.nrows) return;
  const float x = a[pc.off_a + row * pc.sa + col];
  float y = 0.0;
  if (pc.op == 0u || pc.op == 1u || pc.op == 4u)
    y = b[pc.off_b + (pc.nrows_b == 1u ? 0u : row) * pc.sb + col];
  float r;
  switch (pc.op) {
    case 0u: r = x + y; break;
    case 1u: r = x * y; break;
    case 2u: r = x * pc.f0; break;
    case 3u: r = silu(x); break;
    default: r = silu(x) * y; break;
  }
  d[pc.off_d + row * pc.sd + col] = r;
}
