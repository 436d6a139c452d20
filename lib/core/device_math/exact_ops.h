// Float operations rounded one at a time on host and device alike. nvcc contracts a * b + c
// into one fused multiply-add by default (one rounding instead of two); the reference
// dequantisers round each product, so device code that must match them bit for bit goes
// through these. Host builds compile them to the plain operators (x86-64 g++ and clang
// contract nothing without -mfma / FP_CONTRACT ON).
#pragma once

#include "lib/core/float_conv.h"  // V4_HD

namespace v4::dm {

V4_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

V4_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

V4_HD float sub_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}

}  // namespace v4::dm
