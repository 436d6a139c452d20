#include "common.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>

#include "model_path.h"
#include "progress.h"

namespace v4::cli {

// ---- Errors and logging ------------------------------------------------------------------

int fail_status(const std::string& what, v4_status status) {
  const char* detail = v4_last_error();
  if (detail && *detail) {
    std::fprintf(stderr, "v4: error: %s: %s\n", what.c_str(), detail);
  } else {
    std::fprintf(stderr, "v4: error: %s: %s\n", what.c_str(), v4_status_string(status));
  }
  return kExitError;
}

int fail(const std::string& what, int code) {
  std::fprintf(stderr, "v4: error: %s\n", what.c_str());
  return code;
}

void warn(const std::string& what) { std::fprintf(stderr, "v4: warning: %s\n", what.c_str()); }

namespace {

bool g_verbose = false;

void log_to_stderr(v4_log_level level, const char* text, void*) {
  if (level >= V4_LOG_WARN || g_verbose) ProgressBar::clear_active();
  switch (level) {
    case V4_LOG_DEBUG:
    case V4_LOG_INFO:
      if (g_verbose) std::fprintf(stderr, "v4engine: %s\n", text);
      break;
    case V4_LOG_WARN:
      std::fprintf(stderr, "v4engine: warning: %s\n", text);
      break;
    case V4_LOG_ERROR:
    default:
      std::fprintf(stderr, "v4engine: error: %s\n", text);
      break;
  }
}

}  // namespace

void setup_logging(bool verbose) {
  g_verbose = verbose;
  v4_set_log_callback(log_to_stderr, nullptr);
}

// ---- Models and contexts -----------------------------------------------------------------

namespace {
std::string g_load_mode = "auto";  // set by --load (one model per process)
}

void add_load_option(CLI::App* cmd) {
  cmd->add_option("--load", g_load_mode,
                  "How weights reach memory: auto (= read), read (anonymous memory), mmap, mlock")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "read", "mmap", "mlock"}));
}

ModelPtr load_model(const std::string& path, bool vocab_only) {
  v4_model_params mp = v4_model_default_params();
  mp.vocab_only = vocab_only;
  mp.load_mode = g_load_mode == "read"    ? V4_LOAD_READ
                 : g_load_mode == "mmap"  ? V4_LOAD_MMAP
                 : g_load_mode == "mlock" ? V4_LOAD_MLOCK
                                          : V4_LOAD_AUTO;
  ProgressBar bar("loading");
  mp.progress = bar.callback();
  mp.progress_user = bar.user();
  v4_model* model = nullptr;
  v4_status st = v4_model_load(path.c_str(), &mp, &model);
  bar.finish();
  if (st != V4_OK) {
    // The library's message usually names the file already.
    const char* detail = v4_last_error();
    const bool named = detail && std::strstr(detail, path.c_str()) != nullptr;
    fail_status(named ? std::string("cannot load model") : "cannot load model '" + path + "'", st);
    return nullptr;
  }
  return ModelPtr(model);
}

ModelPtr load_default_or_given(const std::string& cli_value) {
  std::string path = resolve_model_path(cli_value);
  if (path.empty()) {
    fail(
        "no model found (looked for the bundled stories260K-f32.gguf); pass one with -m "
        "MODEL.gguf or set V4_MODEL");
    return nullptr;
  }
  return load_model(path, false);
}

void add_sampling_options(CLI::App* cmd, SamplingOptions& s) {
  cmd->add_option("--temp", s.temp, "Temperature; <= 0 is greedy (argmax)")->capture_default_str();
  cmd->add_option("--top-k", s.top_k, "Top-k filter; <= 0 is off")->capture_default_str();
  cmd->add_option("--top-p", s.top_p, "Top-p (nucleus) filter; >= 1 is off")->capture_default_str();
  cmd->add_option("--min-p", s.min_p, "Min-p filter; <= 0 is off")->capture_default_str();
  cmd->add_option("--repeat-penalty", s.repeat_penalty, "Repetition penalty; 1 is off")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", s.repeat_last_n,
                  "Recent tokens the repetition penalty looks at")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--typical-p", s.typical_p, "Locally typical sampling; >= 1 is off")
      ->capture_default_str();
  cmd->add_option("--frequency-penalty", s.frequency_penalty,
                  "Subtract this times a token's count in the window; 0 is off")
      ->capture_default_str();
  cmd->add_option("--presence-penalty", s.presence_penalty,
                  "Subtract this from every token seen in the window; 0 is off")
      ->capture_default_str();
  s.seed_opt = cmd->add_option("--seed", s.seed, "RNG seed (default: random, printed on stderr)");
}

