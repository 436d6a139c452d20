#include "backends/vulkan/vulkan_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>

#include "backends/vulkan/vk_buffer.h"
#include "backends/vulkan/vk_commands.h"
#include "backends/vulkan/vk_device.h"
#include "backends/vulkan/vk_kv_ops.h"
#include "backends/vulkan/vk_kv_tier.h"
#include "backends/vulkan/vk_ops.h"
#include "backends/vulkan/vk_pipelines.h"
#include "backends/vulkan/vk_weights.h"
#include "lib/core/error.h"

namespace v4 {
namespace {

using namespace vk;

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// Recorded dispatches per shader variant (vulkan_dispatches_recorded).
struct DispatchCounts {
  std::mutex mutex;
  std::unordered_map<std::string, uint64_t> by_shader;
};
DispatchCounts& dispatch_counts() {
  static DispatchCounts counts;
  return counts;
}
void count_dispatch(const std::string& shader) {
  DispatchCounts& c = dispatch_counts();
  std::lock_guard<std::mutex> lock(c.mutex);
  ++c.by_shader[shader];
}

std::string feature_text(const Features& f) {
  return fmt::format("subgroup {}{}, fp16 storage {}, fp16 math {}, int8 storage {}, "
                     "int8 math {}, integer dot {}",
                     f.subgroup_size, f.subgroup_arith ? " (arithmetic)" : "",
                     f.storage_16bit ? "yes" : "no", f.float16_math ? "yes" : "no",
                     f.storage_8bit ? "yes" : "no", f.int8_math ? "yes" : "no",
                     f.integer_dot ? "yes" : "no");
}

DeviceInfo describe(const PhysicalInfo& p) {
  DeviceInfo d;
  d.name = p.name;
  d.kind = p.is_cpu ? "cpu" : "gpu";
  d.memory_total = p.device_local_bytes();
  d.memory_free = d.memory_total;  // (VK_EXT_memory_budget would say more)
  d.details = fmt::format("index {}, {}, Vulkan {}.{}; heaps:", p.index, p.type,
                          VK_API_VERSION_MAJOR(p.api_version), VK_API_VERSION_MINOR(p.api_version));
  for (size_t h = 0; h < p.heaps.size(); ++h)
    d.details += fmt::format(" [{}] {:.1f} GiB{}", h, p.heaps[h].size / 1073741824.0,
                             p.heaps[h].device_local ? " device-local" : "");
  d.details += "; " + feature_text(p.features);
  d.details += fmt::format("; shaders use: {}, {}",
                           p.features.subgroup_arith ? "subgroup reductions" : "shared-memory reductions",
                           p.features.small_storage() ? "8/16-bit loads" : "32-bit loads");
  if (p.features.integer_dot) d.details += ", int8 dot products (Q8_0/Q4_0 matvec)";
  return d;
}

// Everything recorded for one split of one schedule: re-recorded only when the device
// arena moves, so a run is memcpy in, one submit, memcpy out. The recording is cut in
// segments before each attention node: when the KV cache stages blocks (tiered), the
// layer's blocks are made resident between segments; otherwise all segments go in one
// submission.
struct SplitState {
  struct Segment {
    VkCommandBuffer cb = VK_NULL_HANDLE;
    const Tensor* attention = nullptr;  // the node it starts with, if any
  };
  struct Table {
    const Tensor* node;
    size_t word;  // in `tables`
    size_t words;
  };
  SplitCopies copies;
  std::vector<size_t> in_at, out_at;  // offsets in `staging`
  Buffer staging;
  std::vector<Segment> segments;
  std::vector<VkCommandBuffer> cbs;   // the segments' command buffers, in order
  VkCommandBuffer cb = VK_NULL_HANDLE;  // the one being recorded
  std::vector<Table> kv_tables;       // KV nodes' page tables, written before each run
  Buffer tables;                      // host-visible, read by the KV shaders
  bool stages = false;                // a KV view of the split pages blocks in
  // Byte offsets in `scratch` per node: split attention's partial states, q8 rows.
  std::vector<std::pair<const Tensor*, size_t>> scratch_at;
  Buffer scratch;                     // device-local: split attention's states, q8 rows
  std::vector<const Tensor*> q8_recorded;  // activations whose q8 rows are recorded
  VkDescriptorPool pool = VK_NULL_HANDLE;
  uint64_t generation = 0;  // 0: never recorded
};

class VulkanBackend final : public Backend {
 public:
  VulkanBackend(std::shared_ptr<Instance> inst, uint32_t index)
      : dev_(std::make_unique<Device>(std::move(inst), index)),
        cmds_(std::make_unique<Commands>(*dev_)),
        pipes_(std::make_unique<Pipelines>(*dev_)),
        weights_(std::make_unique<WeightStore>(*dev_, *cmds_)) {}

