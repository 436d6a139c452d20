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

#include "backends/cpu/fast_attention.h"
#include "lib/core/float_conv.h"
#include "lib/core/kv_view.h"

namespace v4::cpu {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// e^x for x <= 0 (softmax after subtracting the maximum), 8 lanes: x = n ln2 + r with
// |r| <= ln2/2, e^r by a degree-6 polynomial (relative error ~2e-7), 2^n through the exponent
// bits. Lanes below -87 flush to 0, as expf does within float range.
inline __m256 exp_nonpositive(__m256 x) {
  const __m256 min_x = _mm256_set1_ps(-87.0f);
  const __m256 keep = _mm256_cmp_ps(x, min_x, _CMP_GE_OQ);
  x = _mm256_max_ps(x, min_x);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
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

// How cached rows are stored; FP8 rows are expanded to f32 one head at a time.
enum class RowKind { f32, f16, bf16, fp8 };

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

// E4M3 code -> value, built once.
struct E4m3Table {
  float v[256];
  E4m3Table() {
    for (int i = 0; i < 256; ++i) v[i] = fp8_e4m3_to_f32(static_cast<uint8_t>(i));
  }
};

// The head slice [e0, e0 + n) of a cached row, addressable as kKind elements from the
// returned pointer. FP8 rows are dequantised into `tmp` (n floats).
template <RowKind kKind>
inline const uint8_t* head_slice(const uint8_t* row, int64_t e0, int64_t n, float* tmp,
                                 const float* exact) {
  if constexpr (kKind == RowKind::fp8) {
    if (exact) return reinterpret_cast<const uint8_t*>(exact + e0);  // the recent-row window
    static const E4m3Table table;
    const auto* blocks = reinterpret_cast<const BlockFP8_KV*>(row);
    for (int64_t e = e0; e < e0 + n; ++e) {
      const BlockFP8_KV& b = blocks[e >> 5];
      tmp[e - e0] = std::ldexp(table.v[b.qs[e & 31]], static_cast<int>(b.e) - 127);
    }
    return reinterpret_cast<const uint8_t*>(tmp);
  } else {
    return row + e0 * (kKind == RowKind::f32 ? 4 : 2);
  }
}

constexpr int kBlockRows = 16;  // rows handled together: their head slices stay in L1

// Asks for a block's head slices (`len` bytes from `off` in each of m rows) to be cached.
inline void prefetch_rows(const uint8_t* first, size_t row_bytes, int32_t m, size_t off, size_t len) {
  for (int32_t i = 0; i < m; ++i)
    for (size_t b = 0; b < len; b += 64)
      _mm_prefetch(reinterpret_cast<const char*>(first + i * row_bytes + off + b), _MM_HINT_T0);
}

// Calls fn(j0, n, rows) for blocks of n <= kBlockRows consecutive rows [j0, j0 + n) of a
// sequence's component, rows[i] pointing at row j0 + i. Rows are contiguous within a page,
// so only each page's first row is looked up. While a block is processed, the head slice
// (`off`, `len`) of the next block's rows is prefetched: pages are scattered, so the
// hardware prefetcher cannot follow them.
template <class Fn>
inline void for_each_block(const KvView& kv, int comp, int32_t seq, int32_t n, size_t off,
                           size_t len, Fn&& fn) {
  const size_t row_bytes = kv.comps[comp].row_bytes;
  const uint8_t* rows[kBlockRows];
  for (int32_t p0 = 0; p0 < n; p0 += kv.page_rows) {
    const uint8_t* page = kv.row(comp, seq, p0);
    const int32_t p1 = std::min(p0 + kv.page_rows, n);
    for (int32_t j0 = p0; j0 < p1; j0 += kBlockRows) {
      const int32_t m = std::min(kBlockRows, p1 - j0);
      for (int32_t i = 0; i < m; ++i) rows[i] = page + static_cast<size_t>(j0 - p0 + i) * row_bytes;
      const int32_t next = j0 + kBlockRows;
      if (next < n) {
        const uint8_t* first = next < p1 ? rows[0] + kBlockRows * row_bytes : kv.row(comp, seq, next);
        prefetch_rows(first, row_bytes, std::min(kBlockRows, n - next), off, len);
      }
      fn(j0, m, rows);
    }
  }
}

// The head slices [e0, e0 + hd) of a block's rows, loadable as kLoad elements: stored rows
// point into the cache; FP8 rows are expanded into `buf` (hd floats per row) unless the
// recent-row window holds them exactly.
template <RowKind kKind>
inline void block_slices(const KvView& kv, int comp, int32_t seq, int32_t query_pos, int32_t j0,
                         int32_t m, const uint8_t* const* rows, int64_t e0, int64_t hd, float* buf,
                         const uint8_t** out) {
  const int32_t exact_from = kv.window > 0 ? query_pos - kv.window + 1 : query_pos + 1;
  for (int32_t i = 0; i < m; ++i) {
    const int32_t j = j0 + i;
    out[i] = head_slice<kKind>(rows[i], e0, hd, buf + i * hd,
                               j >= exact_from ? kv.window_row(comp, seq, j, query_pos) : nullptr);
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

// Calls fn(g0, integral_constant<kG>) over the query heads of a group in runs of 8, 4, 2, 1,
// so each run's accumulators stay in registers.
template <class F>
inline void for_head_runs(int64_t group, F&& fn) {
  for (int64_t g0 = 0; g0 < group;) {
    const int64_t left = group - g0;
    if (left >= 8) { fn(g0, std::integral_constant<int, 8>{}); g0 += 8; }
    else if (left >= 4) { fn(g0, std::integral_constant<int, 4>{}); g0 += 4; }
    else if (left >= 2) { fn(g0, std::integral_constant<int, 2>{}); g0 += 2; }
    else { fn(g0, std::integral_constant<int, 1>{}); g0 += 1; }
  }
}

// Attention of the batch tokens [t0, t0 + nt) (one sequence, consecutive positions) for KV
// head h. The tokens share each K and V block while it is in L1; every token's arithmetic is
// the same as if it ran alone, so results do not depend on how tokens are tiled.
template <RowKind kKind>
void attend_tile(const KvView& kv, const Tensor* node, int32_t t0, int32_t nt, int64_t h, float* scores) {
  constexpr RowKind kLoad = kKind == RowKind::fp8 ? RowKind::f32 : kKind;
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

// Tasks are (tile of up to kAttentionTokenTile tokens, KV head), dealt to threads in turn so
// that long and short rows of a causal prefill spread evenly. FP8 tiles hold one token: which
// rows come from the exact window depends on the query's position.
template <RowKind kKind>
void attend(const KvView& kv, const Tensor* node, int ith, int nth) {
  const int32_t tile_max = kKind == RowKind::fp8 ? 1 : kAttentionTokenTile;
  const int64_t n_kv = node->iparam[2];
  float* scores = kv.scratch + ith * kv.scratch_stride;
  int64_t task = 0;
  for (int32_t t0 = 0; t0 < kv.n_tokens;) {
    int32_t nt = 1;
    while (nt < tile_max && t0 + nt < kv.n_tokens && kv.tok_seq[t0 + nt] == kv.tok_seq[t0] &&
           kv.tok_pos[t0 + nt] == kv.tok_pos[t0] + nt)
      ++nt;
    for (int64_t h = 0; h < n_kv; ++h, ++task)
      if (task % nth == ith) attend_tile<kKind>(kv, node, t0, nt, h, scores);
    t0 += nt;
  }
}

}  // namespace

void attention_avx2(const Tensor* node, int ith, int nth) {
  const KvView& kv = *static_cast<const KvView*>(node->pparam);
  switch (kv.comps[node->iparam[0]].type) {
    case DType::F16: return attend<RowKind::f16>(kv, node, ith, nth);
    case DType::BF16: return attend<RowKind::bf16>(kv, node, ith, nth);
    case DType::FP8_KV: return attend<RowKind::fp8>(kv, node, ith, nth);
    default: return attend<RowKind::f32>(kv, node, ith, nth);
  }
}

}  // namespace v4::cpu
