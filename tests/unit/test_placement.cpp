// The layer placement planner (lib/exec/placement) with fake devices: proportional split,
// explicit ratios, peer copy vs host bounce, too little memory, one device, bad input; and the
// footprint of the bundled model (lib/model/model_footprint) it plans from.
#include <catch2/catch.hpp>
#include <numeric>

#include "lib/core/error.h"
#include "lib/exec/placement.h"
#include "lib/model/arch/arch.h"
#include "lib/model/model_footprint.h"
#include "tests/unit/test_support.h"

using v4::Crossing;
using v4::ModelFootprint;
using v4::Placement;
using v4::PlacementRequest;
using v4::Status;

namespace {

constexpr uint64_t kGiB = 1ull << 30;

ModelFootprint uniform_model(int n_layers, uint64_t layer, uint64_t kv, uint64_t output) {
  ModelFootprint m;
  m.layer_bytes.assign(static_cast<size_t>(n_layers), layer);
  m.kv_bytes.assign(static_cast<size_t>(n_layers), kv);
  m.output_bytes = output;
  return m;
}

PlacementRequest two_devices(uint64_t free0, uint64_t free1, bool peer) {
  PlacementRequest r;
  r.devices = {{"gpu0", free0}, {"gpu1", free1}};
  r.peer = {{false, peer}, {peer, false}};
  return r;
}

long layers_on(const Placement& p, int d) {
  return std::count(p.layer_device.begin(), p.layer_device.end(), d);
}

// Layers must be contiguous per device and in device order.
bool contiguous(const Placement& p) {
  return std::is_sorted(p.layer_device.begin(), p.layer_device.end());
}

}  // namespace

TEST_CASE("placement: auto split follows free memory", "[placement]") {
  const ModelFootprint m = uniform_model(32, kGiB / 2, kGiB / 16, kGiB / 2);
  const PlacementRequest r = two_devices(24 * kGiB, 24 * kGiB, true);
  const Placement p = v4::plan_placement(r, m);
  REQUIRE(p.layer_device.size() == 32);
  CHECK(contiguous(p));
  CHECK(layers_on(p, 0) == 16);
  CHECK(layers_on(p, 1) == 16);
  CHECK(p.output_device == 1);
  CHECK(p.device_bytes[1] == 16 * (kGiB / 2 + kGiB / 16) + kGiB / 2);
  REQUIRE(p.crossings.size() == 1);
  CHECK(p.crossings[0].first_layer == 16);
  CHECK(p.crossings[0].how == Crossing::peer_copy);
  CHECK(p.describe(r).find("layers 16-31 + output") != std::string::npos);

  // Three times the memory on device 0: about three quarters of the layers.
  const Placement q = v4::plan_placement(two_devices(48 * kGiB, 16 * kGiB, false), m);
  CHECK(layers_on(q, 0) == 24);
  CHECK(q.crossings[0].how == Crossing::host_bounce);
}

TEST_CASE("placement: explicit ratios and their parsing", "[placement]") {
  const ModelFootprint m = uniform_model(40, kGiB / 4, 0, 0);
  PlacementRequest r = two_devices(24 * kGiB, 24 * kGiB, false);
  r.ratios = v4::parse_split_ratios("3,1", 2);
  const Placement p = v4::plan_placement(r, m);
  CHECK(layers_on(p, 0) == 30);
  CHECK(layers_on(p, 1) == 10);
  CHECK(contiguous(p));

  r.ratios = v4::parse_split_ratios("0,1", 2);
  const Placement only1 = v4::plan_placement(r, m);
  CHECK(layers_on(only1, 1) == 40);
  CHECK(only1.crossings.empty());

  CHECK(v4test::status_of([] { v4::parse_split_ratios("3,x", 2); }) == Status::invalid_arg);
  CHECK(v4test::status_of([] { v4::parse_split_ratios("3,1,1", 2); }) == Status::invalid_arg);
  CHECK(v4test::status_of([] { v4::parse_split_ratios("0,0", 2); }) == Status::invalid_arg);
  CHECK(v4test::status_of([] { v4::parse_split_ratios("-1,2", 2); }) == Status::invalid_arg);
  CHECK(v4test::status_of([] { v4::parse_split_ratios("3,", 2); }) == Status::invalid_arg);
  CHECK(v4::parse_split_ratios("1.5,0.5", 2) == std::vector<double>{1.5, 0.5});
}

TEST_CASE("placement: the output layer stays where it fits", "[placement]") {
  // 10 layers of 1 GiB and a 3 GiB output layer; device 1 has room for the output only if
  // some of its layers move to device 0.
  const ModelFootprint m = uniform_model(10, kGiB, 0, 3 * kGiB);
  const PlacementRequest r = two_devices(9 * kGiB, 6 * kGiB, true);
  const Placement p = v4::plan_placement(r, m);
  CHECK(contiguous(p));
  CHECK(p.output_device == 1);
  CHECK(p.device_bytes[0] <= 9 * kGiB);
  CHECK(p.device_bytes[1] <= 6 * kGiB);
  CHECK(layers_on(p, 1) == 3);
}

