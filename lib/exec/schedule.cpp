#include "lib/exec/schedule.h"

#include <map>

#include <fmt/format.h>

#include "lib/core/error.h"

namespace v4 {

Schedule::Schedule(Graph& graph, const std::vector<Backend*>& backends) : graph_(graph) {
  const auto& nodes = graph.nodes();
  node_backend_.reserve(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    Backend* chosen = nullptr;
    for (Backend* b : backends) {
      if (b->supports(*nodes[i])) {
        chosen = b;
        break;
      }
    }
    if (!chosen)
      fail(Status::unsupported, "no backend can run op {} ({}, {} x {})", op_name(nodes[i]->op),
           nodes[i]->name, nodes[i]->ne[0], nodes[i]->ne[1]);
    node_backend_.push_back(chosen);
    if (splits_.empty() || splits_.back().backend != chosen)
      splits_.push_back({chosen, i, 0});
    ++splits_.back().count;
  }
  plan_ = plan_memory(graph);
  for (const Split& s : splits_) s.backend->prepare(nodes.data() + s.first, s.count);
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
  for (const Split& s : splits_)
    out += fmt::format("  {:>4}..{:<4} on {} ({} nodes)\n", s.first, s.first + s.count - 1,
                       s.backend->name(), s.count);
  out += fmt::format(
      "memory: arena {} bytes for intermediates ({} bytes without reuse, {:.1f}x saved)\n",
      plan_.arena_bytes, plan_.unshared_bytes,
      plan_.arena_bytes ? static_cast<double>(plan_.unshared_bytes) / plan_.arena_bytes : 0.0);
  return out;
}

}  // namespace v4