  ~VulkanBackend() override {
    vkDeviceWaitIdle(dev_->handle());
    for (auto& [key, st] : splits_) drop(st);
    splits_.clear();
    arena_.reset();
    weights_.reset();
    pipes_.reset();
    cmds_.reset();
  }

  const char* name() const override { return "vulkan"; }
  std::vector<DeviceInfo> devices() const override { return {describe(dev_->info())}; }
  bool supports(const Tensor& node) const override {
    if (node.op == Op::kv_store || node.op == Op::attention)
      return kv_op_supported(node) && kv_pool_of(node);
    return op_supported(node);
  }

  std::unique_ptr<KvTier> make_kv_tier(DType type, int64_t head_dim, uint32_t n_slots,
                                       size_t slot_bytes) override {
    // One binding reads the whole pool, with 32-bit byte offsets in the shaders.
    const uint64_t bytes = uint64_t{n_slots} * slot_bytes;
    if (!kv_type_supported(type, head_dim) || bytes > dev_->limits().maxStorageBufferRange ||
        bytes > 0xffffffffu)
      return nullptr;
    return make_vulkan_kv_tier(*dev_, *cmds_, kv_pools_, n_slots, slot_bytes);
  }
  bool uses_host_memory() const override { return false; }
  size_t device_weight_bytes() const override { return weights_->bytes(); }


  void upload_weight(const Tensor& w) override { weights_->upload(w.data, w.nbytes()); }

  void bind_arena(const uint8_t* host, size_t bytes) override {
    host_bytes_ = bytes;
    if (host == host_arena_ && bytes <= arena_.size()) return;
    if (bytes > arena_.size()) {
      vkDeviceWaitIdle(dev_->handle());
      arena_ = Buffer(*dev_, align_up(bytes, 256), Buffer::Kind::device);
    }
    host_arena_ = host;
    ++generation_;
  }

  void prepare_split(Tensor* const* nodes, size_t, const SplitCopies& copies) override {
    SplitState& st = splits_[nodes];
    drop(st);
    st.copies = copies;
  }

  void release_split(Tensor* const* nodes, size_t) override {
    auto it = splits_.find(nodes);
    if (it == splits_.end()) return;
    drop(it->second);
    splits_.erase(it);
  }

  bool compute(Tensor* const* nodes, size_t n, const ComputeEnv& env) override {
    auto it = splits_.find(nodes);
    if (it == splits_.end()) fail(Status::internal, "vulkan: split run before prepare_split");
    if (env.abort && env.abort(env.abort_user)) return false;
    SplitState& st = it->second;
    weights_->flush();  // uploads queued since the last run
    if (st.generation != generation_) record(nodes, n, st);
    for (size_t i = 0; i < st.copies.in.size(); ++i)
      std::memcpy(st.staging.mapped() + st.in_at[i], st.copies.in[i]->data, st.copies.in[i]->nbytes());
    run_segments(st);
    for (size_t i = 0; i < st.copies.out.size(); ++i)
      std::memcpy(st.copies.out[i]->data, st.staging.mapped() + st.out_at[i], st.copies.out[i]->nbytes());
    return true;
  }

