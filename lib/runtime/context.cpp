#include "lib/runtime/context.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "backends/cpu/cpu_backend.h"
#include "lib/core/error.h"
#include "lib/exec/placement.h"
#include "lib/model/model_footprint.h"
#include "lib/runtime/backend_registry.h"

namespace v4 {
namespace {
// Forward graphs kept per context: decode (1 token) plus a few prompt shapes.
constexpr size_t kMaxCachedGraphs = 8;
// FP8 pages: the last 32 rows are read exactly (docs/KV_TIERS.md has the measurements).
constexpr int32_t kKvWindowRows = 32;
constexpr int32_t kKvRingRows = 256;
}  // namespace

Context::Context(const Model& model, const ContextOptions& opts)
    : model_(model), arch_(*model.arch()), opts_(opts) {
  if (!model.arch())
    fail(Status::invalid_arg, "the model was loaded vocabulary-only; it cannot run a context");
  n_vocab_ = arch_.info().n_vocab;
  if (opts_.n_ctx == 0) opts_.n_ctx = static_cast<uint32_t>(arch_.info().n_ctx_train);
  if (opts_.n_batch == 0) opts_.n_batch = 512;
  if (opts_.n_seq_max == 0) opts_.n_seq_max = 1;
  if (opts_.n_seq_max > 4096)
    fail(Status::invalid_arg, "n_seq_max {} is too large (at most 4096)", opts_.n_seq_max);
  if (opts_.n_ctx > (1u << 24))
    fail(Status::invalid_arg, "n_ctx {} is too large (at most {})", opts_.n_ctx, 1u << 24);
  if (opts_.kv_page_tokens == 0) opts_.kv_page_tokens = 32;
  if (opts_.n_ctx > static_cast<uint32_t>(arch_.info().n_ctx_train))
    opts_.log(LogLevel::warn, "n_ctx {} exceeds the model's training context {}; quality may drop",
              opts_.n_ctx, arch_.info().n_ctx_train);
  if (opts_.n_threads <= 0) opts_.n_threads = ThreadPool::default_thread_count();
  if (opts_.n_threads_batch <= 0) opts_.n_threads_batch = opts_.n_threads;

  cpu_ = make_cpu_backend();
  if (opts_.devices.find(',') != std::string::npos) {
    devices_ = create_device_backends(opts_.backend, opts_.devices, opts_.log);
  } else if (auto one = create_device_backend(
                 opts_.backend, opts_.devices.empty() ? opts_.device : opts_.devices, opts_.log)) {
    devices_.push_back(std::move(one));
  }
  for (auto& d : devices_) backends_.push_back(d.get());
  backends_.push_back(cpu_.get());
  if (devices_.size() > 1) place_layers();
  if (opts_.shared_pool) {
    pool_ = opts_.shared_pool;
  } else {
    own_pool_ = std::make_unique<ThreadPool>(std::max(opts_.n_threads, opts_.n_threads_batch));
    pool_ = own_pool_.get();
  }
  std::vector<KvComponentSpec> comps = arch_.kv_components(opts_.kv_type);
  for (const KvComponentSpec& c : comps)
    if (c.row_elems % traits(c.type).block_size != 0)
      fail(Status::unsupported,
           "KV type {} stores rows in blocks of {} values, but {} rows have {} values; use "
           "--kv-type f16 or bf16 for this model",
           type_name(c.type), traits(c.type).block_size, c.name, c.row_elems);
  // Block-quantised (FP8) rows keep an exact copy of the most recent rows: the ring must
  // hold the window plus every row of one batch, so batches are capped to fit it.
  KvWindow window;
  if (traits(opts_.kv_type).quantized) {
    window = {kKvWindowRows, kKvRingRows};
    opts_.n_batch = std::min<uint32_t>(opts_.n_batch, kKvRingRows - kKvWindowRows);
  }
  // The hot KV tier lives in the device backend's memory when it runs attention over
  // these pages (else host memory, read by the CPU). A layer split keeps KV in host memory
  // for now: one pool cannot live on two devices (per-device pools are future work).
  Backend* device = devices_.size() == 1 ? devices_.front().get() : nullptr;
  KvTierFactory hot_tier;
  if (device)
    hot_tier = [this, device](uint32_t n_slots, size_t slot_bytes) {
      return device->make_kv_tier(opts_.kv_type, arch_.max_head_dim(), n_slots, slot_bytes);
    };
  kv_ = std::make_unique<KvCache>(std::move(comps), static_cast<int32_t>(opts_.kv_page_tokens),
                                  opts_.n_ctx, opts_.n_seq_max, opts_.kv_budgets, opts_.log,
                                  window, hot_tier);
  if (device && !kv_->hot_on_device())
    opts_.log(LogLevel::info, "KV pages stay in host memory and attention runs on the CPU: {} "
              "does not run attention over {} pages with heads of {} (or the cache is too large "
              "for one device buffer)", device->name(), type_name(opts_.kv_type),
              arch_.max_head_dim());
  if (devices_.size() > 1)
    opts_.log(LogLevel::info, "KV pages stay in host memory and attention runs on the CPU "
              "with a layer split over {} devices", devices_.size());
  // Batches are split so their new KV blocks always fit the hot tier.
  opts_.n_batch = static_cast<uint32_t>(
      std::min<int64_t>(opts_.n_batch, kv_->max_batch_tokens()));
  kv_->reserve_batch(static_cast<int32_t>(opts_.n_batch));
  // Attention scores: one row of n_ctx per query head of a KV group and token of a tile,
  // per thread.
  const size_t scratch_stride =
      static_cast<size_t>(opts_.n_ctx) * arch_.max_query_group() * kAttentionTokenTile;
  attn_scratch_.resize(static_cast<size_t>(pool_->size()) * scratch_stride);
  KvView* view = kv_->view();
  view->scratch = attn_scratch_.data();
  view->scratch_stride = static_cast<int64_t>(scratch_stride);
  next_pos_.assign(opts_.n_seq_max, 0);
  seq_buf_.resize(opts_.n_batch);
  pos_buf_.resize(opts_.n_batch);
  out_ids_buf_.resize(opts_.n_batch);
  logit_row_.resize(opts_.n_batch);
  logits_.resize(static_cast<size_t>(n_vocab_));
  seq_tokens_.resize(opts_.n_seq_max);
  // Token histories grow with their sequences; reserve them up front when that is cheap so
  // decoding does not allocate.
  if (uint64_t{opts_.n_seq_max} * opts_.n_ctx <= (uint64_t{16} << 20))
    for (auto& t : seq_tokens_) t.reserve(opts_.n_ctx);
  const KvStats st = kv_->stats();
  opts_.log(LogLevel::info,
            "context: n_ctx {}, n_batch {}, {} sequences, {} threads, KV {} ({} pages of {} "
            "tokens; tiers device {:.1f} / host {:.1f} / disk {:.1f} MiB)",
            opts_.n_ctx, opts_.n_batch, opts_.n_seq_max, pool_->size(), type_name(opts_.kv_type),
            kv_->total_pages(), kv_->page_rows(), st.tiers[0].capacity_bytes / 1048576.0,
            st.tiers[1].capacity_bytes / 1048576.0, st.tiers[2].capacity_bytes / 1048576.0);
}

Context::~Context() {
  if (arena_) cpu_->free(arena_);
}

Context::CachedGraph& Context::graph_for(int32_t n_tokens, int32_t n_outputs) {
  ++use_counter_;
  for (CachedGraph& c : graphs_) {
    if (c.n_tokens == n_tokens && c.n_outputs == n_outputs) {
      c.last_used = use_counter_;
      return c;
    }
  }
  if (graphs_.size() >= kMaxCachedGraphs) {
    auto lru = std::min_element(graphs_.begin(), graphs_.end(),
                                [](const CachedGraph& a, const CachedGraph& b) {
                                  return a.last_used < b.last_used;
                                });
    graphs_.erase(lru);
  }
  CachedGraph c;
  c.n_tokens = n_tokens;
  c.n_outputs = n_outputs;
  c.graph = std::make_unique<Graph>();
  c.io = arch_.build(*c.graph, n_tokens, n_outputs, kv_->view());
  c.schedule = std::make_unique<Schedule>(*c.graph, backends_, layer_backends_);
  c.last_used = use_counter_;
  if (c.schedule->arena_bytes() > arena_bytes_) {
    if (arena_) cpu_->free(arena_);
    arena_ = nullptr;
    arena_ = static_cast<uint8_t*>(cpu_->alloc(c.schedule->arena_bytes(), 64));
    arena_bytes_ = c.schedule->arena_bytes();
  }
  graphs_.push_back(std::move(c));
  return graphs_.back();
}

void Context::decode(const BatchView& b) {
  const int32_t n = b.n_tokens;
  if (n < 1 || !b.tokens) fail(Status::invalid_arg, "decode: the batch has no tokens");
  for (int32_t i = 0; i < n; ++i)
    if (b.tokens[i] < 0 || b.tokens[i] >= n_vocab_)
      fail(Status::invalid_arg, "decode: batch token {} has id {}, outside the vocabulary 0..{}",
           i, b.tokens[i], n_vocab_ - 1);
  if (static_cast<size_t>(n) > seq_buf_.size()) {
    seq_buf_.resize(n);
    pos_buf_.resize(n);
    logit_row_.resize(n);
  }
  const int32_t n_seq = static_cast<int32_t>(kv_->n_seq_max());
  for (int32_t s = 0; s < n_seq; ++s) next_pos_[s] = kv_->seq_length(s);
  int32_t n_out = 0;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t s = b.seq ? b.seq[i] : 0;
    if (s < 0 || s >= n_seq)
      fail(Status::invalid_arg, "decode: batch token {} has sequence id {}, outside 0..{}", i, s,
           n_seq - 1);
    seq_buf_[i] = s;
    pos_buf_[i] = b.pos ? b.pos[i] : next_pos_[s];
    next_pos_[s] = pos_buf_[i] + 1;
    const bool want = b.logits ? b.logits[i] != 0 : i == n - 1;
    logit_row_[i] = want ? n_out++ : -1;
  }
  last_n_tokens_ = n;
  if (static_cast<size_t>(n_out) * n_vocab_ > logits_.size())
    logits_.resize(static_cast<size_t>(n_out) * n_vocab_);
  for (int32_t s = 0; s < n_seq; ++s) next_pos_[s] = kv_->seq_length(s);  // for rollback

