// The paged, tiered KV cache. Each sequence has a page table mapping its positions to
// logical pages; logical pages are reference counted so a copied sequence shares them until
// one side writes (copy on write of the tail page). A logical page holds one *block* per
// group (a layer's K and V rows), and each block lives in one tier: hot (the memory the
// attention backend reads: VRAM on a GPU, a host pool on the CPU), warm (host RAM) or disk.
//
// Policy: a batch's new and tail blocks are always hot; when a tier is over its budget its
// least important, least recently used blocks move down one tier. Blocks on disk are read
// into a staging area before their layer's attention (ensure_resident), and the next
// layer's reads are issued while the current layer computes. Moving a block copies its
// bytes, so where a block lives never changes what the model computes.
//
// All storage and page tables are allocated when the cache is created: appending tokens
// never allocates.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "lib/core/kv_view.h"
#include "lib/core/log.h"
#include "lib/kv/kv_tier.h"

namespace v4 {

// The recent-row window of block-quantised (FP8) rows: f32 copies of each sequence's last
// `window` rows, in a ring of `ring_rows` (a power of two >= window + the largest batch).
// The ring lives where the hot tier does: host memory, or, with a device hot tier, slots
// of that tier past its page slots (one run of slots per sequence), written and read by
// the device's kernels; the host reaches it through read_window/write_window.
struct KvWindow {
  int32_t window = 0;     // 0: none
  int32_t ring_rows = 0;
};

struct KvBudgets {
  uint64_t hot_bytes = 0;   // 0: no limit (everything hot)
  uint64_t warm_bytes = 0;  // 0: no limit
  KvDiskOptions disk;       // disk.dir empty: no disk tier
};

struct KvStats {
  struct Tier {
    const char* name = "";
    uint64_t blocks = 0, bytes = 0, capacity_bytes = 0;
  };
  Tier tiers[3];  // hot, warm, disk
  bool hot_on_device = false;  // the hot tier is the attention backend's device memory
  KvTierIoStats disk_io;
  uint64_t block_reads = 0;  // blocks attention asked for
  uint64_t block_hits = 0;   // ... of which were already in host-addressable tiers
  double stall_seconds = 0;  // time attention waited for disk reads
};

class KvCache final : public KvResidency {
 public:
  // n_ctx: the most rows one sequence may hold and the pool's capacity in rows.
  KvCache(std::vector<KvComponentSpec> comps, int32_t page_rows, uint32_t n_ctx,
          uint32_t n_seq_max, const KvBudgets& budgets = {}, const Logger& log = {},
          const KvWindow& window = {}, const KvTierFactory& hot_tier = {});
  ~KvCache() override;
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  uint32_t n_ctx() const { return n_ctx_; }
  uint32_t n_seq_max() const { return static_cast<uint32_t>(seqs_.size()); }
  int32_t page_rows() const { return page_rows_; }
  int32_t n_groups() const { return n_groups_; }
  int32_t seq_length(int32_t seq) const { return seqs_[seq].length; }
  // Logical pages (all groups of a page range) free and in total.
  uint32_t free_pages() const { return static_cast<uint32_t>(free_.size()); }
  uint32_t total_pages() const { return n_pages_; }
  size_t block_bytes() const { return slot_bytes_; }
  const std::vector<KvComponentSpec>& components() const { return comps_; }
  // The largest batch whose blocks always fit the hot tier; larger batches must be split.
  int32_t max_batch_tokens() const { return max_batch_tokens_; }

  // Makes room for a batch: token i appends position pos[i] to sequence seq[i].
  // Positions must continue each sequence without gaps. On failure (bad position:
  // invalid_arg; no room: context_full; I/O) nothing the sequences hold changes. Fills the
  // view's token arrays and starts reading the first layer's blocks from disk.
  void begin_batch(int32_t n_tokens, const int32_t* seq, const int32_t* pos);
  // Sizes the per-token arrays so batches of up to n_tokens never allocate.
  void reserve_batch(int32_t n_tokens);
  // Undoes the last begin_batch (the decode was aborted or failed).
  void rollback_batch();

  KvView* view() { return &view_; }
  void ensure_resident(int32_t group) override;
  bool stages_blocks() const override { return n_slots_[kHot] < blocks_.size(); }
  // Whether the hot tier is a backend's device memory (the view holds device addresses).
  bool hot_on_device() const { return hot_on_device_; }

  void clear(int32_t seq);                            // seq < 0: all
  void remove(int32_t seq, int32_t p0, int32_t p1);   // only a tail range; p1 < 0: to end
  void copy(int32_t src, int32_t dst);

  // Raises or lowers how strongly a block resists demotion (sparse attention's scores).
  void set_importance(int32_t group, uint32_t page, float score);
  // Rows [0, n) of component `comp` of `seq`, wherever their blocks are (sessions).
  void read_rows(int32_t seq, size_t comp, int32_t n, uint8_t* dst);
  // Writes rows [first, first + n) of `comp` of `seq`; their blocks must be hot (the
  // current batch's pages, after begin_batch). Sessions restore rows this way.
  void write_rows(int32_t seq, size_t comp, int32_t first, int32_t n, const uint8_t* src);
  int32_t window() const { return view_.window; }
  // The window rows `seq` holds exactly: positions [first, seq_length).
  int32_t window_first(int32_t seq) const;
  // A host ring's row (tests); fails when the ring is in device memory.
  float* window_row(size_t comp, int32_t seq, int32_t pos);
  // Ring rows [first, first + n) of quantised component `comp` of `seq` (within its last
  // ring_rows positions), n * row_elems floats, wherever the ring lives (sessions).
  void read_window(int32_t seq, size_t comp, int32_t first, int32_t n, float* dst);
  void write_window(int32_t seq, size_t comp, int32_t first, int32_t n, const float* src);
  // After restoring rows from elsewhere (sessions): only positions >= first have exact copies.
  void set_window_first(int32_t seq, int32_t first) { ring_valid_from_[seq] = first; }
  KvStats stats() const;

