#version 450
// kv_store: writes each token's K and V rows (f32 activations) into its page of the KV
// pool in device memory, converted to the page type (WTYPE_F32/F16/BF16) with the CPU's
// rounding (lib/core/float_conv.h), so pages hold the same bits on both backends.
// Table (binding 2, from the host per run): [0, T) the pool slot of each token's page,
// [T, 2T) its position. One invocation per 32-bit word of a row; z: 0 = K, 1 = V.
// Push constants: off_a/off_b K/V (floats), off_c table, off_d pool (words); ne0 row
// values; sa/sb K/V row strides; ne1/ne2 K/V component starts in slot 0, sc slot, sd row
// (words); i2 log2(rows per page); i3 tokens.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(binding = 0) readonly buffer K { float k[]; };
layout(binding = 1) readonly buffer V { float v[]; };
layout(binding = 2) readonly buffer Table { uint tbl[]; };
#if defined(WTYPE_FP8_KV)
layout(binding = 3) buffer Pool { uint pool[]; };  // atomics on words shared by two blocks
#else
layout(binding = 3) writeonly buffer Pool { uint pool[]; };
#endif

// Round to nearest even, as f32_to_f16 / f32_to_bf16 on the CPU.
uint to_f16(float f) {
  const uint x = floatBitsToUint(f);
  const uint sign = (x >> 16) & 0x8000u;
  const uint absx = x & 0x7fffffffu;
  if (absx > 0x7f800000u) return sign | 0x7e00u;
  if (absx >= 0x477ff000u) return sign | 0x7c00u;
  if (absx < 0x38800000u) return sign | (floatBitsToUint(uintBitsToFloat(absx) + 0.5) - 0x3f000000u);
  const uint v = absx + 0xc8000fffu + ((absx >> 13) & 1u);
  return sign | ((v >> 13) & 0xffffu);
}
uint to_bf16(float f) {
  uint x = floatBitsToUint(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return ((x >> 16) | 0x40u) & 0xffffu;
  x += 0x7fffu + ((x >> 16) & 1u);
  return x >> 16;
}

float src(bool is_v, uint row, uint e) {
  return is_v ? v[pc.off_b + row * pc.sb + e] : k[pc.off_a + row * pc.sa + e];
}

#if defined(WTYPE_FP8_KV)
#include "fp8_kv_store.glsl"
#else
void main() {
  const uint w = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
  const bool is_v = gl_WorkGroupID.z == 1u;
#if defined(WTYPE_F32)
  if (w >= pc.ne0) return;
  const uint word = floatBitsToUint(src(is_v, t, w));
#else
  if (2u * w >= pc.ne0) return;
  const float a = src(is_v, t, 2u * w), b = src(is_v, t, 2u * w + 1u);
#if defined(WTYPE_F16)
  const uint word = to_f16(a) | (to_f16(b) << 16);
#else
  const uint word = to_bf16(a) | (to_bf16(b) << 16);
#endif
#endif
  const uint T = pc.i3, pos = tbl[pc.off_c + T + t];
  const uint row = tbl[pc.off_c + t] * pc.sc + (pos & ((1u << pc.i2) - 1u)) * pc.sd;
  pool[pc.off_d + (is_v ? pc.ne2 : pc.ne1) + row + w] = word;
}
#endif
