// Shared by every v4engine compute shader: one push-constant block and the binding
// convention (0, 1, 2: sources; 3: destination). Offsets and row strides are in the unit
// the shader reads its binding in (floats for f32 views, bytes for raw uint views).
#extension GL_EXT_control_flow_attributes : enable

layout(push_constant) uniform Params {
  uint off_a, off_b, off_c, off_d;  // start of each binding's tensor inside the bound range
  uint ne0, nrows, ne1, ne2;        // row length, rows of the destination, its ne[1], ne[2]
  uint sa, sb, sc, sd;              // row strides
  uint nrows_b;                     // rows of source b (1: broadcast over the rows of a)
  uint op;                          // variant / flags
  uint i0, i1, i2, i3;
  float f0, f1, f2, f3, f4, f5, f6, f7;
} pc;

// Rows beyond 65535 workgroups continue in z (dispatch limits).
uint row_index() { return gl_WorkGroupID.y + gl_NumWorkGroups.y * gl_WorkGroupID.z; }
