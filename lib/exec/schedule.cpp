#include "lib/exec/schedule.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "lib/core/error.h"

namespace v4 {

namespace {

// The tensor whose bytes a view reads.
const Tensor* owner(const Tensor* t) {
  while (t->op == Op::view) t = t->src[0];
  return t;
}

bool is_weight(const Tensor* t) { return t->is_leaf() && !t->is_input; }

}  // namespace

Schedule::Schedule(Graph& graph, const std::vector<Backend*>& backends,
                   const std::vector<Backend*>& layer_backends)
    : graph_(graph) {
  assign(backends, layer_backends);
  plan_ = plan_memory(graph);
  plan_copies();
  Tensor* const* nodes = graph.nodes().data();
  for (const Split& s : splits_) s.backend->prepare_split(nodes + s.first, s.count, s.copies);
}

Schedule::~Schedule() {
  Tensor* const* nodes = graph_.nodes().data();
  for (const Split& s : splits_) s.backend->release_split(nodes + s.first, s.count);
}

void Schedule::assign(const std::vector<Backend*>& backends,
                      const std::vector<Backend*>& layer_backends) {
  const auto& nodes = graph_.nodes();
  node_backend_.reserve(nodes.size());
  // A layer's own device first, then the host backends (never another layer's device).
  auto layer_choice = [&](const Tensor& node) -> Backend* {
    Backend* own = layer_backends[static_cast<size_t>(node.layer)];
    if (own->supports(node)) return own;
    for (Backend* b : backends)
      if (b->uses_host_memory() && b->supports(node)) return b;
    return nullptr;
  };
  for (size_t i = 0; i < nodes.size(); ++i) {
    Backend* chosen = nullptr;
    const int32_t layer = nodes[i]->layer;
    if (nodes[i]->op == Op::view && i > 0) {
      chosen = node_backend_.back();  // a view computes nothing: never start a split for it
    } else if (layer >= 0 && static_cast<size_t>(layer) < layer_backends.size()) {
      chosen = layer_choice(*nodes[i]);
    } else {
      for (Backend* b : backends) {
        if (b->supports(*nodes[i])) {
          chosen = b;
          break;
        }
      }
    }
    if (!chosen)
      fail(Status::unsupported, "no backend can run op {} ({}, {} x {})", op_name(nodes[i]->op),
           nodes[i]->name, nodes[i]->ne[0], nodes[i]->ne[1]);
    node_backend_.push_back(chosen);
    if (splits_.empty() || splits_.back().backend != chosen)
      splits_.push_back({chosen, i, 0, {}});
    ++splits_.back().count;
  }
}

// Walks the splits in order, tracking where each tensor's current bytes are: on the host
// (inputs, and what host backends computed) or on the device that computed it. A device
// split copies in what it reads from the host (once per value); a tensor computed on a
// device is copied out at the end of its split when a host split or the caller reads it.
void Schedule::plan_copies() {
  const auto& nodes = graph_.nodes();
  std::vector<Backend*> on_device(graph_.n_tensors(), nullptr);  // nullptr: host only
  std::vector<uint8_t> on_host(graph_.n_tensors(), 1);
  std::vector<uint8_t> weight_seen(graph_.n_tensors(), 0);
  std::vector<size_t> producer(graph_.n_tensors(), 0);
  for (size_t si = 0; si < splits_.size(); ++si) {
    Split& s = splits_[si];
    const bool device = !s.backend->uses_host_memory();
    for (size_t i = s.first; i < s.first + s.count; ++i) {
      const Tensor* node = nodes[i];
      if (node->op == Op::view) continue;
      for (const Tensor* src : node->src) {
        if (!src) continue;
        const Tensor* o = owner(src);
        if (device && is_weight(o)) {
          if (!weight_seen[o->id]) device_weights_.push_back(o);
          weight_seen[o->id] = 1;
          s.backend->upload_weight(*o);
        } else if (device && on_device[o->id] != s.backend) {
          if (!on_host[o->id]) {  // made on another device: through host memory
            splits_[producer[o->id]].copies.out.push_back(o);
            on_host[o->id] = 1;
          }
          s.copies.in.push_back(o);
          on_device[o->id] = s.backend;
        } else if (!device && !on_host[o->id] && !is_weight(o)) {
          splits_[producer[o->id]].copies.out.push_back(o);
          on_host[o->id] = 1;
        }
      }
      on_device[node->id] = device ? s.backend : nullptr;
      on_host[node->id] = device ? 0 : 1;
      producer[node->id] = si;
    }
  }
  for (const Tensor* t : nodes) {
    const Tensor* o = owner(t);
    if (t->is_output && !on_host[o->id]) {
      splits_[producer[o->id]].copies.out.push_back(o);
      on_host[o->id] = 1;
    }
  }
}

void Schedule::bind(uint8_t* arena) {
  for (const Tensor* leaf : graph_.leaves())
    if (plan_.offsets[leaf->id] != MemoryPlan::kNone)
      const_cast<Tensor*>(leaf)->data = arena + plan_.offsets[leaf->id];
  for (Tensor* t : graph_.nodes()) {
    if (t->op == Op::view)
      t->data = static_cast<uint8_t*>(t->src[0]->data) + t->view_offset;
    else
      t->data = arena + plan_.offsets[t->id];
  }
  bound_ = arena;
}

bool Schedule::run(const ComputeEnv& env) {
  Tensor* const* nodes = graph_.nodes().data();
  for (const Split& s : splits_)
    if (!s.backend->uses_host_memory()) s.backend->bind_arena(bound_, plan_.arena_bytes);
  for (const Split& s : splits_) {
    if (!s.backend->compute(nodes + s.first, s.count, env)) return false;
  }
  for (const Split& s : splits_) s.backend->synchronize();
  return true;
}

std::string Schedule::describe() const {
  std::string out;
  std::map<std::string, size_t> per_op;
  for (const Tensor* t : graph_.nodes()) per_op[op_name(t->op)]++;
  out += fmt::format("graph: {} nodes, {} leaves\n", graph_.nodes().size(), graph_.leaves().size());
  out += "ops:";
  for (const auto& [op, count] : per_op) out += fmt::format(" {}={}", op, count);
  out += "\nsplits:\n";
  // Several devices of one kind (a layer split) are told apart by their order: vulkan#0, #1.
  std::vector<const Backend*> device_order;
  for (const Split& s : splits_)
    if (!s.backend->uses_host_memory() &&
        std::find(device_order.begin(), device_order.end(), s.backend) == device_order.end())
      device_order.push_back(s.backend);
  const auto label = [&](const Backend* b) {
    const auto at = std::find(device_order.begin(), device_order.end(), b);
    if (device_order.size() < 2 || at == device_order.end()) return std::string(b->name());
    return fmt::format("{}#{}", b->name(), at - device_order.begin());
  };
  for (const Split& s : splits_) {
    out += fmt::format("  {:>4}..{:<4} on {} ({} nodes)\n", s.first, s.first + s.count - 1,
                       label(s.backend), s.count);
    std::map<std::string, size_t> split_ops;
    for (size_t i = s.first; i < s.first + s.count; ++i)
      if (graph_.nodes()[i]->op != Op::view) split_ops[op_name(graph_.nodes()[i]->op)]++;
    out += "          ops:";
    for (const auto& [op, count] : split_ops) out += fmt::format(" {}={}", op, count);
    out += "\n";
    out += s.backend->describe_kernels(graph_.nodes().data() + s.first, s.count, "          ");
    const auto list = [](const std::vector<const Tensor*>& ts) {
      std::string names;
      size_t bytes = 0;
      for (const Tensor* t : ts) {
        names += fmt::format("{}{}", names.empty() ? "" : ", ",
                             t->name.empty() ? fmt::format("{}#{}", op_name(t->op), t->id) : t->name);
        bytes += t->nbytes();
      }
      return fmt::format("{} tensors, {} bytes: {}", ts.size(), bytes, names);
    };
    if (!s.copies.in.empty()) out += fmt::format("          copy in  (host -> {}) {}\n", label(s.backend), list(s.copies.in));
    if (!s.copies.out.empty()) out += fmt::format("          copy out ({} -> host) {}\n", label(s.backend), list(s.copies.out));
  }
  if (!device_weights_.empty()) {
    size_t bytes = 0;
    for (const Tensor* w : device_weights_) bytes += w->nbytes();
    out += fmt::format("device weights: {} tensors, {} bytes uploaded once\n",
                       device_weights_.size(), bytes);
  }
  out += fmt::format(
      "memory: arena {} bytes for intermediates ({} bytes without reuse, {:.1f}x saved)\n",
      plan_.arena_bytes, plan_.unshared_bytes,
      plan_.arena_bytes ? static_cast<double>(plan_.unshared_bytes) / plan_.arena_bytes : 0.0);
  return out;
}

}  // namespace v4
