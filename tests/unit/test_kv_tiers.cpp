// The KV tier manager (lib/kv/kv_cache.*) with small budgets: blocks move between the
// device, host and disk tiers without changing a byte; FP8 KV rows quantise within their
// stated bound.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "lib/core/dtype.h"
#include "lib/core/error.h"
#include "lib/kv/kv_cache.h"

using namespace v4;
namespace fs = std::filesystem;

namespace {

constexpr int kGroups = 3;
constexpr int kPage = 4;

// Two components per group (K and V of a layer), 8 f32 values per row.
std::vector<KvComponentSpec> layer_comps() {
  std::vector<KvComponentSpec> c;
  for (int g = 0; g < kGroups; ++g) {
    c.push_back({"k" + std::to_string(g), DType::F32, 8, g});
    c.push_back({"v" + std::to_string(g), DType::F32, 8, g});
  }
  return c;
}

float expected(int32_t seq, int32_t pos, int comp, int e) {
  return static_cast<float>(seq * 100000 + pos * 100 + comp * 10 + e);
}

void append(KvCache& kv, int32_t seq, int n) {
  std::vector<int32_t> s(n, seq), p(n);
  for (int i = 0; i < n; ++i) p[i] = kv.seq_length(seq) + i;
  kv.begin_batch(n, s.data(), p.data());
  for (int i = 0; i < n; ++i)
    for (int c = 0; c < 2 * kGroups; ++c) {
      auto* row = reinterpret_cast<float*>(kv.view()->row(c, seq, p[i]));
      for (int e = 0; e < 8; ++e) row[e] = expected(seq, p[i], c, e);
    }
}

// Every row of `seq`, read the way attention reads it: after ensure_resident per group.
void check_resident(KvCache& kv, int32_t seq) {
  for (int g = 0; g < kGroups; ++g) {
    kv.ensure_resident(g);
    for (int32_t pos = 0; pos < kv.seq_length(seq); ++pos)
      for (int c = 2 * g; c < 2 * g + 2; ++c) {
        const auto* row = reinterpret_cast<const float*>(kv.view()->row(c, seq, pos));
        for (int e = 0; e < 8; ++e) {
          INFO("seq " << seq << " pos " << pos << " comp " << c);
          REQUIRE(row[e] == expected(seq, pos, c, e));
        }
      }
  }
}

struct ScratchDir {
  fs::path path;
  ScratchDir() {
    path = fs::current_path() / ("kvunit-" + std::to_string(getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
};

KvBudgets small_budgets(const std::string& dir, size_t block) {
  KvBudgets b;
  b.hot_bytes = 2 * kGroups * block;   // the minimum: two blocks per group
  b.warm_bytes = 3 * block;            // fewer than one per group: some go straight to disk
  b.disk.dir = dir;
  return b;
}

// A stand-in for a GPU's KV tier (Backend::make_kv_tier), so the device-tier paths of the
// cache run without a GPU: the cache cannot address it (slot_data() is null) and copies
// happen only at wait(). The test plays the kernels through the view's addresses, which
// point into the stand-in's memory.
class StandInDeviceTier final : public KvTier {
 public:
  StandInDeviceTier(uint32_t n, size_t bytes, int* uploads)
      : n_(n), bytes_(bytes), mem_(n * bytes, 0xAB), uploads_(uploads) {}
  const char* name() const override { return "device"; }
  uint32_t n_slots() const override { return n_; }
  size_t slot_bytes() const override { return bytes_; }
  uint8_t* slot_data(uint32_t) override { return nullptr; }
  uint8_t* address_base() override { return mem_.data(); }
  void write_slot(uint32_t slot, const void* src) override { q_.push_back({slot, src, nullptr}); }
  void read_slot(uint32_t slot, void* dst) override { q_.push_back({slot, nullptr, dst}); }
  void wait() override {
    for (const Copy& c : q_) {
      uint8_t* s = mem_.data() + c.slot * bytes_;
      if (c.src) {
        std::memcpy(s, c.src, bytes_);
        ++*uploads_;
      } else {
        std::memcpy(c.dst, s, bytes_);
      }
    }
    q_.clear();
  }

 private:
  struct Copy {
    uint32_t slot;
    const void* src;
    void* dst;
  };
  uint32_t n_;
  size_t bytes_;
  std::vector<uint8_t> mem_;
  int* uploads_;
  std::vector<Copy> q_;
};

}  // namespace

TEST_CASE("blocks keep their bytes through device, host and disk tiers", "[kv][tiers]") {
  ScratchDir dir;
  const size_t block = 2 * 8 * 4 * kPage;  // K and V rows of one page
  KvCache kv(layer_comps(), kPage, 64, 2, small_budgets(dir.path.string(), block));
  CHECK(kv.n_groups() == kGroups);
  CHECK(kv.block_bytes() == 4096);  // padded for O_DIRECT once a disk tier exists
  CHECK(kv.max_batch_tokens() == kPage);

  for (int step = 0; step < 9; ++step) {
    append(kv, 0, 3);  // crosses page boundaries at different offsets
    check_resident(kv, 0);
  }
  const KvStats st = kv.stats();
  CHECK(st.tiers[0].blocks <= st.tiers[0].capacity_bytes / kv.block_bytes());
  CHECK(st.tiers[1].blocks <= 3);
  CHECK(st.tiers[2].blocks > 0);
  CHECK(st.disk_io.bytes_written > 0);
  CHECK(st.disk_io.bytes_read > 0);
  CHECK(st.block_hits < st.block_reads);

  // read_rows (sessions) reads from any tier.
  std::vector<float> rows(static_cast<size_t>(kv.seq_length(0)) * 8);
  kv.read_rows(0, 3, kv.seq_length(0), reinterpret_cast<uint8_t*>(rows.data()));
  for (int32_t pos = 0; pos < kv.seq_length(0); ++pos)
    REQUIRE(rows[pos * 8 + 5] == expected(0, pos, 3, 5));
}

TEST_CASE("copy on write of a tail whose block is on disk", "[kv][tiers]") {
  ScratchDir dir;
  KvCache kv(layer_comps(), kPage, 64, 2, small_budgets(dir.path.string(), 256));
  append(kv, 0, 2);
  kv.copy(0, 1);  // seq 1 shares seq 0's partly filled tail
  for (int i = 0; i < 8; ++i) append(kv, 0, 3);  // pushes the shared tail down to disk
  CHECK(kv.stats().tiers[2].blocks > 0);
  append(kv, 1, 1);  // copies the shared page (from wherever it is) before writing
  for (int g = 0; g < kGroups; ++g) {
    kv.ensure_resident(g);
    for (int c = 2 * g; c < 2 * g + 2; ++c) {
      const auto* r0 = reinterpret_cast<const float*>(kv.view()->row(c, 1, 0));
      const auto* r2 = reinterpret_cast<const float*>(kv.view()->row(c, 1, 2));
      CHECK(r0[1] == expected(0, 0, c, 1));  // the copied rows of seq 0
      CHECK(r2[1] == expected(1, 2, c, 1));  // seq 1's own row
    }
  }
  append(kv, 0, 1);
  check_resident(kv, 0);  // seq 0 kept its own rows
}

TEST_CASE("rollback and clear release blocks in every tier", "[kv][tiers]") {
  ScratchDir dir;
  KvCache kv(layer_comps(), kPage, 64, 1, small_budgets(dir.path.string(), 256));
  for (int i = 0; i < 10; ++i) append(kv, 0, 4);
  const KvStats full = kv.stats();
  CHECK(full.tiers[0].blocks + full.tiers[1].blocks + full.tiers[2].blocks == 10u * kGroups);
  append(kv, 0, 4);
  kv.rollback_batch();
  CHECK(kv.seq_length(0) == 40);
  const KvStats back = kv.stats();
  CHECK(back.tiers[0].blocks + back.tiers[1].blocks + back.tiers[2].blocks == 10u * kGroups);
  kv.clear(0);
  const KvStats empty = kv.stats();
  CHECK(empty.tiers[0].blocks + empty.tiers[1].blocks + empty.tiers[2].blocks == 0);
  CHECK(kv.free_pages() == kv.total_pages());
}

TEST_CASE("important blocks stay in the device tier", "[kv][tiers]") {
  ScratchDir dir;
  KvCache kv(layer_comps(), kPage, 64, 1, small_budgets(dir.path.string(), 256));
  append(kv, 0, 4);  // page 0 full
  for (int g = 0; g < kGroups; ++g) kv.set_importance(g, kv.view()->seq_pages[0][0], 1.0f);
  for (int i = 0; i < 6; ++i) append(kv, 0, 4);
  // Page 0 is the oldest, yet its raised importance kept it hot: it is addressed in the hot
  // region of the pool (the first slots).
  const uint32_t page0 = kv.view()->seq_pages[0][0];
  const uint32_t hot_slots = static_cast<uint32_t>(kv.stats().tiers[0].capacity_bytes / kv.block_bytes());
  for (int g = 0; g < kGroups; ++g)
    CHECK(kv.view()->block_slot[g * kv.total_pages() + page0] < hot_slots);
  CHECK_THROWS_AS(kv.set_importance(kGroups, 0, 1.0f), Error);
}

TEST_CASE("budgets too small for the context are refused", "[kv][tiers]") {
  KvBudgets b;
  b.hot_bytes = 1;
  b.warm_bytes = 1;
  CHECK_THROWS_MATCHES(KvCache(layer_comps(), kPage, 64, 1, b), Error,
                       Catch::Predicate<Error>([](const Error& e) {
                         return e.status() == Status::invalid_arg &&
                                std::string(e.what()).find("--kv-disk") != std::string::npos;
                       }));
  b.disk.dir = "/nonexistent/kv-dir";
  CHECK_THROWS_AS(KvCache(layer_comps(), kPage, 64, 1, b), Error);
}

TEST_CASE("FP8 KV rows: power-of-two scales, bounded error, half the bytes", "[kv][fp8]") {
  const TypeTraits& tt = traits(DType::FP8_KV);
  CHECK(tt.internal);  // never a tensor type in files
  // tinyllama-1.1b: 4 KV heads x 64 = 256 values per row.
  CHECK(static_cast<double>(row_bytes(DType::FP8_KV, 256)) / row_bytes(DType::BF16, 256) <= 0.53);

  std::vector<float> x(32 * 64), y(x.size());
  uint32_t r = 12345;
  for (size_t i = 0; i < x.size(); ++i) {
    r = r * 1664525u + 1013904223u;
    const float u = static_cast<float>(r >> 8) / 16777216.0f - 0.5f;
    const float mag = std::ldexp(1.0f, static_cast<int>(i / 32) % 24 - 12);  // blocks of all sizes
    x[i] = u * mag;
  }
  for (int i = 0; i < 32; ++i) x[5 * 32 + i] = 0.0f;  // an all-zero block
  x[7 * 32 + 3] = 1e30f;                               // an outlier block
  std::vector<uint8_t> q(row_bytes(DType::FP8_KV, static_cast<int64_t>(x.size())));
  tt.from_f32(x.data(), q.data(), static_cast<int64_t>(x.size()));
  tt.to_f32(q.data(), y.data(), static_cast<int64_t>(y.size()));
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0.0f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
    const auto& blk = reinterpret_cast<const BlockFP8_KV*>(q.data())[b];
    const float s = std::ldexp(1.0f, blk.e - 127);
    if (amax > 0) {
      CHECK(amax / s <= 448.0f);          // never saturates
      CHECK(amax / s > 224.0f);           // the smallest power of two that fits
    }
    for (int i = 0; i < 32; ++i) {
      const float xi = x[b * 32 + i], yi = y[b * 32 + i];
      // E4M3 keeps 3 mantissa bits (relative step 2^-3, half of it after rounding);
      // subnormals have an absolute step of 2^-9 * s.
      INFO("block " << b << " value " << xi << " -> " << yi);
      REQUIRE(std::fabs(xi - yi) <= std::fabs(xi) * 0.0625f + s * std::ldexp(1.0f, -10));
    }
  }
}

TEST_CASE("the FP8 recent-row window forgets rows its ring overwrote", "[kv][fp8]") {
  std::vector<KvComponentSpec> comps = {{"k", DType::FP8_KV, 32, 0}, {"v", DType::FP8_KV, 32, 0}};
  KvCache kv(comps, 8, 64, 1, {}, {}, KvWindow{4, 16});
  auto append_rows = [&](int n) {
    std::vector<int32_t> s(n, 0), p(n);
    for (int i = 0; i < n; ++i) p[i] = kv.seq_length(0) + i;
    kv.begin_batch(n, s.data(), p.data());
    for (int i = 0; i < n; ++i)
      for (int c = 0; c < 2; ++c) kv.window_row(c, 0, p[i])[0] = static_cast<float>(p[i]);
  };
  for (int i = 0; i < 5; ++i) append_rows(8);  // 40 rows; the ring holds 24..39
  CHECK(kv.window_first(0) == 36);
  const KvView& v = *kv.view();
  CHECK(v.window_row(0, 0, 39, 39) != nullptr);
  CHECK(v.window_row(0, 0, 36, 39) != nullptr);
  CHECK(v.window_row(0, 0, 35, 39) == nullptr);  // outside the window: read the page
  CHECK(v.window_row(0, 0, 39, 39)[0] == 39.0f);

  kv.remove(0, 35, -1);  // short tail: rows 31..34 are still in the ring
  CHECK(kv.window_first(0) == 31);
  CHECK(v.window_row(0, 0, 34, 35)[0] == 34.0f);
  kv.remove(0, 20, -1);  // long tail: rows 16..19 were overwritten by 32..35
  CHECK(kv.window_first(0) == 20);
  CHECK(v.window_row(0, 0, 19, 20) == nullptr);
  append_rows(1);  // new rows are exact again
  CHECK(v.window_row(0, 0, 20, 20)[0] == 20.0f);
  kv.clear(0);
  CHECK(kv.window_first(0) == 0);
}

TEST_CASE("a device hot tier keeps bytes through host and disk tiers", "[kv][tiers]") {
  ScratchDir dir;
  int uploads = 0;
  uint32_t made_slots = 0;
  const KvTierFactory factory = [&](uint32_t n, size_t bytes) {
    made_slots = n;
    return std::make_unique<StandInDeviceTier>(n, bytes, &uploads);
  };
  // 256 rows: more than the budgets hold, so a disk tier is made (slots padded to 4 KiB).
  KvBudgets b;
  b.hot_bytes = 1;  // raised to the minimum: two blocks per group and sequence
  b.warm_bytes = 3 * 4096;
  b.disk.dir = dir.path.string();
  KvCache kv(layer_comps(), kPage, 256, 2, b, {}, {}, factory);
  REQUIRE(kv.hot_on_device());
  REQUIRE(kv.view()->on_device);
  REQUIRE(kv.stages_blocks());
  // The device slots: the hot ones plus one staging slot per logical page.
  CHECK(made_slots == kv.stats().tiers[0].capacity_bytes / kv.block_bytes() + kv.total_pages());

  append(kv, 0, 2);
  kv.copy(0, 1);  // sequence 1 shares sequence 0's partly filled tail
  for (int step = 0; step < 9; ++step) {
    append(kv, 0, 3);  // pushes blocks down to host and disk
    check_resident(kv, 0);
  }
  const KvStats st = kv.stats();
  CHECK(st.hot_on_device);
  CHECK(st.tiers[0].blocks > 0);
  CHECK(st.tiers[1].blocks > 0);
  CHECK(st.tiers[2].blocks > 0);
  CHECK(uploads > 0);

  append(kv, 1, 1);  // copies the shared tail (from wherever it went) before writing
  for (int g = 0; g < kGroups; ++g) {
    kv.ensure_resident(g);  // stages sequence 1's blocks into device slots
    for (int c = 2 * g; c < 2 * g + 2; ++c) {
      CHECK(reinterpret_cast<const float*>(kv.view()->row(c, 1, 1))[1] == expected(0, 1, c, 1));
      CHECK(reinterpret_cast<const float*>(kv.view()->row(c, 1, 2))[1] == expected(1, 2, c, 1));
    }
  }

  // Sessions: read_rows reads device blocks back; write_rows writes into them.
  const int32_t n = kv.seq_length(0);
  std::vector<float> rows(static_cast<size_t>(n) * 8);
  kv.read_rows(0, 3, n, reinterpret_cast<uint8_t*>(rows.data()));
  for (int32_t pos = 0; pos < n; ++pos) REQUIRE(rows[pos * 8 + 5] == expected(0, pos, 3, 5));
  kv.clear(1);
  std::vector<int32_t> s(3, 1), p = {0, 1, 2};
  kv.begin_batch(3, s.data(), p.data());
  std::vector<float> fresh(3 * 8, 7.5f);
  kv.write_rows(1, 2, 0, 3, reinterpret_cast<const uint8_t*>(fresh.data()));
  kv.ensure_resident(1);
  CHECK(reinterpret_cast<const float*>(kv.view()->row(2, 1, 2))[4] == 7.5f);
}

TEST_CASE("without a device tier the hot tier stays in host memory", "[kv][tiers]") {
  const KvTierFactory none = [](uint32_t, size_t) { return std::unique_ptr<KvTier>(); };
  KvCache kv(layer_comps(), kPage, 64, 1, {}, {}, {}, none);
  CHECK_FALSE(kv.hot_on_device());
  CHECK_FALSE(kv.view()->on_device);
  CHECK_FALSE(kv.stages_blocks());
  append(kv, 0, 5);
  check_resident(kv, 0);
}

// FP8 pages with a device hot tier: the recent-row window ring lives in the tier's slots
// past its page slots (the device kernels write and read it through the view), and the
// host reaches it only through queued slot copies: read_window/write_window (sessions)
// and copy (a copied sequence gets its ring).
TEST_CASE("the FP8 window ring lives in a device hot tier", "[kv][tiers][fp8]") {
  const std::vector<KvComponentSpec> comps = {{"k", DType::FP8_KV, 32, 0},
                                              {"v", DType::FP8_KV, 32, 0}};
  int uploads = 0;
  uint32_t made_slots = 0;
  StandInDeviceTier* tier = nullptr;
  const KvTierFactory factory = [&](uint32_t n, size_t bytes) {
    made_slots = n;
    auto t = std::make_unique<StandInDeviceTier>(n, bytes, &uploads);
    tier = t.get();
    return t;
  };
  KvCache kv(comps, 4, 64, 2, {}, {}, KvWindow{4, 16}, factory);
  REQUIRE(kv.hot_on_device());
  const KvView& v = *kv.view();
  // Page slots, then per sequence whole slots holding 2 components x 16 rows x 32 floats.
  const size_t ring_bytes = 2 * 16 * 32 * sizeof(float);
  const uint32_t per_seq = static_cast<uint32_t>((ring_bytes + kv.block_bytes() - 1) / kv.block_bytes());
  CHECK(made_slots == kv.total_pages() + 2 * per_seq);
  const uint8_t* first_ring = tier->address_base() + size_t{kv.total_pages()} * kv.block_bytes();
  CHECK(reinterpret_cast<const uint8_t*>(v.comps[0].ring) == first_ring);
  CHECK(reinterpret_cast<const uint8_t*>(v.ring_row(1, 1, 15) + 32) <=
        tier->address_base() + size_t{made_slots} * kv.block_bytes());
  CHECK_THROWS_AS(kv.window_row(0, 0, 0), Error);  // no host pointer into device memory

  // The "kernels" write rows 0..5 of sequence 0 into the ring through the view.
  std::vector<int32_t> s(6, 0), p = {0, 1, 2, 3, 4, 5};
  kv.begin_batch(6, s.data(), p.data());
  for (int32_t pos = 0; pos < 6; ++pos)
    for (int c = 0; c < 2; ++c)
      for (int e = 0; e < 32; ++e) v.ring_row(c, 0, pos)[e] = expected(0, pos, c, e);
  CHECK(kv.window_first(0) == 2);
  std::vector<float> got(4 * 32);
  kv.read_window(0, 1, 2, 4, got.data());
  for (int32_t r = 0; r < 4; ++r)
    for (int e = 0; e < 32; ++e) REQUIRE(got[r * 32 + e] == expected(0, 2 + r, 1, e));

  kv.copy(0, 1);  // the copy's ring, through the host
  CHECK(kv.window_first(1) == 2);
  kv.read_window(1, 0, 2, 4, got.data());
  for (int32_t r = 0; r < 4; ++r)
    for (int e = 0; e < 32; ++e) REQUIRE(got[r * 32 + e] == expected(0, 2 + r, 0, e));

  // Sessions restore rows with write_window; the kernels then read them in place.
  std::vector<float> fresh(2 * 32, 2.5f);
  const int before = uploads;
  kv.write_window(1, 0, 4, 2, fresh.data());
  CHECK(uploads > before);
  CHECK(v.ring_row(0, 1, 5)[31] == 2.5f);
  CHECK(v.ring_row(0, 1, 3)[0] == expected(0, 3, 0, 0));  // its other rows are kept
  CHECK(v.ring_row(0, 0, 5)[31] == expected(0, 5, 0, 31));  // sequence 0's are untouched
  CHECK_THROWS_AS(kv.read_window(0, 0, 0, 17, got.data()), Error);  // more than the ring
}
