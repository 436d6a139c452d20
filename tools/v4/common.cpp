#include "common.h"

#include <unistd.h>

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

void add_context_options(CLI::App* cmd, ContextOptions& c) {
  cmd->add_option("--threads", c.threads, "Threads (default: all cores)");
  cmd->add_option("--ctx", c.ctx, "Context length in tokens (default: the model's)");
  add_load_option(cmd);
  cmd->add_option("--kv-type", c.kv_type, "KV cache row type: f32 or f16")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "f16"}));
  add_backend_options(cmd, c.backend, c.device);
}

void add_backend_options(CLI::App* cmd, std::string& backend, std::string& device) {
  cmd->add_option("--backend", backend,
                  "Where to run: auto (a GPU when one works, else the CPU), cpu, vulkan, cuda")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "vulkan", "cuda"}));
  cmd->add_option("--device", device,
                  "Device of the backend: index or part of the name (see v4 info --devices)");
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
  cp.kv_type = opts.kv_type == "f16" ? V4_KV_F16 : V4_KV_F32;
  cp.abort_callback = abort_fn;
  cp.abort_user = abort_user;
  cp.backend = opts.backend.c_str();
  cp.device = opts.device.empty() ? nullptr : opts.device.c_str();
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
