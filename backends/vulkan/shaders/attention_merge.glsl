// The (max, sum, output) state of attention over a range of positions, and how two ranges
// combine. Decode splits a sequence into spans of SPAN positions, one workgroup each,
// merged by attention_merge.comp; the single-pass kernel walks the same spans and merges
// them with the same function, so a token's output does not depend on which kernel ran it
// (decode equals prefill bit for bit). `precise` keeps the compiler from fusing the
// multiply-adds differently in the two shaders.
const uint SPAN = 256u;          // positions per span (a multiple of the 64-row chunks)
const uint MAX_HD = 256u;        // vk_kv_ops.cpp refuses larger heads
const uint ACC_N = MAX_HD / 64u; // output values per invocation (64 invocations)

// (M, L, ACC) <- (M, L, ACC) combined with (m, l, acc). M = -inf (nothing yet) gives
// exactly (m, l, acc): exp(-inf) = 0.
void merge_state(inout float M, inout float L, inout float ACC[ACC_N], float m, float l,
                 float acc[ACC_N]) {
  const float mn = max(M, m);
  precise const float c1 = exp(M - mn);
  precise const float c2 = exp(m - mn);
  precise const float sum = L * c1 + l * c2;
  L = sum;
  [[unroll]] for (uint k = 0u; k < ACC_N; ++k) {
    precise const float a = ACC[k] * c1 + acc[k] * c2;
    ACC[k] = a;
  }
  M = mn;
}
