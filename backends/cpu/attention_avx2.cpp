// Attention over the paged KV cache (f32, f16, bf16 or FP8 rows) with AVX2 + FMA + F16C. One task is one (token,
// KV head) pair: each cached K and V row is read once and used by every query head of
// the group, so a decode step reads the cache once. Scores, softmax and the weighted sum
// of V follow the reference kernel's definition; only the summation order differs.
// Compiled with AVX2 enabled; called only when CPUID says it exists.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "backends/cpu/attention_rows.h"
#include "backends/cpu/fast_attention.h"

namespace v4::cpu {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// e^x for x <= 0 (softmax after subtracting the maximum), 8 lanes (see kExpPoly); 2^n
// through the exponent bits.
inline __m256 exp_nonpositive(__m256 x) {
  const __m256 min_x = _mm256_set1_ps(kExpMin);
  const __m256 keep = _mm256_cmp_ps(x, min_x, _CMP_GE_OQ);
  x = _mm256_max_ps(x, min_x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), r);
  __m256 p = _mm256_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[i]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(e)), keep);
}

// Softmax of a[0..n) in place.
inline void softmax_row(float* a, int64_t n) {
  __m256 vmx = _mm256_set1_ps(-INFINITY);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(a + j));
  float mx = -INFINITY;
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmx);
  for (float l : lanes) mx = std::max(mx, l);
  for (int64_t k = j; k < n; ++k) mx = std::max(mx, a[k]);
  const __m256 m = _mm256_set1_ps(mx);
  __m256 vsum = _mm256_setzero_ps();
  for (j = 0; j + 8 <= n; j += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(a + j), m));
    _mm256_storeu_ps(a + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  float sum = hsum(vsum);
  for (int64_t k = j; k < n; ++k) {
    a[k] = std::exp(a[k] - mx);
    sum += a[k];
  }
  const __m256 inv = _mm256_set1_ps(1.0f / sum);
  for (j = 0; j + 8 <= n; j += 8) _mm256_storeu_ps(a + j, _mm256_mul_ps(_mm256_loadu_ps(a + j), inv));
  for (int64_t k = j; k < n; ++k) a[k] *= 1.0f / sum;
}

template <RowKind kKind>
inline __m256 load8(const uint8_t* row, int64_t e) {
  if constexpr (kKind == RowKind::f16) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * e)));
  } else if constexpr (kKind == RowKind::bf16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 2 * e));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + e);
  }
}

// In-place transpose of an 8x8 block of floats held in eight registers.
inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// Scores of 8 rows against kG query heads: out[g * stride + r] = scale * q_g . k_r. The K
// slices are transposed so that each lane accumulates one row's dot product over e in order:
// a score depends only on its q and k, never on its neighbours or the block size, so decode
// and prefill (and any page size) agree bit for bit.
template <RowKind kLoad, int kG>
inline void scores8(const float* q, int64_t hd, const uint8_t* const* k, int m, float scale,
                    float* out, int64_t stride) {
  alignas(32) static const float zero_row[512] = {};
  alignas(32) float kt[512 * 8];  // [e][row]
  for (int64_t c = 0; c < hd; c += 8) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i)
      r[i] = i < m ? load8<kLoad>(k[i], c) : _mm256_loadu_ps(zero_row);
    transpose8(r);
    for (int i = 0; i < 8; ++i) _mm256_store_ps(kt + (c + i) * 8, r[i]);
  }
  __m256 acc[kG];
  #pragma GCC unroll 8
  for (int g = 0; g < kG; ++g) acc[g] = _mm256_setzero_ps();
  for (int64_t e = 0; e < hd; ++e) {
    const __m256 ke = _mm256_load_ps(kt + e * 8);
    #pragma GCC unroll 8
    for (int g = 0; g < kG; ++g) acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(q + g * hd + e), ke, acc[g]);
  }
  alignas(32) float lanes[8];
  #pragma GCC unroll 8
  for (int g = 0; g < kG; ++g) {
    _mm256_store_ps(lanes, _mm256_mul_ps(acc[g], _mm256_set1_ps(scale)));
    std::memcpy(out + g * stride, lanes, static_cast<size_t>(m) * sizeof(float));
  }
}

// o_g += sum_r a_g[r] v_r over a block's rows, in row order for every element (the same
// order whatever the block boundaries). a_g = a + g * stride; o_g = o + g * hd.
template <RowKind kLoad, int kG>
inline void accumulate_v(const float* a, int64_t stride, const uint8_t* const* v, int m, int64_t hd,
                         float* o) {
  for (int64_t c = 0; c < hd; c += 8) {
    __m256 acc[kG];
    #pragma GCC unroll 8
    for (int g = 0; g < kG; ++g) acc[g] = _mm256_loadu_ps(o + g * hd + c);
    for (int r = 0; r < m; ++r) {
      const __m256 ve = load8<kLoad>(v[r], c);
      #pragma GCC unroll 8
      for (int g = 0; g < kG; ++g) acc[g] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + g * stride + r), ve, acc[g]);
    }
    #pragma GCC unroll 8
    for (int g = 0; g < kG; ++g) _mm256_storeu_ps(o + g * hd + c, acc[g]);
  }
}

