// Byte-addressed reads from a uint[] binding named RAW (any alignment of GGUF blocks),
// so no 8- or 16-bit storage feature is needed.
uint raw_byte(uint b) { return (RAW[b >> 2] >> ((b & 3u) * 8u)) & 0xFFu; }
int raw_i8(uint b) { return int(raw_byte(b) << 24) >> 24; }
float raw_f16(uint b) {  // b is even
  const uint w = RAW[b >> 2];
  return unpackHalf2x16((b & 2u) != 0u ? (w >> 16) : (w & 0xFFFFu)).x;
}
float raw_f32(uint b) { return uintBitsToFloat(RAW[b >> 2]); }

// Element j of a row of type WTYPE starting at byte rb.
float raw_elem(uint rb, uint j) {
#if defined(WTYPE_F32)
  return raw_f32(rb + 4u * j);
#elif defined(WTYPE_F16)
  return raw_f16(rb + 2u * j);
#elif defined(WTYPE_Q8_0)
  const uint blk = rb + (j >> 5) * 34u;
  return raw_f16(blk) * float(raw_i8(blk + 2u + (j & 31u)));
#elif defined(WTYPE_Q4_0)
  const uint blk = rb + (j >> 5) * 18u;
  const uint e = j & 31u;
  const uint q = e < 16u ? (raw_byte(blk + 2u + e) & 0xFu) : (raw_byte(blk + 2u + e - 16u) >> 4);
  return raw_f16(blk) * (float(q) - 8.0);
#else
#error "WTYPE_* not defined"
#endif
}