 private:
  void drop(SplitState& st) {
    if (!st.cbs.empty() || st.pool) vkDeviceWaitIdle(dev_->handle());
    for (VkCommandBuffer cb : st.cbs) cmds_->release(cb);
    if (st.pool) vkDestroyDescriptorPool(dev_->handle(), st.pool, nullptr);
    st.cbs.clear();
    st.segments.clear();
    st.cb = VK_NULL_HANDLE;
    st.pool = VK_NULL_HANDLE;
    st.generation = 0;
  }

  const KvPools::Range* kv_pool_of(const Tensor& node) const {
    const KvView& kv = *static_cast<const KvView*>(node.pparam);
    return kv_pools_.find(kv.comps[node.iparam[0]].base);
  }

  void write_table(SplitState& st, const SplitState::Table& t) {
    auto* words = reinterpret_cast<uint32_t*>(st.tables.mapped()) + t.word;
    fill_kv_table(*t.node, words, t.words, kv_scratch_);
  }

  // Before a layer's attention its KV blocks must be resident (KvResidency) and its page
  // table current. Without staging, that is done for every layer first and the split is
  // one submission; with it, each segment waits for the one before.
  void run_segments(SplitState& st) {
    for (const SplitState::Table& t : st.kv_tables)
      if (t.node->op == Op::kv_store) write_table(st, t);
    const auto prepare_attention = [&](const Tensor* node) {
      const KvView& kv = *static_cast<const KvView*>(node->pparam);
      if (kv.residency) kv.residency->ensure_resident(kv.comps[node->iparam[0]].group);
      for (const SplitState::Table& t : st.kv_tables)
        if (t.node == node) write_table(st, t);
    };
    if (!st.stages) {
      for (const SplitState::Segment& seg : st.segments)
        if (seg.attention) prepare_attention(seg.attention);
      cmds_->submit_wait(st.cbs.data(), static_cast<uint32_t>(st.cbs.size()));
      return;
    }
    for (const SplitState::Segment& seg : st.segments) {
      if (seg.attention) prepare_attention(seg.attention);
      cmds_->submit_wait(seg.cb);
    }
  }

  // Buffer and byte offset of a tensor's bytes on the device.
  Location locate(const Tensor* t) const {
    const auto* p = static_cast<const uint8_t*>(t->data);
    if (host_arena_ && p >= host_arena_ && p < host_arena_ + host_bytes_)
      return {arena_.handle(), static_cast<VkDeviceSize>(p - host_arena_)};
    const Tensor* base = t;
    while (base->op == Op::view) base = base->src[0];
    Location loc;
    if (!weights_->find(base->data, &loc))
      fail(Status::internal, "vulkan: tensor '{}' is neither in the arena nor an uploaded weight",
           t->name);
    loc.offset += static_cast<VkDeviceSize>(p - static_cast<const uint8_t*>(base->data));
    return loc;
  }

