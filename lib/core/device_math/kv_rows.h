// Paged KV row addressing in code shared by host and device: a sequence's logical row `pos`
// lives in page pages[pos >> page_shift], at row pos & (page_rows - 1) of that page; pages of
// one component are stored page after page. Same arithmetic as KvView::row
// (lib/core/kv_view.h), which the unit tests check it against.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lib/core/float_conv.h"  // V4_HD

namespace v4::dm {

// The storage row index of logical row `pos` of a sequence with page table `pages`.
V4_HD size_t kv_row_index(const uint32_t* pages, int32_t page_shift, int32_t pos) {
  const uint32_t page = pages[pos >> page_shift];
  return (static_cast<size_t>(page) << page_shift) +
         static_cast<size_t>(pos & ((1 << page_shift) - 1));
}

// Address of that row in a component whose rows are row_bytes long.
V4_HD const uint8_t* kv_row_ptr(const uint8_t* base, size_t row_bytes, const uint32_t* pages,
                                int32_t page_shift, int32_t pos) {
  return base + kv_row_index(pages, page_shift, pos) * row_bytes;
}

}  // namespace v4::dm
