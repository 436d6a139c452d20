// AVX-512 VNNI dot kernels for Q4_K and Q5_K (the bulk of the common Q4_K_M / Q5_K_M files)
// with q8k activations. Before these, both types went through the fused-dequantisation
// kernel (the scalar reference dequantiser, then f32 FMAs), about 30x slower than Q4_0.
//
// A super-block of 256 values is 8 sub-blocks of 32 with their own 6-bit scale and minimum.
// The quant bytes unpack (low / high nibbles of 64 bytes) into four vectors holding sub-
// blocks (0|2), (1|3), (4|6), (5|7); the activations are stored in that order (q8k), so
// each vector is one vpdpbusd with unsigned weights, and its 16 int32 lanes take their
// sub-block's scale product (lanes 0-7 the first, 8-15 the second). The minimums do not
// depend on the weights' values: per (row, column) they are one 8-wide fma of dmin * m_j
// with the activations' block sums d_j * sum(q_j), which the quantiser stores.
//
// Result per (row, column): the 16-lane accumulator folded like the other kernels, minus
// the 8-lane minimum accumulator's sum; the same order for any number of columns, so
// prefill equals decode bit for bit.
#include <immintrin.h>

#include <cstring>

#include "backends/cpu/avx512_reduce.h"
#include "backends/cpu/dot_kernels.h"
#include "lib/core/quant/quant.h"

namespace v4::cpu {

namespace {

// The sub-block pair of each unpacked vector: low and high nibbles of the first 64 quant
// bytes, then of the next 64.
constexpr int kPair[4][2] = {{0, 2}, {1, 3}, {4, 6}, {5, 7}};

}  // namespace

void quantize_q8k_row(const float* x, uint8_t* out, int64_t k) {
  constexpr size_t kSo = q8_scales_offset(256);
  uint8_t tmp[kSo + 8 * sizeof(float)];  // one super-block in the q8 format
  const auto* tq = reinterpret_cast<const int8_t*>(tmp);
  for (int64_t i = 0; i < k / 256; ++i) {
    uint8_t* o = out + i * 544;
    quantize_q8_row(x + i * 256, tmp, 256);
    float d[8];
    std::memcpy(d, tmp + kSo, sizeof d);
    float lane_d[64], sums[8];
    for (int v = 0; v < 4; ++v)
      for (int h = 0; h < 2; ++h) {
        const int j = kPair[v][h];
        std::memcpy(o + 64 * v + 32 * h, tq + 32 * j, 32);
        for (int l = 0; l < 8; ++l) lane_d[16 * v + 8 * h + l] = d[j];
      }
    for (int j = 0; j < 8; ++j) {
      int32_t s = 0;
      for (int e = 0; e < 32; ++e) s += tq[32 * j + e];
      sums[j] = d[j] * static_cast<float>(s);
    }
    std::memcpy(o + 256, lane_d, sizeof lane_d);
    std::memcpy(o + 512, sums, sizeof sums);
  }
}

namespace {

// Scales and minimums of one super-block as floats: d * sc_j and dmin * m_j. The 12 bytes
// are read as three 32-bit words (k4_scale_min's packing, four sub-blocks per word).
inline void k4_scales(const uint8_t* scales, uint16_t d, uint16_t dmin, __m256* sc, __m256* mn) {
  uint32_t u[3];
  std::memcpy(u, scales, sizeof u);
  const uint32_t lo6 = 0x3f3f3f3fu, lo4 = 0x0f0f0f0fu, lo2 = 0x03030303u;
  const uint64_t s = (u[0] & lo6) | static_cast<uint64_t>((u[2] & lo4) | (((u[0] >> 6) & lo2) << 4)) << 32;
  const uint64_t m = (u[1] & lo6) | static_cast<uint64_t>(((u[2] >> 4) & lo4) | (((u[1] >> 6) & lo2) << 4)) << 32;
  const auto floats = [](uint64_t bytes) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(bytes))));
  };
  *sc = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(d)), floats(s));
  *mn = _mm256_mul_ps(_mm256_set1_ps(_cvtsh_ss(dmin)), floats(m));
}