  void record(Tensor* const* nodes, size_t n, SplitState& st) {
    drop(st);
    size_t staging_bytes = 0;
    st.in_at.clear();
    st.out_at.clear();
    for (const Tensor* t : st.copies.in) {
      st.in_at.push_back(staging_bytes);
      staging_bytes += align_up(t->nbytes(), 16);
    }
    for (const Tensor* t : st.copies.out) {
      st.out_at.push_back(staging_bytes);
      staging_bytes += align_up(t->nbytes(), 16);
    }
    if (staging_bytes > st.staging.size()) st.staging = Buffer(*dev_, staging_bytes, Buffer::Kind::staging);
    // Page tables of the KV nodes, each at a binding-aligned offset.
    st.kv_tables.clear();
    st.stages = false;
    size_t table_words = 0;
    const size_t table_align = offset_align() / 4;
    for (size_t i = 0; i < n; ++i) {
      const Tensor* node = nodes[i];
      if (node->op != Op::kv_store && node->op != Op::attention) continue;
      const KvView& kv = *static_cast<const KvView*>(node->pparam);
      if (kv.residency && kv.residency->stages_blocks()) st.stages = true;
      const size_t words = kv_table_words(*node);
      st.kv_tables.push_back({node, table_words, words});
      table_words += align_up(words, table_align);
    }
    if (table_words * 4 > st.tables.size())
      st.tables = Buffer(*dev_, table_words * 4, Buffer::Kind::staging);
    // Scratch for split decode attention and for the q8 activation rows of int-dot
    // matvecs (two dispatches per such node).
    st.scratch_at.clear();
    size_t scratch_bytes = 0;
    for (size_t i = 0; i < n; ++i) {
      size_t bytes = attention_split_bytes(*nodes[i]);
      if (bytes != 0 && !kv_pool_of(*nodes[i])) bytes = 0;
      if (nodes[i]->op == Op::mul_mat)
        bytes = mul_mat_dot_scratch_bytes(*nodes[i], dev_->info().features);
      if (bytes == 0) continue;
      if (const size_t* rows = q8_rows_of(st, *nodes[i])) {  // Q, K, V (gate, up): one pre-pass
        st.scratch_at.emplace_back(nodes[i], *rows);
        continue;
      }
      st.scratch_at.emplace_back(nodes[i], scratch_bytes);
      scratch_bytes += align_up(bytes, offset_align());
    }
    if (scratch_bytes > st.scratch.size())
      st.scratch = Buffer(*dev_, scratch_bytes, Buffer::Kind::device);

    uint32_t n_dispatch = static_cast<uint32_t>(st.scratch_at.size());
    for (size_t i = 0; i < n; ++i) n_dispatch += nodes[i]->op != Op::view;
    VkDescriptorPoolSize ps{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, std::max(1u, n_dispatch) * kBindings};
    VkDescriptorPoolCreateInfo pi{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    pi.maxSets = std::max(1u, n_dispatch);
    pi.poolSizeCount = 1;
    pi.pPoolSizes = &ps;
    check(vkCreateDescriptorPool(dev_->handle(), &pi, nullptr, &st.pool), "vkCreateDescriptorPool");

    const auto start_segment = [&](const Tensor* attention) {
      if (st.cb) end(st.cb);
      st.cb = cmds_->allocate();
      st.cbs.push_back(st.cb);
      st.segments.push_back({st.cb, attention});
      begin(st.cb, false);
    };
    st.cb = VK_NULL_HANDLE;
    st.q8_recorded.clear();
    start_segment(nullptr);
    for (size_t i = 0; i < st.copies.in.size(); ++i) {
      const Location to = locate(st.copies.in[i]);
      VkBufferCopy region{st.in_at[i], to.offset, st.copies.in[i]->nbytes()};
      vkCmdCopyBuffer(st.cb, st.staging.handle(), to.buffer, 1, &region);
    }
    if (!st.copies.in.empty())
      barrier(st.cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT);
    for (size_t i = 0; i < n; ++i) {
      if (nodes[i]->op == Op::view) continue;
      if (nodes[i]->op == Op::attention) start_segment(nodes[i]);
      record_dispatch(st, *nodes[i]);
      barrier(st.cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
              VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT);
    }
    for (size_t i = 0; i < st.copies.out.size(); ++i) {
      const Location from = locate(st.copies.out[i]);
      VkBufferCopy region{from.offset, st.out_at[i], st.copies.out[i]->nbytes()};
      vkCmdCopyBuffer(st.cb, from.buffer, st.staging.handle(), 1, &region);
    }
    if (!st.copies.out.empty()) {
      VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
      mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
      mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
      vkCmdPipelineBarrier(st.cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 1,
                           &mb, 0, nullptr, 0, nullptr);
    }
    end(st.cb);
    st.generation = generation_;
  }

  void record_dispatch(SplitState& st, const Tensor& node) {
    if (node.op == Op::kv_store || node.op == Op::attention) {
      const KvView& kv = *static_cast<const KvView*>(node.pparam);
      const KvPools::Range* pool = kv_pool_of(node);
      if (!pool) fail(Status::internal, "vulkan: {} reads KV pages outside device memory", node.name);
      const size_t k_off = kv.comps[node.iparam[0]].base - pool->base;
      const size_t v_off = kv.comps[node.iparam[1]].base - pool->base;
      size_t table_at = 0;
      for (const SplitState::Table& t : st.kv_tables)
        if (t.node == &node) table_at = t.word * 4;
      for (const auto& [split_node, at] : st.scratch_at) {
        if (split_node != &node) continue;
        std::vector<Dispatch> two = plan_attention_split(node, k_off, v_off);
        two[0].extra[2] = two[1].extra[2] = table_at;
        two[0].extra[3] = two[1].extra[0] = at;
        record_one(st, two[0], pool);
        barrier(st.cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT);
        record_one(st, two[1], pool);
        return;
      }
      Dispatch d = plan_kv_dispatch(node, k_off, v_off);
      d.extra[2] = table_at;
      record_one(st, d, pool);
      return;
    }
    Dispatch d = plan_dispatch(node, dev_->info().features);
    if (d.kind[1] == Bind::scratch) {  // int-dot matvec: the activations' q8 rows
      d.extra[1] = scratch_of(st, node);
      auto& done = st.q8_recorded;
      if (std::find(done.begin(), done.end(), node.src[1]) == done.end()) {
        done.push_back(node.src[1]);
        Dispatch q = plan_quantize_q8(node);
        q.extra[3] = d.extra[1];
        record_one(st, q);
        barrier(st.cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT);
      }
    }
    const size_t max_bytes = static_cast<size_t>(dev_->limits().maxStorageBufferRange - offset_align());
    for (const Dispatch& part : split_rows(node, d, max_bytes)) record_one(st, part);
  }

  // The scratch offset of q8 rows already reserved for the activations `node` reads (an
  // earlier int-dot mul_mat of the split with the same src[1]), or null. Within a split the
  // activations stay unchanged from their first reader to their last.
  static const size_t* q8_rows_of(const SplitState& st, const Tensor& node) {
    for (const auto& [other, at] : st.scratch_at)
      if (other->op == Op::mul_mat && other->src[1] == node.src[1]) return &at;
    return nullptr;
  }

  static size_t scratch_of(const SplitState& st, const Tensor& node) {
    for (const auto& [scratch_node, at] : st.scratch_at)
      if (scratch_node == &node) return at;
    fail(Status::internal, "vulkan: {} has no scratch reserved", node.name);
  }

  void record_one(SplitState& st, Dispatch d, const KvPools::Range* pool = nullptr) {
    const VkPipeline pipeline = pipes_->get(d.shader);
    count_dispatch(d.shader);
    VkDescriptorSetLayout layout = pipes_->set_layout();
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = st.pool;
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &layout;
    VkDescriptorSet set = VK_NULL_HANDLE;
    check(vkAllocateDescriptorSets(dev_->handle(), &ai, &set), "vkAllocateDescriptorSets");

    const VkDeviceSize align = offset_align();
    const VkDeviceSize max_range = dev_->limits().maxStorageBufferRange;
    VkDescriptorBufferInfo info[kBindings];
    VkWriteDescriptorSet writes[kBindings];
    for (uint32_t b = 0; b < kBindings; ++b) {
      Location loc;
      VkDeviceSize size = 0;
      const bool used = d.bind[b] || d.kind[b] != Bind::tensor;
      if (d.kind[b] == Bind::kv_pool) {
        loc = {pool->buffer, 0};
        size = pool->bytes;
      } else if (d.kind[b] == Bind::kv_table) {
        loc = {st.tables.handle(), 0};
        size = st.tables.size();
      } else if (d.kind[b] == Bind::scratch) {
        loc = {st.scratch.handle(), 0};
        size = st.scratch.size();
      } else {
        loc = locate(d.bind[b] ? d.bind[b] : d.bind[3]);  // unused slots: any valid range
        size = buffer_size(loc.buffer);
      }
      if (used) loc.offset += d.extra[b];
      const VkDeviceSize start = loc.offset / align * align;
      const VkDeviceSize rem = loc.offset - start;
      if (used) d.pc.off[b] = static_cast<uint32_t>(d.raw[b] ? rem : rem / 4);
      info[b] = {loc.buffer, start, std::min(size - start, max_range) / 4 * 4};
      writes[b] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
      writes[b].dstSet = set;
      writes[b].dstBinding = b;
      writes[b].descriptorCount = 1;
      writes[b].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      writes[b].pBufferInfo = &info[b];
    }
    vkUpdateDescriptorSets(dev_->handle(), kBindings, writes, 0, nullptr);
    vkCmdBindPipeline(st.cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipeline);
    vkCmdBindDescriptorSets(st.cb, VK_PIPELINE_BIND_POINT_COMPUTE, pipes_->layout(), 0, 1, &set, 0,
                            nullptr);
    vkCmdPushConstants(st.cb, pipes_->layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(d.pc), &d.pc);
    vkCmdDispatch(st.cb, d.groups[0], d.groups[1], d.groups[2]);
  }

  // Bindings start at multiples of this; the shader adds the remainder (Params.off_*).
  VkDeviceSize offset_align() const {
    return std::max<VkDeviceSize>(4, dev_->limits().minStorageBufferOffsetAlignment);
  }

  VkDeviceSize buffer_size(VkBuffer b) const {
    if (b == arena_.handle()) return arena_.size();
    return weights_->block_size(b);
  }

  std::unique_ptr<Device> dev_;
  std::unique_ptr<Commands> cmds_;
  std::unique_ptr<Pipelines> pipes_;
  std::unique_ptr<WeightStore> weights_;
  Buffer arena_;
  const uint8_t* host_arena_ = nullptr;
  size_t host_bytes_ = 0;  // the running schedule's arena size
  uint64_t generation_ = 1;
  std::unordered_map<Tensor* const*, SplitState> splits_;
  KvPools kv_pools_;                 // device KV pools (hot tiers) made by make_kv_tier
  std::vector<int32_t> kv_scratch_;  // fill_kv_table's per-sequence scratch
};

}  // namespace

std::unique_ptr<Backend> make_vulkan_backend(const std::string& device, bool require_gpu) {
  auto inst = Instance::get();
  const uint32_t index = choose_device(*inst, device);
  const PhysicalInfo& info = inst->infos()[index];
  if (require_gpu && info.is_cpu)
    fail(Status::no_device, "vulkan: the only Vulkan device is '{}', a CPU implementation "
         "(slower than the CPU backend); name it with --backend vulkan to use it anyway",
         info.name);
  return std::make_unique<VulkanBackend>(std::move(inst), index);
}

std::vector<DeviceInfo> vulkan_devices(std::string* why) {
  std::vector<DeviceInfo> out;
  try {
    auto inst = Instance::get();
    for (const PhysicalInfo& p : inst->infos()) out.push_back(describe(p));
    if (out.empty() && why) *why = "the Vulkan loader found no device";
  } catch (const Error& e) {
    if (why) *why = e.what();
  }
  return out;
}

uint64_t vulkan_validation_errors() { return Instance::validation_errors(); }

uint64_t vulkan_dispatches_recorded(const std::string& prefix) {
  DispatchCounts& c = dispatch_counts();
  std::lock_guard<std::mutex> lock(c.mutex);
  uint64_t n = 0;
  for (const auto& [name, count] : c.by_shader)
    if (name.compare(0, prefix.size(), prefix) == 0) n += count;
  return n;
}

}  // namespace v4