  const int32_t step = static_cast<int32_t>(opts_.n_batch);
  try {
    for (int32_t i0 = 0; i0 < n; i0 += step) {
      const int32_t m = std::min(step, n - i0);
      run_ubatch(b.tokens + i0, seq_buf_.data() + i0, pos_buf_.data() + i0, i0, m);
    }
  } catch (...) {
    // A failed or aborted batch leaves every sequence as it was.
    for (int32_t s = 0; s < n_seq; ++s)
      if (kv_->seq_length(s) > next_pos_[s]) seq_remove(s, next_pos_[s], -1);
    last_n_tokens_ = 0;
    throw;
  }
}

void Context::run_ubatch(const int32_t* tokens, const int32_t* seq, const int32_t* pos,
                         int32_t first, int32_t n) {
  kv_->begin_batch(n, seq, pos);
  int32_t n_out = 0;
  for (int32_t i = 0; i < n; ++i)
    if (logit_row_[first + i] >= 0) out_ids_buf_[n_out++] = i;
  const int32_t n_graph_out = n_out == 0 ? 1 : n_out;
  if (n_out == 0) out_ids_buf_[0] = n - 1;  // nothing wanted: compute the last row anyway

  CachedGraph& c = graph_for(n, n_graph_out);
  if (c.schedule->bound_arena() != arena_) c.schedule->bind(arena_);
  std::memcpy(c.io.tokens->data, tokens, n * sizeof(int32_t));
  std::memcpy(c.io.positions->data, pos, n * sizeof(int32_t));
  if (c.io.out_ids) std::memcpy(c.io.out_ids->data, out_ids_buf_.data(), n_graph_out * sizeof(int32_t));

  ComputeEnv env;
  env.pool = pool_;
  env.n_threads = std::min(pool_->size(), n == 1 ? opts_.n_threads : opts_.n_threads_batch);
  env.abort = opts_.abort;
  env.abort_user = opts_.abort_user;
  bool finished;
  if (opts_.shared_pool) {
    std::lock_guard<std::mutex> lock(pool_->user_mutex());
    finished = c.schedule->run(env);
  } else {
    finished = c.schedule->run(env);
  }
  if (!finished) {
    kv_->rollback_batch();
    fail(Status::aborted, "decode aborted by the abort callback; the KV cache is unchanged");
  }
  for (int32_t i = 0; i < n; ++i) seq_tokens_[seq[i]].push_back(tokens[i]);
  const auto* out = static_cast<const float*>(c.io.logits->data);
  for (int32_t j = 0; j < n_out; ++j) {
    const int32_t row = logit_row_[first + out_ids_buf_[j]];
    std::memcpy(logits_.data() + static_cast<size_t>(row) * n_vocab_,
                out + static_cast<size_t>(j) * n_vocab_, n_vocab_ * sizeof(float));
  }
}

