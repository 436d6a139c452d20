#version 450
// Prefill matmul: out[c][n] = dot(weight row n, x row c) for many activation rows. A
// workgroup of 16x16 invocations computes a 32x32 tile of outputs (32 weight rows x 32
// activation rows, 2x2 per invocation). K is walked in steps of 32: the weight tile is
// decoded once into shared memory and the activation tile loaded beside it, so each
// weight element is decoded once per 32 activation rows (the matvec kernel: once per 8).
// Tails in N, M and K are padded with zeros.
#define TILE 32u
#include "common.glsl"
layout(local_size_x = 16, local_size_y = 16) in;
layout(binding = 0) readonly buffer A { uint RAW[]; };
layout(binding = 1) readonly buffer B { float x[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
#include "raw_read.glsl"

shared float w_tile[TILE][TILE + 1];  // [weight row][k]
shared float x_tile[TILE][TILE + 1];  // [activation row][k]

void main() {
  // ne0 = K, i0 = N (weight rows), i1 = M (activation rows).
  const uint n0 = (gl_WorkGroupID.x + gl_NumWorkGroups.x * gl_WorkGroupID.z) * TILE;
  const uint c0 = gl_WorkGroupID.y * TILE;
  if (n0 >= pc.i0) return;  // uniform over the workgroup
  const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
  const uint lin = ty * 16u + tx;
  const uint k = pc.ne0;
  float acc[2][2] = {{0.0, 0.0}, {0.0, 0.0}};
  for (uint k0 = 0u; k0 < k; k0 += TILE) {
    // 1024 elements per tile, 256 invocations: 4 each.
    for (uint e = lin; e < TILE * TILE; e += 256u) {
      const uint r = e / TILE, kk = e % TILE;
      const uint n = n0 + r, c = c0 + r, j = k0 + kk;
      w_tile[r][kk] = (n < pc.i0 && j < k) ? raw_elem(pc.off_a + n * pc.sa, j) : 0.0;
      x_tile[r][kk] = (c < pc.i1 && j < k) ? x[pc.off_b + c * pc.sb + j] : 0.0;
    }
    barrier();
    for (uint kk = 0u; kk < TILE; ++kk) {
      const float w0 = w_tile[tx][kk], w1 = w_tile[tx + 16u][kk];
      const float x0 = x_tile[ty][kk], x1 = x_tile[ty + 16u][kk];
      acc[0][0] += w0 * x0;
      acc[0][1] += w0 * x1;
      acc[1][0] += w1 * x0;
      acc[1][1] += w1 * x1;
    }
    barrier();
  }
  for (uint a = 0u; a < 2u; ++a)
    for (uint b = 0u; b < 2u; ++b) {
      const uint n = n0 + tx + 16u * a, c = c0 + ty + 16u * b;
      if (n < pc.i0 && c < pc.i1) d[pc.off_d + c * pc.sd + n] = acc[a][b];
    }
}
