// Places every intermediate tensor of a graph in one arena, reusing the bytes of
// tensors whose last reader has already run. Decoding then needs no allocation per
// token: a graph is planned once and its arena is reused for every step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "lib/core/graph.h"

namespace v4 {

struct MemoryPlan {
  static constexpr size_t kNone = SIZE_MAX;
  std::vector<size_t> offsets;  // by tensor id; kNone for weights and views
  size_t arena_bytes = 0;       // size the arena needs
  size_t unshared_bytes = 0;    // what the tensors would need without reuse
};

// Tensors that are inputs, outputs or computed nodes (not views) get an offset.
// Inputs live from the start, outputs until the end, others until their last reader.
MemoryPlan plan_memory(const Graph& graph, size_t alignment = 64);

}  // namespace v4