void Context::seq_clear(int32_t seq) {
  kv_->clear(seq);
  for (size_t s = 0; s < seq_tokens_.size(); ++s)
    if (seq < 0 || static_cast<int32_t>(s) == seq) seq_tokens_[s].clear();
}

void Context::seq_remove(int32_t seq, int32_t p0, int32_t p1) {
  kv_->remove(seq, p0, p1);
  for (size_t s = 0; s < seq_tokens_.size(); ++s)
    if (seq < 0 || static_cast<int32_t>(s) == seq)
      seq_tokens_[s].resize(std::min<size_t>(seq_tokens_[s].size(), kv_->seq_length(s)));
}

void Context::seq_copy(int32_t src, int32_t dst) {
  kv_->copy(src, dst);
  if (src != dst) seq_tokens_[dst] = seq_tokens_[src];
}

void Context::seq_restore(int32_t seq, const int32_t* tokens, int32_t n,
                          const std::vector<const uint8_t*>& rows, int32_t n_window,
                          const std::vector<const float*>& window_rows) {
  if (seq < 0 || seq >= static_cast<int32_t>(kv_->n_seq_max()))
    fail(Status::invalid_arg, "sequence id {} is outside 0..{}", seq, kv_->n_seq_max() - 1);
  if (n < 0 || static_cast<uint32_t>(n) > kv_->n_ctx())
    fail(Status::context_full, "the session holds {} tokens but the context fits {}; create "
         "the context with a larger n_ctx", n, kv_->n_ctx());
  for (int32_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= n_vocab_)
      fail(Status::bad_format, "session token {} has id {}, outside the vocabulary", i, tokens[i]);
  seq_clear(seq);
  const auto& comps = kv_->components();
  const int32_t step = static_cast<int32_t>(opts_.n_batch);
  try {
    for (int32_t i0 = 0; i0 < n; i0 += step) {
      const int32_t m = std::min(step, n - i0);
      seq_buf_.assign(m, seq);
      for (int32_t i = 0; i < m; ++i) pos_buf_[i] = i0 + i;
      kv_->begin_batch(m, seq_buf_.data(), pos_buf_.data());
      for (size_t c = 0; c < comps.size(); ++c)
        kv_->write_rows(seq, c, i0, m, rows[c] + static_cast<size_t>(i0) * comps[c].row_bytes());
      seq_tokens_[seq].insert(seq_tokens_[seq].end(), tokens + i0, tokens + i0 + m);
    }
    // Exact copies of the last rows, where the session has them.
    const int32_t first = n - n_window;
    for (size_t c = 0; c < comps.size(); ++c)
      if (window_rows[c]) kv_->write_window(seq, c, first, n - first, window_rows[c]);
    kv_->set_window_first(seq, first);
  } catch (...) {
    seq_clear(seq);
    throw;
  }
}

