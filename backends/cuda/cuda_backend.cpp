// CudaBackend: v4::Backend on one CUDA device, as a device backend of the executor
// (uses_host_memory() is false): the executor plans intermediates in a host arena and this
// backend mirrors it in a device arena of the same size (bind_arena), so a tensor's device
// address is the device arena plus its offset in the host one. Weights the graph reads are
// uploaded once (upload_weight) and looked up by host address; the tensors a split needs from
// the host, or leaves for it, are copied around the split (SplitCopies). Kernels run in order
// on one stream; compute() waits for it, so the caller may read outputs right away (an
// asynchronous hand-off through events is the next step).
// kv_store and attention run here when the KV pages are device memory: the cache's hot tier
// made by make_kv_tier (cuda_kv_tier.cpp); with host pages (FP8, other head sizes)
// supports() says no and the scheduler leaves them on the CPU.
#include "backends/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <unordered_map>

#include "backends/cuda/cuda_check.h"
#include "backends/cuda/cuda_kv_mirror.h"
#include "backends/cuda/cuda_kv_tier.h"
#include "backends/cuda/cuda_memory_pool.h"
#include "backends/cuda/cuda_stream.h"
#include "backends/cuda/kernels.h"
#include "lib/core/device_math/block_values.h"

namespace v4 {
namespace {

using cuda::DevKvView;
using cuda::DevTensor;

// Activation columns up to which mul_mat runs the matvec kernel (beyond: tensor cores).
constexpr int64_t kMatvecMaxCols = 8;

bool is_f32(const Tensor* t) { return t && t->type == DType::F32; }

bool host_memory(const void* p) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
    cudaGetLastError();
    return true;  // older runtimes report plain host memory as an error
  }
  return attr.type == cudaMemoryTypeUnregistered;
}

// Components kc and vc of the node's KV view are device memory of types the kernels read.
bool kv_on_device(const Tensor& node) {
  const auto* kv = static_cast<const KvView*>(node.pparam);
  if (!kv || !kv->comps) return false;
  for (int c : {node.iparam[0], node.iparam[1]}) {
    const KvComponentView& comp = kv->comps[c];
    if (!comp.base || comp.ring || host_memory(comp.base) || !cuda::kv_type_supported(comp.type))
      return false;  // (ring: f32 window rows of block-quantised pages, not handled here)
  }
  return true;
}

