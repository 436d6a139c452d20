// 16 float weights at a time from F32, F16 and BF16 rows, shared by the AVX-512 matvec and
// GEMM kernels (the same conversions, so the same products). Include only from files
// compiled with AVX-512 enabled.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace v4::cpu {

struct F32Load {
  static __m512 load(const uint8_t* w, int64_t j) {
    return _mm512_loadu_ps(reinterpret_cast<const float*>(w) + j);
  }
  static float scalar(const uint8_t* w, int64_t j) { return reinterpret_cast<const float*>(w)[j]; }
};

struct F16Load {
  static __m512 load(const uint8_t* w, int64_t j) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * j)));
  }
  static float scalar(const uint8_t* w, int64_t j) {
    return _cvtsh_ss(reinterpret_cast<const uint16_t*>(w)[j]);
  }
};

struct BF16Load {
  static __m512 load(const uint8_t* w, int64_t j) {
    const __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * j)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
  static float scalar(const uint8_t* w, int64_t j) {
    const uint32_t u = static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(w)[j]) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
};

// The end of a float row's dot product: the two accumulators' lanes summed, then the
// values after the last whole 16 (from j to k) one by one.
template <class L>
inline float float_dot_finish(__m512 a0, __m512 a1, const uint8_t* w, const float* x, int64_t j,
                              int64_t k) {
  float s = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
  for (; j < k; ++j) s += L::scalar(w, j) * x[j];
  return s;
}

}  // namespace v4::cpu
