// What kernels need to address the paged KV cache during one batch: the storage of
// each component, each sequence's page table, and each batch token's sequence and
// position. The KV cache (lib/kv) owns the memory and refreshes this view before a
// run; a graph holds a pointer to it, so a decode step never rebuilds the graph.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lib/core/dtype.h"

namespace v4 {

struct KvComponentView {
  uint8_t* base = nullptr;  // pages of this component, page after page
  size_t row_bytes = 0;
  DType type = DType::F32;
  int64_t row_elems = 0;
};

struct KvView {
  int32_t page_rows = 0;                  // rows per page (a power of two)
  int32_t page_shift = 0;                 // log2(page_rows)
  const KvComponentView* comps = nullptr;
  const uint32_t* const* seq_pages = nullptr;  // seq -> page ids
  // The batch being run.
  int32_t n_tokens = 0;
  const int32_t* tok_seq = nullptr;
  const int32_t* tok_pos = nullptr;
  // Per-thread scratch for attention scores: n_ctx floats per query head of a KV group.
  float* scratch = nullptr;
  int64_t scratch_stride = 0;

  uint8_t* row(int comp, int32_t seq, int32_t pos) const {
    const uint32_t page = seq_pages[seq][pos >> page_shift];
    const size_t r = (static_cast<size_t>(page) << page_shift) + (pos & (page_rows - 1));
    return comps[comp].base + r * comps[comp].row_bytes;
  }
};

}  // namespace v4
