// kv_store for FP8_KV pages (included by kv_store.comp with WTYPE_FP8_KV): one invocation
// per 32-value block of a row, quantised exactly as quantize_fp8_kv on the CPU
// (lib/core/quant/float_types.cpp), so both backends store the same bytes; the exact f32
// row also goes to the sequence's recent-row window ring in the same pool.
// Everything is in bytes here (rows of 33-byte blocks are not word-aligned): off_d pool,
// ne1/ne2 K/V component starts in slot 0, sc slot, sd row; table words [2T, 3T) / [3T, 4T)
// each token's K / V ring row, in bytes from the component's start.

// OCP E4M3 of |x| * scale with x's sign, saturating, round to nearest even: the steps of
// f32_to_fp8_e4m3 (lib/core/float_conv.h) applied to ldexp(x, -e). The sign comes from x,
// so a product flushed to zero keeps it as the CPU's does.
uint to_e4m3(float x, float scale) {
  const uint xb = floatBitsToUint(x);
  const uint sign = (xb >> 24) & 0x80u;
  if ((xb & 0x7fffffffu) > 0x7f800000u) return sign | 0x7fu;  // NaN
  const float a = abs(x) * scale;  // exact: scale is a power of two
  if (a >= 448.0) return sign | 0x7eu;
  if (a < 0.015625) {  // below 2^-6: subnormal, step 2^-9
    const float q = a * 512.0;
    uint m = uint(q);
    const float r = q - float(m);
    if (r > 0.5 || (r == 0.5 && (m & 1u) != 0u)) ++m;
    return sign | m;  // m == 8 rolls into the first normal
  }
  const uint ab = floatBitsToUint(a);
  uint e = (ab >> 23) - 120u;
  uint m3 = (ab & 0x7fffffu) >> 20;
  const uint rest = ab & 0xfffffu;
  if (rest > 0x80000u || (rest == 0x80000u && (m3 & 1u) != 0u)) ++m3;
  if (m3 == 8u) {
    m3 = 0u;
    ++e;
  }
  if (e > 15u || (e == 15u && m3 == 7u)) return sign | 0x7eu;
  return sign | (e << 3) | m3;
}

// The block's scale exponent: the smallest e with max|x| <= 448 * 2^e, which is the
// CPU's ceil(log2(max|x| / 448)) (a rounded quotient cannot cross a power of two the
// exact one does not: 448 * 2^e + 1 ulp over 448 lies above the midpoint), found from the
// bits of max|x| (448 = 1.75 * 2^8), so no division is involved. NaNs are skipped like
// fmax skips them; an all-zero or non-finite maximum keeps the smallest scale.
int block_exponent(uint amax_bits) {
  if (amax_bits == 0u || amax_bits >= 0x7f800000u) return -127;
  const int k = int(amax_bits >> 23) - 135;
  return clamp((amax_bits & 0x7fffffu) <= 0x600000u ? k : k + 1, -127, 127);
}

// Stores the block's bytes `bits` (those in `mask`) of one pool word: a word wholly
// inside the block plainly, a word shared with a neighbouring block or row with atomics
// on the block's own bytes only (disjoint masks, so any interleaving gives both).
void put_word(uint word, uint bits, uint mask) {
  if (mask == 0xffffffffu) {
    pool[word] = bits;
  } else {
    atomicAnd(pool[word], ~mask);
    atomicOr(pool[word], bits & mask);
  }
}

void main() {
  const uint blk = gl_GlobalInvocationID.x, t = gl_WorkGroupID.y;
  const bool is_v = gl_WorkGroupID.z == 1u;
  if (blk >= pc.ne0 / 32u) return;
  float x[32];
  uint amax = 0u;
  [[unroll]] for (uint i = 0u; i < 32u; ++i) {
    x[i] = src(is_v, t, 32u * blk + i);
    const uint a = floatBitsToUint(x[i]) & 0x7fffffffu;
    if (a <= 0x7f800000u) amax = max(amax, a);  // the largest |x| (float order = bit order)
  }
  const int e = block_exponent(amax);
  const float scale = uintBitsToFloat(uint(127 - e) << 23);  // 2^-e (e <= 120 here)
  uint bytes[33];
  bytes[0] = uint(e + 127);
  [[unroll]] for (uint i = 0u; i < 32u; ++i) bytes[1u + i] = to_e4m3(x[i], scale);

  const uint T = pc.i3, pos = tbl[pc.off_c + T + t];
  const uint comp = is_v ? pc.ne2 : pc.ne1;
  const uint at = pc.off_d + comp + tbl[pc.off_c + t] * pc.sc + (pos & ((1u << pc.i2) - 1u)) * pc.sd +
                  blk * 33u;
  uint word = at >> 2u, bits = 0u, mask = 0u;
  for (uint i = 0u; i < 33u; ++i) {
    const uint b = at + i, w = b >> 2u, sh = (b & 3u) * 8u;
    if (w != word) {
      put_word(word, bits, mask);
      word = w;
      bits = 0u;
      mask = 0u;
    }
    bits |= bytes[i] << sh;
    mask |= 0xffu << sh;
  }
  put_word(word, bits, mask);

  // The exact row in the ring (32-bit aligned: the ring starts on a slot).
  const uint ring = (pc.off_d + comp + tbl[pc.off_c + (is_v ? 3u : 2u) * T + t]) >> 2u;
  [[unroll]] for (uint i = 0u; i < 32u; ++i) pool[ring + 32u * blk + i] = floatBitsToUint(x[i]);
}
