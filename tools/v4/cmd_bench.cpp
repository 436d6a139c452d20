// v4 bench: prompt-processing and generation speed of a model, set against the machine's
// memory bandwidth (docs/BENCHMARKS.md explains the method and every field).
//
//  - pp<P>: one v4_decode of P random tokens (logits of the last only).
//  - tg<N>: N one-token decodes, each token the argmax of the previous logits (no sampler).
//  - Each of -r repetitions starts from a fresh sequence (or, with --depth D, from the D
//    tokens filled once before the repetitions; the tail written by a test is removed).
//    One untimed warm-up run of each test comes first (graph building and planning).
//  - membw: the read bandwidth probe (membw.h) with the same thread count (and with one
//    thread, to catch a machine whose multi-thread figure is implausible).
//  - Batch-1 decoding reads every weight once per token, so tokens/s <= bandwidth / bytes per
//    token: the roofline. A tg result reports the fraction of it achieved.
//
// `--tokenize` measures the tokenizer instead: 1 MiB of text (a file repeated) through
// v4_tokenize.
#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "lib/kv/disk_bench.h"
#include "membw.h"

namespace v4::cli {

namespace {

struct BenchOptions {
  std::string model;
  int32_t n_prompt = 512;
  int32_t n_gen = 128;
  int32_t reps = 3;
  int32_t depth = 0;
  uint64_t seed = 42;
  bool json = false;
  bool membw = false;
  bool tokenize = false;
  bool no_warmup = false;
  bool verbose = false;
  std::string text_file;
  int32_t membw_mib = 1024;
  int32_t kv_disk_mib = 1024;
  std::string kv_disk_block = "128K";
  ContextOptions context;
};

// ---- Output helpers --------------------------------------------------------------------------

std::string json_escape(const std::string& s) {
  std::string o;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", c);
      o += b;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

// A JSON object built field by field, printed on one line.
class JsonLine {
 public:
  JsonLine& str(const char* k, const std::string& v) {
    return raw(k, "\"" + json_escape(v) + "\"");
  }
  JsonLine& num(const char* k, double v, int digits = 6) {
    if (!std::isfinite(v)) return raw(k, "null");
    char b[64];
    std::snprintf(b, sizeof b, "%.*g", digits, v);
    return raw(k, b);
  }
  JsonLine& integer(const char* k, int64_t v) { return raw(k, std::to_string(v)); }
  JsonLine& list(const char* k, const std::vector<double>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) {
      char b[64];
      std::snprintf(b, sizeof b, "%s%.6g", i ? ", " : "", v[i]);
      s += b;
    }
    return raw(k, s + "]");
  }
  JsonLine& strings(const char* k, const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", \"" : "\"") + json_escape(v[i]) + "\"";
    return raw(k, s + "]");
  }
  void print() const { std::printf("{%s}\n", body_.c_str()); }

