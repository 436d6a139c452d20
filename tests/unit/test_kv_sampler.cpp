// lib/kv page tables and lib/sample.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <vector>

#include "lib/core/error.h"
#include "lib/kv/kv_cache.h"
#include "lib/sample/sampler.h"

using namespace v4;

namespace {
std::vector<KvComponentSpec> one_comp() { return {{"k", DType::F32, 4}}; }

void append(KvCache& kv, int32_t seq, int n) {
  std::vector<int32_t> s(n, seq), p(n);
  for (int i = 0; i < n; ++i) p[i] = kv.seq_length(seq) + i;
  kv.begin_batch(n, s.data(), p.data());
  // Write a recognisable value into each new row: seq * 1000 + pos.
  for (int i = 0; i < n; ++i) {
    float* row = reinterpret_cast<float*>(kv.view()->row(0, seq, p[i]));
    for (int e = 0; e < 4; ++e) row[e] = static_cast<float>(seq * 1000 + p[i]);
  }
}
float value(KvCache& kv, int32_t seq, int32_t pos) {
  return reinterpret_cast<float*>(kv.view()->row(0, seq, pos))[0];
}
}  // namespace

TEST_CASE("KV pages are allocated per page and freed on clear", "[kv]") {
  KvCache kv(one_comp(), 4, 16, 2);
  const uint32_t total = kv.total_pages();
  CHECK(total == 5);  // 16/4 + one spare for the second sequence
  append(kv, 0, 5);
  CHECK(kv.free_pages() == total - 2);
  CHECK(value(kv, 0, 4) == 4.0f);
  kv.clear(0);
  CHECK(kv.free_pages() == total);
  CHECK(kv.seq_length(0) == 0);
}

TEST_CASE("copied sequences share pages until written (copy on write)", "[kv]") {
  KvCache kv(one_comp(), 4, 32, 2);
  append(kv, 0, 6);  // one full page + 2 rows
  const uint32_t before = kv.free_pages();
  kv.copy(0, 1);
  CHECK(kv.free_pages() == before);  // nothing copied yet
  CHECK(value(kv, 1, 5) == 5.0f);
  append(kv, 1, 1);  // writes into the shared tail page: it must be copied first
  CHECK(kv.free_pages() == before - 1);
  CHECK(value(kv, 1, 6) == 1006.0f);
  CHECK(value(kv, 1, 5) == 5.0f);       // copied content
  append(kv, 0, 1);
  CHECK(value(kv, 0, 6) == 6.0f);       // the original's own row
  kv.clear(0);
  CHECK(value(kv, 1, 0) == 0.0f);       // shared full page still alive for seq 1
}

TEST_CASE("batches that do not fit leave the cache unchanged", "[kv]") {
  KvCache kv(one_comp(), 4, 8, 1);
  append(kv, 0, 6);
  std::vector<int32_t> s(3, 0), p = {6, 7, 8};
  CHECK_THROWS_MATCHES(kv.begin_batch(3, s.data(), p.data()), Error,
                       Catch::Predicate<Error>([](const Error& e) { return e.status() == Status::context_full; }));
  CHECK(kv.seq_length(0) == 6);
  p = {7, 8, 9};  // gap
  CHECK_THROWS_AS(kv.begin_batch(3, s.data(), p.data()), Error);
  CHECK(kv.seq_length(0) == 6);
  append(kv, 0, 2);
  kv.rollback_batch();
  CHECK(kv.seq_length(0) == 6);
  CHECK_THROWS_AS(kv.remove(0, 1, 3), Error);  // middle range
  kv.remove(0, 3, -1);
  CHECK(kv.seq_length(0) == 3);
  CHECK_THROWS_AS(KvCache(one_comp(), 3, 8, 1), Error);  // page size not a power of two
}

TEST_CASE("greedy picks the argmax; penalties change it", "[sample]") {
  std::vector<float> logits = {0.1f, 2.0f, 1.9f, -1.0f};
  SamplerSettings s;
  s.temperature = 0.0f;
  Sampler greedy(4, s);
  CHECK(greedy.sample(logits.data()) == 1);
  s.repeat_penalty = 2.0f;
  Sampler pen(4, s);
  pen.accept(1);
  CHECK(pen.sample(logits.data()) == 2);  // 2.0 / 2 = 1.0 < 1.9
}

TEST_CASE("top-k 1 and min-p keep only the best; seeds reproduce", "[sample]") {
  std::vector<float> logits(100);
  for (int i = 0; i < 100; ++i) logits[i] = static_cast<float>(i % 10) * 0.3f + (i == 37 ? 5.0f : 0.0f);
  SamplerSettings s;
  s.temperature = 1.0f;
  s.top_k = 1;
  s.top_p = 1.0f;
  s.min_p = 0.0f;
  Sampler k1(100, s);
  for (int i = 0; i < 20; ++i) CHECK(k1.sample(logits.data()) == 37);

  s.top_k = 0;
  s.min_p = 0.9f;  // only tokens within 90% of the best's probability
  Sampler mp(100, s);
  for (int i = 0; i < 20; ++i) CHECK(mp.sample(logits.data()) == 37);

  s.min_p = 0.0f;
  s.seed = 5;
  Sampler a(100, s), b(100, s);
  std::map<int, int> counts;
  for (int i = 0; i < 200; ++i) {
    const int ta = a.sample(logits.data());
    CHECK(ta == b.sample(logits.data()));
    counts[ta]++;
  }
  CHECK(counts.size() > 5);  // a real distribution, not argmax
  a.reset();
  Sampler c(100, s);
  CHECK(a.sample(logits.data()) == c.sample(logits.data()));
}

TEST_CASE("top-p keeps the smallest set reaching p", "[sample]") {
  std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplerSettings s;
  s.temperature = 1.0f;
  s.top_k = 0;
  s.min_p = 0.0f;
  s.top_p = 0.7f;  // 0.5 + 0.3 reaches it: tokens 0 and 1 only
  s.seed = 9;
  Sampler smp(4, s);
  std::map<int, int> counts;
  for (int i = 0; i < 300; ++i) counts[smp.sample(logits.data())]++;
  CHECK(counts.size() == 2);
  CHECK(counts.count(0) == 1);
  CHECK(counts.count(1) == 1);
}

TEST_CASE("invalid sampler settings are rejected", "[sample]") {
  SamplerSettings s;
  s.repeat_penalty = 0.0f;
  CHECK_THROWS_AS(Sampler(10, s), Error);
  s.repeat_penalty = 1.0f;
  CHECK_THROWS_AS(Sampler(0, s), Error);
}
