// Online softmax state for attention split into parts (flash decoding): each part keeps its
// running maximum m, the sum l of exp(score - m) and the weighted sum acc of value rows; two
// parts merge by rescaling both to the larger maximum. Host and device share this code, so
// the split-K attention kernel and its CPU test compute the same thing.
#pragma once

#include <cmath>

#include "lib/core/float_conv.h"  // V4_HD

namespace v4::dm {

struct SoftmaxPart {
  float m = -INFINITY;  // running maximum of the scores (-inf: nothing seen yet)
  float l = 0.0f;       // sum of exp(score - m)
};

// Adds one score whose value row is v[0..n) to the part (acc has n entries).
V4_HD void softmax_push(SoftmaxPart& p, float* acc, float score, const float* v, int n) {
  const float m = score > p.m ? score : p.m;
  const float old_scale = expf(p.m - m);  // 0 when p was empty (exp(-inf))
  const float w = expf(score - m);
  p.l = p.l * old_scale + w;
  for (int e = 0; e < n; ++e) acc[e] = acc[e] * old_scale + w * v[e];
  p.m = m;
}

// Merges part b (with acc_b) into part a (with acc_a). Either may be empty.
V4_HD void softmax_merge(SoftmaxPart& a, float* acc_a, const SoftmaxPart& b, const float* acc_b,
                         int n) {
  if (b.l == 0.0f) return;
  if (a.l == 0.0f) {
    a = b;
    for (int e = 0; e < n; ++e) acc_a[e] = acc_b[e];
    return;
  }
  const float m = a.m > b.m ? a.m : b.m;
  const float sa = expf(a.m - m), sb = expf(b.m - m);
  a.l = a.l * sa + b.l * sb;
  for (int e = 0; e < n; ++e) acc_a[e] = acc_a[e] * sa + acc_b[e] * sb;
  a.m = m;
}

// The attention output of a finished part: acc / l (zeros for an empty part).
V4_HD void softmax_finish(const SoftmaxPart& p, const float* acc, float* out, int n) {
  const float inv = p.l > 0.0f ? 1.0f / p.l : 0.0f;
  for (int e = 0; e < n; ++e) out[e] = acc[e] * inv;
}

}  // namespace v4::dm
