#version 450
#extension GL_EXT_spirv_intrinsics : require
// The decode matvec of mul_mat.comp for Q8_0 and Q4_0 weights (and the CPU's regrouped
// layouts of them: _R4, _X16) with packed 8-bit integer dot products
// (VK_KHR_shader_integer_dot_product), used only when the device reports the feature.
// quantize_q8.comp first writes the activation rows as q8 blocks (int8 levels and one f32
// scale per 32 values, rounded like the CPU's q8 rows) into the split's scratch buffer;
// here each block's 32 products are summed exactly in integers (8 packed dot products of 4
// lanes) and scaled by d_weight * d_x. So the result differs from the f32 path by the
// activation rounding (the quantised-path threshold), and agrees with the CPU's q8 kernels.
//
// One workgroup per weight row and group of up to NCOLS activation rows, invocations stride
// over blocks (as mul_mat.comp).
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
layout(binding = 1) readonly buffer B { uint xq[]; };  // q8 rows: 9 words per block
layout(binding = 3) writeonly buffer D { float d[]; };
#include "raw_read.glsl"
#include "reduce.glsl"

spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018],
                  id = 4450)
int sdot4x8_packed(uint a, uint b, spirv_literal int packed_vector_format);

// Bytes b..b+3 as one little-endian word; b is even (GGUF blocks are 2-byte aligned).
uint raw_word_even(uint b) {
  const uint w = RAW[b >> 2];
  return (b & 2u) == 0u ? w : (w >> 16) | (RAW[(b >> 2) + 1u] << 16);
}

// Q4_0 levels: nibble - 8. Per lane, (q | 0x80) - 8 cannot borrow from the next lane, and
// ^ 0x80 takes the 128 back off modulo 256: q - 8 as two's complement.
uint q4_levels(uint nibbles) {
  return (((nibbles & 0x0F0F0F0Fu) | 0x80808080u) - 0x08080808u) ^ 0x80808080u;
}
// Q4_0 quant bytes (byte i: element i in the low nibble, i + 16 in the high one) to words.
void q4_words(uint qs, out uint w[8]) {
  [[unroll]] for (uint i = 0u; i < 4u; ++i) {
    const uint nib = raw_word_even(qs + 4u * i);
    w[i] = q4_levels(nib);
    w[i + 4u] = q4_levels(nib >> 4);
  }
}

// Block `blk` (32 values) of the row at byte rb: its 32 signed levels as 8 words of 4 int8
// lanes (element 4i + l in lane l of word i), and its scale. The regrouped layouts are the
// CPU's (lib/core/quant/repack.h; raw_read.glsl reads them element by element).
float weight_block(uint rb, uint blk, out uint w[8]) {
#if defined(WTYPE_Q8_0)
  const uint at = rb + blk * 34u;
  [[unroll]] for (uint i = 0u; i < 8u; ++i) w[i] = raw_word_even(at + 2u + 4u * i);
  return raw_f16(at);
#elif defined(WTYPE_Q4_0)
  const uint at = rb + blk * 18u;
  q4_words(at + 2u, w);
  return raw_f16(at);
#elif defined(WTYPE_Q4_0_R4)
  // Groups of 4 blocks, 72 bytes: 4 f16 scales, then each block's 16 quant bytes.
  const uint grp = rb + (blk >> 2) * 72u, b = blk & 3u;
  q4_words(grp + 8u + 16u * b, w);
  return raw_f16(grp + 2u * b);
#elif defined(WTYPE_Q8_0_R4)
  // Groups of 4 blocks, 136 bytes: 4 f16 scales, the first 16 values of each block, then
  // the last 16 of each.
  const uint grp = rb + (blk >> 2) * 136u, b = blk & 3u;
  [[unroll]] for (uint i = 0u; i < 4u; ++i) {
    w[i] = raw_word_even(grp + 8u + 16u * b + 4u * i);
    w[i + 4u] = raw_word_even(grp + 72u + 16u * b + 4u * i);
  }
  return raw_f16(grp + 2u * b);
#elif defined(WTYPE_Q4_0_X16)
  // Super-groups of 16 blocks, 288 bytes: 16 f16 scales, then block b's qs[4t..4t+3] at
  // 32 + 64t + 4b.
  const uint grp = rb + (blk >> 4) * 288u, b = blk & 15u;
  [[unroll]] for (uint t = 0u; t < 4u; ++t) {
    const uint nib = raw_word_even(grp + 32u + 64u * t + 4u * b);
    w[t] = q4_levels(nib);
    w[t + 4u] = q4_levels(nib >> 4);
  }
  return raw_f16(grp + 2u * b);
#elif defined(WTYPE_Q8_0_X16)
  // Super-groups of 16 blocks, 544 bytes: 16 f16 scales, then elements 4t.. (step 2t) and
  // 16 + 4t.. (step 2t + 1) of block b at 32 + 64 * step + 4b, biased by 128 (^ 0x80 per
  // lane makes them two's complement).
  const uint grp = rb + (blk >> 4) * 544u, b = blk & 15u;
  [[unroll]] for (uint t = 0u; t < 4u; ++t) {
    w[t] = raw_word_even(grp + 32u + 128u * t + 4u * b) ^ 0x80808080u;
    w[t + 4u] = raw_word_even(grp + 96u + 128u * t + 4u * b) ^ 0x80808080u;
  }
  return raw_f16(grp + 2u * b);
#else
#error "mul_mat_dot: WTYPE_ Q8_0, Q4_0, Q4_0_R4, Q8_0_R4, Q4_0_X16 or Q8_0_X16"
#endif
}

// sum_e level[e] * q[e] * d over the q8 block at word xb.
float block_dot(const uint w[8], uint xb) {
  int acc = 0;
  [[unroll]] for (uint i = 0u; i < 8u; ++i) acc += sdot4x8_packed(w[i], xq[xb + i], 0);
  return uintBitsToFloat(xq[xb + 8u]) * float(acc);
}

void main() {
  // ne0 = K (a multiple of 32), i0 = N (weight rows), i1 = M (activation rows); sb in words.
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
    const float dw = weight_block(rb, blk, w);
    [[unroll]] for (uint c = 0u; c < NCOLS; ++c)
      if (c < ncols) sum[c] += dw * block_dot(w, pc.off_b + (c0 + c) * pc.sb + blk * 9u);
  }
  [[unroll]] for (uint c = 0u; c < NCOLS; ++c) {
    if (c >= ncols) break;  // uniform across the workgroup
    const float r = wg_reduce(sum[c], false);
    if (gl_LocalInvocationID.x == 0u) d[pc.off_d + (c0 + c) * pc.sd + n] = r;
  }
}