 private:
  enum Tier : uint8_t { kHot = 0, kWarm = 1, kDisk = 2, kNone = 3 };
  struct Block {
    uint8_t tier = kNone;
    uint32_t slot = 0;     // slot within its tier
    uint64_t stamp = 0;    // last use (higher = more recent)
    float importance = 0;
  };
  struct Seq {
    std::vector<uint32_t> pages;  // capacity reserved for n_ctx rows
    int32_t length = 0;
  };

  void plan_tiers(const KvBudgets& b, uint32_t n_seq_max, const Logger& log);
  size_t block_index(int32_t group, uint32_t page) const {
    return static_cast<size_t>(group) * n_pages_ + page;
  }
  uint32_t take_page();
  void drop_page(uint32_t page);
  void release_block(size_t b);
  void truncate(Seq& s, int32_t length);
  void place(size_t b, Tier t, uint32_t slot);
  uint8_t* block_data(size_t b);          // host-addressable blocks only (else nullptr)
  void load_block(size_t b, uint8_t* dst);  // from any tier, waits
  void fill_hot_slot(uint32_t slot, size_t from_block);  // copies a block into a hot slot
  void upload_group(int32_t group);  // device hot tier: warm/disk blocks into device staging
  void make_room(Tier t, uint32_t n);
  void prepare_hot_blocks(uint32_t new_pages);
  static constexpr uint32_t kNoPage = 0xffffffffu;
  uint32_t new_hot_page(uint32_t copy_of);
  void stage_group(int32_t group);
  bool in_batch(size_t seq) const { return batch_old_length_[seq] >= 0; }
  void wait_staged();
  void make_ring(const KvWindow& window, uint32_t n_seq_max);
  float* ring_of(int32_t seq);        // the sequence's ring in host memory (device: a copy)
  void store_ring(int32_t seq);       // device ring: writes ring_copy_ back
  void check_window_args(int32_t seq, size_t comp, int32_t first, int32_t n) const;

  std::vector<KvComponentSpec> comps_;
  int32_t page_rows_;
  int32_t page_shift_;
  uint32_t n_ctx_;
  uint32_t n_pages_ = 0;  // logical pages
  int32_t n_groups_ = 0;
  size_t slot_bytes_ = 0;
  int32_t max_batch_tokens_ = 0;

  // Addressable pool: hot slots, then warm slots, then two staging regions of n_pages_
  // slots (layers alternate between them) when there is a disk tier.
  uint8_t* pool_ = nullptr;
  uint32_t n_slots_[3] = {0, 0, 0};
  uint32_t staging_first_ = 0;
  std::unique_ptr<KvTier> tiers_[3];
  std::vector<uint32_t> free_slots_[3];
  uint64_t tier_blocks_[3] = {0, 0, 0};

  std::vector<Block> blocks_;
  std::vector<uint32_t> block_slot_;  // the view's addressing
  std::vector<uint8_t> pinned_;       // per block: written by the current batch
  std::vector<size_t> pinned_list_;
  std::vector<uint32_t> stage_mark_;  // per block: last stage_group round that saw it
  uint32_t stage_round_ = 0;
  std::vector<size_t> comp_offset_;   // byte offset of each component inside its slot
  std::vector<uint8_t> bounce_;       // one block, for reads outside a batch
  // Device hot tier: its slots are [hot | n_pages_ staging slots]; before a group's
  // attention its warm and disk blocks are copied into the staging slots.
  bool hot_on_device_ = false;
  std::vector<uint32_t> upload_mark_;
  uint32_t upload_round_ = 0;
  uint64_t clock_ = 0;
  int32_t staged_group_ = -1;         // group whose reads are in flight
  uint64_t block_reads_ = 0, block_hits_ = 0;
  double stall_seconds_ = 0;

  std::vector<uint32_t> refcount_;
  std::vector<uint32_t> free_;   // stack of free logical pages
  std::vector<Seq> seqs_;
  std::vector<int32_t> batch_old_length_;  // per sequence, for rollback; -1: not in the batch
  std::vector<KvComponentView> comp_views_;
  std::vector<const uint32_t*> seq_page_ptrs_;
  std::vector<int32_t> tok_seq_, tok_pos_;
  std::vector<float> ring_;              // host ring: recent-row windows, all components
  std::vector<size_t> ring_comp_at_;     // floats from a sequence's ring to a component's
  size_t ring_seq_floats_ = 0;           // ring floats per sequence (all components)
  uint32_t ring_first_slot_ = 0;         // device ring: its first slot of the hot tier
  uint32_t ring_seq_slots_ = 0;          // ... and slots per sequence (0: host ring)
  std::vector<float> ring_copy_;         // device ring: one sequence's, read to the host
  std::vector<int32_t> ring_valid_from_; // per sequence
  KvView view_;
};

}  // namespace v4
