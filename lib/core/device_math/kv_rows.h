// Paged KV row addressing in code shared by host and device, the two levels of KvView
// (lib/core/kv_view.h): a sequence's page table maps pos >> page_shift to a logical page, the
// group's slot table maps that logical page to a slot of the pool, and a component's row sits
// at base + slot * slot_bytes + (pos & (page_rows - 1)) * row_bytes. The unit tests check this
// against KvView::row.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lib/core/float_conv.h"  // V4_HD

namespace v4::dm {

// The pool slot holding row `pos` of a sequence (seq_pages: its logical pages; group_slots:
// the slot of each logical page for the component's group).
V4_HD uint32_t kv_slot(const uint32_t* seq_pages, const uint32_t* group_slots, int32_t page_shift,
                       int32_t pos) {
  return group_slots[seq_pages[pos >> page_shift]];
}

V4_HD const uint8_t* kv_row_ptr(const uint8_t* base, size_t slot_bytes, size_t row_bytes,
                                const uint32_t* seq_pages, const uint32_t* group_slots,
                                int32_t page_shift, int32_t pos) {
  return base + static_cast<size_t>(kv_slot(seq_pages, group_slots, page_shift, pos)) * slot_bytes +
         static_cast<size_t>(pos & ((1 << page_shift) - 1)) * row_bytes;
}

}  // namespace v4::dm
