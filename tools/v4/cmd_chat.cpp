// v4 chat: an interactive loop over one sequence whose KV cache is kept between turns.
// With a chat template (the model's tokenizer.chat_template, or --chat-template FILE) the
// conversation is kept as messages and rendered whole each turn through
// v4_chat_apply_template; the rendering is tokenized with special tokens parsed, and only the
// tokens after the longest prefix already in the KV cache are evaluated. Models without a
// template get plain continuation: each user line is appended to the text and the model
// continues it.
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
  std::string template_file;
  int32_t n_predict = 256;
  bool verbose = false;
  SamplingOptions sampling;
  ContextOptions context;
};

struct ReplyState {
  const v4_model* model = nullptr;
  int32_t n_tokens = 0;
  v4_token last = -1;
  std::vector<v4_token> tokens;  // sampled tokens (the final end-of-generation one excluded)
  std::string text;              // what was printed
  bool write_failed = false;
};

bool on_token(v4_token token, const char* text, size_t len, void* user) {
  auto& s = *static_cast<ReplyState*>(user);
  if (token >= 0) {  // token -1: the decoder's final flush of held-back bytes
    ++s.n_tokens;
    s.last = token;
    s.tokens.push_back(token);
  }
  s.text.append(text, len);
  if (!write_stdout(text, len)) {
    s.write_failed = true;
    return false;
  }
  return !g_interrupted.load();
}

// Text of a special token as a template prints it ("" when absent).
std::string special_text(const v4_model* model, v4_token t) {
  if (t < 0) return "";
  std::string buf(64, '\0');
  size_t n = 0;
  v4_status st = v4_token_to_piece(model, t, true, buf.data(), buf.size(), &n);
  if (st == V4_ERR_BUFFER_TOO_SMALL) {
    buf.resize(n);
    st = v4_token_to_piece(model, t, true, buf.data(), buf.size(), &n);
  }
  if (st != V4_OK) return "";
  buf.resize(n);
  return buf;
}

// Renders messages with a template; false (and the reason in *error) on failure.
bool render_template(const std::string& tmpl, const std::vector<v4_chat_message>& msgs,
                     bool add_generation_prompt, std::string& out, std::string* error) {
  size_t n = 0;
  v4_status st = v4_chat_apply_template(nullptr, tmpl.c_str(), msgs.data(), msgs.size(),
                                        add_generation_prompt, nullptr, 0, &n);
  if (st == V4_ERR_BUFFER_TOO_SMALL) {
    std::vector<char> buf(n + 1);
    st = v4_chat_apply_template(nullptr, tmpl.c_str(), msgs.data(), msgs.size(),
                                add_generation_prompt, buf.data(), buf.size(), &n);
    if (st == V4_OK) out.assign(buf.data(), n);
  }
  if (st != V4_OK && error) *error = v4_last_error();
  return st == V4_OK;
}

struct Message {
  std::string role, content;
};

class Chat {
 public:
  // `tmpl` empty: plain continuation.
  Chat(const ChatOptions& o, v4_model* model, v4_context* ctx, v4_sampler* sampler,
       std::string tmpl)
      : o_(o),
        model_(model),
        ctx_(ctx),
        sampler_(sampler),
        n_ctx_(static_cast<int64_t>(v4_context_n_ctx(ctx))),
        tmpl_(std::move(tmpl)),
        bos_text_(special_text(model, v4_token_bos(model))) {
    start_messages();
  }

  void reset() {
    v4_seq_clear(ctx_, 0);
    v4_sampler_reset(sampler_);
    first_turn_ = true;
    pending_.clear();
    cached_.clear();
    start_messages();
  }

