// e^x for x <= 0 on 16 lanes, shared by the AVX-512 attention (softmax) and SwiGLU kernels.
// Include only from files compiled with AVX-512 enabled.
#pragma once

#include <immintrin.h>

#include "backends/cpu/exp_poly.h"

namespace v4::cpu {

// x = n ln2 + r (see kExpPoly); 2^n by vscalefps; arguments below kExpMin give 0.
inline __m512 exp_nonpositive(__m512 x) {
  const __m512 min_x = _mm512_set1_ps(kExpMin);
  const __mmask16 keep = _mm512_cmp_ps_mask(x, min_x, _CMP_GE_OQ);
  x = _mm512_max_ps(x, min_x);
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), r);
  __m512 p = _mm512_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpPoly[i]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(keep, p, n);
}

}  // namespace v4::cpu
