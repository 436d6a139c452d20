#include "lib/kv/kv_cache.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>

#include <sys/mman.h>

#include "lib/core/error.h"

namespace v4 {
namespace {

constexpr size_t kDiskAlign = 4096;  // O_DIRECT: disk blocks are read straight into the pool
constexpr size_t kHugePage = size_t{2} << 20;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double mib(uint64_t bytes) { return static_cast<double>(bytes) / 1048576.0; }

}  // namespace

KvCache::KvCache(std::vector<KvComponentSpec> comps, int32_t page_rows, uint32_t n_ctx,
                 uint32_t n_seq_max, const KvBudgets& budgets, const Logger& log,
                 const KvWindow& window, const KvTierFactory& hot_tier)
    : comps_(std::move(comps)), page_rows_(page_rows), n_ctx_(n_ctx) {
  if (page_rows < 1 || page_rows > 128 || !std::has_single_bit(static_cast<uint32_t>(page_rows)))
    fail(Status::invalid_arg, "KV page size {} is not a power of two between 1 and 128", page_rows);
  if (n_ctx < 1) fail(Status::invalid_arg, "context size must be at least 1 token");
  if (n_seq_max < 1) fail(Status::invalid_arg, "n_seq_max must be at least 1");
  if (comps_.empty()) fail(Status::invalid_arg, "a KV cache needs at least one component");
  page_shift_ = std::countr_zero(static_cast<uint32_t>(page_rows));

  // A slot holds one group's page: the group's components one after another.
  std::vector<size_t> group_bytes;
  std::vector<size_t> comp_offset(comps_.size());
  for (size_t c = 0; c < comps_.size(); ++c) {
    const int32_t g = comps_[c].group;
    if (g < 0 || g >= 65536) fail(Status::invalid_arg, "KV component {} has group {}", comps_[c].name, g);
    if (static_cast<size_t>(g) >= group_bytes.size()) group_bytes.resize(g + 1, 0);
    comp_offset[c] = group_bytes[g];
    group_bytes[g] += comps_[c].row_bytes() << page_shift_;
  }
  n_groups_ = static_cast<int32_t>(group_bytes.size());
  slot_bytes_ = std::max<size_t>(64, *std::max_element(group_bytes.begin(), group_bytes.end()));
  slot_bytes_ = (slot_bytes_ + 63) & ~size_t{63};

  const uint32_t pages_per_seq = (n_ctx + page_rows - 1) / page_rows;
  // One spare page per extra sequence: each may hold a partly filled tail page.
  n_pages_ = pages_per_seq + (n_seq_max - 1);
  plan_tiers(budgets, n_seq_max, log);

  // The recent-row window: per sequence, each quantised component's ring_rows f32 rows.
  if (window.window > 0) {
    if (window.ring_rows < window.window ||
        !std::has_single_bit(static_cast<uint32_t>(window.ring_rows)))
      fail(Status::invalid_arg, "KV window ring of {} rows does not hold {} recent rows",
           window.ring_rows, window.window);
    ring_comp_at_.assign(comps_.size(), 0);
    for (size_t c = 0; c < comps_.size(); ++c) {
      if (!traits(comps_[c].type).quantized) continue;
      ring_comp_at_[c] = ring_seq_floats_;
      ring_seq_floats_ += static_cast<size_t>(comps_[c].row_elems) * window.ring_rows;
    }
  }

  // A device hot tier (the attention backend's memory) gets n_pages_ more slots, into
  // which a group's warm and disk blocks are copied before its attention, then the
  // window rings (whole slots per sequence, so one sequence's ring moves as slots).
  const uint64_t n_blocks_total = static_cast<uint64_t>(n_groups_) * n_pages_;
  if (hot_tier) {
    const uint32_t dev_staging = n_slots_[kHot] < n_blocks_total ? n_pages_ : 0;
    const uint32_t seq_slots =
        static_cast<uint32_t>((ring_seq_floats_ * sizeof(float) + slot_bytes_ - 1) / slot_bytes_);
    tiers_[kHot] = hot_tier(n_slots_[kHot] + dev_staging + seq_slots * n_seq_max, slot_bytes_);
    hot_on_device_ = tiers_[kHot] != nullptr;
    if (hot_on_device_) {
      ring_first_slot_ = n_slots_[kHot] + dev_staging;
      ring_seq_slots_ = seq_slots;
    }
  }
  // Host pool: [hot slots (host hot tier only) | warm slots | disk staging].
  const uint32_t host_first = hot_on_device_ ? 0 : n_slots_[kHot];
  const uint32_t n_staging = n_slots_[kDisk] > 0 ? 2 * n_pages_ : 0;
  staging_first_ = host_first + n_slots_[kWarm];
  const size_t pool_bytes =
      std::max<size_t>(kDiskAlign, (size_t{staging_first_} + n_staging) * slot_bytes_);
  void* p = nullptr;
  // Huge pages where the pool is large: attention walks each layer's pages in scattered
  // order, and with 4 KiB pages it spends about 10% of CPU decode attention at depth 4096
  // on page walks (bench/attention_bench).
  const size_t align = pool_bytes >= kHugePage ? kHugePage : kDiskAlign;
  if (posix_memalign(&p, align, pool_bytes) != 0)
    fail(Status::out_of_memory,
         "KV cache: cannot allocate {:.1f} MiB of host memory; use a smaller context (n_ctx) or "
         "smaller --kv-vram/--kv-ram budgets with --kv-disk",
         mib(pool_bytes));
  pool_ = static_cast<uint8_t*>(p);
#ifdef MADV_HUGEPAGE
  if (align == kHugePage) ::madvise(p, pool_bytes, MADV_HUGEPAGE);  // advice only: failure is fine
#endif
  if (!hot_on_device_) tiers_[kHot] = make_host_tier("device", pool_, n_slots_[kHot], slot_bytes_);
  if (n_slots_[kWarm] > 0)
    tiers_[kWarm] = make_host_tier("host", pool_ + size_t{host_first} * slot_bytes_,
                                   n_slots_[kWarm], slot_bytes_);
  if (n_slots_[kDisk] > 0) {
    try {
      tiers_[kDisk] = make_disk_tier(budgets.disk, n_slots_[kDisk], slot_bytes_, &log);
    } catch (...) {
      std::free(pool_);
      throw;
    }
  }
  for (int t = 0; t < 3; ++t) {
    free_slots_[t].reserve(n_slots_[t]);
    for (uint32_t s = n_slots_[t]; s-- > 0;) free_slots_[t].push_back(s);
  }

  const size_t n_blocks = static_cast<size_t>(n_groups_) * n_pages_;
  blocks_.assign(n_blocks, Block{});
  block_slot_.assign(n_blocks, 0);
  pinned_.assign(n_blocks, 0);
  stage_mark_.assign(n_blocks, 0);
  if (hot_on_device_) upload_mark_.assign(n_blocks, 0);
  pinned_list_.reserve(static_cast<size_t>(n_groups_) * n_seq_max);
  refcount_.assign(n_pages_, 0);
  free_.reserve(n_pages_);
  for (uint32_t pg = n_pages_; pg-- > 0;) free_.push_back(pg);
  seqs_.resize(n_seq_max);
  for (Seq& s : seqs_) s.pages.reserve(pages_per_seq);
  batch_old_length_.assign(n_seq_max, -1);
  comp_offset_ = comp_offset;
  uint8_t* const addressable = tiers_[kHot]->address_base();
  for (size_t c = 0; c < comps_.size(); ++c)
    comp_views_.push_back({addressable + comp_offset[c], comps_[c].row_bytes(), comps_[c].type,
                           comps_[c].row_elems, comps_[c].group});
  for (Seq& s : seqs_) seq_page_ptrs_.push_back(s.pages.data());
  view_.page_rows = page_rows_;
  view_.page_shift = page_shift_;
  view_.comps = comp_views_.data();
  view_.slot_bytes = slot_bytes_;
  view_.n_logical_pages = n_pages_;
  view_.seq_pages = seq_page_ptrs_.data();
  view_.block_slot = block_slot_.data();
  view_.residency = this;
  view_.on_device = hot_on_device_;
  view_.n_seq = static_cast<int32_t>(n_seq_max);
  if (window.window > 0) make_ring(window, n_seq_max);
  ring_valid_from_.assign(n_seq_max, 0);
  view_.ring_valid_from = ring_valid_from_.data();
}

// Points the view's components at their rings: host memory, or the device tier's ring
// slots (sequence s's ring starts at slot ring_first_slot_ + s * ring_seq_slots_).
void KvCache::make_ring(const KvWindow& window, uint32_t n_seq_max) {
  float* base = nullptr;
  if (ring_seq_slots_ > 0) {
    base = reinterpret_cast<float*>(tiers_[kHot]->address_base() +
                                    size_t{ring_first_slot_} * slot_bytes_);
    view_.ring_seq_stride = static_cast<int64_t>(size_t{ring_seq_slots_} * slot_bytes_ / sizeof(float));
  } else {
    ring_.assign(ring_seq_floats_ * n_seq_max, 0.0f);
    base = ring_.data();
    view_.ring_seq_stride = static_cast<int64_t>(ring_seq_floats_);
  }
  for (size_t c = 0; c < comps_.size(); ++c)
    if (traits(comps_[c].type).quantized) comp_views_[c].ring = base + ring_comp_at_[c];
  view_.window = window.window;
  view_.ring_rows = window.ring_rows;
}

KvCache::~KvCache() {
  try {
    wait_staged();
  } catch (...) {
    // Nothing can be reported from a destructor; the disk tier is removed anyway.
  }
  tiers_[kDisk].reset();
  tiers_[kHot].reset();
  std::free(pool_);
}

// Budgets in bytes become slot counts. Hot holds what fits its budget (at least two blocks
// per sequence and group: a tail being written and a fresh page); warm holds the rest up to
// its budget; disk the remainder. Disk slots are 4 KiB multiples so that O_DIRECT reads land
// in the pool in place.
void KvCache::plan_tiers(const KvBudgets& b, uint32_t n_seq_max, const Logger& log) {
  const uint64_t total = static_cast<uint64_t>(n_groups_) * n_pages_;
  auto plan = [&](size_t slot) {
    const uint64_t min_hot = std::min<uint64_t>(total, uint64_t{2} * n_groups_ * n_seq_max);
    uint64_t hot = b.hot_bytes ? std::min(total, b.hot_bytes / slot) : total;
    hot = std::max(hot, min_hot);
    const uint64_t rest = total - hot;
    const uint64_t warm = rest == 0 ? 0 : b.warm_bytes ? std::min(rest, b.warm_bytes / slot) : rest;
    const uint64_t need_disk = rest - warm;
    const uint64_t disk = b.disk.max_bytes ? std::min(need_disk, b.disk.max_bytes / slot) : need_disk;
    n_slots_[kHot] = static_cast<uint32_t>(hot);
    n_slots_[kWarm] = static_cast<uint32_t>(warm);
    n_slots_[kDisk] = b.disk.dir.empty() ? 0 : static_cast<uint32_t>(disk);
    return need_disk;
  };
  if (plan(slot_bytes_) > 0 && !b.disk.dir.empty()) {
    slot_bytes_ = (slot_bytes_ + kDiskAlign - 1) & ~(kDiskAlign - 1);
    plan(slot_bytes_);
  }
  const uint64_t held = uint64_t{n_slots_[kHot]} + n_slots_[kWarm] + n_slots_[kDisk];
  if (held < total)
    fail(Status::invalid_arg,
         "the KV budgets hold {:.1f} of the {:.1f} MiB a {}-token context needs ({} of {} "
         "blocks); raise --kv-vram/--kv-ram, give a disk tier (--kv-disk DIR) or a larger "
         "--kv-disk-max, or lower the context size",
         mib(held * slot_bytes_), mib(total * slot_bytes_), n_ctx_, held, total);
  if (b.hot_bytes && b.hot_bytes / slot_bytes_ < n_slots_[kHot] && n_slots_[kHot] < total)
    log(LogLevel::warn,
        "KV: the device budget ({:.2f} MiB) is below the minimum of two pages per layer and "
        "sequence; using {:.2f} MiB",
        mib(b.hot_bytes), mib(uint64_t{n_slots_[kHot]} * slot_bytes_));
  const uint32_t hot_per_group = n_slots_[kHot] / static_cast<uint32_t>(n_groups_);
  if (n_slots_[kHot] >= total) {
    max_batch_tokens_ = std::numeric_limits<int32_t>::max();
  } else {
    // A batch pins each sequence's tail block and adds at most one block per page it
    // starts, per sequence; keep that within the hot blocks of a group.
    const int64_t pages = int64_t{hot_per_group} - 2 * int64_t{n_seq_max} + 1;
    max_batch_tokens_ = static_cast<int32_t>(std::max<int64_t>(1, pages) * page_rows_);
  }
}

uint32_t KvCache::take_page() {
  const uint32_t p = free_.back();
  free_.pop_back();
  refcount_[p] = 1;
  return p;
}

void KvCache::drop_page(uint32_t page) {
  if (--refcount_[page] != 0) return;
  for (int32_t g = 0; g < n_groups_; ++g) release_block(block_index(g, page));
  free_.push_back(page);
}

void KvCache::release_block(size_t b) {
  Block& bl = blocks_[b];
  if (bl.tier == kNone) return;
  free_slots_[bl.tier].push_back(bl.slot);
  --tier_blocks_[bl.tier];
  bl = Block{};
}

void KvCache::place(size_t b, Tier t, uint32_t slot) {
  Block& bl = blocks_[b];
  bl.tier = t;
  bl.slot = slot;
  ++tier_blocks_[t];
  if (t == kHot) block_slot_[b] = slot;
  // (A device hot tier cannot address warm blocks: upload_group points them at staging.)
  if (t == kWarm && !hot_on_device_) block_slot_[b] = n_slots_[kHot] + slot;
}

uint8_t* KvCache::block_data(size_t b) {
  const Block& bl = blocks_[b];
  return tiers_[bl.tier]->slot_data(bl.slot);
}

void KvCache::load_block(size_t b, uint8_t* dst) {
  const Block& bl = blocks_[b];
  if (const uint8_t* src = block_data(b)) {
    std::memcpy(dst, src, slot_bytes_);
    return;
  }
  if (bl.tier == kDisk) wait_staged();
  KvTier& tier = *tiers_[bl.tier];
  tier.read_slot(bl.slot, dst);
  tier.submit();
  tier.wait();
}

void KvCache::fill_hot_slot(uint32_t slot, size_t from_block) {
  if (uint8_t* dst = tiers_[kHot]->slot_data(slot)) {
    load_block(from_block, dst);
    return;
  }
  if (bounce_.size() < slot_bytes_) bounce_.resize(slot_bytes_);
  load_block(from_block, bounce_.data());
  tiers_[kHot]->write_slot(slot, bounce_.data());
  tiers_[kHot]->submit();
  tiers_[kHot]->wait();
}

// Frees n slots of tier t by moving its least important, least recently used unpinned
// blocks down: into the next tier as far as it has room (making room there first), the
// rest further down.
void KvCache::make_room(Tier t, uint32_t n) {
  if (free_slots_[t].size() >= n) return;
  const uint32_t need = n - static_cast<uint32_t>(free_slots_[t].size());
  std::vector<std::pair<std::pair<float, uint64_t>, size_t>> cand;
  for (size_t b = 0; b < blocks_.size(); ++b)
    if (blocks_[b].tier == t && !pinned_[b])
      cand.push_back({{blocks_[b].importance, blocks_[b].stamp}, b});
  uint32_t below = 0;
  for (int d = t + 1; d <= kDisk; ++d) below += n_slots_[d];
  if (cand.size() < need || below < need)
    fail(Status::context_full,
         "the KV tiers are full: a batch needs {} more blocks in the {} tier and nothing can "
         "move down; use smaller batches, clear finished sequences, or raise the KV budgets "
         "(--kv-vram, --kv-ram, --kv-disk-max)",
         need, tiers_[t]->name());
  std::nth_element(cand.begin(), cand.begin() + (need - 1), cand.end());
  cand.resize(need);
  size_t done = 0;
  for (int d = t + 1; d <= kDisk && done < need; ++d) {
    const Tier next = static_cast<Tier>(d);
    const uint32_t count = std::min<uint32_t>(need - static_cast<uint32_t>(done), n_slots_[d]);
    if (count == 0) continue;
    make_room(next, count);
    std::vector<uint32_t> slots(count);
    for (uint32_t i = 0; i < count; ++i) {
      slots[i] = free_slots_[next].back();
      free_slots_[next].pop_back();
      const size_t b = cand[done + i].second;
      if (const uint8_t* src = block_data(b)) {
        tiers_[next]->write_slot(slots[i], src);
        continue;
      }
      // A device block comes down through host memory, one at a time.
      if (bounce_.size() < slot_bytes_) bounce_.resize(slot_bytes_);
      load_block(b, bounce_.data());
      tiers_[next]->write_slot(slots[i], bounce_.data());
      tiers_[next]->submit();
      tiers_[next]->wait();
    }
    tiers_[next]->submit();
    tiers_[next]->wait();
    for (uint32_t i = 0; i < count; ++i) {
      const size_t b = cand[done + i].second;
      const Block old = blocks_[b];
      free_slots_[old.tier].push_back(old.slot);
      --tier_blocks_[old.tier];
      place(b, next, slots[i]);
      blocks_[b].stamp = old.stamp;
      blocks_[b].importance = old.importance;
    }
    done += count;
  }
}

// Pins every tail block the batch will write, makes room in the hot tier for them and for
// the pages the batch starts, then brings pinned tails that were demoted back to hot.
void KvCache::prepare_hot_blocks(uint32_t new_pages) {
  for (size_t b : pinned_list_) pinned_[b] = 0;
  pinned_list_.clear();
  uint32_t need = new_pages * static_cast<uint32_t>(n_groups_);
  for (size_t s = 0; s < seqs_.size(); ++s) {
    if (!in_batch(s) || (seqs_[s].length & (page_rows_ - 1)) == 0) continue;
    const uint32_t tail = seqs_[s].pages.back();
    for (int32_t g = 0; g < n_groups_; ++g) {
      const size_t b = block_index(g, tail);
      if (pinned_[b]) continue;
      pinned_[b] = 1;
      pinned_list_.push_back(b);
      if (refcount_[tail] == 1 && blocks_[b].tier != kHot) ++need;
    }
  }
  make_room(kHot, need);
  for (size_t b : pinned_list_) {
    if (blocks_[b].tier == kHot || refcount_[b % n_pages_] > 1) continue;
    const uint32_t slot = free_slots_[kHot].back();
    free_slots_[kHot].pop_back();
    fill_hot_slot(slot, b);
    const Block old = blocks_[b];
    release_block(b);
    place(b, kHot, slot);
    blocks_[b].stamp = old.stamp;
    blocks_[b].importance = old.importance;
  }
}

void KvCache::begin_batch(int32_t n_tokens, const int32_t* seq, const int32_t* pos) {
  // Validate first, so that a rejected batch changes nothing.
  std::fill(batch_old_length_.begin(), batch_old_length_.end(), -1);
  for (int32_t i = 0; i < n_tokens; ++i) {
    const int32_t s = seq[i];
    if (s < 0 || s >= static_cast<int32_t>(seqs_.size()))
      fail(Status::invalid_arg, "batch token {}: sequence id {} is outside 0..{}", i, s,
           seqs_.size() - 1);
    if (batch_old_length_[s] < 0) batch_old_length_[s] = seqs_[s].length;
  }
  // Walk each sequence's appends to check positions and count the pages needed.
  uint32_t pages_needed = 0;
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

  wait_staged();
  prepare_hot_blocks(pages_needed);

  // Apply.
  reserve_batch(n_tokens);
  for (int32_t i = 0; i < n_tokens; ++i) {
    Seq& s = seqs_[seq[i]];
    if ((s.length & (page_rows_ - 1)) == 0) {
      s.pages.push_back(new_hot_page(kNoPage));
    } else if (refcount_[s.pages.back()] > 1) {
      const uint32_t fresh = new_hot_page(s.pages.back());
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
  if (n_slots_[kDisk] > 0) stage_group(0);
}

// A logical page whose blocks are all hot and pinned; with `copy_of`, a copy of that page's
// blocks (copy on write of a shared tail).
uint32_t KvCache::new_hot_page(uint32_t copy_of) {
  const uint32_t page = take_page();
  try {
    for (int32_t g = 0; g < n_groups_; ++g) {
      const size_t b = block_index(g, page);
      const uint32_t slot = free_slots_[kHot].back();
      free_slots_[kHot].pop_back();
      place(b, kHot, slot);
      blocks_[b].stamp = ++clock_;
      pinned_[b] = 1;
      pinned_list_.push_back(b);
      if (copy_of != kNoPage) fill_hot_slot(slot, block_index(g, copy_of));
    }
  } catch (...) {
    drop_page(page);
    throw;
  }
  return page;
}

void KvCache::reserve_batch(int32_t n_tokens) {
  if (tok_seq_.size() < static_cast<size_t>(n_tokens)) {
    tok_seq_.resize(n_tokens);
    tok_pos_.resize(n_tokens);
  }
}

void KvCache::rollback_batch() {
  try {
    wait_staged();
  } catch (const Error&) {
    // The batch is being undone; a failed read has nothing left to deliver to.
  }
  for (size_t s = 0; s < seqs_.size(); ++s)
    if (batch_old_length_[s] >= 0) truncate(seqs_[s], batch_old_length_[s]);
  std::fill(batch_old_length_.begin(), batch_old_length_.end(), -1);
}

// Marks the group's blocks of the batch's sequences as used (oldest position first, so
// recency follows position) and queues reads of those on disk into the group's staging
// region.
void KvCache::stage_group(int32_t group) {
  ++stage_round_;
  const bool disk = n_slots_[kDisk] > 0;
  const uint32_t region = staging_first_ + static_cast<uint32_t>(group & 1) * n_pages_;
  for (size_t s = 0; s < seqs_.size(); ++s) {
    if (!in_batch(s)) continue;
    for (uint32_t page : seqs_[s].pages) {
      const size_t b = block_index(group, page);
      if (stage_mark_[b] == stage_round_) continue;
      stage_mark_[b] = stage_round_;
      Block& bl = blocks_[b];
      bl.stamp = ++clock_;
      ++block_reads_;
      if (bl.tier != kDisk) {
        ++block_hits_;
        continue;
      }
      block_slot_[b] = region + page;
      tiers_[kDisk]->read_slot(bl.slot, pool_ + size_t{region + page} * slot_bytes_);
    }
  }
  if (disk) {
    tiers_[kDisk]->submit();
    staged_group_ = group;
  }
}

void KvCache::wait_staged() {
  if (staged_group_ < 0) return;
  staged_group_ = -1;
  const double t0 = now_seconds();
  tiers_[kDisk]->wait();
  stall_seconds_ += now_seconds() - t0;
}

void KvCache::ensure_resident(int32_t group) {
  if (n_slots_[kDisk] == 0) {
    stage_group(group);  // recency only
  } else {
    if (staged_group_ != group) {
      wait_staged();
      stage_group(group);
    }
    wait_staged();
  }
  if (hot_on_device_ && stages_blocks()) upload_group(group);
  // Read the next layer's blocks while this one computes.
  if (n_slots_[kDisk] > 0 && group + 1 < n_groups_) stage_group(group + 1);
}

// Device hot tier: the batch's warm blocks of `group`, and its disk blocks (already read
// into host staging by stage_group), are copied into the device staging slots, one per
// logical page, and the view points there. The previous group's attention has finished
// (the backend runs it before asking for the next group), so staging can be reused.
void KvCache::upload_group(int32_t group) {
  ++upload_round_;
  const uint32_t dev_staging = n_slots_[kHot];
  const uint32_t host_region = staging_first_ + static_cast<uint32_t>(group & 1) * n_pages_;
  KvTier& hot = *tiers_[kHot];
  bool queued = false;
  for (size_t s = 0; s < seqs_.size(); ++s) {
    if (!in_batch(s)) continue;
    for (uint32_t page : seqs_[s].pages) {
      const size_t b = block_index(group, page);
      if (upload_mark_[b] == upload_round_ || blocks_[b].tier == kHot) continue;
      upload_mark_[b] = upload_round_;
      const uint8_t* src = blocks_[b].tier == kWarm
                               ? block_data(b)
                               : pool_ + size_t{host_region + page} * slot_bytes_;
      hot.write_slot(dev_staging + page, src);
      block_slot_[b] = dev_staging + page;
      queued = true;
    }
  }
  if (!queued) return;
  hot.submit();
  hot.wait();
}

void KvCache::truncate(Seq& s, int32_t length) {
  // Ring rows older than the last ring_rows positions written were overwritten: after
  // shortening, the window may reach back to them, and they must be read from the page.
  int32_t& valid_from = ring_valid_from_[static_cast<size_t>(&s - seqs_.data())];
  // Rows from `length` on are written anew, so they are exact again.
  if (view_.ring_rows > 0)
    valid_from = std::min(length, std::max(valid_from, s.length - view_.ring_rows));
  const size_t keep = (static_cast<size_t>(length) + page_rows_ - 1) >> page_shift_;
  while (s.pages.size() > keep) {
    drop_page(s.pages.back());
    s.pages.pop_back();
  }
  s.length = length;
}

void KvCache::clear(int32_t seq) {
  wait_staged();
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
  wait_staged();
  truncate(s, p0);
}

void KvCache::copy(int32_t src, int32_t dst) {
  const int32_t n = static_cast<int32_t>(seqs_.size());
  if (src < 0 || src >= n || dst < 0 || dst >= n)
    fail(Status::invalid_arg, "sequence ids {} -> {} must be in 0..{}", src, dst, n - 1);
  if (src == dst) return;
  wait_staged();
  truncate(seqs_[dst], 0);
  for (uint32_t p : seqs_[src].pages) {
    ++refcount_[p];
    seqs_[dst].pages.push_back(p);
  }
  seqs_[dst].length = seqs_[src].length;
  ring_valid_from_[dst] = ring_valid_from_[src];
  if (ring_seq_floats_ == 0) return;
  if (ring_seq_slots_ == 0) {
    std::memcpy(ring_.data() + static_cast<size_t>(dst) * ring_seq_floats_,
                ring_.data() + static_cast<size_t>(src) * ring_seq_floats_,
                ring_seq_floats_ * sizeof(float));
    return;
  }
  ring_of(src);  // device ring: through the host, as copied blocks are
  store_ring(dst);
}

float* KvCache::window_row(size_t comp, int32_t seq, int32_t pos) {
  if (ring_seq_slots_ > 0)
    fail(Status::internal, "window_row: the KV window ring is in device memory; use read_window");
  return view_.ring_row(static_cast<int>(comp), seq, pos);
}

float* KvCache::ring_of(int32_t seq) {
  if (ring_seq_slots_ == 0) return ring_.data() + static_cast<size_t>(seq) * ring_seq_floats_;
  ring_copy_.resize(size_t{ring_seq_slots_} * slot_bytes_ / sizeof(float));
  auto* bytes = reinterpret_cast<uint8_t*>(ring_copy_.data());
  const uint32_t first = ring_first_slot_ + static_cast<uint32_t>(seq) * ring_seq_slots_;
  for (uint32_t i = 0; i < ring_seq_slots_; ++i)
    tiers_[kHot]->read_slot(first + i, bytes + size_t{i} * slot_bytes_);
  tiers_[kHot]->submit();
  tiers_[kHot]->wait();
  return ring_copy_.data();
}

void KvCache::store_ring(int32_t seq) {
  const auto* bytes = reinterpret_cast<const uint8_t*>(ring_copy_.data());
  const uint32_t first = ring_first_slot_ + static_cast<uint32_t>(seq) * ring_seq_slots_;
  for (uint32_t i = 0; i < ring_seq_slots_; ++i)
    tiers_[kHot]->write_slot(first + i, bytes + size_t{i} * slot_bytes_);
  tiers_[kHot]->submit();
  tiers_[kHot]->wait();
}

void KvCache::check_window_args(int32_t seq, size_t comp, int32_t first, int32_t n) const {
  if (seq < 0 || seq >= static_cast<int32_t>(seqs_.size()) || comp >= comps_.size() ||
      !comp_views_[comp].ring || first < 0 || n < 0 || n > view_.ring_rows)
    fail(Status::invalid_arg,
         "KV window: sequence {} component {} rows {}..{} are not in a recent-row ring", seq,
         comp, first, first + n);
}

void KvCache::read_window(int32_t seq, size_t comp, int32_t first, int32_t n, float* dst) {
  check_window_args(seq, comp, first, n);
  if (n == 0) return;
  const float* ring = ring_of(seq) + ring_comp_at_[comp];
  const size_t elems = static_cast<size_t>(comps_[comp].row_elems);
  for (int32_t p = first; p < first + n; ++p)
    std::memcpy(dst + (p - first) * elems, ring + (p & (view_.ring_rows - 1)) * elems,
                elems * sizeof(float));
}

void KvCache::write_window(int32_t seq, size_t comp, int32_t first, int32_t n, const float* src) {
  check_window_args(seq, comp, first, n);
  if (n == 0) return;
  float* ring = ring_of(seq) + ring_comp_at_[comp];
  const size_t elems = static_cast<size_t>(comps_[comp].row_elems);
  for (int32_t p = first; p < first + n; ++p)
    std::memcpy(ring + (p & (view_.ring_rows - 1)) * elems, src + (p - first) * elems,
                elems * sizeof(float));
  if (ring_seq_slots_ > 0) store_ring(seq);
}

int32_t KvCache::window_first(int32_t seq) const {
  const int32_t len = seqs_[seq].length;
  return std::min(len, std::max({0, len - view_.window, ring_valid_from_[seq]}));
}

void KvCache::set_importance(int32_t group, uint32_t page, float score) {
  if (group < 0 || group >= n_groups_ || page >= n_pages_)
    fail(Status::invalid_arg, "KV block (group {}, page {}) is outside {} groups x {} pages",
         group, page, n_groups_, n_pages_);
  blocks_[block_index(group, page)].importance = score;
}

void KvCache::read_rows(int32_t seq, size_t comp, int32_t n, uint8_t* dst) {
  if (seq < 0 || seq >= static_cast<int32_t>(seqs_.size()) || comp >= comps_.size() || n < 0 ||
      n > seqs_[seq].length)
    fail(Status::invalid_arg, "read_rows: sequence {} component {} rows {} out of range", seq,
         comp, n);
  const size_t rb = comps_[comp].row_bytes();
  const int32_t g = comps_[comp].group;
  if (bounce_.size() < slot_bytes_) bounce_.resize(slot_bytes_);
  for (int32_t r0 = 0; r0 < n; r0 += page_rows_) {
    const size_t b = block_index(g, seqs_[seq].pages[r0 >> page_shift_]);
    const uint8_t* src = block_data(b);
    if (!src) {
      load_block(b, bounce_.data());
      src = bounce_.data();
    }
    const size_t rows = static_cast<size_t>(std::min(page_rows_, n - r0));
    std::memcpy(dst + static_cast<size_t>(r0) * rb, src + comp_offset_[comp], rows * rb);
  }
}

void KvCache::write_rows(int32_t seq, size_t comp, int32_t first, int32_t n,
                         const uint8_t* src) {
  if (seq < 0 || seq >= static_cast<int32_t>(seqs_.size()) || comp >= comps_.size() ||
      first < 0 || n < 0 || first + n > seqs_[seq].length)
    fail(Status::invalid_arg, "write_rows: sequence {} component {} rows {}..{} out of range",
         seq, comp, first, first + n);
  const size_t rb = comps_[comp].row_bytes();
  const int32_t g = comps_[comp].group;
  for (int32_t r = first; r < first + n;) {
    const size_t b = block_index(g, seqs_[seq].pages[r >> page_shift_]);
    if (blocks_[b].tier != kHot)
      fail(Status::internal, "write_rows: block of row {} is not in the hot tier", r);
    const int32_t in_page = r & (page_rows_ - 1);
    const int32_t rows = std::min(page_rows_ - in_page, first + n - r);
    const size_t at = comp_offset_[comp] + static_cast<size_t>(in_page) * rb;
    const uint8_t* from = src + static_cast<size_t>(r - first) * rb;
    if (uint8_t* dst = block_data(b)) {
      std::memcpy(dst + at, from, rows * rb);
    } else {  // device memory: read, patch, write back the whole block
      if (bounce_.size() < slot_bytes_) bounce_.resize(slot_bytes_);
      load_block(b, bounce_.data());
      std::memcpy(bounce_.data() + at, from, rows * rb);
      tiers_[kHot]->write_slot(blocks_[b].slot, bounce_.data());
      tiers_[kHot]->submit();
      tiers_[kHot]->wait();
    }
    r += rows;
  }
}

KvStats KvCache::stats() const {
  KvStats st;
  st.hot_on_device = hot_on_device_;
  for (int t = 0; t < 3; ++t) {
    st.tiers[t].name = t == kHot ? "device" : t == kWarm ? "host" : "disk";
    st.tiers[t].blocks = tier_blocks_[t];
    st.tiers[t].bytes = tier_blocks_[t] * slot_bytes_;
    st.tiers[t].capacity_bytes = uint64_t{n_slots_[t]} * slot_bytes_;
  }
  if (tiers_[kDisk]) st.disk_io = tiers_[kDisk]->io_stats();
  st.block_reads = block_reads_;
  st.block_hits = block_hits_;
  st.stall_seconds = stall_seconds_;
  return st;
}

}  // namespace v4
