// Workgroup sum / max of one float per invocation (local_size_x = WG). Uses subgroup
// arithmetic when the device has it (USE_SUBGROUP), else a shared-memory tree.
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
shared float red_buf[WG];

float wg_reduce(float v, bool is_max) {
#ifdef USE_SUBGROUP
  v = is_max ? subgroupMax(v) : subgroupAdd(v);
  if (subgroupElect()) red_buf[gl_SubgroupID] = v;
  barrier();
  float r = red_buf[0];
  for (uint i = 1u; i < gl_NumSubgroups; ++i) r = is_max ? max(r, red_buf[i]) : r + red_buf[i];
  barrier();
  return r;
#else
  red_buf[gl_LocalInvocationID.x] = v;
  barrier();
  [[unroll]] for (uint s = WG / 2u; s > 0u; s >>= 1u) {
    if (gl_LocalInvocationID.x < s) {
      const float o = red_buf[gl_LocalInvocationID.x + s];
      red_buf[gl_LocalInvocationID.x] = is_max ? max(red_buf[gl_LocalInvocationID.x], o)
                                               : red_buf[gl_LocalInvocationID.x] + o;
    }
    barrier();
  }
  const float r = red_buf[0];
  barrier();
  return r;
#endif
}
