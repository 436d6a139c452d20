// Attention over the paged KV cache (f32, f16, bf16 or FP8 rows) with AVX-512 F/BW/VL/DQ.
// Same tasks and row walk as attention_avx2.cpp (attention_rows.h); the arithmetic is laid
// out differently so that no K block is transposed:
//  - scores: one 16-lane accumulator per K row, its lanes (query head g, phase p) of the
//    KV group's G query heads (G padded to Gp = 16 / kP, a power of two), phase p summing the
//    elements e = p (mod kP). Each step multiplies a vector of pre-arranged queries by kP
//    consecutive K elements broadcast to every head, so one K load serves the whole group;
//    the kP phases are added at the end in a fixed tree.
//  - scores are kept as [row][head] (G floats per row), so the softmax runs vertically
//    (rows down, heads across lanes) with no horizontal sums, and V accumulation reads a
//    row's weight for each head with an embedded broadcast.
//  - the division by the softmax sum is applied once to the output (o = (sum e v) / sum e).
// Every score and output element sums in an order fixed by the model's shape and the row's
// position, never by the batch or the tile, so prefill equals token-by-token decode bit for
// bit. Compiled with AVX-512 enabled; called only when CPUID says it exists.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "backends/cpu/attention_rows.h"
#include "backends/cpu/avx512_exp.h"
#include "backends/cpu/fast_attention.h"

namespace v4::cpu {
namespace {

inline __mmask16 first_lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : n <= 0 ? __mmask16(0) : static_cast<__mmask16>((1u << n) - 1);
}

// 16 elements [e, e + 16) of a head slice as f32; lanes outside `mask` are 0 and not read.
template <RowKind kKind>
inline __m512 load16(const uint8_t* row, int64_t e, __mmask16 mask) {
  if constexpr (kKind == RowKind::f16) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, row + 2 * e));
  } else if constexpr (kKind == RowKind::bf16) {
    const __m256i h = _mm256_maskz_loadu_epi16(mask, row + 2 * e);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  } else {
    return _mm512_maskz_loadu_ps(mask, reinterpret_cast<const float*>(row) + e);
  }
}

// kP consecutive floats from p repeated across the 16 lanes (one per padded query head).
template <int kP>
inline __m512 broadcast_phases(const float* p, __mmask16 tail) {
  if constexpr (kP == 1) {
    (void)tail;
    return _mm512_set1_ps(*p);
  } else if constexpr (kP == 2) {
    (void)tail;
    double d;
    std::memcpy(&d, p, sizeof d);
    return _mm512_castpd_ps(_mm512_set1_pd(d));
  } else if constexpr (kP == 4) {
    (void)tail;
    return _mm512_broadcast_f32x4(_mm_loadu_ps(p));
  } else if constexpr (kP == 8) {
    (void)tail;
    return _mm512_broadcast_f32x8(_mm256_loadu_ps(p));
  } else {
    return _mm512_maskz_loadu_ps(tail, p);  // the last step of a head size that is 8 mod 16
  }
}

// Lane l + w moved to lane l (w a power of two below 16; the lanes of a head's phases).
inline __m512 lanes_from(__m512 v, int w) {
  const __m512i idx = _mm512_xor_si512(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                       _mm512_set1_epi32(w));
  return _mm512_permutexvar_ps(idx, v);
}

constexpr int64_t kMaxHeadDim = kAvx512MaxHeadDim;
alignas(64) const float kZeroRow[kMaxHeadDim + 16] = {};

// A token's queries for the group arranged for score_block: step s holds, in lane
// g * kP + p, q_g[s * kP + p] (0 for padding heads and past the head size).
template <int kP>
void arrange_queries(const float* q, int64_t hd, int64_t group, float* qq) {
  constexpr int kGp = 16 / kP;
  const int64_t steps = (hd + kP - 1) / kP;
  for (int64_t s = 0; s < steps; ++s)
    for (int g = 0; g < kGp; ++g)
      for (int p = 0; p < kP; ++p) {
        const int64_t e = s * kP + p;
        qq[s * 16 + g * kP + p] = g < group && e < hd ? q[g * hd + e] : 0.0f;
      }
}

