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
  uint id = uint(ids[pc.off_b + row]);
  if (pc.op == 1u) {  // the table is bound in row ranges [i2, i3), one dispatch each
    if (id < pc.i2 || id >= pc.i3) return;
    id -= pc.i2;
  }
  const uint rb = pc.off_a + id * pc.sa;
  d[pc.off_d + row * pc.sd + j] = raw_elem(rb, j);
}
