// The constants of e^x for x <= 0 as the vector kernels compute it (the softmax of the
// attention kernels, the AVX-512 SwiGLU): x = n ln2 + r with |r| <= ln2/2 (ln2 split in two
// for an exact n ln2), e^r = 1 + r + r^2 P(r) with P's coefficients below (highest power
// first; relative error ~2e-7), times 2^n. Arguments below kExpMin give 0, as expf does
// within float range.
#pragma once

namespace v4::cpu {

constexpr float kExpMin = -87.0f;
constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                               4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

}  // namespace v4::cpu
