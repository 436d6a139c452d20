#version 450
// Rows of a table (type WTYPE, byte-addressed) picked by I32 ids, converted to f32.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(binding = 0) readonly buffer A { uint RAW[]; };
layout(binding = 1) readonly buffer B { int ids[]; };
layout(binding = 3) writeonly buffer D { float d[]; };
#include "raw_read.glsl"

void main() {
  const uint j = gl_GlobalInvocationID.x, row = row_index();
  if (j >= pc.ne0 || row >= pc.nrows) return;
  const uint rb = pc.off_a + uint(ids[pc.off_b + row]) * pc.sa;
  d[pc.off_d + row * pc.sd + j] = raw_elem(rb, j);
}
