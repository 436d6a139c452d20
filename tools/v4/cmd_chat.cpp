// v4 chat: an interactive loop over one sequence whose KV cache is kept between turns.
// Models without a chat template get plain continuation: each user line is appended to the
// conversation and the model continues it. (Templates are applied once the C API has
// v4_chat_apply_template; until then templated models are also continued plainly.)
#include <editline/readline.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace v4::cli {

namespace {

// Set by SIGINT while a reply is streaming; the abort and token callbacks read it.
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_sigint(int) { g_interrupted.store(true); }

bool abort_requested(void*) { return g_interrupted.load(); }

// Ctrl-C stops the reply (not the program) only while this guard lives; at the prompt the
// default action applies and Ctrl-C exits.
class SigintGuard {
 public:
  SigintGuard() {
    g_interrupted.store(false);
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sigaction(SIGINT, &sa, &old_);
  }
  ~SigintGuard() { sigaction(SIGINT, &old_, nullptr); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  struct sigaction old_ {};
};

struct ChatOptions {
  std::string model;
  std::string system;
  int32_t n_predict = 256;
  bool verbose = false;
  SamplingOptions sampling;
  ContextOptions context;
};

struct ReplyState {
  const v4_model* model = nullptr;
  int32_t n_tokens = 0;
  v4_token last = -1;
  bool write_failed = false;
};

bool on_token(v4_token token, const char* text, size_t len, void* user) {
  auto& s = *static_cast<ReplyState*>(user);
  ++s.n_tokens;
  s.last = token;
  if (!write_stdout(text, len)) {
    s.write_failed = true;
    return false;
  }
  return !g_interrupted.load();
}

class Chat {
 public:
  Chat(const ChatOptions& o, v4_model* model, v4_context* ctx, v4_sampler* sampler)
      : o_(o),
        model_(model),
        ctx_(ctx),
        sampler_(sampler),
        n_ctx_(static_cast<int64_t>(v4_context_n_ctx(ctx))) {}

  void reset() {
    v4_seq_clear(ctx_, 0);
    v4_sampler_reset(sampler_);
    first_turn_ = true;
    pending_.clear();
  }

  // One user line -> one streamed reply. Returns false on a fatal error (already printed).
  bool turn(const std::string& line) {
    std::vector<v4_token> prompt;
    if (!build_prompt(line, prompt)) return false;
    int64_t pos = v4_seq_length(ctx_, 0);
    if (pos + static_cast<int64_t>(prompt.size()) + 1 > n_ctx_ && !first_turn_) {
      std::fprintf(stderr, "[context full (%" PRId64 " tokens): conversation reset]\n", n_ctx_);
      reset();
      if (!build_prompt(line, prompt)) return false;
      pos = 0;
    }
    if (pos + static_cast<int64_t>(prompt.size()) + 1 > n_ctx_) {
      std::fprintf(stderr,
                   "[this message (%zu tokens) does not fit in the context (%" PRId64
                   " tokens); it was skipped]\n",
                   prompt.size(), n_ctx_);
      write_stdout("\n", 1);
      return true;
    }
    const int64_t room = n_ctx_ - pos - static_cast<int64_t>(prompt.size());
    ReplyState state;
    state.model = model_;
    v4_generate_params gp = v4_generate_default_params();
    gp.n_predict = static_cast<int32_t>(std::min<int64_t>(o_.n_predict, room));
    gp.seq = 0;
    gp.add_bos = false;  // the prompt tokens carry it on the first turn
    gp.prompt_tokens = prompt.data();
    gp.n_prompt_tokens = static_cast<int32_t>(prompt.size());
    gp.on_token = on_token;
    gp.user = &state;

    v4_status st;
    bool interrupted;
    {
      SigintGuard guard;
      st = v4_generate(ctx_, sampler_, "", &gp, nullptr);
      interrupted = g_interrupted.exchange(false);
    }
    write_stdout("\n", 1);
    if (state.write_failed) return false;
    if (interrupted || st == V4_ABORTED) std::fprintf(stderr, "[interrupted]\n");

    if (st == V4_ERR_CONTEXT_FULL) {
      std::fprintf(stderr, "[context full (%" PRId64 " tokens): conversation reset]\n", n_ctx_);
      reset();
      return true;
    }
    if (st != V4_OK && st != V4_ABORTED) {
      fail_status("generation failed", st);
      return false;
    }
    first_turn_ = false;
    // The last sampled token may not have been evaluated yet (generation stops after
    // sampling it); if so, it leads the next turn's prompt so that the cache matches the
    // text the user saw. An end-of-generation token is not carried over.
    pending_.clear();
    const int64_t expected = pos + static_cast<int64_t>(prompt.size()) + state.n_tokens;
    if (state.n_tokens > 0 && v4_seq_length(ctx_, 0) == expected - 1 &&
        !v4_token_is_eog(model_, state.last)) {
      pending_.push_back(state.last);
    }
    return true;
  }

