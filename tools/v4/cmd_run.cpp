// v4 run: one prompt in, the prompt followed by the generated text out (stdout carries
// nothing else). Timings and the seed go to stderr.
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace v4::cli {

namespace {

struct RunOptions {
  std::string model;
  std::string prompt;
  std::string prompt_file;
  std::string prompt_ids;
  std::string logits_out;
  std::string session;
  bool stats = false;
  int32_t n_predict = 128;
  bool no_bos = false;
  bool verbose = false;
  SamplingOptions sampling;
  ContextOptions context;
};

// "1,450,4996" (spaces allowed) -> ids. Empty string on success, else the reason.
std::string parse_ids(const std::string& text, std::vector<v4_token>& out) {
  out.clear();
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',')) ++i;
    if (i == text.size()) break;
    size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j == i || j - i > 9) return "expected comma-separated token ids, got '" + text + "'";
    out.push_back(static_cast<v4_token>(std::stol(text.substr(i, j - i))));
    i = j;
    if (i < text.size() && text[i] != ',' && text[i] != ' ') {
      return "expected comma-separated token ids, got '" + text + "'";
    }
  }
  if (out.empty()) return "--prompt-ids needs at least one token id";
  return {};
}

struct FileCloser {
  void operator()(FILE* f) const {
    if (f) std::fclose(f);
  }
};

struct RunState {
  v4_context* ctx = nullptr;
  FILE* logits = nullptr;
  int32_t n_vocab = 0;
  std::vector<float> row_le;  // scratch for big-endian hosts
  bool got_first = false;
  Clock::time_point first;
  int32_t n_callbacks = 0;
  std::string error;  // set when the callback stopped generation because of a failure
};

bool write_logits_row(RunState& s) {
  const float* row = v4_get_logits(s.ctx, -1);
  if (!row) {
    s.error = std::string("no logits for the sampled token: ") + v4_last_error();
    return false;
  }
  const size_t n = static_cast<size_t>(s.n_vocab);
  const float* data = row;
  if constexpr (std::endian::native == std::endian::big) {
    s.row_le.resize(n);
    for (size_t i = 0; i < n; ++i) {
      uint32_t u;
      std::memcpy(&u, &row[i], 4);
      u = (u >> 24) | ((u >> 8) & 0xff00u) | ((u << 8) & 0xff0000u) | (u << 24);
      std::memcpy(&s.row_le[i], &u, 4);
    }
    data = s.row_le.data();
  }
  if (std::fwrite(data, sizeof(float), n, s.logits) != n) {
    s.error = "cannot write the logits file";
    return false;
  }
  return true;
}

bool on_token(v4_token, const char* text, size_t len, void* user) {
  auto& s = *static_cast<RunState*>(user);
  if (!s.got_first) {
    s.got_first = true;
    s.first = Clock::now();
  }
  ++s.n_callbacks;
  if (s.logits && !write_logits_row(s)) return false;
  if (!write_stdout(text, len)) {
    s.error = "cannot write to stdout";
    return false;
  }
  return true;
}

// Loads a saved session into sequence 0 and keeps the part that starts the prompt.
// Returns how many prompt tokens are already in the cache (at least one is always left to
// evaluate, so the first token has logits).
int64_t resume_session(v4_context* ctx, const std::string& path,
                       const std::vector<v4_token>& prompt) {
  if (!file_exists(path)) return 0;
  std::vector<v4_token> saved(v4_context_n_ctx(ctx));
  size_t n_saved = 0;
  if (v4_session_load(ctx, 0, path.c_str(), saved.data(), saved.size(), &n_saved) != V4_OK) {
    warn(std::string("ignoring session '") + path + "': " + v4_last_error());
    v4_seq_clear(ctx, 0);
    return 0;
  }
  size_t keep = 0;
  while (keep < n_saved && keep + 1 < prompt.size() && saved[keep] == prompt[keep]) ++keep;
  v4_seq_remove(ctx, 0, static_cast<v4_pos>(keep), -1);
  std::fprintf(stderr, "session: %zu of %zu prompt tokens restored from %s\n", keep,
               prompt.size(), path.c_str());
  return static_cast<int64_t>(keep);
}

