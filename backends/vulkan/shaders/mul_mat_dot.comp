#version 450
#extension GL_EXT_spirv_intrinsics : require
// The decode matvec of mul_mat.comp for Q8_0 and Q4_0 weights with packed 8-bit integer dot
// products (VK_KHR_shader_integer_dot_product), used only when the device reports the
// feature. Like the CPU's fast kernels, each 32-value block of an activation row is
// quantised to int8 with one f32 scale (d = max|x| / 127, round to nearest even), the
// block's 32 products are summed exactly in integers (8 packed dot products of 4 lanes),
// and the sum is scaled by d_weight * d_x. So the result differs from the f32 path by the
// activation rounding (the quantised-path threshold), and agrees with the CPU's q8 kernels.
//
// One workgroup per weight row and group of up to NCOLS activation rows, invocations stride
// over blocks (as mul_mat.comp). Each block is handled by one invocation of the workgroup,
// which quantises the activations of that block itself: per workgroup the activations are
// quantised once, with no shared memory and no scratch buffer; the price is that every
// weight row's workgroup repeats it (a pre-pass writing int8 rows would remove that).
//
// Debian 12's glslang has no GL_EXT_integer_dot_product, so the SPIR-V instruction is
// declared through GL_EXT_spirv_intrinsics: OpSDot (4450) on two 32-bit words holding four
// int8 lanes each (literal operand 0: PackedVectorFormat4x8Bit), capabilities DotProduct
// (6019) and DotProductInput4x8BitPacked (6018).
#define WG 128u
#define NCOLS 8u
#include "common.glsl"
layout(local_size_x = 128) in;
layout(binding = 0) readonly buffer A { uint RAW[]; };
layout(binding = 1) readonly buffer B { float x[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
#include "raw_read.glsl"
#include "reduce.glsl"

spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot4x8_packed(uint a, uint b, spirv_literal int packed_vector_format);

// Bytes b..b+3 as one little-endian word; b is even (GGUF blocks are 2-byte aligned).
uint raw_word_even(uint b) {
  const uint w = RAW[b >> 2];
  return (b & 2u) == 0u ? w : (w >> 16) | (RAW[(b >> 2) + 1u] << 16);
}

#if defined(WTYPE_Q8_0)
#define BLOCK_BYTES 34u
#elif defined(WTYPE_Q4_0)
#define BLOCK_BYTES 18u
#else
#error "mul_mat_dot: WTYPE_Q8_0 or WTYPE_Q4_0"
#endif

// The block's 32 signed levels as 8 words of 4 int8 lanes (element 4i + l in lane l of
// word i), and its scale.
float weight_block(uint blk, out uint w[8]) {
#if defined(WTYPE_Q8_0)
  [[unroll]] for (uint i = 0u; i < 8u; ++i) w[i] = raw_word_even(blk + 2u + 4u * i);
#else
  // Q4_0: byte i holds element i (low nibble) and i + 16 (high); level = nibble - 8. Per
  // lane, (q | 0x80) - 8 cannot borrow from the next lane, and ^ 0x80 takes the 128 back
  // off modulo 256: q - 8 as two's complement.
  [[unroll]] for (uint i = 0u; i < 4u; ++i) {
    const uint nib = raw_word_even(blk + 2u + 4u * i);
    w[i] = (((nib & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
    w[i + 4u] = ((((nib >> 4) & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
  }
#endif
  return raw_f16(blk);
}

// sum_e level[e] * x[xb + e] over one block, with x quantised as the CPU's q8 rows are.
float block_dot(const uint w[8], uint xb) {
  float v[32];
  float amax = 0.0;
  [[unroll]] for (uint e = 0u; e < 32u; ++e) {
    v[e] = x[xb + e];
    amax = max(amax, abs(v[e]));
  }
  const float dx = amax / 127.0;
  const float id = dx != 0.0 ? 1.0 / dx : 0.0;
  int acc = 0;
  [[unroll]] for (uint i = 0u; i < 8u; ++i) {
    uint packed = 0u;
    [[unroll]] for (uint l = 0u; l < 4u; ++l)
      packed |= (uint(int(roundEven(v[4u * i + l] * id))) & 0xFFu) << (8u * l);
    acc += sdot4x8_packed(w[i], packed, 0);
  }
  return dx * float(acc);
}

void main() {
  // ne0 = K (a multiple of 32), i0 = N (weight rows), i1 = M (activation rows).
  const uint n = gl_WorkGroupID.x + gl_NumWorkGroups.x * gl_WorkGroupID.z;
  const uint c0 = gl_WorkGroupID.y * NCOLS;
  if (n >= pc.i0) return;
  const uint ncols = min(NCOLS, pc.i1 - c0);
  const uint rb = pc.off_a + n * pc.sa;
  const uint nblk = pc.ne0 / 32u;
  float sum[NCOLS];
  [[unroll]] for (uint c = 0u; c < NCOLS; ++c) sum[c] = 0.0;
  for (uint blk = gl_LocalInvocationID.x; blk < nblk; blk += WG) {
    uint w[8];
    const float dw = weight_block(rb + blk * BLOCK_BYTES, w);
    [[unroll]] for (uint c = 0u; c < NCOLS; ++c)
      if (c < ncols) sum[c] += dw * block_dot(w, pc.off_b + (c0 + c) * pc.sb + blk * 32u);
  }
  [[unroll]] for (uint c = 0u; c < NCOLS; ++c) {
    if (c >= ncols) break;  // uniform across the workgroup
    const float r = wg_reduce(sum[c], false);
    if (gl_LocalInvocationID.x == 0u) d[pc.off_d + (c0 + c) * pc.sd + n] = r;
  }
}