std::string human_bytes(uint64_t b) {
  char buf[64];
  if (b >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(b) / (1ull << 30));
  } else if (b >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(b) / (1ull << 20));
  } else if (b >= (1ull << 10)) {
    std::snprintf(buf, sizeof buf, "%.2f KiB", static_cast<double>(b) / (1ull << 10));
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  }
  return buf;
}

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool parse_size(const std::string& text, uint64_t* out) {
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return false;
  size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &used);
  } catch (...) {
    return false;
  }
  std::string unit = text.substr(used);
  if (!unit.empty() && (unit.back() == 'B' || unit.back() == 'b') && unit.size() == 2)
    unit.pop_back();  // "512MB"
  int shift = 0;
  if (unit.empty()) shift = 0;
  else if (unit == "K" || unit == "k") shift = 10;
  else if (unit == "M" || unit == "m") shift = 20;
  else if (unit == "G" || unit == "g") shift = 30;
  else if (unit == "T" || unit == "t") shift = 40;
  else return false;
  if (shift && v > (~0ull >> shift)) return false;
  *out = static_cast<uint64_t>(v) << shift;
  return true;
}

namespace {
std::atomic<bool> g_stop{false};

// First SIGINT/SIGTERM/SIGHUP: ask the running decode to stop, so the tool returns through
// its destructors (which remove KV spill files); a second one acts as the default would.
void on_stop_signal(int sig) {
  if (g_stop.exchange(true)) {
    signal(sig, SIG_DFL);
    raise(sig);
  }
}
}  // namespace

bool stop_requested(void*) { return g_stop.load(); }

void install_stop_signals() {
  static const bool installed = [] {
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);
    return true;
  }();
  (void)installed;
}

bool KvOptions::apply(v4_context_params& cp) const {
  cp.kv_type = type == "f16" ? V4_KV_F16 : type == "bf16" ? V4_KV_BF16
               : type == "fp8" ? V4_KV_FP8 : V4_KV_F32;
  cp.kv_page_tokens = page;
  const std::pair<const std::string*, uint64_t*> sizes[] = {
      {&vram, &cp.kv_device_bytes}, {&ram, &cp.kv_host_bytes}, {&disk_max, &cp.kv_disk_max_bytes}};
  for (const auto& [text, field] : sizes) {
    if (text->empty()) continue;
    if (!parse_size(*text, field) || *field == 0) {
      fail("bad size '" + *text + "': use a number of bytes with an optional K, M or G suffix");
      return false;
    }
  }
  cp.kv_disk_dir = disk_dir.empty() ? nullptr : disk_dir.c_str();
  cp.kv_disk_compress = disk_compress;
  if (!disk_dir.empty()) {
    // A signal must not leave the disk tier's file behind: stop decoding and unwind instead.
    install_stop_signals();
    if (!cp.abort_callback) cp.abort_callback = stop_requested;
  }
  return true;
}

double KvOptions::bytes_per_value() const {
  if (type == "f16" || type == "bf16") return 2.0;
  if (type == "fp8") return 33.0 / 32.0;
  return 4.0;
}

// CLI11 check for sizes: usage errors (exit 2) rather than run-time failures.
std::string check_size(const std::string& text) {
  uint64_t v = 0;
  if (parse_size(text, &v) && v > 0) return {};
  return "bad size '" + text + "': use a number of bytes with an optional K, M or G suffix";
}

void add_kv_options(CLI::App* cmd, KvOptions& kv) {
  cmd->add_option("--kv-type", kv.type, "KV cache row type: f32, f16, bf16 or fp8")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16", "bf16", "fp8"}));
  cmd->add_option("--kv-page", kv.page, "Tokens per KV page (a power of two up to 128)")
      ->capture_default_str();
  cmd->add_option("--kv-vram", kv.vram,
                  "KV budget of the device tier (what attention reads; host memory on the CPU), "
                  "e.g. 512M (default: no limit)")
      ->check(check_size);
  cmd->add_option("--kv-ram", kv.ram, "KV budget of the host RAM tier (default: no limit)")
      ->check(check_size);
  cmd->add_option("--kv-disk", kv.disk_dir,
                  "Directory for KV pages beyond the RAM budgets (files removed on exit)");
  cmd->add_option("--kv-disk-max", kv.disk_max, "Most bytes of KV on disk (default: no limit)")
      ->check(check_size);
  cmd->add_flag("--kv-disk-compress", kv.disk_compress, "zstd-compress KV pages on disk");
}

void add_context_options(CLI::App* cmd, ContextOptions& c, bool with_devices) {
  cmd->add_option("--threads", c.threads, "Threads (default: all cores)");
  cmd->add_option("--ctx", c.ctx, "Context length in tokens (default: the model's)");
  add_load_option(cmd);
  add_kv_options(cmd, c.kv);
  add_backend_options(cmd, c.where, with_devices);
}

