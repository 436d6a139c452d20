// Shared helpers for whole-model tests on the bundled stories260K.
#pragma once

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "v4engine.h"

namespace v4test {

inline std::string bundled_model() { return std::string(V4_MODELS_DIR) + "/stories260K-f32.gguf"; }

inline void quiet_log(v4_log_level, const char*, void*) {}

struct ModelHandle {
  v4_model* m = nullptr;
  explicit ModelHandle(const std::string& path = bundled_model()) {
    v4_model_params p = v4_model_default_params();
    p.log = quiet_log;
    const v4_status s = v4_model_load(path.c_str(), &p, &m);
    INFO(v4_last_error());
    REQUIRE(s == V4_OK);
  }
  ~ModelHandle() { v4_model_free(m); }
};

struct ContextHandle {
  v4_context* c = nullptr;
  ContextHandle(v4_model* m, v4_context_params p) {
    p.log = quiet_log;
    const v4_status s = v4_context_create(m, &p, &c);
    INFO(v4_last_error());
    REQUIRE(s == V4_OK);
  }
  ~ContextHandle() { v4_context_free(c); }
};

inline v4_context_params ctx_params(int threads = 1, uint32_t n_ctx = 256) {
  v4_context_params p = v4_context_default_params();
  p.n_threads = threads;
  p.n_ctx = n_ctx;
  p.backend = "cpu";  // these tests pin the CPU path (exact values, no allocation per token)
  return p;
}

inline std::vector<v4_token> tokenize(v4_model* m, const std::string& text, bool bos = true) {
  std::vector<v4_token> ids(text.size() + 8);
  int32_t n = 0;
  REQUIRE(v4_tokenize(m, text.data(), text.size(), bos, false, ids.data(),
                      static_cast<int32_t>(ids.size()), &n) == V4_OK);
  ids.resize(n);
  return ids;
}

// Decodes tokens[first, first + n) on `seq`, asking for logits of every token; returns
// the rows in order.
inline std::vector<std::vector<float>> decode_all(v4_context* c, const std::vector<v4_token>& t,
                                                  size_t first, size_t n, v4_seq_id seq = 0) {
  std::vector<int8_t> want(n, 1);
  std::vector<v4_seq_id> seqs(n, seq);
  v4_batch b{static_cast<int32_t>(n), t.data() + first, nullptr, seqs.data(), want.data()};
  const v4_status s = v4_decode(c, &b);
  INFO(v4_last_error());
  REQUIRE(s == V4_OK);
  std::vector<std::vector<float>> rows;
  const int32_t nv = v4_model_n_vocab(v4_context_model(c));
  for (size_t i = 0; i < n; ++i) {
    const float* l = v4_get_logits(c, static_cast<int32_t>(i));
    REQUIRE(l != nullptr);
    rows.emplace_back(l, l + nv);
  }
  return rows;
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float d = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

inline int argmax(const float* l, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (l[i] > l[best]) best = i;
  return best;
}

inline bool collect_text(v4_token, const char* text, size_t len, void* user) {
  static_cast<std::string*>(user)->append(text, len);
  return true;
}

// The text v4_generate produces for `prompt` (n tokens at temperature temp, seed seed).
inline std::string generate(v4_model* m, const char* prompt, int n, float temp, uint64_t seed,
                            int threads = 1) {
  ContextHandle c(m, ctx_params(threads, 512));
  v4_sampler_params sp = v4_sampler_default_params();
  sp.temperature = temp;
  sp.seed = seed;
  v4_sampler* s = nullptr;
  REQUIRE(v4_sampler_create(m, &sp, &s) == V4_OK);
  std::string out;
  v4_generate_params gp = v4_generate_default_params();
  gp.n_predict = n;
  gp.on_token = collect_text;
  gp.user = &out;
  int32_t produced = 0;
  const v4_status st = v4_generate(c.c, s, prompt, &gp, &produced);
  INFO(v4_last_error());
  REQUIRE(st == V4_OK);
  v4_sampler_free(s);
  return out;
}

}  // namespace v4test