const float* Context::logits(int32_t i) const {
  if (i < 0) i += last_n_tokens_;
  if (i < 0 || i >= last_n_tokens_) return nullptr;
  const int32_t row = logit_row_[i];
  return row < 0 ? nullptr : logits_.data() + static_cast<size_t>(row) * n_vocab_;
}

std::string Context::describe_plan() {
  std::string out = "backends:";
  for (const Backend* b : backends_) out += fmt::format(" {}", b->name());
  out += "\n";
  for (const Backend* b : backends_)
    for (const DeviceInfo& d : b->devices())
      out += fmt::format("  device {} ({}): {:.1f} GiB total, {:.1f} GiB free\n", d.name, d.kind,
                         d.memory_total / 1073741824.0, d.memory_free / 1073741824.0);
  out += fmt::format("weights: {} tensors, {} bytes on the host (as loaded)\n",
                     model_.file().tensors().size(), model_.weight_bytes());
  out += fmt::format("kv cache: {} components in {} groups, {} pages x {} tokens, {} bytes per "
                     "block, type {}\n",
                     kv_->components().size(), kv_->n_groups(), kv_->total_pages(),
                     kv_->page_rows(), kv_->block_bytes(), type_name(opts_.kv_type));
  const KvStats st = kv_->stats();
  for (const KvStats::Tier& t : st.tiers)
    if (t.capacity_bytes)
      out += fmt::format("  kv tier {}: {:.2f} MiB{}\n", t.name, t.capacity_bytes / 1048576.0,
                         &t == &st.tiers[0] && st.hot_on_device
                             ? fmt::format(" in {} memory", devices_.front()->name())
                             : std::string());
  out += "decode step (1 token):\n";
  CachedGraph& c = graph_for(1, 1);
  out += c.schedule->describe();
  for (const auto& d : devices_)
    out += fmt::format("{} device memory ({}): {} bytes of weights resident\n", d->name(),
                       d->devices().front().name, d->device_weight_bytes());
  return out;
}

// Layers of a model split over several devices, contiguous per device, by the devices'
// free memory or the ratios asked for (lib/exec/placement.h). The KV cache stays in host
// memory, so only weights count.
void Context::place_layers() {
  PlacementRequest req;
  for (const auto& d : devices_) {
    const DeviceInfo info = d->devices().front();
    req.devices.push_back({info.name, info.memory_free});
  }
  if (!opts_.split.empty() && opts_.split != "auto")
    req.ratios = parse_split_ratios(opts_.split, devices_.size());
  req.reserve_bytes = uint64_t{256} << 20;  // activations, scratch and the runtime's own
  const int32_t n_layer = arch_.info().n_layer;
  const Placement plan = plan_placement(req, model_footprint(model_.file(), n_layer, {}, 0));
  layer_backends_.clear();
  for (int32_t l = 0; l < n_layer; ++l) layer_backends_.push_back(devices_[plan.layer_device[l]].get());
  layer_backends_.push_back(devices_[plan.output_device].get());
  opts_.log(LogLevel::info, "layer split over {} devices:\n{}", devices_.size(), plan.describe(req));
}

}  // namespace v4
