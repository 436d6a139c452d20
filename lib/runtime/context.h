// A context: one model's KV cache, the forward graphs already built for the batch
// shapes it has seen, and the arena they run in. decode() takes a batch of tokens
// (each with position, sequence and "wants logits"), appends them to their sequences
// and computes the wanted logits. A context is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/backend.h"
#include "lib/core/log.h"
#include "lib/core/threadpool.h"
#include "lib/exec/schedule.h"
#include "lib/kv/kv_cache.h"
#include "lib/model/model.h"

namespace v4 {

struct ContextOptions {
  uint32_t n_ctx = 0;          // 0: the model's training context
  uint32_t n_batch = 512;
  uint32_t n_seq_max = 1;
  int32_t n_threads = 0;       // <= 0: all cores
  int32_t n_threads_batch = 0; // <= 0: n_threads
  ThreadPool* shared_pool = nullptr;
  uint32_t kv_page_tokens = 32;
  DType kv_type = DType::F32;
  KvBudgets kv_budgets;
  bool (*abort)(void*) = nullptr;
  void* abort_user = nullptr;
  Logger log;
  std::string backend = "auto";  // auto, cpu, vulkan, cuda (lib/runtime/backend_registry.h)
  std::string device;            // index or part of a name; "": the best
  std::string devices;           // several, "0,1": layers split across them (overrides device)
  std::string split;             // with devices: "auto" / "" (by free memory) or ratios "3,1"
};

struct BatchView {
  int32_t n_tokens = 0;
  const int32_t* tokens = nullptr;
  const int32_t* pos = nullptr;      // nullptr: continue each sequence
  const int32_t* seq = nullptr;      // nullptr: sequence 0
  const int8_t* logits = nullptr;    // nullptr: last token only
};

class Context {
 public:
  Context(const Model& model, const ContextOptions& opts);
  ~Context();

  void decode(const BatchView& batch);
  // Logits row of batch token i of the last decode (i < 0 from the end), or nullptr.
  const float* logits(int32_t i) const;
  int32_t n_vocab() const { return n_vocab_; }

  KvCache& kv() { return *kv_; }
  const KvCache& kv() const { return *kv_; }
  // Sequence edits that keep the token history (for sessions) in step with the cache.
  void seq_clear(int32_t seq);
  void seq_remove(int32_t seq, int32_t p0, int32_t p1);
  void seq_copy(int32_t src, int32_t dst);
  // The tokens a sequence's cache holds, in position order.
  const std::vector<int32_t>& seq_tokens(int32_t seq) const { return seq_tokens_[seq]; }
  // Fills `seq` (cleared first) from saved tokens and K/V rows: rows[c] holds n rows of
  // component c; window_rows[c] (or null) the exact f32 copies of its last n_window rows.
  // Fails with nothing changed if they do not fit.
  void seq_restore(int32_t seq, const int32_t* tokens, int32_t n,
                   const std::vector<const uint8_t*>& rows, int32_t n_window,
                   const std::vector<const float*>& window_rows);
  const Model& model() const { return model_; }
  uint32_t n_ctx() const { return kv_->n_ctx(); }
  std::string describe_plan();

 private:
  struct CachedGraph {
    int32_t n_tokens = 0, n_outputs = 0;
    std::unique_ptr<Graph> graph;
    ForwardGraph io;
    std::unique_ptr<Schedule> schedule;
    uint64_t last_used = 0;
  };
  void place_layers();
  CachedGraph& graph_for(int32_t n_tokens, int32_t n_outputs);
  void run_ubatch(const int32_t* tokens, const int32_t* seq, const int32_t* pos, int32_t first,
                  int32_t n);

  const Model& model_;
  const Architecture& arch_;
  ContextOptions opts_;
  int32_t n_vocab_;
  std::unique_ptr<Backend> cpu_;
  std::vector<std::unique_ptr<Backend>> devices_;  // GPU backends (one per device), or none
  std::vector<Backend*> backends_;
  std::vector<Backend*> layer_backends_;  // several devices: each layer's, then the output's
  std::unique_ptr<ThreadPool> own_pool_;
  ThreadPool* pool_;
  std::unique_ptr<KvCache> kv_;
  std::vector<CachedGraph> graphs_;
  uint64_t use_counter_ = 0;
  uint8_t* arena_ = nullptr;
  size_t arena_bytes_ = 0;
  std::vector<float> attn_scratch_;
  // Per-batch bookkeeping, sized once.
  std::vector<int32_t> seq_buf_, pos_buf_, next_pos_;
  std::vector<int32_t> out_ids_buf_;
  std::vector<float> logits_;        // rows for the wanted tokens of the last batch
  std::vector<int32_t> logit_row_;   // batch index -> row in logits_, or -1
  std::vector<std::vector<int32_t>> seq_tokens_;
  int32_t last_n_tokens_ = 0;
};

}  // namespace v4
