// Loading: hyper-parameters that contradict the tensors, metadata access, vocab-only.
#include <cstdio>
#include <string>

#include "lib/model/gguf.h"
#include "tests/model/model_fixture.h"

using namespace v4test;

namespace {

// Rewrites the bundled model with `edit` applied to a Writer holding all of it.
// Tensors named `skip` are left out (the edit may add its own version).
template <class Edit>
std::string rewritten_model(const std::string& name, Edit edit, const std::string& skip = "") {
  auto f = v4::gguf::File::open(bundled_model());
  v4::gguf::Writer w;
  for (const auto& kv : f->kvs()) w.copy_kv(kv);
  for (const auto& t : f->tensors())
    if (t.name != skip)
      w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes);
  edit(w);
  const std::string path = std::string(V4_BUILD_TEST_DIR) + "/" + name;
  w.write_file(path);
  return path;
}

v4_status try_load(const std::string& path, std::string* msg) {
  v4_model* m = nullptr;
  v4_model_params p = v4_model_default_params();
  p.log = quiet_log;
  const v4_status s = v4_model_load(path.c_str(), &p, &m);
  *msg = v4_last_error();
  v4_model_free(m);
  return s;
}

}  // namespace

TEST_CASE("the bundled model reports its hyper-parameters", "[model][load]") {
  ModelHandle m;
  CHECK(std::string(v4_model_arch(m.m)) == "llama");
  CHECK(v4_model_n_vocab(m.m) == 512);
  CHECK(v4_model_n_embd(m.m) == 64);
  CHECK(v4_model_n_layer(m.m) == 5);
  CHECK(v4_model_n_ctx_train(m.m) == 512);
  CHECK(v4_model_n_tensors(m.m) == 48);
  CHECK(v4_token_bos(m.m) == 1);
  CHECK(v4_token_eos(m.m) == 2);
  CHECK(v4_token_is_eog(m.m, 2));
  CHECK_FALSE(v4_token_is_eog(m.m, 1));
  CHECK(v4_model_chat_template(m.m) == nullptr);
  char buf[64];
  size_t n = 0;
  REQUIRE(v4_model_meta_value(m.m, "llama.block_count", buf, sizeof buf, &n) == V4_OK);
  CHECK(std::string(buf) == "5");
  CHECK(v4_model_meta_value(m.m, "no.such.key", buf, sizeof buf, &n) == V4_ERR_INVALID_ARG);
  CHECK(v4_model_meta_value(m.m, "general.architecture", buf, 2, &n) == V4_ERR_BUFFER_TOO_SMALL);
  CHECK(n == 5);
  CHECK(v4_model_check(m.m) == V4_OK);
}

TEST_CASE("hyper-parameters inconsistent with the tensors are rejected", "[model][load][hostile]") {
  std::string msg;
  SECTION("n_head does not divide n_embd") {
    auto p = rewritten_model("bad_heads.gguf", [](auto& w) { w.set_u32("llama.attention.head_count", 7); });
    CHECK(try_load(p, &msg) == V4_ERR_FORMAT);
    CHECK(msg.find("head_count") != std::string::npos);
  }
  SECTION("n_head_kv does not divide n_head") {
    auto p = rewritten_model("bad_kv.gguf", [](auto& w) { w.set_u32("llama.attention.head_count_kv", 3); });
    CHECK(try_load(p, &msg) == V4_ERR_FORMAT);
  }
  SECTION("feed-forward length differs from the tensors") {
    auto p = rewritten_model("bad_ff.gguf", [](auto& w) { w.set_u32("llama.feed_forward_length", 100); });
    CHECK(try_load(p, &msg) == V4_ERR_FORMAT);
    CHECK(msg.find("ffn_gate") != std::string::npos);
  }
  SECTION("more layers than tensors") {
    auto p = rewritten_model("bad_layers.gguf", [](auto& w) { w.set_u32("llama.block_count", 6); });
    CHECK(try_load(p, &msg) == V4_ERR_FORMAT);
    CHECK(msg.find("blk.5") != std::string::npos);
  }
  SECTION("zero heads") {
    auto p = rewritten_model("zero_heads.gguf", [](auto& w) { w.set_u32("llama.attention.head_count", 0); });
    CHECK(try_load(p, &msg) == V4_ERR_FORMAT);
  }
  SECTION("a hyper-parameter of the wrong type") {
    auto p = rewritten_model("str_layers.gguf", [](auto& w) { w.set_string("llama.block_count", "five"); });
    CHECK(try_load(p, &msg) == V4_ERR_FORMAT);
    CHECK(msg.find("llama.block_count") != std::string::npos);
  }
  SECTION("an unknown architecture") {
    auto p = rewritten_model("arch.gguf", [](auto& w) { w.set_string("general.architecture", "nosuch"); });
    CHECK(try_load(p, &msg) == V4_ERR_UNSUPPORTED);
    CHECK(msg.find("llama") != std::string::npos);
  }
  SECTION("a NaN weight is found by the check") {
    auto f = v4::gguf::File::open(bundled_model());
    const auto* t = f->find_tensor("blk.1.ffn_up.weight");
    std::vector<float> data(reinterpret_cast<const float*>(t->data),
                            reinterpret_cast<const float*>(t->data) + t->n_elements());
    data[77] = std::nanf("");
    auto p = rewritten_model("nan.gguf", [&](auto& w) {
      w.add_tensor("blk.1.ffn_up.weight", v4::DType::F32, {t->ne[0], t->ne[1]}, data.data(), t->nbytes);
    }, "blk.1.ffn_up.weight");
    ModelHandle m(p);
    CHECK(v4_model_check(m.m) == V4_ERR_FORMAT);
    CHECK(std::string(v4_last_error()).find("blk.1.ffn_up.weight") != std::string::npos);
  }
}

