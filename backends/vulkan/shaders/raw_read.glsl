// Byte-addressed reads from binding 0 (GGUF blocks at any alignment). By default from a
// uint[] view named RAW, unpacking bytes and halves with shifts, which needs no device
// feature; with SMALL_STORAGE (the device has 8- and 16-bit storage) from uint8_t[] and
// uint16_t[] views of the same binding, one load per byte or half.
#ifdef SMALL_STORAGE
uint raw_byte(uint b) { return uint(RAW8[b]); }
uint raw_u16(uint b) { return uint(RAW16[b >> 1]); }  // b is even
#else
uint raw_byte(uint b) { return (RAW[b >> 2] >> ((b & 3u) * 8u)) & 0xFFu; }
uint raw_u16(uint b) {  // b is even
  const uint w = RAW[b >> 2];
  return (b & 2u) != 0u ? (w >> 16) : (w & 0xFFFFu);
}
#endif
int raw_i8(uint b) { return int(raw_byte(b) << 24) >> 24; }
float raw_f16(uint b) { return unpackHalf2x16(raw_u16(b)).x; }
float raw_f32(uint b) { return uintBitsToFloat(RAW[b >> 2]); }
float raw_bf16(uint b) { return uintBitsToFloat(raw_u16(b) << 16); }

// Element e (0..31) of a block's 16 nibble bytes at qs: low nibbles 0..15, high 16..31.
uint nibble32(uint qs, uint e) {
  return e < 16u ? (raw_byte(qs + e) & 0xFu) : (raw_byte(qs + e - 16u) >> 4);
}
// Q5_0/Q5_1: the nibble plus bit e of the little-endian 32-bit word at qh.
uint level5(uint qh, uint qs, uint e) {
  return nibble32(qs, e) | (((raw_byte(qh + (e >> 3)) >> (e & 7u)) & 1u) << 4);
}
// OCP FP8 E4M3 (lib/core/float_conv.h fp8_e4m3_to_f32, same results).
float e4m3_to_f32(uint v) {
  const uint sign = (v & 0x80u) << 24, ex = (v >> 3) & 0xFu, mant = v & 7u;
  if (ex == 0xFu && mant == 7u) return uintBitsToFloat(sign | 0x7fc00000u);
  if (ex == 0u) {
    const float m = float(mant) * 0.001953125;  // mant * 2^-9
    return sign != 0u ? -m : m;
  }
  return uintBitsToFloat(sign | ((ex + 120u) << 23) | (mant << 20));
}
// Q4_K/Q5_K: value e (0..255) of the super-block at blk with level q; sub-block e / 32's
// 6-bit scale and min come from the 12 bytes at blk + 4.
float k_quant_value(uint blk, uint e, uint q) {
  const uint is = e >> 5, sb = blk + 4u;
  uint sc, m;
  if (is < 4u) {
    sc = raw_byte(sb + is) & 63u;
    m = raw_byte(sb + is + 4u) & 63u;
  } else {
    sc = (raw_byte(sb + is + 4u) & 0xFu) | ((raw_byte(sb + is - 4u) >> 6) << 4);
    m = (raw_byte(sb + is + 4u) >> 4) | ((raw_byte(sb + is) >> 6) << 4);
  }
  return (raw_f16(blk) * float(sc)) * float(q) - raw_f16(blk + 2u) * float(m);
}
// Q4_K/Q5_K: the 4 low bits of value e; per 64 values 32 bytes, low nibbles first.
uint k4_nibble(uint qs, uint e) {
  const uint q = raw_byte(qs + (e >> 6) * 32u + (e & 31u));
  return (e & 32u) != 0u ? (q >> 4) : (q & 0xFu);
}

