#include "lib/kv/kv_cache.h"

#include <algorithm>
#include <bit>
#include <cstring>

#include "lib/core/error.h"

namespace v4 {

KvCache::KvCache(std::vector<KvComponentSpec> comps, int32_t page_rows, uint32_t n_ctx,
                 uint32_t n_seq_max)
    : comps_(std::move(comps)), page_rows_(page_rows), n_ctx_(n_ctx) {
  if (page_rows < 1 || page_rows > 128 || !std::has_single_bit(static_cast<uint32_t>(page_rows)))
    fail(Status::invalid_arg, "KV page size {} is not a power of two between 1 and 128", page_rows);
  if (n_ctx < 1) fail(Status::invalid_arg, "context size must be at least 1 token");
  if (n_seq_max < 1) fail(Status::invalid_arg, "n_seq_max must be at least 1");
  page_shift_ = std::countr_zero(static_cast<uint32_t>(page_rows));
  const uint32_t pages_per_seq = (n_ctx + page_rows - 1) / page_rows;
  // One spare page per extra sequence: each may hold a partly filled tail page.
  const uint32_t n_pages = pages_per_seq + (n_seq_max - 1);
  tier_ = make_host_tier(comps_, page_rows, n_pages);
  refcount_.assign(n_pages, 0);
  free_.reserve(n_pages);
  for (uint32_t p = n_pages; p-- > 0;) free_.push_back(p);
  seqs_.resize(n_seq_max);
  for (Seq& s : seqs_) s.pages.reserve(pages_per_seq);
  batch_old_length_.assign(n_seq_max, -1);
  for (size_t c = 0; c < comps_.size(); ++c)
    comp_views_.push_back({tier_->component_base(c), comps_[c].row_bytes(), comps_[c].type,
                           comps_[c].row_elems});
  for (Seq& s : seqs_) seq_page_ptrs_.push_back(s.pages.data());
  view_.page_rows = page_rows_;
  view_.page_shift = page_shift_;
  view_.comps = comp_views_.data();
  view_.seq_pages = seq_page_ptrs_.data();
}

uint32_t KvCache::take_page() {
  const uint32_t p = free_.back();
  free_.pop_back();
  refcount_[p] = 1;
  return p;
}

void KvCache::drop_page(uint32_t page) {
  if (--refcount_[page] == 0) free_.push_back(page);
}

void KvCache::copy_page(uint32_t from, uint32_t to) {
  for (size_t c = 0; c < comps_.size(); ++c) {
    const size_t bytes = comp_views_[c].row_bytes << page_shift_;
    std::memcpy(comp_views_[c].base + to * bytes, comp_views_[c].base + from * bytes, bytes);
  }
}

void KvCache::truncate(Seq& s, int32_t length) {
  const size_t keep = (static_cast<size_t>(length) + page_rows_ - 1) >> page_shift_;
  while (s.pages.size() > keep) {
    drop_page(s.pages.back());
    s.pages.pop_back();
  }
  s.length = length;
}

void KvCache::begin_batch(int32_t n_tokens, const int32_t* seq, const int32_t* pos) {
  // Validate first, so that a rejected batch changes nothing.
  std::fill(batch_old_length_.begin(), batch_old_length_.end(), -1);
  uint32_t pages_needed = 0;
  for (int32_t i = 0; i < n_tokens; ++i) {
    const int32_t s = seq[i];
    if (s < 0 || s >= static_cast<int32_t>(seqs_.size()))
      fail(Status::invalid_arg, "batch token {}: sequence id {} is outside 0..{}", i, s,
           seqs_.size() - 1);
    if (batch_old_length_[s] < 0) batch_old_length_[s] = seqs_[s].length;
  }
  // Walk each sequence's appends to check positions and count the pages needed.
  for (size_t s = 0; s < seqs_.size(); ++s) {
    if (batch_old_length_[s] < 0) continue;
    int32_t next = seqs_[s].length;
    for (int32_t i = 0; i < n_tokens; ++i) {
      if (seq[i] != static_cast<int32_t>(s)) continue;
      if (pos[i] != next)
        fail(Status::invalid_arg,
             "batch token {}: position {} for sequence {} does not continue it (expected {}); "
             "remove the tail first with v4_seq_remove to rewrite positions",
             i, pos[i], s, next);
      if (static_cast<uint32_t>(next) >= n_ctx_)
        fail(Status::context_full,
             "sequence {} is full: {} positions fit in the context (n_ctx); clear or shorten "
             "the sequence, or create the context with a larger n_ctx",
             s, n_ctx_);
      if ((next & (page_rows_ - 1)) == 0) ++pages_needed;
      else if (next == seqs_[s].length && refcount_[seqs_[s].pages.back()] > 1)
        ++pages_needed;  // the shared tail page will be copied
      ++next;
    }
  }
  if (pages_needed > free_.size())
    fail(Status::context_full,
         "KV cache is full: the batch needs {} more pages of {} tokens and {} are free; clear "
         "finished sequences or use a larger n_ctx",
         pages_needed, page_rows_, free_.size());

  // Apply.
  reserve_batch(n_tokens);
  for (int32_t i = 0; i < n_tokens; ++i) {
    Seq& s = seqs_[seq[i]];
    if ((s.length & (page_rows_ - 1)) == 0) {
      s.pages.push_back(take_page());
    } else if (refcount_[s.pages.back()] > 1) {
      const uint32_t fresh = take_page();
      copy_page(s.pages.back(), fresh);
      drop_page(s.pages.back());
      s.pages.back() = fresh;
    }
    ++s.length;
    tok_seq_[i] = seq[i];
    tok_pos_[i] = pos[i];
  }
  view_.n_tokens = n_tokens;
  view_.tok_seq = tok_seq_.data();
  view_.tok_pos = tok_pos_.data();
}

void KvCache::reserve_batch(int32_t n_tokens) {
  if (tok_seq_.size() < static_cast<size_t>(n_tokens)) {
    tok_seq_.resize(n_tokens);
    tok_pos_.resize(n_tokens);
  }
}

void KvCache::rollback_batch() {
  for (size_t s = 0; s < seqs_.size(); ++s)
    if (batch_old_length_[s] >= 0) truncate(seqs_[s], batch_old_length_[s]);
  std::fill(batch_old_length_.begin(), batch_old_length_.end(), -1);
}

void KvCache::clear(int32_t seq) {
  if (seq < 0) {
    for (Seq& s : seqs_) truncate(s, 0);
    return;
  }
  if (seq >= static_cast<int32_t>(seqs_.size()))
    fail(Status::invalid_arg, "sequence id {} is outside 0..{}", seq, seqs_.size() - 1);
  truncate(seqs_[seq], 0);
}

void KvCache::remove(int32_t seq, int32_t p0, int32_t p1) {
  if (seq < 0) {
    for (size_t s = 0; s < seqs_.size(); ++s) remove(static_cast<int32_t>(s), p0, p1);
    return;
  }
  if (seq >= static_cast<int32_t>(seqs_.size()))
    fail(Status::invalid_arg, "sequence id {} is outside 0..{}", seq, seqs_.size() - 1);
  Seq& s = seqs_[seq];
  if (p0 < 0) p0 = 0;
  if (p1 < 0 || p1 > s.length) p1 = s.length;
  if (p0 >= p1) return;
  if (p1 != s.length)
    fail(Status::unsupported,
         "removing positions {}..{} from the middle of sequence {} (length {}) is not supported "
         "by this model's cache; only a tail range can be removed",
         p0, p1, seq, s.length);
  truncate(s, p0);
}

void KvCache::copy(int32_t src, int32_t dst) {
  const int32_t n = static_cast<int32_t>(seqs_.size());
  if (src < 0 || src >= n || dst < 0 || dst >= n)
    fail(Status::invalid_arg, "sequence ids {} -> {} must be in 0..{}", src, dst, n - 1);
  if (src == dst) return;
  truncate(seqs_[dst], 0);
  for (uint32_t p : seqs_[src].pages) {
    ++refcount_[p];
    seqs_[dst].pages.push_back(p);
  }
  seqs_[dst].length = seqs_[src].length;
}

}  // namespace v4