void add_backend_options(CLI::App* cmd, BackendOptions& b, bool with_devices) {
  cmd->add_option("--backend", b.backend,
                  "Where to run: auto (a GPU when one works, else the CPU), cpu, vulkan, cuda")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "vulkan", "cuda"}));
  auto* device = cmd->add_option(
      "--device", b.device, "Device of the backend: index or part of the name (see v4 info --devices)");
  if (with_devices)
    cmd->add_option("--devices", b.devices,
                    "Split the layers over several devices of the backend, e.g. 0,1 "
                    "(activations cross through host memory)")
        ->excludes(device);
  cmd->add_option("--split", b.split,
                  "With --devices: auto (by free memory, the default) or layer ratios such as 3,1");
}

void BackendOptions::apply(v4_context_params& cp) const {
  cp.backend = backend.c_str();
  cp.device = device.empty() ? nullptr : device.c_str();
  cp.devices = devices.empty() ? nullptr : devices.c_str();
  cp.split = split.empty() ? nullptr : split.c_str();
}

v4_sampler_params SamplingOptions::to_params() {
  seed_given = seed_opt && seed_opt->count() > 0;
  if (!seed_given) {
    std::random_device rd;
    const uint64_t t = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
    seed = (static_cast<uint64_t>(rd()) << 32 ^ rd() ^ t) & 0xffffffffull;
    std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(seed));
  }
  v4_sampler_params sp = v4_sampler_default_params();
  sp.seed = seed;
  sp.temperature = temp;
  sp.top_k = top_k;
  sp.top_p = top_p;
  sp.min_p = min_p;
  sp.repeat_penalty = repeat_penalty;
  sp.repeat_last_n = repeat_last_n;
  sp.typical_p = typical_p;
  sp.frequency_penalty = frequency_penalty;
  sp.presence_penalty = presence_penalty;
  return sp;
}

ContextPtr create_context(v4_model* model, const ContextOptions& opts, v4_abort_fn abort_fn,
                          void* abort_user) {
  v4_context_params cp = v4_context_default_params();
  cp.n_ctx = opts.ctx;
  cp.n_threads = opts.threads;
  cp.n_threads_batch = opts.threads;
  if (abort_fn) {
    cp.abort_callback = abort_fn;
    cp.abort_user = abort_user;
  }
  if (!opts.kv.apply(cp)) return nullptr;
  opts.where.apply(cp);
  v4_context* ctx = nullptr;
  v4_status st = v4_context_create(model, &cp, &ctx);
  if (st != V4_OK) {
    fail_status("cannot create context", st);
    return nullptr;
  }
  return ContextPtr(ctx);
}

SamplerPtr create_sampler(const v4_model* model, SamplingOptions& opts) {
  v4_sampler_params sp = opts.to_params();
  v4_sampler* s = nullptr;
  v4_status st = v4_sampler_create(model, &sp, &s);
  if (st != V4_OK) {
    fail_status("cannot create sampler", st);
    return nullptr;
  }
  return SamplerPtr(s);
}

// ---- Text and I/O ------------------------------------------------------------------------

bool read_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return false;
  out = ss.str();
  return true;
}

std::string detokenize(const v4_model* model, const std::vector<v4_token>& tokens,
                       bool render_special) {
  std::string buf(tokens.size() * 8 + 16, '\0');
  size_t n = 0;
  v4_status st = v4_detokenize(model, tokens.data(), static_cast<int32_t>(tokens.size()),
                               render_special, buf.data(), buf.size(), &n);
  if (st == V4_ERR_BUFFER_TOO_SMALL) {
    buf.assign(n + 1, '\0');
    st = v4_detokenize(model, tokens.data(), static_cast<int32_t>(tokens.size()), render_special,
                       buf.data(), buf.size(), &n);
  }
  if (st != V4_OK) return {};
  buf.resize(n);
  return buf;
}

bool tokenize(const v4_model* model, const std::string& text, bool add_bos, bool parse_special,
              std::vector<v4_token>& out) {
  out.assign(text.size() + 4, 0);
  int32_t n = 0;
  v4_status st = v4_tokenize(model, text.data(), text.size(), add_bos, parse_special, out.data(),
                             static_cast<int32_t>(out.size()), &n);
  if (st == V4_ERR_BUFFER_TOO_SMALL && n > 0) {
    out.assign(static_cast<size_t>(n), 0);
    st = v4_tokenize(model, text.data(), text.size(), add_bos, parse_special, out.data(),
                     static_cast<int32_t>(out.size()), &n);
  }
  if (st != V4_OK) {
    fail_status("cannot tokenize the prompt", st);
    return false;
  }
  out.resize(static_cast<size_t>(n));
  return true;
}

bool write_stdout(const char* data, size_t len) {
  if (len > 0 && std::fwrite(data, 1, len, stdout) != len) return false;
  return std::fflush(stdout) == 0;
}

bool stdin_is_tty() { return isatty(STDIN_FILENO) != 0; }
bool stdout_is_tty() { return isatty(STDOUT_FILENO) != 0; }
bool stderr_is_tty() { return isatty(STDERR_FILENO) != 0; }

}  // namespace v4::cli
