// Whole-model behaviour of decode on the bundled stories260K: batching, threads,
// sequences, limits and aborts.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "tests/model/model_fixture.h"

using namespace v4test;

namespace {
const char* kPrompt = "Once upon a time, there was a little cat named Tom. He liked to play with";
}

TEST_CASE("prefill equals token-by-token decode for any batch split", "[model][decode]") {
  // Bitwise: every kernel computes a token's row the same way whatever the batch (attention
  // tiles tokens, matmuls tile columns), so a split never changes a logit.
  ModelHandle m;
  const auto toks = tokenize(m.m, kPrompt);
  REQUIRE(toks.size() > 10);
  for (v4_kv_type kv : {V4_KV_F32, V4_KV_F16, V4_KV_BF16}) {
    v4_context_params p = ctx_params();
    p.kv_type = kv;
    ContextHandle whole(m.m, p);
    const auto ref = decode_all(whole.c, toks, 0, toks.size());
    for (size_t split : {size_t{1}, size_t{3}, size_t{5}, size_t{7}}) {
      ContextHandle c(m.m, p);
      std::vector<std::vector<float>> rows;
      for (size_t i = 0; i < toks.size(); i += split) {
        const auto part = decode_all(c.c, toks, i, std::min(split, toks.size() - i));
        rows.insert(rows.end(), part.begin(), part.end());
      }
      REQUIRE(rows.size() == ref.size());
      for (size_t i = 0; i < rows.size(); ++i) {
        INFO("kv type " << kv << " split " << split << " token " << i);
        CHECK(max_abs_diff(rows[i], ref[i]) == 0.0f);
      }
    }
  }
}

TEST_CASE("n_batch smaller than the batch splits it without changing results", "[model][decode]") {
  ModelHandle m;
  const auto toks = tokenize(m.m, kPrompt);
  ContextHandle big(m.m, ctx_params());
  v4_context_params p = ctx_params();
  p.n_batch = 4;
  ContextHandle small(m.m, p);
  const auto a = decode_all(big.c, toks, 0, toks.size());
  const auto b = decode_all(small.c, toks, 0, toks.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(max_abs_diff(a[i], b[i]) <= 1e-5f);
}

TEST_CASE("1 and 2 threads give bit-identical logits", "[model][decode][threads]") {
  ModelHandle m;
  const auto toks = tokenize(m.m, kPrompt);
  std::vector<std::vector<float>> runs[2];
  for (int threads : {1, 2}) {
    ContextHandle c(m.m, ctx_params(threads));
    auto rows = decode_all(c.c, toks, 0, toks.size());
    // Then 20 greedy one-token steps.
    v4_token t = argmax(rows.back().data(), v4_model_n_vocab(m.m));
    for (int i = 0; i < 20; ++i) {
      std::vector<v4_token> one{t};
      auto r = decode_all(c.c, one, 0, 1);
      rows.push_back(r[0]);
      t = argmax(r[0].data(), v4_model_n_vocab(m.m));
    }
    runs[threads - 1] = rows;
  }
  REQUIRE(runs[0].size() == runs[1].size());
  for (size_t i = 0; i < runs[0].size(); ++i)
    CHECK(std::memcmp(runs[0][i].data(), runs[1][i].data(), runs[0][i].size() * 4) == 0);
}

TEST_CASE("sequences in one batch do not see each other", "[model][decode][seq]") {
  ModelHandle m;
  const auto a = tokenize(m.m, "The dog ran to the park");
  const auto b = tokenize(m.m, "Lily had a red ball and");
  v4_context_params p = ctx_params();
  p.n_seq_max = 2;
  ContextHandle alone_a(m.m, p), alone_b(m.m, p), mixed(m.m, p);
  const auto ra = decode_all(alone_a.c, a, 0, a.size(), 0);
  const auto rb = decode_all(alone_b.c, b, 0, b.size(), 1);

  // Interleave both prompts token by token in one batch.
  std::vector<v4_token> toks;
  std::vector<v4_seq_id> seqs;
  std::vector<int8_t> want;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    if (i < a.size()) { toks.push_back(a[i]); seqs.push_back(0); want.push_back(1); }
    if (i < b.size()) { toks.push_back(b[i]); seqs.push_back(1); want.push_back(1); }
  }
  v4_batch batch{static_cast<int32_t>(toks.size()), toks.data(), nullptr, seqs.data(), want.data()};
  REQUIRE(v4_decode(mixed.c, &batch) == V4_OK);
  size_t ia = 0, ib = 0;
  const int nv = v4_model_n_vocab(m.m);
  for (size_t i = 0; i < toks.size(); ++i) {
    std::vector<float> row(v4_get_logits(mixed.c, static_cast<int32_t>(i)),
                           v4_get_logits(mixed.c, static_cast<int32_t>(i)) + nv);
    const auto& ref = seqs[i] == 0 ? ra[ia++] : rb[ib++];
    CHECK(max_abs_diff(row, ref) <= 1e-5f);
  }
  CHECK(v4_seq_length(mixed.c, 0) == static_cast<int32_t>(a.size()));
  CHECK(v4_seq_length(mixed.c, 1) == static_cast<int32_t>(b.size()));
}

