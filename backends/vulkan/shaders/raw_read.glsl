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

// Element j of a row of type WTYPE starting at byte rb.
float raw_elem(uint rb, uint j) {
#if defined(WTYPE_F32)
  return raw_f32(rb + 4u * j);
#elif defined(WTYPE_F16)
  return raw_f16(rb + 2u * j);
#elif defined(WTYPE_BF16)
  return raw_bf16(rb + 2u * j);
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
#elif defined(WTYPE_Q4_K)
  // 256-value super-blocks of 144 bytes: d, dmin (f16), 12 bytes of 6-bit scales and
  // mins for 8 sub-blocks of 32, then 128 bytes of nibbles (per 64 values: 32 bytes, low
  // nibbles the first 32 values, high nibbles the next 32).
  const uint blk = rb + (j >> 8) * 144u;
  const uint e = j & 255u, chunk = e >> 6, within = e & 63u;
  const uint is = 2u * chunk + (within >> 5);
  const uint sb = blk + 4u;  // scales
  uint sc, m;
  if (is < 4u) {
    sc = raw_byte(sb + is) & 63u;
    m = raw_byte(sb + is + 4u) & 63u;
  } else {
    sc = (raw_byte(sb + is + 4u) & 0xFu) | ((raw_byte(sb + is - 4u) >> 6) << 4);
    m = (raw_byte(sb + is + 4u) >> 4) | ((raw_byte(sb + is) >> 6) << 4);
  }
  const uint q = raw_byte(blk + 16u + chunk * 32u + (within & 31u));
  const float nib = float(within < 32u ? (q & 0xFu) : (q >> 4));
  return (raw_f16(blk) * float(sc)) * nib - raw_f16(blk + 2u) * float(m);
#else
#error "WTYPE_* not defined"
#endif
}
