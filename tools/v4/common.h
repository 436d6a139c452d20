// Helpers shared by the v4 subcommands. The tool is a client of the C API only
// (include/v4engine.h, linked against the shared library): nothing here reaches into lib/.
#pragma once

#include <v4engine.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace v4::cli {

// Exit codes of the tool.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // runtime error, message on stderr
inline constexpr int kExitUsage = 2;  // bad command line

// What a subcommand runs once the command line is parsed.
using Action = std::function<int()>;

// Each subcommand adds itself to the app; when it is selected its callback stores the action.
void register_run(CLI::App& app, Action& action);
void register_chat(CLI::App& app, Action& action);
void register_info(CLI::App& app, Action& action);
void register_tokenize(CLI::App& app, Action& action);

// ---- Errors and logging ------------------------------------------------------------------

// Prints "v4: error: <what>: <v4_last_error()>" to stderr and returns kExitError.
int fail_status(const std::string& what, v4_status status);
// Prints "v4: error: <what>" and returns `code`.
int fail(const std::string& what, int code = kExitError);
void warn(const std::string& what);
// "1.50 GiB", "12.00 MiB", "3.25 KiB", "12 B".
std::string human_bytes(uint64_t b);
bool file_exists(const std::string& path);

// Routes library logs to stderr: warnings and errors always, debug/info with verbose.
void setup_logging(bool verbose);

// ---- Models and contexts -----------------------------------------------------------------

struct ModelDeleter {
  void operator()(v4_model* m) const { v4_model_free(m); }
};
struct ContextDeleter {
  void operator()(v4_context* c) const { v4_context_free(c); }
};
struct SamplerDeleter {
  void operator()(v4_sampler* s) const { v4_sampler_free(s); }
};
using ModelPtr = std::unique_ptr<v4_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<v4_context, ContextDeleter>;
using SamplerPtr = std::unique_ptr<v4_sampler, SamplerDeleter>;

// Loads a model with a progress bar on stderr when stderr is a terminal. On failure prints
// the error and returns null.
ModelPtr load_model(const std::string& path, bool vocab_only);
// Adds --load auto|read|mmap|mlock (used by load_model). add_context_options includes it.
void add_load_option(CLI::App* cmd);

// Resolves the path (see resolve_model_path) and loads; prints how to pass -m when no model
// is found.
ModelPtr load_default_or_given(const std::string& cli_value);

// ---- Options shared by run and chat --------------------------------------------------------

struct SamplingOptions {
  float temp = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
  float typical_p = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  uint64_t seed = 0;
  bool seed_given = false;  // filled after parsing
  CLI::Option* seed_opt = nullptr;

  // Seed to use: the given one, or one from the clock (printed on stderr).
  v4_sampler_params to_params();
};

// KV cache storage: row type, page size and tier budgets (sizes as given: "512M", "2G").
struct KvOptions {
  std::string type = "f32";
  uint32_t page = 32;
  std::string vram, ram, disk_max;
  std::string disk_dir;
  bool disk_compress = false;
  // Fills the KV fields of `cp`; prints an error and returns false on a bad size.
  bool apply(v4_context_params& cp) const;
  // Bytes per cached value, for bandwidth estimates (FP8 includes its scales).
  double bytes_per_value() const;
};

// Where a context runs: --backend, --device, --devices, --split.
struct BackendOptions {
  std::string backend = "auto";  // auto|cpu|vulkan|cuda
  std::string device;            // N|NAME
  std::string devices;           // "0,1": a layer split over several devices
  std::string split;             // auto | ratios "3,1"
  // Points the backend fields of `cp` at these strings (which must outlive cp).
  void apply(v4_context_params& cp) const;
};

struct ContextOptions {
  int32_t threads = 0;
  uint32_t ctx = 0;
  KvOptions kv;
  BackendOptions where;
};

// Stop requests from SIGINT/SIGTERM/SIGHUP (installed when a disk tier is used): the abort
// callback contexts get, so a signal unwinds through the destructors that remove spill files.
void install_stop_signals();
bool stop_requested(void* user);

// Parses "4096", "64K", "512M", "2G" (powers of 1024). False on anything else.
bool parse_size(const std::string& text, uint64_t* out);

void add_sampling_options(CLI::App* cmd, SamplingOptions& s);
void add_kv_options(CLI::App* cmd, KvOptions& kv);
// `with_devices` false: the caller registers --devices itself (v4 info lists devices with it).
void add_context_options(CLI::App* cmd, ContextOptions& c, bool with_devices = true);
// --backend, --device, --devices and --split (part of add_context_options).
void add_backend_options(CLI::App* cmd, BackendOptions& b, bool with_devices = true);

// Creates a context (abort callback optional). On failure prints the error and returns null.
ContextPtr create_context(v4_model* model, const ContextOptions& opts,
                          v4_abort_fn abort_fn = nullptr, void* abort_user = nullptr);
SamplerPtr create_sampler(const v4_model* model, SamplingOptions& opts);

// ---- Text and I/O ------------------------------------------------------------------------

bool read_file(const std::string& path, std::string& out);
// Text of tokens (v4_detokenize, growing the buffer as needed).
std::string detokenize(const v4_model* model, const std::vector<v4_token>& tokens,
                       bool render_special);
// Tokens of text (v4_tokenize, growing the buffer as needed). False on error (printed).
bool tokenize(const v4_model* model, const std::string& text, bool add_bos, bool parse_special,
              std::vector<v4_token>& out);
// Writes bytes to stdout and flushes; false when stdout is gone.
bool write_stdout(const char* data, size_t len);

bool stdin_is_tty();
bool stdout_is_tty();
bool stderr_is_tty();

using Clock = std::chrono::steady_clock;
inline double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace v4::cli
