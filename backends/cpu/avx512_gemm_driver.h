// The loop around a GEMM tile kernel, shared by the AVX-512 GEMM kernels of every weight
// layout. K supplies the tile shape (K::kRows x K::kCols) and tile<nr, nc>(w, ws, x, xs, k,
// out, os), which computes rows w + r * ws against columns x + c * xs over all k values and
// writes out[c * os + r], for any nr <= kRows, nc <= kCols. Include only from files
// compiled with AVX-512 enabled.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "backends/cpu/gemm_kernels.h"

namespace v4::cpu::gemm_driver {

// Activation columns per panel: sized so a panel stays in L2 (1 MiB per core on the
// machines we measure; half of it leaves room for the weight rows streaming through).
constexpr size_t kPanelBytes = 512 * 1024;

using TileFn = void (*)(const uint8_t* w, size_t ws, const uint8_t* x, size_t xs, int64_t k,
                        float* out, size_t os);

// tiles[(nr - 1) * K::kCols + nc - 1] computes an nr x nc tile.
template <class K, int... I>
constexpr std::array<TileFn, sizeof...(I)> make_tiles(std::integer_sequence<int, I...>) {
  return {&K::template tile<I / K::kCols + 1, I % K::kCols + 1>...};
}

// Loop order: a panel of columns stays in L2 while this thread's rows stream through it
// kRows at a time; a row tile's weights (a few KiB) stay in L1 across the panel's columns.
template <class K>
void gemm(const GemmArgs& a) {
  constexpr int kRows = K::kRows, kCols = K::kCols;
  static constexpr auto tiles = make_tiles<K>(std::make_integer_sequence<int, kRows * kCols>{});
  const int64_t panel = std::max<int64_t>(
      kCols, static_cast<int64_t>(kPanelBytes / std::max<size_t>(a.x_stride, 1)) / kCols * kCols);
  for (int64_t c0 = 0; c0 < a.m; c0 += panel) {
    const int64_t c1 = std::min(a.m, c0 + panel);
    for (int64_t r = a.row_begin; r < a.row_end; r += kRows) {
      const int nr = static_cast<int>(std::min<int64_t>(kRows, a.row_end - r));
      const uint8_t* w = a.w + r * a.w_stride;
      for (int64_t c = c0; c < c1; c += kCols) {
        const int nc = static_cast<int>(std::min<int64_t>(kCols, c1 - c));
        tiles[(nr - 1) * kCols + nc - 1](w, a.w_stride, a.x + c * a.x_stride, a.x_stride, a.k,
                                         a.out + c * a.out_stride + r, a.out_stride);
      }
    }
  }
}

}  // namespace v4::cpu::gemm_driver