 private:
  JsonLine& raw(const char* k, const std::string& v) {
    if (!body_.empty()) body_ += ", ";
    body_ += "\"" + std::string(k) + "\": " + v;
    return *this;
  }
  std::string body_;
};

// -1 (unknown) as NaN, which JsonLine prints as null.
double unknown_as_nan(double v) { return v < 0 ? std::nan("") : v; }

struct Stats {
  double mean = 0, sd = 0;
};
Stats stats_of(const std::vector<double>& v) {
  Stats s;
  if (v.empty()) return s;
  for (double x : v) s.mean += x;
  s.mean /= static_cast<double>(v.size());
  if (v.size() > 1) {
    double q = 0;
    for (double x : v) q += (x - s.mean) * (x - s.mean);
    s.sd = std::sqrt(q / static_cast<double>(v.size() - 1));
  }
  return s;
}

std::string human_count(uint64_t n) {
  char buf[32];
  if (n >= 1000000000ull)
    std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  else if (n >= 1000000ull)
    std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.1f K", n / 1e3);
  return buf;
}

std::string base_name(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

// ---- Memory bandwidth ------------------------------------------------------------------------

// Other processes using more than this share of the CPUs during a measurement flag it.
constexpr double kBusyFraction = 0.10;
// Bandwidth with several threads below this multiple of one thread's flags the probe.
constexpr double kScalingFloor = 1.3;

struct Bandwidth {
  MembwResult at_threads;  // with the benchmark's thread count
  MembwResult one;         // with one thread (== at_threads when threads == 1)
  double used_gbs = 0;     // what the roofline divides by: never below the 1-thread figure
  double others_cpu = -1;  // share of the CPUs other processes used during the probe
  std::vector<std::string> flags;
};

Bandwidth probe_bandwidth(int threads, size_t bytes) {
  Bandwidth b;
  const CpuSample c0 = cpu_sample();
  b.at_threads = measure_read_bandwidth(threads, bytes);
  b.others_cpu = others_cpu_fraction(c0, cpu_sample());
  b.one = threads > 1 ? measure_read_bandwidth(1, bytes) : b.at_threads;
  b.used_gbs = std::max(b.at_threads.gbs, b.one.gbs);
  char msg[400];
  if (b.at_threads.gbs < 1.0) {
    std::snprintf(msg, sizeof msg,
                  "membw implausibly low: %.2f GB/s with %d threads (is the machine busy?)",
                  b.at_threads.gbs, threads);
    b.flags.push_back(msg);
  }
  if (threads > 1 && b.at_threads.gbs < b.one.gbs) {
    std::snprintf(msg, sizeof msg,
                  "membw with %d threads (%.1f GB/s) is below the 1-thread figure (%.1f GB/s): "
                  "another process competes for the cores or memory; the roofline uses %.1f GB/s",
                  threads, b.at_threads.gbs, b.one.gbs, b.used_gbs);
    b.flags.push_back(msg);
  }
  // On a machine whose memory system is shared or throttled the extra threads add little;
  // measured on the 2-core VM this project is developed on: 2 threads read 1.9-2.1x one
  // thread in its fast mode (50-60 GB/s) and 1.1-1.2x in its slow one (31-34 GB/s).
  if (threads > 1 && b.at_threads.gbs >= b.one.gbs && b.at_threads.gbs < kScalingFloor * b.one.gbs) {
    std::snprintf(msg, sizeof msg,
                  "membw with %d threads (%.1f GB/s) is only %.2fx the 1-thread figure (%.1f GB/s): "
                  "the memory system looks shared or throttled now, so roofline fractions against "
                  "it read high; compare runs made in the same state",
                  threads, b.at_threads.gbs, b.at_threads.gbs / b.one.gbs, b.one.gbs);
    b.flags.push_back(msg);
  }
  if (b.others_cpu >= kBusyFraction) {
    std::snprintf(msg, sizeof msg,
                  "machine busy: other processes used %.0f%% of the CPUs during the bandwidth "
                  "probe",
                  100.0 * b.others_cpu);
    b.flags.push_back(msg);
  }
  return b;
}

void print_membw(const Bandwidth& b, bool json) {
  if (json) {
    JsonLine j;
    j.str("test", "membw")
        .integer("threads", b.at_threads.threads)
        .num("membw_gbs", b.at_threads.gbs, 4)
        .num("membw_mean_gbs", b.at_threads.mean_gbs, 4)
        .num("membw_1t_gbs", b.one.gbs, 4)
        .integer("bytes", static_cast<int64_t>(b.at_threads.bytes))
        .integer("passes", b.at_threads.passes)
        .str("isa", b.at_threads.isa)
        .num("others_cpu", unknown_as_nan(b.others_cpu), 3)
        .strings("flags", b.flags);
    j.print();
  } else {
    std::printf("membw: %.1f GB/s with %d thread%s", b.at_threads.gbs, b.at_threads.threads,
                b.at_threads.threads == 1 ? "" : "s");
    if (b.at_threads.threads > 1) std::printf(" (1 thread: %.1f GB/s)", b.one.gbs);
    std::printf(", %s read-sum, best of %d passes over %s\n", b.at_threads.isa, b.at_threads.passes,
                human_bytes(b.at_threads.bytes).c_str());
  }
  for (const std::string& f : b.flags) warn(f);
  std::fflush(stdout);
}

// The disk tier's read throughput in the --kv-disk directory (compare with bench/fio_read.sh
// on the same filesystem in the same run).
int print_kv_disk(const BenchOptions& o) {
  uint64_t block = 0;
  if (!parse_size(o.kv_disk_block, &block) || block == 0 || block > (64u << 20))
    return fail("bad --kv-disk-block '" + o.kv_disk_block + "' (up to 64M)", kExitUsage);
  v4::DiskReadBench r;
  try {
    r = v4::bench_disk_reads(o.context.kv.disk_dir, static_cast<size_t>(block),
                             static_cast<uint64_t>(o.kv_disk_mib) << 20, 64);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (o.json) {
    JsonLine j;
    j.str("test", "kv_disk_read")
        .str("dir", o.context.kv.disk_dir)
        .integer("block_bytes", static_cast<int64_t>(r.slot_bytes))
        .integer("queue_depth", r.queue_depth)
        .integer("bytes", static_cast<int64_t>(r.bytes))
        .num("read_gbs", r.read_gbps, 4)
        .num("write_gbs", r.write_gbps, 4)
        .str("io", r.direct_io ? "direct" : "buffered");
    j.print();
  } else {
    std::printf("kv disk: %.3f GB/s read, %.3f GB/s write (%s blocks, %d in flight, %s, %s I/O) "
                "in %s\n",
                r.read_gbps, r.write_gbps, human_bytes(r.slot_bytes).c_str(), r.queue_depth,
                human_bytes(r.bytes).c_str(), r.direct_io ? "direct" : "buffered",
                o.context.kv.disk_dir.c_str());
  }
  std::fflush(stdout);
  return kExitOk;
}

// ---- Model facts -----------------------------------------------------------------------------

struct ModelFacts {
  std::string name;   // file name
  std::string type;   // general.file_type name or dominant tensor type
  uint64_t size = 0;  // bytes of all tensors
  uint64_t n_params = 0;
  uint64_t weight_bytes_per_token = 0;  // all tensors but token_embd, plus one of its rows
  uint64_t matrix_params = 0;           // 2-D tensors except token_embd (unless tied)
  int64_t kv_dim = 0;                   // n_kv_heads * head_dim (blk.0.attn_k rows)
  int32_t n_layer = 0;
  int32_t n_vocab = 0;
};

bool meta_text(const v4_model* m, const char* key, std::string& out) {
  std::string buf(64, '\0');
  size_t needed = 0;
  v4_status st = v4_model_meta_value(m, key, buf.data(), buf.size(), &needed);
  if (st == V4_ERR_BUFFER_TOO_SMALL) {
    buf.assign(needed + 1, '\0');
    st = v4_model_meta_value(m, key, buf.data(), buf.size(), &needed);
  }
  if (st != V4_OK) return false;
  buf.resize(std::min(needed, buf.size()));
  while (!buf.empty() && buf.back() == '\0') buf.pop_back();
  out = buf;
  return true;
}

// llama.cpp's llama_ftype names.
const char* ftype_name(long v) {
  switch (v) {
    case 0:
      return "F32";
    case 1:
      return "F16";
    case 2:
      return "Q4_0";
    case 3:
      return "Q4_1";
    case 7:
      return "Q8_0";
    case 8:
      return "Q5_0";
    case 9:
      return "Q5_1";
    case 10:
      return "Q2_K";
    case 11:
      return "Q3_K_S";
    case 12:
      return "Q3_K_M";
    case 13:
      return "Q3_K_L";
    case 14:
      return "Q4_K_S";
    case 15:
      return "Q4_K_M";
    case 16:
      return "Q5_K_S";
    case 17:
      return "Q5_K_M";
    case 18:
      return "Q6_K";
    case 32:
      return "BF16";
    case 16386:
      return "FP8_B32";
    default:
      return nullptr;
  }
}

ModelFacts model_facts(const v4_model* m, const std::string& path) {
  ModelFacts f;
  f.name = base_name(path);
  f.n_params = v4_model_n_params(m);
  f.n_layer = v4_model_n_layer(m);
  f.n_vocab = v4_model_n_vocab(m);
  uint64_t total = 0, embd_bytes = 0, embd_row = 0, embd_params = 0;
  bool tied = true;
  std::vector<std::pair<std::string, uint64_t>> by_type;
  const int32_t n = v4_model_n_tensors(m);
  for (int32_t i = 0; i < n; ++i) {
    v4_tensor_info t{};
    if (v4_model_tensor(m, i, &t) != V4_OK) continue;
    const std::string name = t.name ? t.name : "";
    total += t.nbytes;
    const uint64_t rows = t.n_dims > 1 ? static_cast<uint64_t>(t.ne[1]) : 1;
    if (name == "token_embd.weight") {
      embd_bytes = t.nbytes;
      embd_row = rows ? t.nbytes / rows : t.nbytes;
      embd_params = static_cast<uint64_t>(t.ne[0]) * rows;
    } else if (t.n_dims == 2) {
      f.matrix_params += static_cast<uint64_t>(t.ne[0]) * rows;
    }
    if (name == "output.weight") tied = false;
    if (name == "blk.0.attn_k.weight" && t.n_dims == 2) f.kv_dim = t.ne[1];
    const std::string ty = t.type ? t.type : "?";
    auto it = std::find_if(by_type.begin(), by_type.end(), [&](auto& e) { return e.first == ty; });
    if (it == by_type.end())
      by_type.emplace_back(ty, t.nbytes);
    else
      it->second += t.nbytes;
  }
  f.size = total;
  // A tied embedding is also the output matrix, read in full for every token.
  f.weight_bytes_per_token = total - embd_bytes + embd_row + (tied ? embd_bytes : 0);
  if (tied) f.matrix_params += embd_params;

  std::string ft;
  if (meta_text(m, "general.file_type", ft) && !ft.empty()) {
    char* end = nullptr;
    const long v = std::strtol(ft.c_str(), &end, 10);
    if (end && *end == '\0' && ftype_name(v)) f.type = ftype_name(v);
  }
  if (f.type.empty() && !by_type.empty()) {
    f.type = std::max_element(by_type.begin(), by_type.end(), [](auto& a, auto& b) {
               return a.second < b.second;
             })->first;
  }
  return f;
}

// ---- The measurements ------------------------------------------------------------------------

struct Result {
  std::string test;
  int32_t n_tokens = 0;
  bool generation = false;
  std::vector<double> tps;  // tokens/s per repetition
  double others_cpu = -1;   // share of the CPUs other processes used during the timed runs
};

// A flag when other processes took a noticeable share of the CPUs during a measurement.
void flag_busy(double others, std::vector<std::string>& flags) {
  if (others < kBusyFraction) return;
  char msg[200];
  std::snprintf(msg, sizeof msg,
                "machine busy: other processes used %.0f%% of the CPUs during the measurement; "
                "figures are low",
                100.0 * others);
  flags.push_back(msg);
}

v4_token argmax(const float* logits, int32_t n) {
  v4_token best = 0;
  for (int32_t i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

class Runner {
 public:
  Runner(v4_context* ctx, int32_t n_vocab, uint64_t seed) : ctx_(ctx), n_vocab_(n_vocab) {
    state_ = seed ? seed : 1;
  }

  // Random ids in [0, n_vocab).
  std::vector<v4_token> random_tokens(int32_t n) {
    std::vector<v4_token> t(static_cast<size_t>(n));
    for (auto& x : t) x = static_cast<v4_token>(next() % static_cast<uint64_t>(n_vocab_));
    return t;
  }

  bool decode(const std::vector<v4_token>& tokens) {
    v4_batch b{};
    b.n_tokens = static_cast<int32_t>(tokens.size());
    b.tokens = tokens.data();
    const v4_status st = v4_decode(ctx_, &b);
    if (st != V4_OK) {
      fail_status("decode failed", st);
      return false;
    }
    return true;
  }

  // Back to `depth` tokens in sequence 0.
  bool reset_to(int32_t depth) {
    const v4_status st = depth == 0 ? v4_seq_clear(ctx_, 0) : v4_seq_remove(ctx_, 0, depth, -1);
    if (st != V4_OK) {
      fail_status("cannot reset the sequence", st);
      return false;
    }
    return true;
  }

  // Seconds for one batch of n random tokens; < 0 on failure.
  double time_prompt(int32_t n) {
    const auto tokens = random_tokens(n);
    const auto t0 = Clock::now();
    if (!decode(tokens)) return -1;
    return seconds_between(t0, Clock::now());
  }

  // Seconds for n one-token steps, each fed the argmax of the previous logits.
  double time_generation(int32_t n) {
    std::vector<v4_token> tok = random_tokens(1);
    const auto t0 = Clock::now();
    for (int32_t i = 0; i < n; ++i) {
      if (!decode(tok)) return -1;
      const float* logits = v4_get_logits(ctx_, -1);
      if (!logits) {
        fail_status("no logits", V4_ERR_INTERNAL);
        return -1;
      }
      tok[0] = argmax(logits, n_vocab_);
    }
    return seconds_between(t0, Clock::now());
  }

 private:
  uint64_t next() {  // splitmix64
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  v4_context* ctx_;
  int32_t n_vocab_;
  uint64_t state_;
};

// ---- v4 bench --tokenize ---------------------------------------------------------------------

std::string default_text_file() {
  const std::string rel = "tests/data/tinystories-sample.txt";
  std::error_code ec;
  if (std::filesystem::is_regular_file(rel, ec)) return rel;
#ifdef V4_DEFAULT_MODEL
  // The source tree the tool was built from: <src>/models/stories260K-f32.gguf.
  const auto src = std::filesystem::path(V4_DEFAULT_MODEL).parent_path().parent_path();
  const auto p = src / rel;
  if (std::filesystem::is_regular_file(p, ec)) return p.string();
#endif
  return {};
}

int tokenize_bench(BenchOptions& o) {
  if (o.model.empty())
    return fail("bench --tokenize needs -m VOCAB.gguf (a model or vocab-only GGUF)", kExitUsage);
  std::string path = o.text_file.empty() ? default_text_file() : o.text_file;
  if (path.empty())
    return fail("no text to tokenize: pass -f TEXT (tests/data/tinystories-sample.txt not found)",
                kExitUsage);
  std::string piece;
  if (!read_file(path, piece)) return fail("cannot read '" + path + "'");
  if (piece.empty()) return fail("'" + path + "' is empty", kExitUsage);
  constexpr size_t kBytes = size_t{1} << 20;
  std::string text;
  text.reserve(kBytes + piece.size());
  while (text.size() < kBytes) text += piece;
  size_t cut = kBytes;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // UTF-8
  text.resize(cut);

  ModelPtr model = load_model(o.model, true);
  if (!model) return kExitError;
  std::vector<v4_token> tokens(text.size() + 16);
  std::vector<double> secs;
  int32_t n_tokens = 0;
  const int reps = std::max(1, o.reps);
  for (int r = 0; r < reps + (o.no_warmup ? 0 : 1); ++r) {
    const auto t0 = Clock::now();
    const v4_status st = v4_tokenize(model.get(), text.data(), text.size(), true, false,
                                     tokens.data(), static_cast<int32_t>(tokens.size()), &n_tokens);
    const double s = seconds_between(t0, Clock::now());
    if (st != V4_OK) return fail_status("tokenize failed", st);
    if (r > 0 || o.no_warmup) secs.push_back(s);
  }
  std::vector<double> mbs;
  for (double s : secs) mbs.push_back(static_cast<double>(text.size()) / 1e6 / s);
  const Stats m = stats_of(mbs), t = stats_of(secs);
  if (o.json) {
    JsonLine j;
    j.str("test", "tokenize")
        .str("model", base_name(o.model))
        .str("text", base_name(path))
        .integer("bytes", static_cast<int64_t>(text.size()))
        .integer("tokens", n_tokens)
        .num("seconds", t.mean)
        .num("mb_per_s", m.mean, 5)
        .num("stddev", m.sd, 4)
        .num("tokens_per_s", n_tokens / t.mean, 6)
        .integer("reps", reps);
    j.print();
  } else {
    std::printf("tokenize: %s, %zu bytes of %s (repeated) -> %d tokens\n",
                base_name(o.model).c_str(), text.size(), base_name(path).c_str(), n_tokens);
    std::printf("  %.4f s (mean of %d), %.2f ± %.2f MB/s, %.0f tokens/s\n", t.mean, reps, m.mean,
                m.sd, n_tokens / t.mean);
  }
  return kExitOk;
}

// ---- v4 bench ----------------------------------------------------------------------------

int bench_main(BenchOptions& o) {
  setup_logging(o.verbose);
  if (o.n_prompt < 0 || o.n_gen < 0) return fail("-p and -n must be >= 0", kExitUsage);
  if (o.reps < 1) return fail("-r must be >= 1", kExitUsage);
  if (o.depth < 0) return fail("--depth must be >= 0", kExitUsage);
  if (o.context.threads < 0) return fail("--threads must be >= 0", kExitUsage);
  if (o.membw_mib < 1) return fail("--membw-mib must be >= 1", kExitUsage);
  if (o.tokenize) return tokenize_bench(o);
  const bool disk_only = !o.context.kv.disk_dir.empty() && o.model.empty();
  if (disk_only && !o.membw) return print_kv_disk(o);
  const bool probe_only = o.membw && o.model.empty();
  if (o.model.empty() && !probe_only)
    return fail("bench needs -m MODEL (or --membw / --kv-disk DIR alone for the bandwidth probes)",
                kExitUsage);
  if (!probe_only && o.n_prompt == 0 && o.n_gen == 0)
    return fail("nothing to measure: -p and -n are both 0", kExitUsage);
  const int threads = o.context.threads > 0 ? o.context.threads : available_cpus();
  o.context.threads = threads;

  // The probe runs before the model is loaded, so that the two never compete for memory.
  Bandwidth bw;
  try {
    bw = probe_bandwidth(threads, static_cast<size_t>(o.membw_mib) << 20);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  print_membw(bw, o.json);
  if (!o.context.kv.disk_dir.empty())
    if (const int rc = print_kv_disk(o); rc != kExitOk) return rc;
  if (probe_only) return kExitOk;

  ModelPtr model = load_model(o.model, false);
  if (!model) return kExitError;
  const ModelFacts f = model_facts(model.get(), o.model);
  const std::string load_mode = v4_load_mode_name(v4_model_load_mode(model.get()));

  ContextOptions copts = o.context;
  const int64_t need = int64_t{o.depth} + std::max(o.n_prompt, o.n_gen) + 1;
  if (copts.ctx == 0) copts.ctx = static_cast<uint32_t>(need);
  if (copts.ctx < need)
    return fail("--ctx " + std::to_string(copts.ctx) +
                    " is too small for --depth + max(-p, -n) = " + std::to_string(need - 1),
                kExitUsage);
  ContextPtr ctx = create_context(model.get(), copts);
  if (!ctx) return kExitError;
  Runner run(ctx.get(), f.n_vocab, o.seed);

  const double elem = o.context.kv.bytes_per_value();
  // Attention reads the K and V rows of every cached position: at step i of tg the cache
  // holds depth + i + 1 positions, so the mean over the test is depth + (n + 1) / 2.
  const double kv_bytes_per_token = o.n_gen > 0 ? 2.0 * f.n_layer * static_cast<double>(f.kv_dim) *
                                                      elem * (o.depth + (o.n_gen + 1) / 2.0)
                                                : 0.0;

  if (!o.json) {
    std::printf("model: %s, %s, %s, %s parameters, %d threads, load %s, KV %s\n", f.name.c_str(),
                f.type.c_str(), human_bytes(f.size).c_str(), human_count(f.n_params).c_str(),
                threads, load_mode.c_str(), o.context.kv.type.c_str());
    std::printf("bytes read per generated token: %s of weights",
                human_bytes(f.weight_bytes_per_token).c_str());
    if (kv_bytes_per_token > 0)
      std::printf(" + %s of KV (mean)",
                  human_bytes(static_cast<uint64_t>(kv_bytes_per_token)).c_str());
    std::printf("; roofline %.1f tokens/s at %.1f GB/s\n",
                bw.used_gbs * 1e9 / (f.weight_bytes_per_token + kv_bytes_per_token), bw.used_gbs);
    std::fflush(stdout);
  }

  // Fill the cache to the requested depth once; every test goes back to it.
  if (o.depth > 0) {
    std::fprintf(stderr, "bench: filling the KV cache with %d tokens\n", o.depth);
    if (!run.decode(run.random_tokens(o.depth))) return kExitError;
  }
  std::vector<Result> results;
  const std::string at = o.depth > 0 ? "@d" + std::to_string(o.depth) : "";
  if (o.n_prompt > 0)
    results.push_back({"pp" + std::to_string(o.n_prompt) + at, o.n_prompt, false, {}});
  if (o.n_gen > 0) results.push_back({"tg" + std::to_string(o.n_gen) + at, o.n_gen, true, {}});

  for (Result& r : results) {
    CpuSample c0;
    for (int rep = o.no_warmup ? 0 : -1; rep < o.reps; ++rep) {
      if (rep == 0) c0 = cpu_sample();
      if (!run.reset_to(o.depth)) return kExitError;
      const double s = r.generation ? run.time_generation(r.n_tokens) : run.time_prompt(r.n_tokens);
      if (s < 0) return kExitError;
      if (rep >= 0) r.tps.push_back(r.n_tokens / s);
      if (o.verbose)
        std::fprintf(stderr, "bench: %s %s: %.3f s\n", r.test.c_str(),
                     rep < 0 ? "warm-up" : ("rep " + std::to_string(rep + 1)).c_str(), s);
    }
    r.others_cpu = others_cpu_fraction(c0, cpu_sample());
  }
  if (!run.reset_to(0)) return kExitError;

  if (!o.json) {
    std::printf("\n| %-12s | %-20s | %8s | %10s | %9s |\n", "test", "tokens/s", "GB/s", "roofline",
                "GFLOP/s");
    std::printf("|%s|%s|%s|%s|%s|\n", std::string(14, '-').c_str(), std::string(22, '-').c_str(),
                std::string(10, '-').c_str(), std::string(12, '-').c_str(),
                std::string(11, '-').c_str());
  }
  for (const Result& r : results) {
    const Stats s = stats_of(r.tps);
    std::vector<std::string> flags = bw.flags;
    flag_busy(r.others_cpu, flags);
    double bytes = 0, achieved = 0, fraction = 0;
    const double gflops = 2.0 * static_cast<double>(f.matrix_params) * s.mean / 1e9;
    if (r.generation) {
      bytes = static_cast<double>(f.weight_bytes_per_token) + kv_bytes_per_token;
      achieved = bytes * s.mean / 1e9;
      fraction = bw.used_gbs > 0 ? achieved / bw.used_gbs : 0;
      if (fraction > 1.0)
        flags.push_back("above the memory roofline: the " +
                        human_bytes(static_cast<uint64_t>(bytes)) +
                        " read per token fit in the CPU caches");
    }
    if (o.json) {
      JsonLine j;
      j.str("test", r.test)
          .str("model", f.name)
          .str("type", f.type)
          .integer("size_bytes", static_cast<int64_t>(f.size))
          .integer("n_params", static_cast<int64_t>(f.n_params))
          .integer("threads", threads)
          .integer("n_tokens", r.n_tokens)
          .integer("depth", o.depth)
          .integer("reps", o.reps)
          .num("tokens_per_s", s.mean)
          .num("stddev", s.sd, 4)
          .list("samples", r.tps)
          .integer("weight_bytes_per_token", static_cast<int64_t>(f.weight_bytes_per_token))
          .num("membw_gbs", bw.used_gbs, 4);
      if (r.generation) {
        j.integer("kv_bytes_per_token", static_cast<int64_t>(kv_bytes_per_token))
            .num("gbs", achieved, 4)
            .num("roofline_fraction", fraction, 4)
            .num("roofline_tokens_per_s", bw.used_gbs * 1e9 / bytes, 5);
      } else {
        j.num("gflops", gflops, 5);
      }
      j.str("load_mode", load_mode)
          .str("kv_type", o.context.kv.type)
          .num("others_cpu", unknown_as_nan(r.others_cpu), 3)
          .strings("flags", flags);
      j.print();
      for (size_t i = bw.flags.size(); i < flags.size(); ++i) warn(r.test + ": " + flags[i]);
    } else {
      char tps[64], gbs[32] = "-", roof[32] = "-", gf[32] = "-";
      std::snprintf(tps, sizeof tps, "%9.2f ± %-8.2f", s.mean, s.sd);  // ± is 2 bytes, 1 column
      if (r.generation) {
        std::snprintf(gbs, sizeof gbs, "%.2f", achieved);
        std::snprintf(roof, sizeof roof, "%.1f %%", 100.0 * fraction);
      } else {
        std::snprintf(gf, sizeof gf, "%.1f", gflops);
      }
      std::printf("| %-12s | %s | %8s | %10s | %9s |\n", r.test.c_str(), tps, gbs, roof, gf);
      for (size_t i = bw.flags.size(); i < flags.size(); ++i)
        std::printf("  note (%s): %s\n", r.test.c_str(), flags[i].c_str());
    }
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace

void register_bench(CLI::App& app, Action& action) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* cmd = app.add_subcommand(
      "bench", "Measure prompt and generation speed against the memory-bandwidth roofline");
  cmd->add_option("-m,--model", o->model, "Model file (a vocab-only file with --tokenize)");
  cmd->add_option("-p,--n-prompt", o->n_prompt, "Prompt tokens per pp test (0: skip)")
      ->capture_default_str();
  cmd->add_option("-n,--n-gen", o->n_gen, "Generated tokens per tg test (0: skip)")
      ->capture_default_str();
  cmd->add_option("-r,--reps", o->reps, "Repetitions of each test")->capture_default_str();
  cmd->add_option("--depth", o->depth, "Fill the KV cache with this many tokens first")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Seed of the random prompt tokens")->capture_default_str();
  cmd->add_flag("--json", o->json, "One JSON object per line and measurement");
  cmd->add_flag("--membw", o->membw, "Measure the memory read bandwidth (alone without -m)");
  cmd->add_option("--membw-mib", o->membw_mib, "Buffer of the bandwidth probe in MiB")
      ->capture_default_str();
  cmd->add_option("--kv-disk-mib", o->kv_disk_mib,
                  "With --kv-disk: MiB the disk read probe writes and reads back")
      ->capture_default_str();
  cmd->add_option("--kv-disk-block", o->kv_disk_block, "With --kv-disk: block size of the probe")
      ->capture_default_str();
  cmd->add_flag("--tokenize", o->tokenize, "Measure the tokenizer on 1 MiB of text instead");
  cmd->add_option("-f,--file", o->text_file,
                  "Text for --tokenize (default: tests/data/tinystories-sample.txt)");
  cmd->add_flag("--no-warmup", o->no_warmup, "Skip the untimed warm-up run of each test");
  add_context_options(cmd, o->context);
  cmd->add_flag("-v,--verbose", o->verbose, "Show the library's log and each repetition's time");
  cmd->callback([o, &action] { action = [o] { return bench_main(*o); }; });
}

}  // namespace v4::cli