const Tensor* base_of(const Tensor* t) {
  while (t->op == Op::view) t = t->src[0];
  return t;
}

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int device)
      : device_(device), pool_(device), stream_(device), kv_mirror_(pool_) {}
  ~CudaBackend() override {
    stream_.synchronize();
    for (auto& [host, dev] : uploads_) pool_.free(dev.ptr);
    if (partials_) pool_.free(partials_);
    if (dev_arena_) pool_.free(dev_arena_);
  }

  const char* name() const override { return "cuda"; }

  std::vector<DeviceInfo> devices() const override {
    std::vector<DeviceInfo> all = cuda_devices();
    if (static_cast<size_t>(device_) < all.size()) return {all[static_cast<size_t>(device_)]};
    return {};
  }

  bool supports(const Tensor& node) const override {
    const Tensor* a = node.src[0];
    const Tensor* b = node.src[1];
    switch (node.op) {
      case Op::view:
        return true;
      case Op::get_rows:
        return cuda::weight_type_supported(a->type) && b->type == DType::I32 && is_f32(&node);
      case Op::mul_mat:
        return cuda::weight_type_supported(a->type) && is_f32(b) && is_f32(&node);
      case Op::add:
      case Op::mul:
      case Op::swiglu:
        return is_f32(a) && is_f32(b) && is_f32(&node);
      case Op::scale:
      case Op::silu:
      case Op::rms_norm:
      case Op::softmax:
        return is_f32(a) && is_f32(&node);
      case Op::rope:
        return is_f32(a) && b->type == DType::I32 && (!node.src[2] || is_f32(node.src[2])) &&
               node.extra != nullptr;
      case Op::copy:
        return dm::row_value_supported(a->type) && cuda::copy_dst_supported(node.type);
      case Op::kv_store:
        return is_f32(a) && is_f32(b) && kv_on_device(node);
      case Op::attention:
        return is_f32(a) && cuda::attention_head_dim_supported(a->ne[0]) && kv_on_device(node);
      default:
        return false;
    }
  }

  bool uses_host_memory() const override { return false; }
  size_t device_weight_bytes() const override { return weight_bytes_; }

  // KV pages in this device's memory when its kernels read them; kv_on_device() then
  // finds device addresses in the view and kv_store/attention run here.
  std::unique_ptr<KvTier> make_kv_tier(DType type, int64_t head_dim, uint32_t n_slots,
                                       size_t slot_bytes) override {
    if (!cuda::kv_type_supported(type) || !cuda::attention_head_dim_supported(head_dim))
      return nullptr;
    return cuda::make_cuda_kv_tier(device_, n_slots, slot_bytes);
  }


  void upload_weight(const Tensor& w) override {
    const Tensor* base = base_of(&w);
    if (!base->data || uploads_.count(base->data)) return;
    V4_CUDA_CHECK(cudaSetDevice(device_));
    Upload up{static_cast<uint8_t*>(pool_.alloc(base->nbytes(), 256)), base->nbytes()};
    V4_CUDA_CHECK(cudaMemcpy(up.ptr, base->data, up.bytes, cudaMemcpyHostToDevice));
    uploads_.emplace(base->data, up);
    weight_bytes_ += up.bytes;
  }

  void bind_arena(const uint8_t* host, size_t bytes) override {
    V4_CUDA_CHECK(cudaSetDevice(device_));
    if (bytes > dev_arena_bytes_) {
      stream_.synchronize();  // queued kernels may still use the old arena
      if (dev_arena_) pool_.free(dev_arena_);
      dev_arena_ = static_cast<uint8_t*>(pool_.alloc(bytes, 256));
      dev_arena_bytes_ = bytes;
    }
    host_arena_ = host;
    host_bytes_ = bytes;
  }

  void prepare_split(Tensor* const* nodes, size_t, const SplitCopies& copies) override {
    splits_[nodes] = copies;
  }
  void release_split(Tensor* const* nodes, size_t) override { splits_.erase(nodes); }

  bool compute(Tensor* const* nodes, size_t n, const ComputeEnv& env) override {
    const auto it = splits_.find(nodes);
    if (it == splits_.end()) fail(Status::internal, "cuda: split run before prepare_split");
    V4_CUDA_CHECK(cudaSetDevice(device_));
    kv_mirror_.invalidate();
    const cudaStream_t s = stream_.get();
    for (const Tensor* t : it->second.in)
      V4_CUDA_CHECK(cudaMemcpyAsync(resolve(t), t->data, t->nbytes(), cudaMemcpyHostToDevice, s));
    for (size_t i = 0; i < n; ++i) {
      if (env.abort && env.abort(env.abort_user)) {
        stream_.synchronize();
        return false;
      }
      run_node(*nodes[i]);
    }
    for (const Tensor* t : it->second.out)
      V4_CUDA_CHECK(cudaMemcpyAsync(t->data, resolve(t), t->nbytes(), cudaMemcpyDeviceToHost, s));
    stream_.synchronize();
    return true;
  }

  void synchronize() override { stream_.synchronize(); }

 private:
  struct Upload {
    uint8_t* ptr;
    size_t bytes;
  };

  // The device address of t's data: tensors in the host arena sit at the same offset in the
  // device arena; views of weights resolve through their base; weights through the upload
  // table.
  void* resolve(const Tensor* t) const {
    const auto* p = static_cast<const uint8_t*>(t->data);
    if (host_arena_ && p >= host_arena_ && p < host_arena_ + host_bytes_)
      return dev_arena_ + (p - host_arena_);
    if (t->op == Op::view) return static_cast<uint8_t*>(resolve(t->src[0])) + t->view_offset;
    const auto it = uploads_.find(t->data);
    if (it == uploads_.end())
      fail(Status::internal, "cuda: tensor '{}' is neither in the arena nor an uploaded weight",
           t->name);
    return it->second.ptr;
  }

  DevTensor dev(const Tensor* t) const {
    DevTensor d;
    d.data = resolve(t);
    d.type = t->type;
    for (int i = 0; i < kMaxDims; ++i) {
      d.ne[i] = t->ne[i];
      d.nb[i] = t->nb[i];
    }
    return d;
  }

  void run_node(const Tensor& node) {
    const cudaStream_t s = stream_.get();
    const DevTensor out = dev(&node);
    const auto src = [&](int i) { return dev(node.src[static_cast<size_t>(i)]); };
    switch (node.op) {
      case Op::view:
        return;
      case Op::get_rows:
        return cuda::launch_get_rows(src(0), src(1), out, s);
      case Op::mul_mat: {
        const DevTensor w = src(0), x = src(1);
        if (x.n_rows() <= kMatvecMaxCols || w.type == DType::F32)  // f32 weights stay exact
          return cuda::launch_matvec(w, x, out, s);
        return cuda::launch_matmul_mma(w, x, out, s);
      }
      case Op::add: {
        const DevTensor b = src(1);
        return cuda::launch_eltwise(cuda::EltOp::add, src(0), &b, 0.0f, out, s);
      }
      case Op::mul: {
        const DevTensor b = src(1);
        return cuda::launch_eltwise(cuda::EltOp::mul, src(0), &b, 0.0f, out, s);
      }
      case Op::swiglu: {
        const DevTensor b = src(1);
        return cuda::launch_eltwise(cuda::EltOp::swiglu, src(0), &b, 0.0f, out, s);
      }
      case Op::scale:
        return cuda::launch_eltwise(cuda::EltOp::scale, src(0), nullptr, node.fparam[0], out, s);
      case Op::silu:
        return cuda::launch_eltwise(cuda::EltOp::silu, src(0), nullptr, 0.0f, out, s);
      case Op::rms_norm:
        return cuda::launch_rms_norm(src(0), node.fparam[0], out, s);
      case Op::softmax:
        return cuda::launch_softmax(src(0), node.fparam[0], node.iparam[0] != 0, out, s);
      case Op::rope: {
        const float* factors =
            node.src[2] ? static_cast<const float*>(resolve(node.src[2])) : nullptr;
        return cuda::launch_rope(src(0), src(1), factors,
                                 *static_cast<const RopeParams*>(node.extra), out, s);
      }
      case Op::copy:
        return cuda::launch_copy(src(0), out, s);
      case Op::kv_store: {
        const KvView& kv = *static_cast<const KvView*>(node.pparam);
        kv_mirror_.upload(kv, s);
        const DevKvView view = kv_mirror_.view(kv, node.iparam[0], node.iparam[1], s);
        return cuda::launch_kv_store(src(0), src(1), view, s);
      }
      case Op::attention:
        return run_attention(node, out, s);
      default:
        fail(Status::unsupported, "cuda: no kernel for op {} (node '{}')", op_name(node.op),
             node.name);
    }
  }

  void run_attention(const Tensor& node, const DevTensor& out, cudaStream_t s) {
    const KvView& kv = *static_cast<const KvView*>(node.pparam);
    // As the CPU backend: the cache makes this layer's blocks addressable first (a device tier
    // would copy them into device slots here; the slot table is read after it).
    if (kv.residency) kv.residency->ensure_resident(kv.comps[node.iparam[0]].group);
    kv_mirror_.upload(kv, s);
    const DevTensor q = dev(node.src[0]);
    const int32_t rows = kv_mirror_.max_rows();
    const size_t need = cuda::attention_partials_floats(q.ne[0], q.ne[1], kv.n_tokens,
                                                        cuda::attention_splits(rows)) *
                        sizeof(float);
    if (need > partials_bytes_) {  // grows with the context, then stays
      stream_.synchronize();       // the old buffer may still be read by queued kernels
      if (partials_) pool_.free(partials_);
      partials_ = pool_.alloc(need, 256);
      partials_bytes_ = need;
    }
    cuda::launch_attention(q, kv_mirror_.view(kv, node.iparam[0], node.iparam[1], s),
                           node.iparam[2], node.fparam[0], rows, static_cast<float*>(partials_),
                           out, s);
  }

  int device_;
  cuda::MemoryPool pool_;
  cuda::Stream stream_;
  cuda::KvMirror kv_mirror_;
  void* partials_ = nullptr;  // attention's per-split (m, l, acc) scratch
  size_t partials_bytes_ = 0;
  std::unordered_map<const void*, Upload> uploads_;  // host address -> device copy
  size_t weight_bytes_ = 0;
  const uint8_t* host_arena_ = nullptr;  // the executor's arena ...
  size_t host_bytes_ = 0;
  uint8_t* dev_arena_ = nullptr;         // ... and its device twin
  size_t dev_arena_bytes_ = 0;
  std::unordered_map<Tensor* const*, SplitCopies> splits_;
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int device) {
  const CudaProbe probe = probe_cuda();
  if (probe.device_count == 0) fail(Status::no_device, "cuda device {}: {}", device, probe.reason);
  if (device < 0 || device >= probe.device_count)
    fail(Status::no_device, "cuda device {} does not exist: {} CUDA device(s) found (0..{})",
         device, probe.device_count, probe.device_count - 1);
  return std::make_unique<CudaBackend>(device);
}

}  // namespace v4
