#include "lib/exec/placement.h"

#include <algorithm>
#include <charconv>
#include <numeric>

#include "lib/core/error.h"

namespace v4 {
namespace {

double gib(uint64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

void validate(const PlacementRequest& req, const ModelFootprint& model) {
  const size_t n = req.devices.size();
  if (n == 0) fail(Status::invalid_arg, "placement: no devices to place the model on");
  if (model.layer_bytes.empty()) fail(Status::invalid_arg, "placement: the model has no layers");
  if (!model.kv_bytes.empty() && model.kv_bytes.size() != model.layer_bytes.size())
    fail(Status::invalid_arg, "placement: {} KV sizes for {} layers (give one per layer or none)",
         model.kv_bytes.size(), model.layer_bytes.size());
  if (!req.ratios.empty() && req.ratios.size() != n)
    fail(Status::invalid_arg, "placement: {} split ratios for {} devices (give one per device)",
         req.ratios.size(), n);
  if (!req.peer.empty() && req.peer.size() != n)
    fail(Status::invalid_arg, "placement: peer-access table has {} rows for {} devices",
         req.peer.size(), n);
}

// Layers are contiguous per device, so a plan is how many layers each device takes, in
// device order; the output layer goes with the last layer.
struct Split {
  const ModelFootprint& model;
  std::vector<size_t> count;

  uint64_t layer_cost(size_t i) const {
    return model.layer_bytes[i] + (model.kv_bytes.empty() ? 0 : model.kv_bytes[i]);
  }
  std::vector<uint64_t> loads() const {
    std::vector<uint64_t> load(count.size(), 0);
    size_t layer = 0;
    int last = 0;
    for (size_t d = 0; d < count.size(); ++d)
      for (size_t k = 0; k < count[d]; ++k, ++layer) {
        load[d] += layer_cost(layer);
        last = static_cast<int>(d);
      }
    load[static_cast<size_t>(last)] += model.output_bytes;
    return load;
  }
};

// Each layer goes to the device whose share of the cumulative size holds the layer's middle,
// which keeps layers contiguous and the bytes per device close to the ratios.
std::vector<size_t> split_by_ratios(const Split& s, const std::vector<double>& ratios) {
  const size_t n_layers = s.model.layer_bytes.size();
  const double ratio_sum = std::accumulate(ratios.begin(), ratios.end(), 0.0);
  double total = 0.0;
  for (size_t i = 0; i < n_layers; ++i) total += static_cast<double>(s.layer_cost(i));
  std::vector<double> bound(ratios.size());
  double acc = 0.0;
  for (size_t d = 0; d < ratios.size(); ++d) bound[d] = (acc += ratios[d]) / ratio_sum;
  std::vector<size_t> count(ratios.size(), 0);
  double before = 0.0;
  for (size_t i = 0; i < n_layers; ++i) {
    const double cost = static_cast<double>(s.layer_cost(i));
    const double mid = total > 0.0 ? (before + cost / 2.0) / total
                                   : (static_cast<double>(i) + 0.5) / static_cast<double>(n_layers);
    size_t d = 0;
    while (d + 1 < ratios.size() && (mid >= bound[d] || ratios[d] == 0.0)) ++d;
    while (ratios[d] == 0.0 && d > 0) --d;  // trailing zero ratios
    count[d]++;
    before += cost;
  }
  return count;
}

// Moves boundary layers off devices over capacity onto their neighbours: forward first
// (the last layers of device d to d + 1), then backward (the first layers of d to d - 1).
void rebalance(Split& s, const std::vector<uint64_t>& cap) {
  const size_t n = cap.size();
  for (size_t d = 0; d + 1 < n; ++d)
    while (s.count[d] > 0 && s.loads()[d] > cap[d]) {
      s.count[d]--;
      s.count[d + 1]++;
    }
  for (size_t d = n - 1; d > 0; --d)
    while (s.count[d] > 0 && s.loads()[d] > cap[d]) {
      s.count[d]--;
      s.count[d - 1]++;
    }
}

bool can_peer(const PlacementRequest& req, int a, int b) {
  return !req.peer.empty() && req.peer[static_cast<size_t>(a)].size() > static_cast<size_t>(b) &&
         req.peer[static_cast<size_t>(a)][static_cast<size_t>(b)];
}

}  // namespace

std::vector<double> parse_split_ratios(std::string_view text, size_t n_devices) {
  std::vector<double> ratios;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view part = text.substr(pos, comma - pos);
    double v = 0.0;
    const auto res = std::from_chars(part.data(), part.data() + part.size(), v);
    if (part.empty() || res.ec != std::errc() || res.ptr != part.data() + part.size() ||
        !(v >= 0.0))
      fail(Status::invalid_arg,
           "split ratios '{}': '{}' is not a non-negative number (write e.g. --split 3,1)", text,
           part);
    ratios.push_back(v);
    pos = comma + 1;
  }
  if (ratios.size() != n_devices)
    fail(Status::invalid_arg, "split ratios '{}': {} values for {} devices (give one per device)",
         text, ratios.size(), n_devices);
  if (std::all_of(ratios.begin(), ratios.end(), [](double r) { return r == 0.0; }))
    fail(Status::invalid_arg, "split ratios '{}': at least one must be above 0", text);
  return ratios;
}

Placement plan_placement(const PlacementRequest& req, const ModelFootprint& model) {
  validate(req, model);
  const size_t n = req.devices.size();
  std::vector<uint64_t> cap(n);
  for (size_t d = 0; d < n; ++d)
    cap[d] = req.devices[d].memory_free > req.reserve_bytes
                 ? req.devices[d].memory_free - req.reserve_bytes
                 : 0;

  Split s{model, {}};
  uint64_t need = model.output_bytes;
  for (size_t i = 0; i < model.layer_bytes.size(); ++i) need += s.layer_cost(i);
  const uint64_t have = std::accumulate(cap.begin(), cap.end(), uint64_t{0});
  if (need > have)
    fail(Status::out_of_memory,
         "placement: the model needs {:.2f} GiB (weights, KV cache and output layer) but the {} "
         "device(s) have {:.2f} GiB free after the {:.2f} GiB reserve each; use a smaller "
         "context, a smaller weight type, or more devices",
         gib(need), n, gib(have), gib(req.reserve_bytes));

  const bool automatic = req.ratios.empty();
  std::vector<double> ratios = req.ratios;
  if (automatic)
    for (uint64_t c : cap) ratios.push_back(static_cast<double>(c));
  if (std::all_of(ratios.begin(), ratios.end(), [](double r) { return r <= 0.0; }))
    fail(Status::invalid_arg, "placement: every split ratio is 0");
  s.count = split_by_ratios(s, ratios);
  if (automatic) rebalance(s, cap);

  const std::vector<uint64_t> load = s.loads();
  for (size_t d = 0; d < n; ++d)
    if (load[d] > cap[d])
      fail(Status::out_of_memory,
           "placement: device {} ({}) would hold {:.2f} GiB with {} layers but has {:.2f} GiB "
           "usable; {}",
           d, req.devices[d].name, gib(load[d]), s.count[d], gib(cap[d]),
           automatic ? "no contiguous layer split fits (layers too large for the free memory)"
                     : "change the split ratios or use --split auto");

  Placement p;
  p.device_bytes = load;
  int prev = -1;
  for (size_t d = 0; d < n; ++d) {
    if (s.count[d] == 0) continue;
    const int dev = static_cast<int>(d);
    if (prev >= 0)
      p.crossings.push_back(
          {prev, dev, static_cast<int>(p.layer_device.size()),
           can_peer(req, prev, dev) ? Crossing::peer_copy : Crossing::host_bounce});
    p.layer_device.insert(p.layer_device.end(), s.count[d], dev);
    prev = dev;
  }
  p.output_device = p.layer_device.back();
  return p;
}

std::string Placement::describe(const PlacementRequest& req) const {
  std::string out;
  for (size_t d = 0; d < req.devices.size(); ++d) {
    const auto first = std::find(layer_device.begin(), layer_device.end(), static_cast<int>(d));
    const auto n_layers = std::count(layer_device.begin(), layer_device.end(), static_cast<int>(d));
    out += fmt::format("device {} ({}): ", d, req.devices[d].name);
    if (n_layers == 0)
      out += "no layers";
    else
      out += fmt::format("layers {}-{}", first - layer_device.begin(),
                         first - layer_device.begin() + n_layers - 1);
    if (output_device == static_cast<int>(d)) out += " + output";
    out += fmt::format(", {:.2f} of {:.2f} GiB free\n", gib(device_bytes[d]),
                       gib(req.devices[d].memory_free));
  }
  for (const BoundaryCrossing& c : crossings)
    out +=
        fmt::format("layer {}: activations device {} -> {} by {}\n", c.first_layer, c.from_device,
                    c.to_device, c.how == Crossing::peer_copy ? "peer copy" : "host bounce");
  return out;
}

}  // namespace v4