// Saves the prompt's part of sequence 0 (what a later run with the same prompt reuses).
bool save_prompt_session(v4_context* ctx, const std::string& path, int64_t n_prompt) {
  if (v4_seq_length(ctx, 0) > n_prompt) v4_seq_remove(ctx, 0, static_cast<v4_pos>(n_prompt), -1);
  if (v4_session_save(ctx, 0, path.c_str()) != V4_OK) {
    fail(std::string("cannot save the session: ") + v4_last_error());
    return false;
  }
  return true;
}

void print_kv_stats(const v4_context* ctx) {
  v4_kv_stats st{};
  st.struct_size = sizeof st;
  if (v4_context_kv_stats(ctx, &st) != V4_OK) return;
  const v4_kv_tier_stats* tiers[] = {&st.device, &st.host, &st.disk};
  const char* names[] = {"device", "host", "disk"};
  for (int t = 0; t < 3; ++t)
    if (tiers[t]->capacity_bytes)
      std::fprintf(stderr, "kv %-6s %8" PRIu64 " blocks %10s of %10s\n", names[t],
                   tiers[t]->blocks, human_bytes(tiers[t]->bytes).c_str(),
                   human_bytes(tiers[t]->capacity_bytes).c_str());
  std::fprintf(stderr,
               "kv disk: %s read, %s written; blocks read %" PRIu64 ", hit rate %.1f%%, "
               "stalled %.3f s\n",
               human_bytes(st.disk_bytes_read).c_str(), human_bytes(st.disk_bytes_written).c_str(),
               st.block_reads,
               st.block_reads ? 100.0 * static_cast<double>(st.block_hits) / st.block_reads : 100.0,
               st.stall_seconds);
}

