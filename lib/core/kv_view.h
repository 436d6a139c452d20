// What kernels need to address the paged KV cache during one batch. The KV cache (lib/kv)
// owns the memory and refreshes this view before a run; a graph holds a pointer to it, so
// a decode step never rebuilds the graph.
//
// Addressing has two levels so that pages can move between tiers without touching any
// sequence's page table: a sequence maps its positions to *logical pages* (shared between
// sequences, copy on write), and each (group, logical page) *block* sits in one slot of the
// addressable pool while it is resident. A group is the set of components one layer's
// attention reads together (Llama: that layer's K and V), so residency is per layer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lib/core/dtype.h"

namespace v4 {

struct KvComponentView {
  // This component's rows in slot 0 of the pool: host memory, or, when the cache keeps its
  // hot tier in a device backend's memory (Backend::make_kv_tier), that backend's address
  // (only its kernels may read it; `on_device` below).
  uint8_t* base = nullptr;
  size_t row_bytes = 0;
  DType type = DType::F32;
  int64_t row_elems = 0;
  int32_t group = 0;        // blocks of this group hold this component
  // Recent-row window (block-quantised rows only): f32 copies of each sequence's latest
  // rows, ring_rows rows each, sequence s's at ring + s * KvView::ring_seq_stride; null
  // when the type has none. Like `base`, a device address when the view is on_device.
  float* ring = nullptr;
};

// Makes a group's blocks addressable before its attention runs (tiered caches page them
// in from slower tiers here). Backends call it once per attention node, on one thread.
class KvResidency {
 public:
  virtual ~KvResidency() = default;
  virtual void ensure_resident(int32_t group) = 0;
  // Whether ensure_resident may move bytes (false: every block is always where the view
  // points, and calling it only records use), so a device backend may call it for all
  // groups before one submission instead of between layers.
  virtual bool stages_blocks() const { return true; }
};

// Batch tokens one CPU attention task handles together (they share each K/V block read).
constexpr int32_t kAttentionTokenTile = 4;

struct KvView {
  int32_t page_rows = 0;                  // rows per page (a power of two)
  int32_t page_shift = 0;                 // log2(page_rows)
  const KvComponentView* comps = nullptr;
  size_t slot_bytes = 0;                  // stride between slots of the pool
  uint32_t n_logical_pages = 0;
  const uint32_t* const* seq_pages = nullptr;  // seq -> logical page ids
  const uint32_t* block_slot = nullptr;   // [group * n_logical_pages + page] -> pool slot
  KvResidency* residency = nullptr;       // null: every block is always resident
  bool on_device = false;                 // bases are device addresses (see KvComponentView)
  // Attention reads rows within `window` positions of the query from the f32 ring instead
  // of the page (DeepSeek-V4 keeps its sliding window in high precision the same way).
  int32_t window = 0;
  int32_t ring_rows = 0;                  // a power of two >= window + the largest batch
  int64_t ring_seq_stride = 0;            // floats from one sequence's ring rows to the next
  const int32_t* ring_valid_from = nullptr;  // per seq: older ring rows were overwritten
  // The batch being run.
  int32_t n_tokens = 0;
  int32_t n_seq = 0;                      // sequences of the cache (ids 0..n_seq-1)
  const int32_t* tok_seq = nullptr;
  const int32_t* tok_pos = nullptr;
  // Per-thread scratch for attention scores: n_ctx floats per query head of a KV group,
  // for each of kAttentionTokenTile tokens.
  float* scratch = nullptr;
  int64_t scratch_stride = 0;

  uint8_t* row(int comp, int32_t seq, int32_t pos) const {
    const KvComponentView& c = comps[comp];
    const uint32_t page = seq_pages[seq][pos >> page_shift];
    const size_t slot = block_slot[static_cast<size_t>(c.group) * n_logical_pages + page];
    return c.base + slot * slot_bytes +
           static_cast<size_t>(pos & (page_rows - 1)) * c.row_bytes;
  }
  float* ring_row(int comp, int32_t seq, int32_t pos) const {
    const KvComponentView& c = comps[comp];
    return c.ring + seq * ring_seq_stride + static_cast<int64_t>(pos & (ring_rows - 1)) * c.row_elems;
  }
  // The exact f32 copy of row `pos` when the query at `query_pos` reads it from the window,
  // else nullptr (read the page).
  const float* window_row(int comp, int32_t seq, int32_t pos, int32_t query_pos) const {
    if (!comps[comp].ring || pos <= query_pos - window || pos < ring_valid_from[seq])
      return nullptr;
    return ring_row(comp, seq, pos);
  }
};

}  // namespace v4