TEST_CASE("a copied sequence continues like the original", "[model][decode][seq]") {
  ModelHandle m;
  // Longer than one page (32 tokens) so both full and partial pages are shared.
  const auto prefix = tokenize(m.m, std::string(kPrompt) + " his friends in the big green park every day.");
  REQUIRE(prefix.size() > 32);
  const auto next = tokenize(m.m, " The sun", false);
  v4_context_params p = ctx_params();
  p.n_seq_max = 2;
  ContextHandle c(m.m, p), fresh(m.m, p);
  decode_all(c.c, prefix, 0, prefix.size(), 0);
  REQUIRE(v4_seq_copy(c.c, 0, 1) == V4_OK);
  CHECK(v4_seq_length(c.c, 1) == static_cast<int32_t>(prefix.size()));
  // Extend the copy; then the original must still behave as before the copy.
  const auto on_copy = decode_all(c.c, next, 0, next.size(), 1);
  const auto on_orig = decode_all(c.c, next, 0, next.size(), 0);

  std::vector<v4_token> all = prefix;
  all.insert(all.end(), next.begin(), next.end());
  const auto ref = decode_all(fresh.c, all, 0, all.size(), 0);
  for (size_t i = 0; i < next.size(); ++i) {
    CHECK(max_abs_diff(on_copy[i], ref[prefix.size() + i]) <= 1e-5f);
    CHECK(max_abs_diff(on_orig[i], ref[prefix.size() + i]) <= 1e-5f);
  }
}

TEST_CASE("removing the tail and decoding again reproduces the logits", "[model][decode][seq]") {
  ModelHandle m;
  const auto toks = tokenize(m.m, kPrompt);
  ContextHandle c(m.m, ctx_params());
  const auto first = decode_all(c.c, toks, 0, toks.size());
  const size_t keep = 5;
  REQUIRE(v4_seq_remove(c.c, 0, static_cast<v4_pos>(keep), -1) == V4_OK);
  CHECK(v4_seq_length(c.c, 0) == static_cast<int32_t>(keep));
  const auto again = decode_all(c.c, toks, keep, toks.size() - keep);
  for (size_t i = 0; i < again.size(); ++i) CHECK(max_abs_diff(again[i], first[keep + i]) <= 1e-5f);

  // A middle range cannot be removed from this cache.
  CHECK(v4_seq_remove(c.c, 0, 2, 4) == V4_ERR_UNSUPPORTED);
  CHECK(std::string(v4_last_error()).find("middle") != std::string::npos);
  CHECK(v4_seq_length(c.c, 0) == static_cast<int32_t>(toks.size()));
  REQUIRE(v4_seq_clear(c.c, 0) == V4_OK);
  CHECK(v4_seq_length(c.c, 0) == 0);
}

TEST_CASE("running past the context is a status, and the cache is unchanged", "[model][decode][limits]") {
  ModelHandle m;
  v4_context_params p = ctx_params(1, 16);
  p.kv_page_tokens = 4;
  ContextHandle c(m.m, p);
  std::vector<v4_token> toks(20, 100);
  toks[0] = 1;
  decode_all(c.c, toks, 0, 12);
  // 12 + 8 > 16: rejected as a whole.
  std::vector<int8_t> want(8, 0);
  v4_batch b{8, toks.data() + 12, nullptr, nullptr, nullptr};
  CHECK(v4_decode(c.c, &b) == V4_ERR_CONTEXT_FULL);
  CHECK(std::string(v4_last_error()).find("n_ctx") != std::string::npos);
  CHECK(v4_seq_length(c.c, 0) == 12);
  b.n_tokens = 4;
  CHECK(v4_decode(c.c, &b) == V4_OK);
  CHECK(v4_seq_length(c.c, 0) == 16);
  b.n_tokens = 1;
  CHECK(v4_decode(c.c, &b) == V4_ERR_CONTEXT_FULL);
  CHECK(v4_seq_length(c.c, 0) == 16);
}

