// Proves that decoding allocates nothing per token: global operator new/delete are
// replaced and malloc/calloc/realloc are interposed (glibc's __libc_* do the work), and
// every allocation made while `g_counting` is set is counted.
#include <atomic>
#include <cstdlib>
#include <new>

#include "tests/model/model_fixture.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void __libc_free(void*);
}

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocs{0};
void note() {
  if (g_counting.load(std::memory_order_relaxed)) g_allocs.fetch_add(1);
}
}  // namespace

extern "C" void* malloc(size_t n) {
  note();
  return __libc_malloc(n);
}
extern "C" void* calloc(size_t a, size_t b) {
  note();
  return __libc_calloc(a, b);
}
extern "C" void* realloc(void* p, size_t n) {
  note();
  return __libc_realloc(p, n);
}
extern "C" void free(void* p) { __libc_free(p); }

void* operator new(size_t n) {
  note();
  void* p = __libc_malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, size_t) noexcept { __libc_free(p); }

using namespace v4test;

TEST_CASE("the counter sees allocations", "[alloc]") {
  g_allocs = 0;
  g_counting = true;
  auto* v = new std::vector<int>(100);
  void* p = std::malloc(10);
  g_counting = false;
  delete v;
  std::free(p);
  CHECK(g_allocs.load() >= 3);
}

TEST_CASE("decoding 100 tokens allocates nothing per token", "[alloc][model]") {
  ModelHandle m;
  for (int threads : {1, 2}) {
    ContextHandle c(m.m, ctx_params(threads, 256));
    v4_sampler_params sp = v4_sampler_default_params();
    sp.temperature = 1.0f;
    sp.seed = 7;
    sp.repeat_penalty = 1.1f;
    v4_sampler* s = nullptr;
    REQUIRE(v4_sampler_create(m.m, &sp, &s) == V4_OK);
    v4_token t = v4_token_bos(m.m);
    v4_batch b{1, &t, nullptr, nullptr, nullptr};
    // First step outside the count: it builds and plans the one-token graph.
    REQUIRE(v4_decode(c.c, &b) == V4_OK);
    REQUIRE(v4_sampler_sample(s, c.c, -1, &t) == V4_OK);

    g_allocs = 0;
    g_counting = true;
    int ok = 0;
    for (int i = 0; i < 100; ++i) {  // crosses several 32-token KV pages
      ok += v4_decode(c.c, &b) == V4_OK;
      ok += v4_sampler_sample(s, c.c, -1, &t) == V4_OK;
      ok += v4_get_logits(c.c, -1) != nullptr;
    }
    g_counting = false;
    INFO("threads " << threads);
    CHECK(ok == 300);
    CHECK(g_allocs.load() == 0);
    v4_sampler_free(s);
  }
}