TEST_CASE("placement: too little memory is reported, not planned", "[placement]") {
  const ModelFootprint m = uniform_model(32, kGiB, kGiB / 8, kGiB);
  PlacementRequest r = two_devices(8 * kGiB, 8 * kGiB, true);
  try {
    v4::plan_placement(r, m);
    FAIL("expected out_of_memory");
  } catch (const v4::Error& e) {
    CHECK(e.status() == Status::out_of_memory);
    CHECK(std::string(e.what()).find("needs 37.00 GiB") != std::string::npos);
  }
  // Enough in total, but the reserve leaves too little.
  r = two_devices(20 * kGiB, 20 * kGiB, true);
  r.reserve_bytes = 2 * kGiB;
  CHECK(v4test::status_of([&] { v4::plan_placement(r, m); }) == Status::out_of_memory);
  // Ratios that overfill one device fail and name it, even though auto would fit.
  r = two_devices(40 * kGiB, 10 * kGiB, true);
  r.ratios = {1, 1};
  CHECK(v4test::status_of([&] { v4::plan_placement(r, m); }) == Status::out_of_memory);
  r.ratios.clear();
  CHECK(v4test::status_of([&] { v4::plan_placement(r, m); }) == Status::ok);
}

TEST_CASE("placement: one device and malformed requests", "[placement]") {
  const ModelFootprint m = uniform_model(4, kGiB, 0, kGiB);
  PlacementRequest one;
  one.devices = {{"gpu0", 8 * kGiB}};
  const Placement p = v4::plan_placement(one, m);
  CHECK(layers_on(p, 0) == 4);
  CHECK(p.crossings.empty());
  CHECK(p.device_bytes[0] == 5 * kGiB);

  CHECK(v4test::status_of([&] { v4::plan_placement(PlacementRequest{}, m); }) ==
        Status::invalid_arg);
  ModelFootprint bad = m;
  bad.kv_bytes = {1, 2};
  CHECK(v4test::status_of([&] { v4::plan_placement(one, bad); }) == Status::invalid_arg);
  PlacementRequest wrong_ratios = one;
  wrong_ratios.ratios = {1, 1};
  CHECK(v4test::status_of([&] { v4::plan_placement(wrong_ratios, m); }) == Status::invalid_arg);
}

TEST_CASE("placement: a device too small for any layer gets none", "[placement]") {
  const ModelFootprint m = uniform_model(8, 2 * kGiB, 0, 0);
  PlacementRequest r;
  r.devices = {{"big", 20 * kGiB}, {"tiny", kGiB}, {"mid", 8 * kGiB}};
  const Placement p = v4::plan_placement(r, m);
  CHECK(contiguous(p));
  CHECK(layers_on(p, 1) == 0);
  for (size_t d = 0; d < 3; ++d) CHECK(p.device_bytes[d] <= r.devices[d].memory_free);
  REQUIRE(p.crossings.size() == 1);
  CHECK(p.crossings[0].from_device == 0);
  CHECK(p.crossings[0].to_device == 2);
  CHECK(p.crossings[0].how == Crossing::host_bounce);  // no peer table: host bounce
}

TEST_CASE("placement: the bundled model's footprint and a plan for it", "[placement]") {
  const auto file = v4::gguf::File::open(std::string(V4_MODELS_DIR) + "/stories260K-f32.gguf");
  const auto arch = v4::make_architecture(*file);
  const int32_t n_layer = arch->info().n_layer;
  const auto kv = arch->kv_components(v4::DType::F16);
  const ModelFootprint fp = v4::model_footprint(*file, n_layer, kv, 256);
  REQUIRE(fp.layer_bytes.size() == static_cast<size_t>(n_layer));
  uint64_t total = 0;
  for (const auto& t : file->tensors()) total += t.nbytes;
  const uint64_t layers =
      std::accumulate(fp.layer_bytes.begin(), fp.layer_bytes.end(), uint64_t{0});
  const bool tied = file->find_tensor("output.weight") == nullptr;
  // Every tensor is counted once, the embedding a second time when the output layer uses it.
  CHECK(layers + fp.output_bytes + fp.embedding_bytes == total + (tied ? fp.embedding_bytes : 0));
  CHECK(fp.embedding_bytes == file->find_tensor("token_embd.weight")->nbytes);
  for (int32_t l = 0; l < n_layer; ++l) {
    CHECK(fp.layer_bytes[static_cast<size_t>(l)] > 0);
    uint64_t kv_l = 0;  // K and V rows of this layer for 256 tokens
    for (const auto& c : kv)
      if (c.name.rfind("blk." + std::to_string(l) + ".", 0) == 0) kv_l += c.row_bytes() * 256;
    CHECK(kv_l > 0);
    CHECK(fp.kv_bytes[static_cast<size_t>(l)] == kv_l);
  }
  PlacementRequest r = two_devices(1 << 20, 1 << 20, true);
  const Placement p = v4::plan_placement(r, fp);
  CHECK(p.layer_device.size() == static_cast<size_t>(n_layer));
  CHECK(contiguous(p));
}