 private:
  bool build_prompt(const std::string& line, std::vector<v4_token>& out) {
    std::string text;
    if (first_turn_) {
      text = o_.system.empty() ? line : o_.system + "\n" + line;
    } else {
      text = "\n" + line;
    }
    std::vector<v4_token> toks;
    if (!tokenize(model_, text, first_turn_, false, toks)) return false;
    out = pending_;
    out.insert(out.end(), toks.begin(), toks.end());
    if (out.empty() && first_turn_) {
      v4_token bos = v4_token_bos(model_);
      if (bos >= 0) out.push_back(bos);
    }
    return true;
  }

  const ChatOptions& o_;
  v4_model* model_;
  v4_context* ctx_;
  v4_sampler* sampler_;
  int64_t n_ctx_;
  bool first_turn_ = true;
  std::vector<v4_token> pending_;
};

void print_help() {
  std::fprintf(stderr,
               "commands:\n"
               "  /help   show this help\n"
               "  /reset  forget the conversation (clears the KV cache)\n"
               "  /quit   leave (Ctrl-D does too)\n"
               "Ctrl-C stops a reply; at the prompt it leaves.\n");
}

int chat_main(ChatOptions& o) {
  setup_logging(o.verbose);
  if (o.n_predict < 0) return fail("-n must be >= 0", kExitUsage);
  ModelPtr model = load_default_or_given(o.model);
  if (!model) return kExitError;
  ContextPtr ctx = create_context(model.get(), o.context, abort_requested, nullptr);
  if (!ctx) return kExitError;
  SamplerPtr sampler = create_sampler(model.get(), o.sampling);
  if (!sampler) return kExitError;

  const bool interactive = stdin_is_tty();
  std::fprintf(stderr, "model: %s (%s, context %u tokens)\n", v4_model_name(model.get()),
               v4_model_arch(model.get()), v4_context_n_ctx(ctx.get()));
  if (v4_model_chat_template(model.get())) {
    std::fprintf(stderr,
                 "template: present, not applied yet (plain continuation until the template "
                 "engine lands)\n");
  } else {
    std::fprintf(stderr, "template: none (plain continuation)\n");
  }
  if (interactive) std::fprintf(stderr, "type /help for commands\n");

  Chat chat(o, model.get(), ctx.get(), sampler.get());
  if (interactive) using_history();
  while (true) {
    std::string line;
    if (interactive) {
      char* raw = readline("> ");
      if (!raw) {  // Ctrl-D
        std::fprintf(stderr, "\n");
        break;
      }
      line = raw;
      if (!line.empty()) add_history(raw);
      std::free(raw);
      if (line.empty()) continue;
    } else {
      if (!std::getline(std::cin, line)) break;
      if (!line.empty() && line.back() == '\r') line.pop_back();
    }
    if (line == "/quit" || line == "/exit") break;
    if (line == "/help") {
      print_help();
      continue;
    }
    if (line == "/reset") {
      chat.reset();
      std::fprintf(stderr, "[conversation reset]\n");
      continue;
    }
    if (!line.empty() && line[0] == '/' && line.find(' ') == std::string::npos) {
      std::fprintf(stderr, "unknown command '%s'\n", line.c_str());
      print_help();
      continue;
    }
    if (!chat.turn(line)) return kExitError;
  }
  return kExitOk;
}

}  // namespace

void register_chat(CLI::App& app, Action& action) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "Interactive chat (plain continuation for now)");
  cmd->add_option("-m,--model", o->model,
                  "Model file (default: $V4_MODEL, else the bundled stories260K)");
  cmd->add_option("--system", o->system, "System text put before the first message");
  cmd->add_option("-n,--n-predict", o->n_predict, "Maximum tokens per reply")
      ->capture_default_str();
  add_sampling_options(cmd, o->sampling);
  add_context_options(cmd, o->context);
  cmd->add_flag("-v,--verbose", o->verbose, "Show the library's log");
  cmd->callback([o, &action] { action = [o] { return chat_main(*o); }; });
}

}  // namespace v4::cli