// Scores of a block's 16 rows k[0..16) (f32 head slices; rows past the block point at zeros)
// for the first m rows: out[r * group + g] = scale * q_g . k_r.
template <int kP>
inline void score_block(const float* qq, int64_t hd, const float* const* k, int m, float scale,
                        int64_t group, float* out) {
  const int64_t steps = (hd + kP - 1) / kP;
  __m512 acc[kBlockRows];
  #pragma GCC unroll 16
  for (int r = 0; r < kBlockRows; ++r) acc[r] = _mm512_setzero_ps();
  const __mmask16 full = 0xffff;
  for (int64_t s = 0; s < steps; ++s) {
    const __m512 qv = _mm512_load_ps(qq + s * 16);
    const __mmask16 tail = kP == 16 ? first_lanes(hd - s * 16) : full;
    #pragma GCC unroll 16
    for (int r = 0; r < kBlockRows; ++r)
      acc[r] = _mm512_fmadd_ps(qv, broadcast_phases<kP>(k[r] + s * kP, tail), acc[r]);
  }
  const __m512i heads = _mm512_set_epi32(15 * kP & 15, 14 * kP & 15, 13 * kP & 15, 12 * kP & 15, 11 * kP & 15,
                                         10 * kP & 15, 9 * kP & 15, 8 * kP & 15, 7 * kP & 15, 6 * kP & 15,
                                         5 * kP & 15, 4 * kP & 15, 3 * kP & 15, 2 * kP & 15, kP & 15, 0);
  const __m512 sc = _mm512_set1_ps(scale);
  const __mmask16 store = first_lanes(group);
  for (int r = 0; r < m; ++r) {
    __m512 v = acc[r];
    for (int w = kP / 2; w >= 1; w /= 2) v = _mm512_add_ps(v, lanes_from(v, w));
    v = _mm512_mul_ps(_mm512_permutexvar_ps(heads, v), sc);
    _mm512_mask_storeu_ps(out + r * group, store, v);
  }
}

// Softmax numerators of a token's scores a[n][group] in place (e = exp(s - max) per head),
// returning 1 / sum e per head in inv[0..group). Rows are read `per` at a time as one
// vector (lane l: head l % group), so the sums run vertically in a fixed order.
inline void softmax_rows(float* a, int64_t n, int64_t group, float* inv) {
  const int64_t per = 16 % group == 0 ? 16 / group : 1;
  const int64_t step = per * group;
  const __mmask16 full = first_lanes(step), tail = first_lanes((n % per) * group);
  const int64_t whole = n / per;
  __m512 vmax = _mm512_set1_ps(-INFINITY);
  for (int64_t i = 0; i < whole; ++i) vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(vmax, full, a + i * step));
  vmax = _mm512_mask_max_ps(vmax, tail, vmax, _mm512_maskz_loadu_ps(tail, a + whole * step));
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, vmax);
  float mx[16];
  for (int64_t g = 0; g < group; ++g) {
    mx[g] = lanes[g];
    for (int64_t v = 1; v < per; ++v) mx[g] = std::max(mx[g], lanes[v * group + g]);
  }
  for (int64_t l = 0; l < 16; ++l) lanes[l] = l < step ? mx[l % group] : 0.0f;
  const __m512 m = _mm512_load_ps(lanes);
  __m512 vsum = _mm512_setzero_ps();
  for (int64_t i = 0; i < whole; ++i) {
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(full, a + i * step), m));
    _mm512_mask_storeu_ps(a + i * step, full, e);
    vsum = _mm512_add_ps(vsum, e);
  }
  const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, a + whole * step), m));
  _mm512_mask_storeu_ps(a + whole * step, tail, e);
  vsum = _mm512_mask_add_ps(vsum, tail, vsum, e);
  _mm512_store_ps(lanes, vsum);
  for (int64_t g = 0; g < group; ++g) {
    float s = lanes[g];
    for (int64_t v = 1; v < per; ++v) s += lanes[v * group + g];
    inv[g] = 1.0f / s;
  }
}