TEST_CASE("a missing file and a vocab-only file", "[model][load]") {
  std::string msg;
  CHECK(try_load("/nonexistent/model.gguf", &msg) == V4_ERR_IO);
  CHECK(msg.find("/nonexistent/model.gguf") != std::string::npos);

  const std::string vocab = std::string(V4_TEST_DATA_DIR) + "/ggml-vocab-llama-spm.gguf";
  CHECK(try_load(vocab, &msg) == V4_ERR_FORMAT);  // no tensors: not a runnable model
  v4_model_params p = v4_model_default_params();
  p.vocab_only = true;
  p.log = quiet_log;
  v4_model* m = nullptr;
  REQUIRE(v4_model_load(vocab.c_str(), &p, &m) == V4_OK);
  CHECK(v4_model_n_vocab(m) == 32000);
  v4_context* c = nullptr;
  CHECK(v4_context_create(m, nullptr, &c) == V4_ERR_INVALID_ARG);
  v4_model_free(m);
}

TEST_CASE("the load progress callback can cancel", "[model][load]") {
  v4_model_params p = v4_model_default_params();
  p.log = quiet_log;
  int calls = 0;
  p.progress = [](float, void* u) { return ++*static_cast<int*>(u) < 3; };
  p.progress_user = &calls;
  v4_model* m = nullptr;
  CHECK(v4_model_load(bundled_model().c_str(), &p, &m) == V4_CANCELLED);
  CHECK(m == nullptr);
  CHECK(calls == 3);
}

TEST_CASE("every load mode computes the same logits", "[model][load]") {
  const std::vector<v4_token> toks = {1, 403, 407, 261, 378};
  std::vector<std::vector<float>> ref;
  for (v4_load_mode mode : {V4_LOAD_MMAP, V4_LOAD_READ, V4_LOAD_AUTO, V4_LOAD_MLOCK}) {
    v4_model_params p = v4_model_default_params();
    p.log = quiet_log;
    p.load_mode = mode;
    v4_model* m = nullptr;
    const v4_status s = v4_model_load(bundled_model().c_str(), &p, &m);
    if (mode == V4_LOAD_MLOCK && s == V4_ERR_OOM) {
      WARN("mlock refused here (RLIMIT_MEMLOCK): " << v4_last_error());
      continue;
    }
    INFO(v4_load_mode_name(mode) << ": " << v4_last_error());
    REQUIRE(s == V4_OK);
    CHECK(v4_model_load_mode(m) == (mode == V4_LOAD_AUTO ? V4_LOAD_READ : mode));
    {
      ContextHandle c(m, ctx_params());
      auto rows = decode_all(c.c, toks, 0, toks.size());
      if (ref.empty()) ref = rows;
      for (size_t i = 0; i < rows.size(); ++i) CHECK(rows[i] == ref[i]);
    }
    v4_model_free(m);
  }
  v4_model_params p = v4_model_default_params();
  p.load_mode = static_cast<v4_load_mode>(9);
  v4_model* m = nullptr;
  CHECK(v4_model_load(bundled_model().c_str(), &p, &m) == V4_ERR_INVALID_ARG);
}
