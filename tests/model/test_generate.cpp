// Generation through the C API: the reference text, seeded sampling, streaming.
#include <fstream>
#include <sstream>

#include "tests/model/model_fixture.h"

using namespace v4test;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string rstrip_newlines(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

}  // namespace

TEST_CASE("greedy generation from BOS reproduces llama2.c's reference text", "[model][generate]") {
  ModelHandle m;
  const std::string expected =
      rstrip_newlines(read_file(std::string(V4_TEST_DATA_DIR) + "/stories260K-expected.txt"));
  REQUIRE(!expected.empty());
  CHECK(rstrip_newlines(generate(m.m, "", 200, 0.0f, 0)) == expected);
  CHECK(rstrip_newlines(generate(m.m, "", 200, 0.0f, 0, 2)) == expected);
}

TEST_CASE("a prompt's greedy continuation is a prefix of the reference", "[model][generate]") {
  ModelHandle m;
  const std::string expected =
      read_file(std::string(V4_TEST_DATA_DIR) + "/stories260K-expected.txt");
  const std::string out = "Once upon a time" + generate(m.m, "Once upon a time", 40, 0.0f, 0);
  CHECK(expected.rfind(out, 0) == 0);
}

TEST_CASE("same seed gives the same text; another seed another text", "[model][generate][sampling]") {
  ModelHandle m;
  const std::string a = generate(m.m, "Once upon a time", 60, 1.0f, 42);
  const std::string b = generate(m.m, "Once upon a time", 60, 1.0f, 42);
  const std::string c = generate(m.m, "Once upon a time", 60, 1.0f, 43);
  const std::string d = generate(m.m, "Once upon a time", 60, 1.0f, 42, 2);
  CHECK(a == b);
  CHECK(a == d);
  CHECK(a != c);
}

TEST_CASE("generation stops when the callback says so", "[model][generate]") {
  ModelHandle m;
  ContextHandle c(m.m, ctx_params());
  v4_sampler* s = nullptr;
  v4_sampler_params sp = v4_sampler_default_params();
  sp.temperature = 0.0f;
  REQUIRE(v4_sampler_create(m.m, &sp, &s) == V4_OK);
  int calls = 0;
  v4_generate_params gp = v4_generate_default_params();
  gp.n_predict = 50;
  gp.on_token = [](v4_token, const char*, size_t, void* u) { return ++*static_cast<int*>(u) < 5; };
  gp.user = &calls;
  int32_t n = 0;
  REQUIRE(v4_generate(c.c, s, "Once", &gp, &n) == V4_OK);
  CHECK(calls == 5);
  CHECK(n == 5);
  v4_sampler_free(s);
}

namespace {
// A user stage that keeps only even token ids.
void keep_even(void* state, v4_token_data_array* a) {
  ++*static_cast<int*>(state);
  size_t n = 0;
  for (size_t i = 0; i < a->size; ++i)
    if (a->data[i].id % 2 == 0) a->data[n++] = a->data[i];
  a->size = n;
  a->sorted = false;
}
}  // namespace

TEST_CASE("user sampler stages run through the C vtable", "[model][generate][sampling]") {
  ModelHandle m;
  ContextHandle c(m.m, ctx_params());
  v4_sampler* s = nullptr;
  REQUIRE(v4_sampler_chain_create(m.m, 7, &s) == V4_OK);
  int calls = 0;
  v4_sampler_iface iface{};
  iface.struct_size = sizeof iface;
  iface.name = "even";
  iface.apply = keep_even;
  REQUIRE(v4_sampler_add_custom(s, &iface, &calls) == V4_OK);
  REQUIRE(v4_sampler_add_top_k(s, 5) == V4_OK);
  REQUIRE(v4_sampler_add_greedy(s) == V4_OK);
  CHECK(v4_sampler_n_stages(s) == 3);
  CHECK(std::string(v4_sampler_stage_name(s, 0)) == "even");
  CHECK(v4_sampler_stage_name(s, 3) == nullptr);
  std::vector<v4_token> toks;
  v4_generate_params gp = v4_generate_default_params();
  gp.n_predict = 20;
  gp.on_token = [](v4_token t, const char*, size_t, void* u) {
    if (t >= 0) static_cast<std::vector<v4_token>*>(u)->push_back(t);
    return true;
  };
  gp.user = &toks;
  REQUIRE(v4_generate(c.c, s, "Once upon a time", &gp, nullptr) == V4_OK);
  REQUIRE(!toks.empty());
  for (v4_token t : toks) CHECK(t % 2 == 0);
  CHECK(calls >= static_cast<int>(toks.size()));
  v4_sampler_free(s);

  // Bad stage parameters are rejected with a status.
  REQUIRE(v4_sampler_chain_create(m.m, 7, &s) == V4_OK);
  CHECK(v4_sampler_add_penalties(s, 64, 0.0f, 0.0f, 0.0f) == V4_ERR_INVALID_ARG);
  v4_logit_bias bad{9999, 1.0f};
  CHECK(v4_sampler_add_logit_bias(s, &bad, 1) == V4_ERR_INVALID_ARG);
  v4_sampler_free(s);
}