// o_g += sum_r a[r * group + g] v_r over a block's first m rows, in row order for every
// element, for kG heads (a and o start at the run's first head).
template <RowKind kLoad, int kG>
inline void accumulate_v(const float* a, int64_t group, const uint8_t* const* v, int m, int64_t hd,
                         float* o) {
  constexpr int kC = kG >= 8 ? 2 : 4;  // 16-column chunks per pass: at most 16 accumulators
  for (int64_t c0 = 0; c0 < hd; c0 += 16 * kC) {
    __mmask16 mask[kC];
    __m512 acc[kG][kC];
    #pragma GCC unroll 4
    for (int c = 0; c < kC; ++c) {
      mask[c] = first_lanes(hd - c0 - 16 * c);
      #pragma GCC unroll 8
      for (int g = 0; g < kG; ++g) acc[g][c] = _mm512_maskz_loadu_ps(mask[c], o + g * hd + c0 + 16 * c);
    }
    for (int r = 0; r < m; ++r) {
      __m512 ve[kC];
      #pragma GCC unroll 4
      for (int c = 0; c < kC; ++c) ve[c] = load16<kLoad>(v[r], c0 + 16 * c, mask[c]);
      #pragma GCC unroll 8
      for (int g = 0; g < kG; ++g) {
        const __m512 w = _mm512_set1_ps(a[r * group + g]);
        #pragma GCC unroll 4
        for (int c = 0; c < kC; ++c) acc[g][c] = _mm512_fmadd_ps(w, ve[c], acc[g][c]);
      }
    }
    #pragma GCC unroll 4
    for (int c = 0; c < kC; ++c)
      #pragma GCC unroll 8
      for (int g = 0; g < kG; ++g) _mm512_mask_storeu_ps(o + g * hd + c0 + 16 * c, mask[c], acc[g][c]);
  }
}

