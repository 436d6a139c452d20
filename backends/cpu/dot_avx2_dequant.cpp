// An AVX2 dequantiser for Q6_K, for the fused-dequantisation dot kernel on CPUs without
// AVX-512 VNNI (Q4_K and Q5_K have integer kernels there). The reference dequantiser is
// scalar and was the whole cost of that kernel. This one computes the reference's arithmetic
// operation by operation (the same products, each rounded once, no fused multiply-add), so
// its floats are the reference's bit for bit (tests/unit/test_fast_kernels.cpp).
#include <immintrin.h>

#include "backends/cpu/dequant_avx2.h"
#include "lib/core/quant/quant.h"

namespace v4::cpu {

namespace {

// 32 signed bytes -> 32 floats, y = a * float(q) (a per 8-value group).
inline void store_scaled(__m256i q, const float* a, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int g = 0; g < 4; ++g) {
    const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[g]));
    _mm256_storeu_ps(y + 8 * g, _mm256_mul_ps(_mm256_set1_ps(a[g]), f));
  }
}

void dequantize_q6_k_avx2(const void* src, float* dst, int64_t n) {
  const auto* blocks = static_cast<const BlockQ6_K*>(src);
  const __m256i nib = _mm256_set1_epi8(0x0f), three = _mm256_set1_epi8(0x03);
  const __m256i bias = _mm256_set1_epi8(32);
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    const BlockQ6_K& b = blocks[i];
    const float d = _cvtsh_ss(b.d);
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql = b.ql + 64 * half;
      const int8_t* sc = b.scales + 8 * half;
      const __m256i qa = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
      const __m256i qb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
      const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh + 32 * half));
      // High bits 2 at a time: shift qh right by 0, 2, 4, 6 (16-bit shifts, then the mask).
      const auto high = [&](int shift) {
        return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, shift), three), 4);
      };
      const __m256i q[4] = {
          _mm256_or_si256(_mm256_and_si256(qa, nib), high(0)),
          _mm256_or_si256(_mm256_and_si256(qb, nib), high(2)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qa, 4), nib), high(4)),
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qb, 4), nib), high(6)),
      };
      float* y = dst + i * kQK_K + 128 * half;
      for (int t = 0; t < 4; ++t) {  // values 32t.., scales sc[2t] (l < 16), sc[2t + 1]
        const float s0 = d * static_cast<float>(sc[2 * t]), s1 = d * static_cast<float>(sc[2 * t + 1]);
        const float as[4] = {s0, s0, s1, s1};
        store_scaled(_mm256_sub_epi8(q[t], bias), as, y + 32 * t);
      }
    }
  }
}

}  // namespace

DequantFn avx2_dequantizer(DType t) {
  switch (t) {
    case DType::Q6_K: return dequantize_q6_k_avx2;
    default: return nullptr;
  }
}

}  // namespace v4::cpu