  // One user line -> one streamed reply. Returns false on a fatal error (already printed).
  bool turn(const std::string& line) {
    if (!tmpl_.empty()) return templated_turn(line);
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
    const Reply r = stream_reply(prompt, room, state);
    if (r != Reply::done) return r != Reply::fatal;
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
  void start_messages() {
    messages_.clear();
    if (!tmpl_.empty() && !o_.system.empty()) messages_.push_back({"system", o_.system});
  }

  // Renders the conversation (with the assistant's opening) and tokenizes it with special
  // tokens parsed. A BOS is added only when the template does not print one itself.
  bool render(std::vector<v4_token>& tokens) {
    std::vector<v4_chat_message> msgs;
    for (const Message& m : messages_) msgs.push_back({m.role.c_str(), m.content.c_str()});
    // Given the model, the C API passes its BOS/EOS texts to the template.
    size_t n = 0;
    std::string text;
    v4_status st = v4_chat_apply_template(model_, tmpl_.c_str(), msgs.data(), msgs.size(), true,
                                          nullptr, 0, &n);
    if (st == V4_ERR_BUFFER_TOO_SMALL) {
      std::vector<char> buf(n + 1);
      st = v4_chat_apply_template(model_, tmpl_.c_str(), msgs.data(), msgs.size(), true, buf.data(),
                                  buf.size(), &n);
      if (st == V4_OK) text.assign(buf.data(), n);
    }
    if (st != V4_OK) {
      std::fprintf(stderr, "[the chat template failed: %s]\n", v4_last_error());
      return false;
    }
    const bool has_bos = !bos_text_.empty() && text.compare(0, bos_text_.size(), bos_text_) == 0;
    return tokenize(model_, text, !has_bos, true, tokens);
  }

  bool templated_turn(const std::string& line) {
    messages_.push_back({"user", line});
    std::vector<v4_token> tokens;
    // Drop the oldest turns (after a system message) until the rendering leaves room to reply.
    for (;;) {
      if (!render(tokens)) {
        messages_.pop_back();
        write_stdout("\n", 1);
        return true;
      }
      if (static_cast<int64_t>(tokens.size()) + 1 <= n_ctx_) break;
      const size_t first = (!messages_.empty() && messages_[0].role == "system") ? 1 : 0;
      if (messages_.size() - first <= 1) {
        std::fprintf(stderr,
                     "[this message (%zu tokens with the template) does not fit in the context "
                     "(%" PRId64 " tokens); it was skipped]\n",
                     tokens.size(), n_ctx_);
        messages_.pop_back();
        write_stdout("\n", 1);
        return true;
      }
      // Remove the oldest exchange: one message, then up to the next user message.
      messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(first));
      while (messages_.size() - first > 1 && messages_[first].role != "user")
        messages_.erase(messages_.begin() + static_cast<std::ptrdiff_t>(first));
      std::fprintf(stderr, "[context full: the oldest turn was dropped]\n");
    }
    // Reuse the longest prefix already in the cache; evaluate at least one token.
    size_t keep = 0;
    const size_t in_cache =
        std::min<size_t>(cached_.size(), static_cast<size_t>(v4_seq_length(ctx_, 0)));
    while (keep < in_cache && keep < tokens.size() && cached_[keep] == tokens[keep]) ++keep;
    if (keep == tokens.size()) --keep;
    if (static_cast<size_t>(v4_seq_length(ctx_, 0)) > keep) {
      const v4_status st =
          keep == 0 ? v4_seq_clear(ctx_, 0) : v4_seq_remove(ctx_, 0, static_cast<v4_pos>(keep), -1);
      if (st != V4_OK) {
        fail_status("cannot trim the KV cache", st);
        return false;
      }
    }
    cached_.assign(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(keep));
    const std::vector<v4_token> prompt(tokens.begin() + static_cast<std::ptrdiff_t>(keep),
                                       tokens.end());

    const int64_t room = n_ctx_ - static_cast<int64_t>(tokens.size());
    ReplyState state;
    v4_sampler_reset(sampler_);
    const Reply r = stream_reply(prompt, room, state);
    if (r != Reply::done) return r != Reply::fatal;
    // The cache now holds the prompt and the evaluated part of the reply.
    const size_t len = static_cast<size_t>(std::max<v4_pos>(v4_seq_length(ctx_, 0), 0));
    cached_ = tokens;
    for (size_t i = 0; cached_.size() < len && i < state.tokens.size(); ++i)
      cached_.push_back(state.tokens[i]);
    cached_.resize(std::min(cached_.size(), len));
    messages_.push_back({"assistant", state.text});
    return true;
  }

