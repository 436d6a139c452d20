#include "lib/kv/disk_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "lib/core/error.h"
#include "lib/kv/disk_store.h"

namespace v4 {
namespace {

struct FreeDeleter {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<uint8_t, FreeDeleter>;

AlignedBytes aligned_bytes(size_t n) {
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096));
  if (!p) fail(Status::out_of_memory, "disk bench: cannot allocate {} bytes", n);
  return AlignedBytes(p);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

DiskReadBench bench_disk_reads(const std::string& dir, size_t slot_bytes, uint64_t total_bytes,
                               int queue_depth) {
  if (slot_bytes == 0 || queue_depth <= 0)
    fail(Status::invalid_arg, "disk bench: slot size and queue depth must be positive");
  DiskStoreOptions o;
  o.dir = dir;
  o.slot_bytes = slot_bytes;
  o.n_slots = static_cast<uint32_t>(std::max<uint64_t>(1, total_bytes / slot_bytes));
  o.queue_depth = static_cast<uint32_t>(queue_depth);
  DiskStore store(o);

  // Aligned, page-sized buffers: the store moves them in place, as the tier manager's pages will.
  AlignedBytes src = aligned_bytes(slot_bytes);
  std::mt19937_64 rng(1);
  for (size_t i = 0; i < slot_bytes; ++i) src.get()[i] = static_cast<uint8_t>(rng());

  DiskReadBench r;
  r.slot_bytes = slot_bytes;
  r.queue_depth = queue_depth;
  r.bytes = uint64_t{o.n_slots} * slot_bytes;
  r.direct_io = store.direct_io();

  auto t0 = std::chrono::steady_clock::now();
  for (uint32_t s = 0; s < o.n_slots; ++s) store.write(s, src.get());
  store.wait();
  r.write_seconds = seconds_since(t0);

  // Reads go in rounds, each into its own buffers; a round is many queue depths long so the
  // drain at its end costs little.
  const size_t round = std::clamp<size_t>((size_t{128} << 20) / slot_bytes, size_t(queue_depth),
                                          size_t(queue_depth) * 16);
  AlignedBytes dst = aligned_bytes(round * slot_bytes);
  std::vector<uint32_t> order(o.n_slots);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), rng);
  t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < order.size(); i += round) {
    const size_t n = std::min(round, order.size() - i);
    for (size_t k = 0; k < n; ++k) {
      store.read(order[i + k], dst.get() + k * slot_bytes);
      if ((k + 1) % size_t(queue_depth) == 0) store.submit();
    }
    store.wait();
  }
  r.read_seconds = seconds_since(t0);
  r.write_gbps = double(r.bytes) / r.write_seconds / 1e9;
  r.read_gbps = double(r.bytes) / r.read_seconds / 1e9;
  return r;
}

}  // namespace v4
