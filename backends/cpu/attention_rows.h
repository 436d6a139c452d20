// How the vectorised attention kernels walk the paged KV cache: rows in blocks that stay in
// L1, the next block prefetched, FP8 rows expanded (or read from the exact recent-row window),
// and (token tile, KV head) tasks dealt to threads. Shared by attention_avx2.cpp and
// attention_avx512.cpp; the arithmetic stays in those files.
//
// Everything here has internal linkage (an unnamed namespace): the two including files are
// compiled for different instruction sets, and one shared inline copy chosen by the linker
// could carry AVX-512 instructions into the AVX2 kernel.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "backends/cpu/exp_poly.h"
#include "lib/core/float_conv.h"
#include "lib/core/kv_view.h"
#include "lib/core/tensor.h"

namespace v4::cpu {
namespace {

// How cached rows are stored; FP8 rows are expanded to f32 one head at a time.
enum class RowKind { f32, f16, bf16, fp8 };

// The element type kernels load a head slice as: FP8 slices are expanded to f32 first.
constexpr RowKind load_kind(RowKind k) { return k == RowKind::fp8 ? RowKind::f32 : k; }

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

// Asks for the cache line at p to be brought into L1 (kLevel 1) or L2 (kLevel 2). Inline
// assembly because g++ 12 deleted loops of __builtin_prefetch / _mm_prefetch here as having
// no effect (a first version of prefetch_block compiled to nothing).
template <int kLevel>
inline void prefetch_line(const uint8_t* p) {
  if constexpr (kLevel == 1) {
    asm volatile("prefetcht0 %0" : : "m"(*p));
  } else {
    asm volatile("prefetcht1 %0" : : "m"(*p));
  }
}

// Asks for the head slices (`len` bytes from `off`) of up to kBlockRows rows from row j of a
// sequence's component (n rows in all) to be cached in L1 or L2 (kLevel), within j's page.
template <int kLevel>
inline void prefetch_block(const KvView& kv, int comp, int32_t seq, int32_t j, int32_t n, size_t off,
                           size_t len) {
  if (j >= n) return;
  const size_t row_bytes = kv.comps[comp].row_bytes;
  const int32_t m = std::min({kBlockRows, n - j, kv.page_rows - (j & (kv.page_rows - 1))});
  const uint8_t* first = kv.row(comp, seq, j) + off;
  for (int32_t i = 0; i < m; ++i)
    for (size_t b = 0; b < len; b += 64)
      prefetch_line<kLevel>(first + i * row_bytes + b);
}

// Rows of the blocks ahead that are prefetched: into L1 the next block, into L2 the block
// this far ahead, so that DRAM latency is hidden (the hardware prefetcher cannot follow a
// head's slices across scattered pages). Measured with bench/attention_bench (f16, depth
// 4096, 22 layers): 4 blocks ahead cut the AVX2 kernel's time by 35%; 2, 3, 6, 8 and 16
// were slower.
constexpr int32_t kL2PrefetchRows = 4 * kBlockRows;

// Calls fn(j0, n, rows) for blocks of n <= kBlockRows consecutive rows [j0, j0 + n) of a
// sequence's component, rows[i] pointing at row j0 + i. Rows are contiguous within a page,
// so only each page's first row is looked up. While a block is processed, the head slices
// (`off`, `len`) of the blocks ahead are prefetched.
template <class Fn>
inline void for_each_block(const KvView& kv, int comp, int32_t seq, int32_t n, size_t off,
                           size_t len, Fn&& fn) {
  const size_t row_bytes = kv.comps[comp].row_bytes;
  const uint8_t* rows[kBlockRows];
  for (int32_t j = 0; j < std::min(n, kL2PrefetchRows); j += kBlockRows)
    prefetch_block<2>(kv, comp, seq, j, n, off, len);
  for (int32_t p0 = 0; p0 < n; p0 += kv.page_rows) {
    const uint8_t* page = kv.row(comp, seq, p0);
    const int32_t p1 = std::min(p0 + kv.page_rows, n);
    for (int32_t j0 = p0; j0 < p1; j0 += kBlockRows) {
      const int32_t m = std::min(kBlockRows, p1 - j0);
      for (int32_t i = 0; i < m; ++i) rows[i] = page + static_cast<size_t>(j0 - p0 + i) * row_bytes;
      prefetch_block<1>(kv, comp, seq, j0 + m, n, off, len);
      prefetch_block<2>(kv, comp, seq, j0 + m + kL2PrefetchRows - kBlockRows, n, off, len);
      fn(j0, m, rows);
    }
  }
}

// The head slices [e0, e0 + hd) of a block's rows, loadable as load_kind(kKind) elements:
// stored rows point into the cache; FP8 rows are expanded into `buf` (hd floats per row)
// unless the recent-row window holds them exactly.
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

// Calls fn(integral_constant<RowKind, kind>) for the way the node's KV rows are stored.
template <class Fn>
inline void with_row_kind(const KvView& kv, const Tensor* node, Fn&& fn) {
  switch (kv.comps[node->iparam[0]].type) {
    case DType::F16: return fn(std::integral_constant<RowKind, RowKind::f16>{});
    case DType::BF16: return fn(std::integral_constant<RowKind, RowKind::bf16>{});
    case DType::FP8_KV: return fn(std::integral_constant<RowKind, RowKind::fp8>{});
    default: return fn(std::integral_constant<RowKind, RowKind::f32>{});
  }
}

// Deals tasks (a tile of up to kAttentionTokenTile consecutive tokens of one sequence, KV
// head) to threads in turn, so that long and short rows of a causal prefill spread evenly,
// and calls tile(t0, nt, h, scores) for this thread's. FP8 tiles hold one token: which rows
// come from the exact window depends on the query's position.
template <RowKind kKind, class Tile>
void deal_tiles(const KvView& kv, const Tensor* node, int ith, int nth, Tile&& tile) {
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
      if (task % nth == ith) tile(t0, nt, h, scores);
    t0 += nt;
  }
}

}  // namespace
}  // namespace v4::cpu
