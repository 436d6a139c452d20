#include "lib/exec/memory_planner.h"

#include <algorithm>
#include <iterator>
#include <map>

namespace v4 {
namespace {

size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// The tensor that owns the bytes a view reads.
const Tensor* storage_of(const Tensor* t) {
  while (t->op == Op::view) t = t->src[0];
  return t;
}

// First-fit free list over [offset, offset + size) blocks, merged on release.
class Arena {
 public:
  size_t allocate(size_t size) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second < size) continue;
      const size_t off = it->first;
      const size_t rest = it->second - size;
      free_.erase(it);
      if (rest > 0) free_.emplace(off + size, rest);
      return off;
    }
    // Grow the end; reuse a free block that touches it.
    size_t off = end_;
    if (!free_.empty()) {
      auto last = std::prev(free_.end());
      if (last->first + last->second == end_) {
        off = last->first;
        free_.erase(last);
      }
    }
    end_ = off + size;
    return off;
  }
  void release(size_t off, size_t size) {
    auto it = free_.emplace(off, size).first;
    auto next = std::next(it);
    if (next != free_.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_.erase(next);
    }
    if (it != free_.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_.erase(it);
      }
    }
  }
  size_t end() const { return end_; }

 private:
  std::map<size_t, size_t> free_;
  size_t end_ = 0;
};

}  // namespace

MemoryPlan plan_memory(const Graph& graph, size_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(graph.n_tensors(), MemoryPlan::kNone);
  const auto& nodes = graph.nodes();
  const int64_t n = static_cast<int64_t>(nodes.size());

  // Last step at which each tensor's bytes are read (n = kept to the end).
  std::vector<int64_t> last_use(graph.n_tensors(), -1);
  for (int64_t i = 0; i < n; ++i) {
    for (const Tensor* s : nodes[i]->src) {
      if (!s) continue;
      const Tensor* st = storage_of(s);
      last_use[st->id] = std::max(last_use[st->id], i);
    }
    if (nodes[i]->is_output) last_use[storage_of(nodes[i])->id] = n;
  }

  Arena arena;
  auto place = [&](const Tensor* t) {
    const size_t size = align_up(t->nbytes(), alignment);
    plan.offsets[t->id] = arena.allocate(size);
    plan.unshared_bytes += size;
  };
  for (const Tensor* leaf : graph.leaves())
    if (leaf->is_input) place(leaf);

  // Tensors to release after each step.
  std::vector<std::vector<const Tensor*>> dying(n);
  auto schedule_release = [&](const Tensor* t) {
    const int64_t lu = last_use[t->id];
    if (lu >= 0 && lu < n) dying[lu].push_back(t);
  };
  for (const Tensor* leaf : graph.leaves())
    if (leaf->is_input) schedule_release(leaf);

  for (int64_t i = 0; i < n; ++i) {
    const Tensor* t = nodes[i];
    if (t->op != Op::view) {
      place(t);
      if (last_use[t->id] < 0 && !t->is_output) dying[i].push_back(t);  // never read
      else schedule_release(t);
    }
    for (const Tensor* d : dying[i])
      arena.release(plan.offsets[d->id], align_up(d->nbytes(), alignment));
  }
  plan.arena_bytes = arena.end();
  return plan;
}

}  // namespace v4