template <bool kQ5, int NC>
void dot_k4_n(const uint8_t* w, const uint8_t* x, size_t xs, int64_t k, float* out) {
  constexpr int nc = NC;
  using Block = std::conditional_t<kQ5, BlockQ5_K, BlockQ4_K>;
  const auto* wb = reinterpret_cast<const Block*>(w);
  const __m512i nib = _mm512_set1_epi8(0x0f);
  // Lane l of vector v takes the scale of sub-block kPair[v][l / 8].
  __m512i pick[4];
  __m512i bit[4];  // Q5_K: the qh bit of each byte's sub-block
#pragma GCC unroll 4
  for (int v = 0; v < 4; ++v) {
    pick[v] = _mm512_inserti64x4(_mm512_set1_epi32(kPair[v][0]), _mm256_set1_epi32(kPair[v][1]), 1);
    bit[v] = _mm512_inserti64x4(_mm512_set1_epi8(static_cast<char>(1 << kPair[v][0])),
                                _mm256_set1_epi8(static_cast<char>(1 << kPair[v][1])), 1);
  }
  __m512 acc[kMaxCols];
  __m256 accm[kMaxCols];
  for (int c = 0; c < nc; ++c) {
    acc[c] = _mm512_setzero_ps();
    accm[c] = _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < k / 256; ++i) {
    const Block& b = wb[i];
    __m256 sc8, mn8;
    k4_scales(b.scales, b.d, b.dmin, &sc8, &mn8);
    __m512 sw[4];
    __m512i q[4];
    const __m512i raw0 = _mm512_loadu_si512(b.qs), raw1 = _mm512_loadu_si512(b.qs + 64);
    q[0] = _mm512_and_si512(raw0, nib);
    q[1] = _mm512_and_si512(_mm512_srli_epi16(raw0, 4), nib);
    q[2] = _mm512_and_si512(raw1, nib);
    q[3] = _mm512_and_si512(_mm512_srli_epi16(raw1, 4), nib);
    if constexpr (kQ5) {
      const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qh)));
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v)
        q[v] = _mm512_mask_add_epi8(q[v], _mm512_test_epi8_mask(qh, bit[v]), q[v], _mm512_set1_epi8(16));
    }
#pragma GCC unroll 4
    for (int v = 0; v < 4; ++v) sw[v] = _mm512_permutexvar_ps(pick[v], _mm512_castps256_ps512(sc8));
    for (int c = 0; c < nc; ++c) {
      const uint8_t* xr = x + c * xs + i * 544;
      const float* xd = reinterpret_cast<const float*>(xr + 256);
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) {
        const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[v], _mm512_loadu_si512(xr + 64 * v));
        acc[c] = _mm512_fmadd_ps(_mm512_mul_ps(sw[v], _mm512_loadu_ps(xd + 16 * v)), _mm512_cvtepi32_ps(dot), acc[c]);
      }
      accm[c] = _mm256_fmadd_ps(mn8, _mm256_loadu_ps(reinterpret_cast<const float*>(xr + 512)), accm[c]);
    }
  }
  for (int c = 0; c < nc; ++c) out[c] = hsum256(fold512(acc[c])) - hsum256(accm[c]);
}

template <bool kQ5>
void dot_k4(const uint8_t* w, const uint8_t* x, size_t xs, int nc, int64_t k, float* out) {
  with_cols(nc, [&](auto n) { dot_k4_n<kQ5, decltype(n)::value>(w, x, xs, k, out); });
}

const DotKernel kQ4_K{ActFormat::q8k, dot_k4<false>, "avx512-vnni"};
const DotKernel kQ5_K{ActFormat::q8k, dot_k4<true>, "avx512-vnni"};

}  // namespace

const DotKernel* avx512_k4_dot_kernel(DType t) {
  switch (t) {
    case DType::Q4_K: return &kQ4_K;
    case DType::Q5_K: return &kQ5_K;
    default: return nullptr;
  }
}

}  // namespace v4::cpu