  // Evaluates `prompt` on sequence 0 and streams up to min(-n, room) reply tokens to stdout,
  // with Ctrl-C stopping the reply. `reset`: the context filled up and the conversation was
  // reset (already reported); `fatal`: an error was printed.
  enum class Reply { done, reset, fatal };
  Reply stream_reply(const std::vector<v4_token>& prompt, int64_t room, ReplyState& state) {
    state.model = model_;
    v4_generate_params gp = v4_generate_default_params();
    gp.n_predict = static_cast<int32_t>(std::min<int64_t>(o_.n_predict, room));
    gp.seq = 0;
    gp.add_bos = false;  // the prompt tokens carry BOS where it belongs
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
    if (state.write_failed) return Reply::fatal;
    if (interrupted || st == V4_ABORTED) std::fprintf(stderr, "[interrupted]\n");
    if (st == V4_ERR_CONTEXT_FULL) {
      std::fprintf(stderr, "[context full (%" PRId64 " tokens): conversation reset]\n", n_ctx_);
      reset();
      return Reply::reset;
    }
    if (st != V4_OK && st != V4_ABORTED) {
      fail_status("generation failed", st);
      return Reply::fatal;
    }
    return Reply::done;
  }

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
  // Template mode.
  std::string tmpl_;
  std::string bos_text_;
  std::vector<Message> messages_;
  std::vector<v4_token> cached_;  // tokens in the KV cache of sequence 0
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
  std::string tmpl;
  const char* source = "tokenizer.chat_template";
  if (!o.template_file.empty()) {
    if (!read_file(o.template_file, tmpl))
      return fail("cannot read the chat template file '" + o.template_file + "'", kExitUsage);
    source = "--chat-template";
  } else if (const char* t = v4_model_chat_template(model.get())) {
    tmpl = t;
  }
  if (!tmpl.empty()) {
    // Try the template once on a one-message conversation before relying on it.
    std::string text, error;
    if (render_template(tmpl, {{"user", "test"}}, true, text, &error)) {
      std::fprintf(stderr, "template: %s (%s)\n", v4_chat_template_family(tmpl.c_str()), source);
    } else {
      warn("the chat template cannot be used (" + error + "); plain continuation");
      tmpl.clear();
    }
  }
  if (tmpl.empty()) std::fprintf(stderr, "template: none (plain continuation)\n");
  if (interactive) std::fprintf(stderr, "type /help for commands\n");

  Chat chat(o, model.get(), ctx.get(), sampler.get(), tmpl);
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
  CLI::App* cmd = app.add_subcommand(
      "chat", "Interactive chat with the model's chat template (else plain continuation)");
  cmd->add_option("-m,--model", o->model,
                  "Model file (default: $V4_MODEL, else the bundled stories260K)");
  cmd->add_option("--system", o->system,
                  "System message (with a template), or text put before the first line");
  cmd->add_option("--chat-template", o->template_file,
                  "Jinja chat template file to use instead of the model's");
  cmd->add_option("-n,--n-predict", o->n_predict, "Maximum tokens per reply")
      ->capture_default_str();
  add_sampling_options(cmd, o->sampling);
  add_context_options(cmd, o->context);
  cmd->add_flag("-v,--verbose", o->verbose, "Show the library's log");
  cmd->callback([o, &action] { action = [o] { return chat_main(*o); }; });
}

}  // namespace v4::cli
