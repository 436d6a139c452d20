// Dual-GPU (any number of devices) layer placement: which transformer layers each device
// holds, from the devices' free memory and the model's per-layer sizes. `--split auto` shares
// layers in proportion to free memory; explicit ratios ("3,1") share them as asked. Layers
// stay contiguous per device, in device order, so activations cross each device boundary
// once per step: by a peer copy where the two devices can reach each other, else through
// host memory. Pure host code; the CUDA backend feeds it real devices, the tests fake ones.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace v4 {

struct PlacementDevice {
  std::string name;
  uint64_t memory_free = 0;
};

struct ModelFootprint {
  std::vector<uint64_t> layer_bytes;  // weights of each layer
  std::vector<uint64_t> kv_bytes;     // KV cache of each layer for the context (may be empty)
  uint64_t output_bytes = 0;          // output norm + lm_head: on the device of the last layer
  uint64_t embedding_bytes = 0;       // token embedding: stays in host memory (get_rows of a
                                      // few rows per step costs less than the VRAM it holds)
};

struct PlacementRequest {
  std::vector<PlacementDevice> devices;
  // peer[i][j]: device i can copy straight into device j. Empty: no peer access anywhere.
  std::vector<std::vector<bool>> peer;
  std::vector<double> ratios;  // empty: auto (proportional to usable memory)
  uint64_t reserve_bytes = 0;  // kept free on every device (activations, scratch, runtime)
};

enum class Crossing { peer_copy, host_bounce };

struct BoundaryCrossing {
  int from_device = 0;
  int to_device = 0;
  int first_layer = 0;  // the first layer on to_device
  Crossing how = Crossing::host_bounce;
};

struct Placement {
  std::vector<int> layer_device;       // device of each layer
  int output_device = 0;               // device of the output layer (that of the last layer)
  std::vector<uint64_t> device_bytes;  // bytes each device holds (weights + KV + output)
  std::vector<BoundaryCrossing> crossings;

  // One line per device and per crossing, for `v4 info --plan` and logs.
  std::string describe(const PlacementRequest& req) const;
};

// Parses "3,1" into ratios for n_devices (all >= 0, at least one > 0). Throws
// Error(invalid_arg) naming what is wrong.
std::vector<double> parse_split_ratios(std::string_view text, size_t n_devices);

// Chooses layers per device. Throws Error(out_of_memory) when the model does not fit (the
// message gives what is needed and what is free) and Error(invalid_arg) for a malformed
// request (no devices, ratio count mismatch, KV sizes not one per layer).
Placement plan_placement(const PlacementRequest& req, const ModelFootprint& model);

}  // namespace v4