int run_main(RunOptions& o) {
  setup_logging(o.verbose);
  if (o.n_predict < 0) return fail("-n must be >= 0", kExitUsage);

  std::vector<v4_token> ids;
  if (!o.prompt_ids.empty()) {
    if (auto why = parse_ids(o.prompt_ids, ids); !why.empty()) return fail(why, kExitUsage);
  }
  std::string prompt = o.prompt;
  if (!o.prompt_file.empty()) {
    if (!read_file(o.prompt_file, prompt)) {
      return fail("cannot read prompt file '" + o.prompt_file + "'");
    }
    // As llama.cpp does: the newline an editor puts at the end of a file is not part of it.
    if (!prompt.empty() && prompt.back() == '\n') prompt.pop_back();
  }

  ModelPtr model = load_default_or_given(o.model);
  if (!model) return kExitError;
  const int32_t n_vocab = v4_model_n_vocab(model.get());

  std::vector<v4_token> tokens;
  std::string shown;  // what stdout starts with
  if (!ids.empty()) {
    for (v4_token t : ids) {
      if (t < 0 || t >= n_vocab) {
        return fail("token id " + std::to_string(t) + " is out of range [0, " +
                        std::to_string(n_vocab) + ")",
                    kExitUsage);
      }
    }
    tokens = ids;
    shown = detokenize(model.get(), tokens, false);
  } else {
    if (!tokenize(model.get(), prompt, !o.no_bos, false, tokens)) return kExitError;
    shown = prompt;
  }
  if (tokens.empty()) {
    return fail("nothing to evaluate: the prompt is empty and --no-bos drops the BOS token",
                kExitUsage);
  }

  ContextPtr ctx = create_context(model.get(), o.context);
  if (!ctx) return kExitError;
  const int64_t n_ctx = v4_context_n_ctx(ctx.get());
  const int64_t n_prompt = static_cast<int64_t>(tokens.size());
  if (n_prompt >= n_ctx) {
    return fail("the prompt (" + std::to_string(n_prompt) +
                " tokens) does not fit in the context (" + std::to_string(n_ctx) +
                " tokens); shorten it or pass a larger --ctx");
  }
  int32_t n_predict = o.n_predict;
  if (n_prompt + n_predict > n_ctx) {
    n_predict = static_cast<int32_t>(n_ctx - n_prompt);
    warn("the context holds " + std::to_string(n_ctx) + " tokens: generating " +
         std::to_string(n_predict) + " instead of " + std::to_string(o.n_predict));
  }

  SamplerPtr sampler = create_sampler(model.get(), o.sampling);
  if (!sampler) return kExitError;

  std::unique_ptr<FILE, FileCloser> logits_file;
  if (!o.logits_out.empty()) {
    logits_file.reset(std::fopen(o.logits_out.c_str(), "wb"));
    if (!logits_file) return fail("cannot open '" + o.logits_out + "' for writing");
  }

  RunState state;
  state.ctx = ctx.get();
  state.logits = logits_file.get();
  state.n_vocab = n_vocab;

  if (!write_stdout(shown.data(), shown.size())) return fail("cannot write to stdout");

  v4_generate_params gp = v4_generate_default_params();
  gp.n_predict = n_predict;
  gp.seq = 0;
  gp.add_bos = false;  // the tokens already carry it
  gp.parse_special = false;
  const int64_t n_cached = o.session.empty() ? 0 : resume_session(ctx.get(), o.session, tokens);
  gp.prompt_tokens = tokens.data() + n_cached;
  gp.n_prompt_tokens = static_cast<int32_t>(n_prompt - n_cached);
  gp.on_token = on_token;
  gp.user = &state;

  int32_t n_generated = 0;
  const auto t0 = Clock::now();
  v4_status st =
      n_predict > 0 ? v4_generate(ctx.get(), sampler.get(), "", &gp, &n_generated) : V4_OK;
  const auto t1 = Clock::now();
  if (stdout_is_tty()) write_stdout("\n", 1);

  if (!state.error.empty()) return fail(state.error);
  if (st == V4_ABORTED && stop_requested(nullptr)) return fail("interrupted", 130);
  if (st != V4_OK) return fail_status("generation failed", st);
  if (o.stats) print_kv_stats(ctx.get());
  if (!o.session.empty() && !save_prompt_session(ctx.get(), o.session, n_prompt))
    return kExitError;
  if (logits_file && std::fclose(logits_file.release()) != 0) {
    return fail("cannot write the logits file '" + o.logits_out + "'");
  }

  const double t_prompt = seconds_between(t0, state.got_first ? state.first : t1);
  const double t_gen = state.got_first ? seconds_between(state.first, t1) : 0.0;
  // The first token comes out of the prompt step; the others each took a decode step.
  const int32_t n_steps = n_generated > 1 ? n_generated - 1 : 0;
  std::fprintf(stderr, "prompt:    %5" PRId64 " tokens in %7.3f s (%8.1f tokens/s)\n", n_prompt,
               t_prompt, t_prompt > 0 ? static_cast<double>(n_prompt) / t_prompt : 0.0);
  std::fprintf(stderr, "generated: %5d tokens in %7.3f s (%8.1f tokens/s)\n", n_generated, t_gen,
               t_gen > 0 ? n_steps / t_gen : 0.0);
  return kExitOk;
}

}  // namespace

void register_run(CLI::App& app, Action& action) {
  auto o = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Generate text from a prompt");
  cmd->add_option("-m,--model", o->model,
                  "Model file (default: $V4_MODEL, else the bundled stories260K)");
  auto* p = cmd->add_option("-p,--prompt", o->prompt, "Prompt text (default: empty, BOS only)");
  auto* f = cmd->add_option("-f,--file", o->prompt_file, "Read the prompt from a file");
  auto* ids = cmd->add_option("--prompt-ids", o->prompt_ids,
                              "Prompt as token ids, e.g. 1,450,4996 (BOS only if given)");
  p->excludes(f);
  ids->excludes(p)->excludes(f);
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")->capture_default_str();
  add_sampling_options(cmd, o->sampling);
  add_context_options(cmd, o->context);
  cmd->add_option(
      "--logits-out", o->logits_out,
      "Write the logits row of every sampled token to FILE (n_vocab float32 LE per row)");
  cmd->add_option("--session", o->session,
                  "Reuse the prompt's cache saved in FILE (when it matches) and save it there");
  cmd->add_flag("--stats", o->stats, "Print KV tier statistics on stderr");
  cmd->add_flag("--no-bos", o->no_bos, "Do not add the BOS token to a text prompt");
  cmd->add_flag("-v,--verbose", o->verbose, "Show the library's log");
  cmd->callback([o, &action] { action = [o] { return run_main(*o); }; });
}

}  // namespace v4::cli