// Element j of a row of type WTYPE starting at byte rb.
float raw_elem(uint rb, uint j) {
#if defined(WTYPE_F32)
  return raw_f32(rb + 4u * j);
#elif defined(WTYPE_F16)
  return raw_f16(rb + 2u * j);
#elif defined(WTYPE_BF16)
  return raw_bf16(rb + 2u * j);
#elif defined(WTYPE_F8_E4M3)
  return e4m3_to_f32(raw_byte(rb + j));
#elif defined(WTYPE_F8_E5M2)
  return unpackHalf2x16(raw_byte(rb + j) << 8).x;  // E5M2 is the top byte of an f16
#elif defined(WTYPE_Q8_0)
  const uint blk = rb + (j >> 5) * 34u;
  return raw_f16(blk) * float(raw_i8(blk + 2u + (j & 31u)));
#elif defined(WTYPE_Q4_0)
  const uint blk = rb + (j >> 5) * 18u;
  const uint e = j & 31u;
  const uint q = e < 16u ? (raw_byte(blk + 2u + e) & 0xFu) : (raw_byte(blk + 2u + e - 16u) >> 4);
  return raw_f16(blk) * (float(q) - 8.0);
#elif defined(WTYPE_Q4_0_R4)
  // The CPU's regrouped Q4_0 (lib/core/quant/repack.h): groups of 4 blocks, 72 bytes:
  // 4 f16 scales, then each block's 16 quant bytes.
  const uint grp = rb + (j >> 7) * 72u, b = (j >> 5) & 3u, e = j & 31u;
  const uint qb = grp + 8u + 16u * b;
  const uint q = e < 16u ? (raw_byte(qb + e) & 0xFu) : (raw_byte(qb + e - 16u) >> 4);
  return raw_f16(grp + 2u * b) * (float(q) - 8.0);
#elif defined(WTYPE_Q8_0_R4)
  // Regrouped Q8_0: groups of 4 blocks, 136 bytes: 4 f16 scales, the first 16 values of
  // each block, then the last 16 of each.
  const uint grp = rb + (j >> 7) * 136u, b = (j >> 5) & 3u, e = j & 31u;
  const uint at = grp + 8u + (e < 16u ? 16u * b + e : 64u + 16u * b + e - 16u);
  return raw_f16(grp + 2u * b) * float(raw_i8(at));
#elif defined(WTYPE_Q4_0_X16)
  // The CPU's X16 Q4_0 (lib/core/quant/repack.h): super-groups of 16 blocks, 288 bytes:
  // 16 f16 scales, then 4-byte pieces of the blocks' quant bytes interleaved: byte
  // 64t + 4b + i is block b's qs[4t + i].
  const uint grp = rb + (j >> 9) * 288u, b = (j >> 5) & 15u, e = j & 31u, f = e & 15u;
  const uint raw = raw_byte(grp + 32u + 64u * (f >> 2) + 4u * b + (f & 3u));
  const uint q = e < 16u ? (raw & 0xFu) : (raw >> 4);
  return raw_f16(grp + 2u * b) * (float(q) - 8.0);
#elif defined(WTYPE_Q8_0_X16)
  // The CPU's X16 Q8_0: super-groups of 16 blocks, 544 bytes: 16 f16 scales, then step s
  // (elements 4t.. for s = 2t, 16 + 4t.. for s = 2t + 1) of block b at 64s + 4b, biased by 128.
  const uint grp = rb + (j >> 9) * 544u, b = (j >> 5) & 15u, e = j & 31u, f = e & 15u;
  const uint s = 2u * (f >> 2) + (e >> 4);
  const uint raw = raw_byte(grp + 32u + 64u * s + 4u * b + (f & 3u));
  return raw_f16(grp + 2u * b) * (float(int(raw) - 128));
#elif defined(WTYPE_Q4_1)
  // 20 bytes: f16 d, f16 m, 16 nibble bytes (as Q4_0); x = d * q + m.
  const uint blk = rb + (j >> 5) * 20u;
  return raw_f16(blk) * float(nibble32(blk + 4u, j & 31u)) + raw_f16(blk + 2u);
#elif defined(WTYPE_Q5_0)
  // 22 bytes: f16 d, 4 bytes of 5th bits (bit e for element e), 16 nibble bytes.
  const uint blk = rb + (j >> 5) * 22u;
  return raw_f16(blk) * (float(level5(blk + 2u, blk + 6u, j & 31u)) - 16.0);
#elif defined(WTYPE_Q5_1)
  // 24 bytes: f16 d, f16 m, 4 bytes of 5th bits, 16 nibble bytes; x = d * q + m.
  const uint blk = rb + (j >> 5) * 24u;
  return raw_f16(blk) * float(level5(blk + 4u, blk + 8u, j & 31u)) + raw_f16(blk + 2u);
#elif defined(WTYPE_FP8_KV)
  // KV pages: 33 bytes: a biased power-of-two exponent, 32 E4M3 values (BlockFP8_KV).
  // 2^(e - 127) * v is exact (e = 0 only scales all-zero blocks, read as 0 here).
  const uint blk = rb + (j >> 5) * 33u;
  return uintBitsToFloat(raw_byte(blk) << 23) * e4m3_to_f32(raw_byte(blk + 1u + (j & 31u)));
#elif defined(WTYPE_FP8_B32)
  // 34 bytes: bf16 block scale, 32 E4M3 values.
  const uint blk = rb + (j >> 5) * 34u;
  return raw_bf16(blk) * e4m3_to_f32(raw_byte(blk + 2u + (j & 31u)));
#elif defined(WTYPE_Q4_K)
  // 256-value super-blocks of 144 bytes: d, dmin (f16), 12 bytes of 6-bit scales and
  // mins for 8 sub-blocks of 32, then 128 bytes of nibbles (per 64 values: 32 bytes, low
  // nibbles the first 32 values, high nibbles the next 32).
  const uint blk = rb + (j >> 8) * 144u, e = j & 255u;
  return k_quant_value(blk, e, k4_nibble(blk + 16u, e));
#elif defined(WTYPE_Q5_K)
  // As Q4_K with 32 bytes of 5th bits before the nibbles (176 bytes): bit 2c (+1 for the
  // high nibbles) of qh[e % 32] for value e in chunk c of 64.
  const uint blk = rb + (j >> 8) * 176u, e = j & 255u;
  const uint bit = 2u * (e >> 6) + ((e >> 5) & 1u);
  const uint q = k4_nibble(blk + 48u, e) | (((raw_byte(blk + 16u + (e & 31u)) >> bit) & 1u) << 4);
  return k_quant_value(blk, e, q);
#elif defined(WTYPE_Q6_K)
  // 210 bytes: ql[128], qh[64], 16 int8 scales, f16 d. Two halves of 128 values; quarter k
  // of 32 takes its low 4 bits from ql[l] (k even) or ql[l + 32] (k odd), the low nibble
  // for k < 2, and 2 high bits from qh[l] >> 2k; x = d * scale * (q - 32).
  const uint blk = rb + (j >> 8) * 210u, e = j & 255u;
  const uint half_ = e >> 7, quarter = (e >> 5) & 3u, l = e & 31u;
  const uint lo_byte = raw_byte(blk + 64u * half_ + l + 32u * (quarter & 1u));
  const uint lo = quarter < 2u ? (lo_byte & 0xFu) : (lo_byte >> 4);
  const uint hi = (raw_byte(blk + 128u + 32u * half_ + l) >> (2u * quarter)) & 3u;
  const int sc = raw_i8(blk + 192u + 8u * half_ + (l >> 4) + 2u * quarter);
  return (raw_f16(blk + 208u) * float(sc)) * float(int(lo | (hi << 4)) - 32);
#else
#error "WTYPE_* not defined"
#endif
}
