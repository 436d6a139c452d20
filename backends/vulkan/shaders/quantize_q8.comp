#version 450
// The pre-pass of mul_mat_dot.comp: f32 activation rows to q8 blocks, as the CPU's fast
// kernels quantise theirs (quantize_q8_row): per block of 32 values d = max|x| / 127 and
// q = round-to-nearest-even(x * (1 / d)). A block is 9 words: its 32 int8 levels packed
// four to a word (element 4i + l in byte l of word i), then d's bits. One invocation per
// block; rows in y (and z past 65535).
#include "common.glsl"
layout(local_size_x = 128) in;
layout(binding = 1) readonly buffer B { float x[]; };
layout(binding = 3) writeonly buffer D { uint q[]; };

void main() {
  // ne0 = K (a multiple of 32), nrows = activation rows; sb in floats, sd in words.
  const uint blk = gl_GlobalInvocationID.x, row = row_index();
  if (blk >= pc.ne0 / 32u || row >= pc.nrows) return;
  const uint xb = pc.off_b + row * pc.sb + blk * 32u;
  float amax = 0.0;
  for (uint e = 0u; e < 32u; ++e) amax = max(amax, abs(x[xb + e]));
  const float dx = amax / 127.0;
  const float id = dx != 0.0 ? 1.0 / dx : 0.0;
  const uint out_at = pc.off_d + row * pc.sd + blk * 9u;
  [[unroll]] for (uint i = 0u; i < 8u; ++i) {
    uint packed = 0u;
    [[unroll]] for (uint l = 0u; l < 4u; ++l)
      packed |= (uint(int(roundEven(x[xb + 4u * i + l] * id))) & 0xFFu) << (8u * l);
    q[out_at + i] = packed;
  }
  q[out_at + 8u] = floatBitsToUint(dx);
}
