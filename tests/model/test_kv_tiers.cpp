// The tiered KV cache, sessions and FP8 pages on the bundled model: where a block lives
// never changes a logit; sessions restore a sequence exactly and refuse what does not
// belong; FP8 pages stay close to f32.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "model_fixture.h"

using namespace v4test;
namespace fs = std::filesystem;

namespace {

// A scratch directory on the build tree's disk (not tmpfs), removed afterwards.
struct ScratchDir {
  fs::path path;
  explicit ScratchDir(const char* name) {
    path = fs::current_path() / (std::string("kvtest-") + name + "-" + std::to_string(getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~ScratchDir() { fs::remove_all(path); }
  size_t n_files() const {
    return static_cast<size_t>(std::distance(fs::directory_iterator(path), fs::directory_iterator()));
  }
};

// Greedy generation from BOS, one token per step; returns every step's logits row.
std::vector<std::vector<float>> greedy_rows(v4_context* c, int32_t n_steps,
                                            std::vector<v4_token>* tokens = nullptr) {
  const v4_model* m = v4_context_model(c);
  const int32_t nv = v4_model_n_vocab(m);
  v4_token t = v4_token_bos(m);
  std::vector<std::vector<float>> rows;
  for (int32_t i = 0; i < n_steps; ++i) {
    v4_batch b{1, &t, nullptr, nullptr, nullptr};
    const v4_status s = v4_decode(c, &b);
    INFO(v4_last_error());
    REQUIRE(s == V4_OK);
    const float* l = v4_get_logits(c, -1);
    rows.emplace_back(l, l + nv);
    if (tokens) tokens->push_back(t);
    t = argmax(l, nv);
  }
  return rows;
}

// Bytes of one block (a layer's K and V page) of the bundled model.
uint64_t block_bytes(v4_model* m, uint32_t page, double bytes_per_value) {
  v4_tensor_info info{};
  for (int32_t i = 0;; ++i) {
    REQUIRE(v4_model_tensor(m, i, &info) == V4_OK);
    if (std::string(info.name) == "blk.0.attn_k.weight") break;
  }
  return static_cast<uint64_t>(2.0 * static_cast<double>(info.ne[1]) * bytes_per_value * page);
}

v4_context_params tiered_params(v4_model* m, const std::string& dir, uint32_t n_ctx) {
  v4_context_params p = ctx_params(1, n_ctx);
  p.kv_page_tokens = 16;
  // Two pages per layer in the device tier and two in the host tier; the rest on disk.
  const uint64_t two_pages_per_layer = 2 * block_bytes(m, 16, 4.0) * v4_model_n_layer(m);
  p.kv_device_bytes = two_pages_per_layer;
  p.kv_host_bytes = two_pages_per_layer;
  p.kv_disk_dir = dir.c_str();
  return p;
}

v4_kv_stats kv_stats(v4_context* c) {
  v4_kv_stats st{};
  st.struct_size = sizeof st;
  REQUIRE(v4_context_kv_stats(c, &st) == V4_OK);
  return st;
}

}  // namespace

TEST_CASE("logits are bitwise identical with the KV cache mostly on disk", "[model][kv][tiers]") {
  ModelHandle m;
  ScratchDir dir("tiers");
  constexpr int32_t kSteps = 400;
  std::vector<v4_token> ram_tokens, disk_tokens;
  std::vector<std::vector<float>> ram, disk;
  {
    v4_context_params p = ctx_params(1, 512);
    p.kv_page_tokens = 16;
    ContextHandle c(m.m, p);
    ram = greedy_rows(c.c, kSteps, &ram_tokens);
    const v4_kv_stats st = kv_stats(c.c);
    CHECK(st.disk.capacity_bytes == 0);
    CHECK(st.block_hits == st.block_reads);
  }
  {
    ContextHandle c(m.m, tiered_params(m.m, dir.path.string(), 512));
    CHECK(dir.n_files() == 1);  // the disk tier's file
    disk = greedy_rows(c.c, kSteps, &disk_tokens);
    const v4_kv_stats st = kv_stats(c.c);
    INFO("device " << st.device.blocks << " host " << st.host.blocks << " disk " << st.disk.blocks);
    CHECK(st.disk.blocks > st.device.blocks + st.host.blocks);  // mostly on disk
    CHECK(st.device.bytes <= st.device.capacity_bytes);
    CHECK(st.host.bytes <= st.host.capacity_bytes);
    CHECK(st.disk_bytes_read > 0);
    CHECK(st.disk_bytes_written > 0);
    CHECK(st.block_hits < st.block_reads);
  }
  CHECK(dir.n_files() == 0);  // removed with the context
  REQUIRE(ram_tokens == disk_tokens);
  for (int32_t i = 0; i < kSteps; ++i) {
    INFO("step " << i);
    REQUIRE(std::memcmp(ram[i].data(), disk[i].data(), ram[i].size() * sizeof(float)) == 0);
  }
}

TEST_CASE("a prompt decoded in one batch through small tiers matches RAM", "[model][kv][tiers]") {
  ModelHandle m;
  ScratchDir dir("prefill");
  std::vector<v4_token> prompt = tokenize(m.m, "Once upon a time there was a little dog who liked to run in the park with his friends every day");
  while (prompt.size() < 200) prompt.insert(prompt.end(), prompt.begin() + 1, prompt.begin() + 20);
  prompt.resize(200);
  std::vector<std::vector<float>> ram, disk;
  {
    v4_context_params p = ctx_params(1, 512);
    p.kv_page_tokens = 16;
    ContextHandle c(m.m, p);
    ram = decode_all(c.c, prompt, 0, prompt.size());
  }
  {
    ContextHandle c(m.m, tiered_params(m.m, dir.path.string(), 512));
    disk = decode_all(c.c, prompt, 0, prompt.size());  // split into hot-sized steps inside
  }
  for (size_t i = 0; i < prompt.size(); ++i)
    REQUIRE(std::memcmp(ram[i].data(), disk[i].data(), ram[i].size() * sizeof(float)) == 0);
}

TEST_CASE("KV budgets that cannot hold the context are refused clearly", "[model][kv][tiers]") {
  ModelHandle m;
  v4_context_params p = ctx_params(1, 512);
  p.kv_device_bytes = 4096;
  p.kv_host_bytes = 4096;  // no disk tier: the context cannot fit
  p.log = quiet_log;
  v4_context* c = nullptr;
  CHECK(v4_context_create(m.m, &p, &c) == V4_ERR_INVALID_ARG);
  CHECK(c == nullptr);
  CHECK(std::string(v4_last_error()).find("--kv-disk") != std::string::npos);

  p.kv_disk_dir = "/nonexistent-dir/for-kv";
  CHECK(v4_context_create(m.m, &p, &c) == V4_ERR_IO);
  CHECK(std::string(v4_last_error()).find("/nonexistent-dir/for-kv") != std::string::npos);
}

TEST_CASE("a saved session continues exactly like the original", "[model][kv][session]") {
  ModelHandle m;
  ScratchDir dir("session");
  const std::string path = (dir.path / "s.v4session").string();
  std::vector<v4_token> toks;
  {
    ContextHandle ref(m.m, ctx_params(1, 256));
    greedy_rows(ref.c, 120, &toks);
  }
  const std::vector<v4_token> head(toks.begin(), toks.begin() + 100);
  std::vector<std::vector<float>> want;
  {
    ContextHandle c(m.m, ctx_params(1, 256));
    decode_all(c.c, head, 0, head.size());
    REQUIRE(v4_session_save(c.c, 0, path.c_str()) == V4_OK);
    want = decode_all(c.c, toks, 100, 20);
  }
  CHECK(dir.n_files() == 1);  // no temporary file left behind
  for (const bool tiered : {false, true}) {
    INFO("tiered " << tiered);
    ContextHandle c(m.m, tiered ? tiered_params(m.m, dir.path.string(), 256) : ctx_params(1, 256));
    std::vector<v4_token> got(300);
    size_t n = 0;
    REQUIRE(v4_session_load(c.c, 0, path.c_str(), got.data(), got.size(), &n) == V4_OK);
    REQUIRE(n == head.size());
    got.resize(n);
    CHECK(got == head);
    CHECK(v4_seq_length(c.c, 0) == 100);
    const auto rows = decode_all(c.c, toks, 100, 20);  // no prefill of the first 100
    for (size_t i = 0; i < rows.size(); ++i)
      REQUIRE(std::memcmp(rows[i].data(), want[i].data(), rows[i].size() * sizeof(float)) == 0);
    if (tiered) {
      // And a session saved from blocks on disk reads back the same.
      const std::string again = (dir.path / "again.v4session").string();
      REQUIRE(v4_seq_remove(c.c, 0, 100, -1) == V4_OK);
      REQUIRE(v4_session_save(c.c, 0, again.c_str()) == V4_OK);
      std::ifstream a(path, std::ios::binary), b(again, std::ios::binary);
      const std::string sa((std::istreambuf_iterator<char>(a)), {}),
          sb((std::istreambuf_iterator<char>(b)), {});
      CHECK(sa == sb);
    }
  }
}

TEST_CASE("sessions that do not belong are refused and change nothing", "[model][kv][session]") {
  ModelHandle m;
  ScratchDir dir("badsession");
  const std::string path = (dir.path / "s.v4session").string();
  std::vector<v4_token> toks;
  {
    ContextHandle c(m.m, ctx_params(1, 256));
    greedy_rows(c.c, 40, &toks);
    REQUIRE(v4_session_save(c.c, 0, path.c_str()) == V4_OK);
  }
  std::ifstream in(path, std::ios::binary);
  const std::string good((std::istreambuf_iterator<char>(in)), {});
  auto write = [&](const std::string& name, const std::string& bytes) {
    const std::string p = (dir.path / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  };
  ContextHandle c(m.m, ctx_params(1, 256));
  decode_all(c.c, toks, 0, 5);  // something the failed loads must not destroy
  auto refused = [&](const std::string& p, v4_status want, const char* words) {
    INFO(p);
    size_t n = 0;
    CHECK(v4_session_load(c.c, 0, p.c_str(), nullptr, 0, &n) == want);
    CHECK(std::string(v4_last_error()).find(words) != std::string::npos);
    CHECK(v4_seq_length(c.c, 0) == 5);
  };
  std::string flipped = good;
  flipped[flipped.size() / 2] ^= 0x10;
  refused(write("flipped", flipped), V4_ERR_FORMAT, "damaged");
  refused(write("truncated", good.substr(0, good.size() - 100)), V4_ERR_FORMAT, "damaged");
  refused(write("short", good.substr(0, 10)), V4_ERR_FORMAT, "truncated");
  refused(write("other", "not a session at all, but long enough to have a header......"),
          V4_ERR_FORMAT, "not a v4engine session");
  refused((dir.path / "missing").string(), V4_ERR_IO, "cannot open");
  {
    v4_context_params p = ctx_params(1, 256);
    p.kv_type = V4_KV_F16;
    ContextHandle f16(m.m, p);
    size_t n = 0;
    CHECK(v4_session_load(f16.c, 0, path.c_str(), nullptr, 0, &n) == V4_ERR_FORMAT);
    CHECK(std::string(v4_last_error()).find("--kv-type") != std::string::npos);
  }
  {
    ModelHandle q8(std::string(V4_TEST_DATA_DIR) + "/stories260K-q8_0.gguf");
    ContextHandle other(q8.m, ctx_params(1, 256));
    size_t n = 0;
    CHECK(v4_session_load(other.c, 0, path.c_str(), nullptr, 0, &n) == V4_ERR_FORMAT);
    CHECK(std::string(v4_last_error()).find("different model") != std::string::npos);
  }
  // Saving where it cannot be written: a clear error and no stray file.
  const std::string bad = (dir.path / "no-such-dir" / "s.v4session").string();
  CHECK(v4_session_save(c.c, 0, bad.c_str()) == V4_ERR_IO);
  CHECK(std::string(v4_last_error()).find("no-such-dir") != std::string::npos);
  CHECK(fs::exists(path));
}

TEST_CASE("FP8 pages follow the f32 greedy sequence under teacher forcing", "[model][kv][fp8]") {
  ModelHandle m;
  std::vector<v4_token> toks;
  std::vector<std::vector<float>> ref;
  {
    ContextHandle c(m.m, ctx_params(1, 512));
    ref = greedy_rows(c.c, 400, &toks);
  }
  v4_context_params p = ctx_params(1, 512);
  p.kv_type = V4_KV_FP8;
  ContextHandle c(m.m, p);
  const auto rows = decode_all(c.c, toks, 0, toks.size());
  const int32_t nv = v4_model_n_vocab(m.m);
  size_t agree = 0;
  for (size_t i = 0; i < rows.size(); ++i)
    agree += argmax(rows[i].data(), nv) == argmax(ref[i].data(), nv);
  const double rate = static_cast<double>(agree) / static_cast<double>(rows.size());
  INFO("top-1 agreement " << rate);
  CHECK(rate >= 0.90);
  CHECK(rate < 1.0 + 1e-9);
}

TEST_CASE("FP8 pages: batch splits, tail removal and sessions keep logits exact", "[model][kv][fp8]") {
  ModelHandle m;
  ScratchDir dir("fp8");
  v4_context_params p = ctx_params(1, 512);
  p.kv_type = V4_KV_FP8;
  std::vector<v4_token> toks;
  {
    ContextHandle ref(m.m, ctx_params(1, 512));
    greedy_rows(ref.c, 300, &toks);
  }
  // One batch (split into ring-sized steps inside) versus one token at a time: the recent
  // rows are read exactly in both, so the logits are identical.
  std::vector<std::vector<float>> whole, single;
  {
    ContextHandle c(m.m, p);
    whole = decode_all(c.c, toks, 0, toks.size());
  }
  {
    ContextHandle c(m.m, p);
    for (size_t i = 0; i < toks.size(); ++i) single.push_back(decode_all(c.c, toks, i, 1)[0]);
    // Dropping a short tail and decoding it again reproduces it.
    REQUIRE(v4_seq_remove(c.c, 0, 250, -1) == V4_OK);
    const auto again = decode_all(c.c, toks, 250, 50);
    for (size_t i = 0; i < again.size(); ++i)
      REQUIRE(std::memcmp(again[i].data(), single[250 + i].data(), again[i].size() * 4) == 0);
    // A session keeps the exact recent rows too.
    REQUIRE(v4_seq_remove(c.c, 0, 200, -1) == V4_OK);
    const std::string path = (dir.path / "fp8.v4session").string();
    REQUIRE(v4_session_save(c.c, 0, path.c_str()) == V4_OK);
    ContextHandle d(m.m, p);
    size_t n = 0;
    REQUIRE(v4_session_load(d.c, 0, path.c_str(), nullptr, 0, &n) == V4_OK);
    REQUIRE(n == 200);
    const auto resumed = decode_all(d.c, toks, 200, 100);
    for (size_t i = 0; i < resumed.size(); ++i)
      REQUIRE(std::memcmp(resumed[i].data(), single[200 + i].data(), resumed[i].size() * 4) == 0);
  }
  for (size_t i = 0; i < toks.size(); ++i) {
    INFO("position " << i);
    REQUIRE(std::memcmp(whole[i].data(), single[i].data(), whole[i].size() * 4) == 0);
  }
}