TEST_CASE("bad batches are rejected with a message", "[model][decode][limits]") {
  ModelHandle m;
  ContextHandle c(m.m, ctx_params());
  v4_token bad = 512;
  v4_batch b{1, &bad, nullptr, nullptr, nullptr};
  CHECK(v4_decode(c.c, &b) == V4_ERR_INVALID_ARG);
  CHECK(std::string(v4_last_error()).find("512") != std::string::npos);
  v4_token ok = 1;
  v4_pos pos = 5;  // does not continue an empty sequence
  v4_batch gap{1, &ok, &pos, nullptr, nullptr};
  CHECK(v4_decode(c.c, &gap) == V4_ERR_INVALID_ARG);
  v4_seq_id seq = 3;  // only sequence 0 exists
  v4_batch badseq{1, &ok, nullptr, &seq, nullptr};
  CHECK(v4_decode(c.c, &badseq) == V4_ERR_INVALID_ARG);
  v4_batch empty{0, &ok, nullptr, nullptr, nullptr};
  CHECK(v4_decode(c.c, &empty) == V4_ERR_INVALID_ARG);
  CHECK(v4_seq_length(c.c, 0) == 0);
  CHECK(v4_get_logits(c.c, 0) == nullptr);
}

namespace {
struct AbortState {
  int calls = 0;
  int abort_after = 0;
};
bool abort_cb(void* user) {
  auto* s = static_cast<AbortState*>(user);
  return ++s->calls > s->abort_after;
}
}  // namespace

TEST_CASE("the abort callback stops a decode and leaves the cache as it was", "[model][decode][abort]") {
  ModelHandle m;
  AbortState st;
  v4_context_params p = ctx_params();
  p.abort_callback = abort_cb;
  p.abort_user = &st;
  ContextHandle c(m.m, p);
  const auto toks = tokenize(m.m, kPrompt);
  st.abort_after = 1000000;
  decode_all(c.c, toks, 0, 4);
  st.calls = 0;
  st.abort_after = 10;  // stop in the middle of the graph
  v4_batch b{static_cast<int32_t>(toks.size() - 4), toks.data() + 4, nullptr, nullptr, nullptr};
  CHECK(v4_decode(c.c, &b) == V4_ABORTED);
  CHECK(v4_seq_length(c.c, 0) == 4);
  st.abort_after = 1000000;
  CHECK(v4_decode(c.c, &b) == V4_OK);
  CHECK(v4_seq_length(c.c, 0) == static_cast<int32_t>(toks.size()));
}

TEST_CASE("f16 KV pages stay close to f32", "[model][decode][kv]") {
  ModelHandle m;
  const auto toks = tokenize(m.m, kPrompt);
  ContextHandle c32(m.m, ctx_params());
  v4_context_params p = ctx_params();
  p.kv_type = V4_KV_F16;
  ContextHandle c16(m.m, p);
  const auto a = decode_all(c32.c, toks, 0, toks.size());
  const auto b = decode_all(c16.c, toks, 0, toks.size());
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, max_abs_diff(a[i], b[i]));
  CHECK(worst > 0.0f);   // the rows really were stored at lower precision
  CHECK(worst < 0.05f);
}

TEST_CASE("a shared thread pool serves two contexts", "[model][decode][threads]") {
  ModelHandle m;
  v4_threadpool* pool = nullptr;
  REQUIRE(v4_threadpool_create(2, &pool) == V4_OK);
  {
    v4_context_params p = ctx_params();
    p.threadpool = pool;
    ContextHandle a(m.m, p), b(m.m, p), ref(m.m, ctx_params(1));
    const auto toks = tokenize(m.m, kPrompt);
    const auto ra = decode_all(a.c, toks, 0, toks.size());
    const auto rb = decode_all(b.c, toks, 0, toks.size());
    const auto rr = decode_all(ref.c, toks, 0, toks.size());
    for (size_t i = 0; i < ra.size(); ++i) {
      CHECK(std::memcmp(ra[i].data(), rr[i].data(), rr[i].size() * 4) == 0);
      CHECK(std::memcmp(rb[i].data(), rr[i].data(), rr[i].size() * 4) == 0);
    }
  }
  v4_threadpool_free(pool);
}