// Attention of the batch tokens [t0, t0 + nt) (one sequence, consecutive positions) for KV
// head h. The tokens share each K and V block while it is in L1; every token's arithmetic is
// the same as if it ran alone, so results do not depend on how tokens are tiled.
template <RowKind kKind>
void attend_tile(const KvView& kv, const Tensor* node, int32_t t0, int32_t nt, int64_t h, float* scores) {
  constexpr RowKind kLoad = load_kind(kKind);
  const Tensor* q = node->src[0];
  const int kc = node->iparam[0], vc = node->iparam[1];
  const int64_t hd = q->ne[0], n_head = q->ne[1];
  const int64_t group = n_head / node->iparam[2];
  const float scale = node->fparam[0];
  const int32_t s = kv.tok_seq[t0], p0 = kv.tok_pos[t0];
  const int32_t n_rows = p0 + nt;  // rows the last token reads; token u reads p0 + u + 1
  // Scores of token u's head g: sc(u, g)[j].
  auto sc = [&](int32_t u, int64_t g) { return scores + (u * group + g) * static_cast<int64_t>(n_rows); };
  auto qrow = [&](int32_t u) {
    return reinterpret_cast<const float*>(static_cast<const uint8_t*>(q->data) +
                                          ((t0 + u) * n_head + h * group) * q->nb[1]);
  };
  auto rows_for = [&](int32_t u, int32_t j0, int32_t m) { return std::min(m, p0 + u + 1 - j0); };
  const size_t kb = kv.comps[kc].row_bytes, vb = kv.comps[vc].row_bytes;
  const int64_t elems = kv.comps[kc].row_elems;
  // FP8 head slices of one block, expanded (head_dim <= 512 is checked at build).
  alignas(32) float fp8_buf[kKind == RowKind::fp8 ? kBlockRows * 512 : 1];
  const uint8_t* slices[kBlockRows];

  for_each_block(kv, kc, s, n_rows, kb * h * hd / elems, kb * hd / elems,
                 [&](int32_t j0, int32_t m, const uint8_t* const* rows) {
    block_slices<kKind>(kv, kc, s, n_rows - 1, j0, m, rows, h * hd, hd, fp8_buf, slices);
    for (int32_t u = 0; u < nt; ++u) {
      const int32_t mu = rows_for(u, j0, m);
      for (int32_t i = 0; i < mu; i += 8)
        for_head_runs(group, [&](int64_t g0, auto kG) {
          scores8<kLoad, kG()>(qrow(u) + g0 * hd, hd, slices + i, std::min(8, mu - i), scale,
                               sc(u, g0) + j0 + i, n_rows);
        });
    }
  });
  for (int32_t u = 0; u < nt; ++u)
    for (int64_t g = 0; g < group; ++g) softmax_row(sc(u, g), p0 + u + 1);
  // Output: o_g = sum_j a_g[j] v_j, each V block read once for the whole group.
  auto orow = [&](int32_t u) {
    return reinterpret_cast<float*>(static_cast<uint8_t*>(node->data) + (t0 + u) * node->nb[1]) + h * group * hd;
  };
  for (int32_t u = 0; u < nt; ++u) std::memset(orow(u), 0, static_cast<size_t>(group * hd) * sizeof(float));
  for_each_block(kv, vc, s, n_rows, vb * h * hd / elems, vb * hd / elems,
                 [&](int32_t j0, int32_t m, const uint8_t* const* rows) {
    block_slices<kKind>(kv, vc, s, n_rows - 1, j0, m, rows, h * hd, hd, fp8_buf, slices);
    for (int32_t u = 0; u < nt; ++u) {
      const int32_t mu = rows_for(u, j0, m);
      if (mu <= 0) continue;
      for_head_runs(group, [&](int64_t g0, auto kG) {
        accumulate_v<kLoad, kG()>(sc(u, g0) + j0, n_rows, slices, mu, hd, orow(u) + g0 * hd);
      });
    }
  });
}

template <RowKind kKind>
void attend(const KvView& kv, const Tensor* node, int ith, int nth) {
  deal_tiles<kKind>(kv, node, ith, nth, [&](int32_t t0, int32_t nt, int64_t h, float* scores) {
    attend_tile<kKind>(kv, node, t0, nt, h, scores);
  });
}

}  // namespace

void attention_avx2(const Tensor* node, int ith, int nth) {
  const KvView& kv = *static_cast<const KvView*>(node->pparam);
  with_row_kind(kv, node, [&](auto kind) { attend<kind()>(kv, node, ith, nth); });
}

}  // namespace v4::cpu
