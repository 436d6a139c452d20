// The paged KV cache. Each sequence has a page table mapping its logical rows
// (positions 0..length-1) to page slots of a tier; pages are reference counted so a
// copied sequence shares them until one side writes (copy on write of the tail page).
// All storage and page tables are allocated when the cache is created: appending
// tokens never allocates.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lib/core/kv_view.h"
#include "lib/kv/kv_tier.h"

namespace v4 {

class KvCache {
 public:
  // n_ctx: the most rows one sequence may hold and the pool's capacity in rows.
  KvCache(std::vector<KvComponentSpec> comps, int32_t page_rows, uint32_t n_ctx,
          uint32_t n_seq_max);

  uint32_t n_ctx() const { return n_ctx_; }
  uint32_t n_seq_max() const { return static_cast<uint32_t>(seqs_.size()); }
  int32_t page_rows() const { return page_rows_; }
  int32_t seq_length(int32_t seq) const { return seqs_[seq].length; }
  uint32_t free_pages() const { return static_cast<uint32_t>(free_.size()); }
  uint32_t total_pages() const { return tier_->n_pages(); }
  const KvTier& tier() const { return *tier_; }
  const std::vector<KvComponentSpec>& components() const { return comps_; }

  // Makes room for a batch: token i appends position pos[i] to sequence seq[i].
  // Positions must continue each sequence without gaps. On failure (bad position:
  // invalid_arg; no room: context_full) nothing changes. Fills the view's token arrays.
  void begin_batch(int32_t n_tokens, const int32_t* seq, const int32_t* pos);
  // Sizes the per-token arrays so batches of up to n_tokens never allocate.
  void reserve_batch(int32_t n_tokens);
  // Undoes the last begin_batch (the decode was aborted or failed).
  void rollback_batch();

  KvView* view() { return &view_; }

  void clear(int32_t seq);                            // seq < 0: all
  void remove(int32_t seq, int32_t p0, int32_t p1);   // only a tail range; p1 < 0: to end
  void copy(int32_t src, int32_t dst);

 private:
  struct Seq {
    std::vector<uint32_t> pages;  // capacity reserved for n_ctx rows
    int32_t length = 0;
  };
  uint32_t take_page();
  void drop_page(uint32_t page);
  void truncate(Seq& s, int32_t length);
  void copy_page(uint32_t from, uint32_t to);

  std::vector<KvComponentSpec> comps_;
  int32_t page_rows_;
  int32_t page_shift_;
  uint32_t n_ctx_;
  std::unique_ptr<KvTier> tier_;
  std::vector<uint32_t> refcount_;
  std::vector<uint32_t> free_;   // stack of free page slots (capacity: all pages)
  std::vector<Seq> seqs_;
  std::vector<int32_t> batch_old_length_;  // per sequence, for rollback
  std::vector<KvComponentView> comp_views_;
  std::vector<const uint32_t*> seq_page_ptrs_;
  std::vector<int32_t> tok_seq_, tok_pos_;
  KvView view_;
};

}  // namespace v4