// Attention of the batch tokens [t0, t0 + nt) (one sequence, consecutive positions) for KV
// head h. The tokens share each K and V block while it is in L1; every token's arithmetic is
// the same as if it ran alone, so results do not depend on how tokens are tiled.
// kP = 16 / (the group size rounded up to a power of two).
template <RowKind kKind, int kP>
void attend_tile(const KvView& kv, const Tensor* node, int32_t t0, int32_t nt, int64_t h, float* scores) {
  constexpr RowKind kLoad = load_kind(kKind);
  const Tensor* q = node->src[0];
  const int kc = node->iparam[0], vc = node->iparam[1];
  const int64_t hd = q->ne[0], n_head = q->ne[1];
  const int64_t group = n_head / node->iparam[2];
  const float scale = node->fparam[0];
  const int32_t s = kv.tok_seq[t0], p0 = kv.tok_pos[t0];
  const int32_t n_rows = p0 + nt;  // rows the last token reads; token u reads p0 + u + 1
  // Token u's scores: sc(u)[row * group + head].
  auto sc = [&](int32_t u) { return scores + u * group * static_cast<int64_t>(n_rows); };
  auto rows_for = [&](int32_t u, int32_t j0, int32_t m) { return std::min(m, p0 + u + 1 - j0); };
  const size_t kb = kv.comps[kc].row_bytes, vb = kv.comps[vc].row_bytes;
  const int64_t elems = kv.comps[kc].row_elems;
  alignas(64) float qq[kAttentionTokenTile][kAvx512QueryFloats];
  for (int32_t u = 0; u < nt; ++u) {
    const auto* qrow = reinterpret_cast<const float*>(static_cast<const uint8_t*>(q->data) +
                                                      ((t0 + u) * n_head + h * group) * q->nb[1]);
    arrange_queries<kP>(qrow, hd, group, qq[u]);
  }
  // FP8 head slices of one block, expanded; 16-bit K slices converted to f32.
  alignas(64) float fp8_buf[kKind == RowKind::fp8 ? kBlockRows * kMaxHeadDim : 1];
  constexpr bool kConvertK = kLoad != RowKind::f32;
  alignas(64) float kbuf[kConvertK ? kBlockRows * kMaxHeadDim : 1];
  const int64_t hd16 = (hd + 15) / 16 * 16;
  const uint8_t* slices[kBlockRows];
  const float* krows[kBlockRows];

  for_each_block(kv, kc, s, n_rows, kb * h * hd / elems, kb * hd / elems,
                 [&](int32_t j0, int32_t m, const uint8_t* const* rows) {
    block_slices<kKind>(kv, kc, s, n_rows - 1, j0, m, rows, h * hd, hd, fp8_buf, slices);
    for (int32_t i = 0; i < kBlockRows; ++i) {
      if (i >= m) {
        krows[i] = kZeroRow;
      } else if constexpr (kConvertK) {
        float* dst = kbuf + i * hd16;
        for (int64_t c = 0; c < hd; c += 16)
          _mm512_store_ps(dst + c, load16<kLoad>(slices[i], c, first_lanes(hd - c)));
        krows[i] = dst;
      } else {
        krows[i] = reinterpret_cast<const float*>(slices[i]);
      }
    }
    for (int32_t u = 0; u < nt; ++u) {
      const int32_t mu = rows_for(u, j0, m);
      if (mu > 0) score_block<kP>(qq[u], hd, krows, mu, scale, group, sc(u) + j0 * group);
    }
  });
  float inv[kAttentionTokenTile][16];
  for (int32_t u = 0; u < nt; ++u) softmax_rows(sc(u), p0 + u + 1, group, inv[u]);
  // Output: o_g = (sum_j e_g[j] v_j) / sum_j e_g[j], each V block read once for the group.
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
        accumulate_v<kLoad, kG()>(sc(u) + j0 * group + g0, group, slices, mu, hd, orow(u) + g0 * hd);
      });
    }
  });
  for (int32_t u = 0; u < nt; ++u) {
    float* o = orow(u);
    for (int64_t g = 0; g < group; ++g) {
      const __m512 iv = _mm512_set1_ps(inv[u][g]);
      for (int64_t c = 0; c < hd; c += 16) {
        const __mmask16 mk = first_lanes(hd - c);
        _mm512_mask_storeu_ps(o + g * hd + c, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, o + g * hd + c), iv));
      }
    }
  }
}

template <RowKind kKind, int kP>
void attend(const KvView& kv, const Tensor* node, int ith, int nth) {
  deal_tiles<kKind>(kv, node, ith, nth, [&](int32_t t0, int32_t nt, int64_t h, float* scores) {
    attend_tile<kKind, kP>(kv, node, t0, nt, h, scores);
  });
}

template <RowKind kKind>
void attend_group(const KvView& kv, const Tensor* node, int ith, int nth) {
  const int64_t group = node->src[0]->ne[1] / node->iparam[2];
  if (group > 8) return attend<kKind, 1>(kv, node, ith, nth);
  if (group > 4) return attend<kKind, 2>(kv, node, ith, nth);
  if (group > 2) return attend<kKind, 4>(kv, node, ith, nth);
  if (group > 1) return attend<kKind, 8>(kv, node, ith, nth);
  return attend<kKind, 16>(kv, node, ith, nth);
}

}  // namespace

void attention_avx512(const Tensor* node, int ith, int nth) {
  const KvView& kv = *static_cast<const KvView*>(node->pparam);
  with_row_kind(kv, node, [&](auto kind) { attend_group<kind()>(kv, node, ith, nth); });
}

}  // namespace v4::cpu
