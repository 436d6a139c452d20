// Turns a graph into something runnable: each node is assigned to a backend (the first
// in preference order that supports it; the CPU is always last and supports every op),
// consecutive nodes on one backend form a split, and intermediates are placed in an
// arena by the memory planner. A Schedule is built once per graph shape and run many
// times; running it allocates nothing.
//
// Device backends (Backend::uses_host_memory() false) compute in their own memory: the
// schedule uploads the weights their nodes read (once, through the backend), mirrors the
// arena on the device (same offsets), and lists per split the tensors to copy in from
// the host before it runs and out to the host after it (views resolved to their owner).
//
// Layer placement (several devices): `layer_backends[l]` runs the nodes of transformer layer
// l (Tensor::layer; index n_layer is the output layer), falling back to host backends for
// ops it lacks. A value computed on one device and read on another crosses through host
// memory: copied out after the producing split, in before the reading one.
#pragma once

#include <string>
#include <vector>

#include "lib/core/backend.h"
#include "lib/core/graph.h"
#include "lib/exec/memory_planner.h"

namespace v4 {

class Schedule {
 public:
  // `backends` in order of preference; the last must support every node. With
  // `layer_backends` (one per layer plus the output layer, each also in `backends`), a
  // layer's nodes prefer their layer's backend; nodes outside layers use `backends`.
  Schedule(Graph& graph, const std::vector<Backend*>& backends,
           const std::vector<Backend*>& layer_backends = {});
  ~Schedule();
  Schedule(const Schedule&) = delete;
  Schedule& operator=(const Schedule&) = delete;

  size_t arena_bytes() const { return plan_.arena_bytes; }
  // Points every planned tensor and view into `arena` (at least arena_bytes()).
  // Cheap; call again whenever the arena moves.
  void bind(uint8_t* arena);
  const uint8_t* bound_arena() const { return bound_; }
  // Runs all splits in order. Returns false if the abort callback stopped it.
  bool run(const ComputeEnv& env);
  // The placement and memory plan in words (`v4 info --plan`).
  std::string describe() const;

 private:
  struct Split {
    Backend* backend;
    size_t first;
    size_t count;
    SplitCopies copies;  // device splits only
  };
  void assign(const std::vector<Backend*>& backends, const std::vector<Backend*>& layer_backends);
  void plan_copies();
  Graph& graph_;
  std::vector<const Tensor*> device_weights_;
  std::vector<Split> splits_;
  std::vector<Backend*> node_backend_;
  MemoryPlan plan_;
  uint8_t* bound_ = nullptr;
};

}  // namespace v4
