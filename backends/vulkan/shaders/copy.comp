#version 450
// Converts rows of type WTYPE (byte-addressed) to f32 (default) or to f16 (OUT_F16:
// one invocation per pair of elements, packed into one word).
#include "common.glsl"
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer A { uint RAW[]; };
#ifdef OUT_F16
layout(binding = 3) writeonly buffer D { uint d[]; };
#else
layout(binding = 3) writeonly buffer D { float d[]; };
#endif
#include "raw_read.glsl"

void main() {
  const uint j = gl_GlobalInvocationID.x, row = row_index();
  const uint rb = pc.off_a + row * pc.sa;
#ifdef OUT_F16
  if (2u * j >= pc.ne0 || row >= pc.nrows) return;  // off_d and sd in words here
  d[pc.off_d + row * pc.sd + j] = packHalf2x16(vec2(raw_elem(rb, 2u * j), raw_elem(rb, 2u * j + 1u)));
#else
  if (j >= pc.ne0 || row >= pc.nrows) return;
  d[pc.off_d + row * pc.sd + j] = raw_elem(rb, j);
#endif
}
