#version 450
// Rotary embedding, one invocation per element of a head row [head_dim] of row
// (token t, head h). i0 n_dims, i1 dim_offset, i2 mode (0 norm, 2 neox), i3 n_head;
// f0 base, f1 freq_scale, f2 ext_factor, f3 attn_factor, f4/f5 YaRN corr dims,
// f6 YaRN magnitude; op bit 0: frequency factors in binding 2.
#include "common.glsl"
layout(local_size_x = 128) in;
layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { int pos[]; };
layout(binding = 2) readonly buffer C { float factors[]; };
layout(binding = 3) writeonly buffer D { float d[]; };

void main() {
  const uint j = gl_GlobalInvocationID.x, row = row_index();
  if (j >= pc.ne0 || row >= pc.nrows) return;
  const uint ia = pc.off_a + row * pc.sa;
  const uint n_dims = pc.i0, off = pc.i1, half_dims = n_dims / 2u;
  if (j < off || j >= off + n_dims) {
    d[pc.off_d + row * pc.sd + j] = a[ia + j];
    return;
  }
  const uint rel = j - off;
  const bool neox = pc.i2 == 2u;
  const uint i = neox ? (rel < half_dims ? rel : rel - half_dims) : rel / 2u;
  const bool first = neox ? rel < half_dims : (rel & 1u) == 0u;
  float freq = 1.0 / pow(pc.f0, float(2u * i) / float(n_dims));
  if ((pc.op & 1u) != 0u) freq /= factors[pc.off_c + i];
  const float theta_extrap = float(pos[pc.off_b + row / pc.i3]) * freq;
  float theta = theta_extrap * pc.f1;
  float mscale = pc.f3;
  if (pc.f2 != 0.0) {
    const float y = (float(i) - pc.f4) / max(0.001, pc.f5 - pc.f4);
    const float mix = (1.0 - clamp(y, 0.0, 1.0)) * pc.f2;
    theta = theta * (1.0 - mix) + theta_extrap * mix;
    mscale *= pc.f6;
  }
  const float c = cos(theta) * mscale, s = sin(theta) * mscale;
  const uint ea = off + (neox ? i : 2u * i);
  const uint eb = ea + (neox ? half_dims : 1u);
  const float v0 = a[ia + ea], v1 = a[ia + eb];
  d[pc.off_d + row * pc.sd + j] = first ? v0 * c - v1 * s : v0 * s + v1 * c;
}
