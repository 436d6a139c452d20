#version 450
#ifdef SMALL_STORAGE
#extension GL_EXT_shader_8bit_storage : require
#extension GL_EXT_shader_16bit_storage : require
#endif
// out[c][n] = dot(weight row n (WTYPE, byte-addressed), x row c). One workgroup per weight
// row and group of up to NCOLS activation rows: each weight element is decoded once and
// used for every column of the group (decode is the 1-column case; prefill reuses the
// weights NCOLS times). Invocations stride over 32-element blocks; the partial sums meet
// through subgroup adds when the device has them (USE_SUBGROUP), else shared memory.
#define WG 128u
#define NCOLS 8u
#include "common.glsl"
layout(local_size_x = 128) in;
layout(binding = 0) readonly buffer A { uint RAW[]; };
#ifdef SMALL_STORAGE
layout(binding = 0) readonly buffer A8 { uint8_t RAW8[]; };
layout(binding = 0) readonly buffer A16 { uint16_t RAW16[]; };
#endif
layout(binding = 1) readonly buffer B { float x[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
#include "raw_read.glsl"
#include "reduce.glsl"

void main() {
  // ne0 = K, i0 = N (weight rows), i1 = M (activation rows).
  const uint n = gl_WorkGroupID.x + gl_NumWorkGroups.x * gl_WorkGroupID.z;
  const uint c0 = gl_WorkGroupID.y * NCOLS;
  if (n >= pc.i0) return;
  const uint ncols = min(NCOLS, pc.i1 - c0);
  const uint rb = pc.off_a + n * pc.sa;
  const uint k = pc.ne0, nblk = (k + 31u) / 32u;
  float sum[NCOLS];
  [[unroll]] for (uint c = 0u; c < NCOLS; ++c) sum[c] = 0.0;
  for (uint blk = gl_LocalInvocationID.x; blk < nblk; blk += WG) {
    const uint j0 = blk * 32u, len = min(32u, k - j0);
    for (uint e = 0u; e < len; ++e) {
      const float w = raw_elem(rb, j0 + e);
      [[unroll]] for (uint c = 0u; c < NCOLS; ++c)
        if (c < ncols) sum[c] += w * x[pc.off_b + (c0 + c) * pc.sb + j0 + e];
    }
  }
  [[unroll]] for (uint c = 0u; c < NCOLS; ++c) {
    if (c >= ncols) break;  // uniform across the workgroup
    const float r = wg_reduce(sum[c], false);
    if (gl_LocalInvocationID.x == 0u) d[pc.off_d + (c0 + c) * pc.sd + n] = r;
  }
}
