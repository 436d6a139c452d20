// v4 perplexity: perplexity of a model over a text file, for judging quantisation loss.
//
// The method is llama.cpp's `perplexity` tool's, so the numbers are comparable:
//  - the whole text is tokenized once, with BOS;
//  - it is cut into chunks of --ctx tokens (a tail shorter than --ctx is dropped); the first
//    token of every chunk is replaced by BOS and each chunk is evaluated from an empty cache
//    in one v4_decode;
//  - only the second half of each chunk is scored, so every scored token sees at least
//    ctx/2 tokens of context: logits at positions first = ctx/2 ... ctx-2 predict the tokens
//    at first+1 ... ctx-1 (ctx/2 - 1 tokens per chunk); logits are requested for those
//    positions only;
//  - the negative log-likelihood of each is computed with a log-softmax in double (max
//    subtracted), summed in a fixed order, so the result does not depend on the thread count;
//  - perplexity = exp(mean NLL); the uncertainty is that of the mean, propagated:
//    ppl * sqrt(var(NLL) / (n - 1)).
// Progress (the running estimate per chunk) goes to stderr; the result to stdout.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common.h"

namespace v4::cli {

namespace {

struct PerplexityOptions {
  std::string model;
  std::string text_file;
  int32_t ctx = 512;
  BackendOptions where;
  int32_t threads = 0;
  int32_t chunks = 0;  // 0: all
  KvOptions kv;
  std::string kv_compare;  // another KV type to measure top-1 agreement against
  bool json = false;
  bool verbose = false;
};

struct Accumulator {
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  double ppl() const { return std::exp(nll / static_cast<double>(count)); }
  double ppl_err() const {
    if (count < 2) return 0.0;
    const double mean = nll / count;
    const double var = std::max(0.0, nll2 / count - mean * mean);
    return ppl() * std::sqrt(var / static_cast<double>(count - 1));
  }
};

// -log softmax(logits)[target], in double.
double token_nll(const float* logits, int32_t n_vocab, v4_token target) {
  float mx = logits[0];
  for (int32_t i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  return std::log(sum) - (static_cast<double>(logits[target]) - mx);
}

int perplexity_main(PerplexityOptions& o) {
  setup_logging(o.verbose);
  if (o.ctx < 4) return fail("--ctx must be at least 4", kExitUsage);
  if (o.threads < 0) return fail("--threads must be >= 0", kExitUsage);
  if (o.chunks < 0) return fail("--chunks must be >= 0", kExitUsage);
  std::string text;
  if (!read_file(o.text_file, text)) return fail("cannot read '" + o.text_file + "'");

  ModelPtr model = load_default_or_given(o.model);
  if (!model) return kExitError;
  const int32_t n_vocab = v4_model_n_vocab(model.get());

  std::vector<v4_token> tokens;
  if (!tokenize(model.get(), text, true, false, tokens)) return kExitError;
  const int64_t n_ctx = o.ctx;
  if (static_cast<int64_t>(tokens.size()) < 2 * n_ctx)
    return fail("the text has " + std::to_string(tokens.size()) +
                " tokens; perplexity with --ctx " + std::to_string(n_ctx) + " needs at least " +
                std::to_string(2 * n_ctx) + " (two chunks); use a longer text or a smaller --ctx");
  int64_t n_chunks = static_cast<int64_t>(tokens.size()) / n_ctx;
  if (o.chunks > 0) n_chunks = std::min<int64_t>(n_chunks, o.chunks);

  v4_context_params cp = v4_context_default_params();
  cp.n_ctx = static_cast<uint32_t>(n_ctx);
  cp.n_batch = static_cast<uint32_t>(n_ctx);
  cp.n_threads = o.threads;
  cp.n_threads_batch = o.threads;
  if (!o.kv.apply(cp)) return kExitUsage;
  o.where.apply(cp);
  v4_context* raw = nullptr;
  if (v4_status st = v4_context_create(model.get(), &cp, &raw); st != V4_OK)
    return fail_status("cannot create context", st);
  ContextPtr ctx(raw);
  // --kv-compare: the same windows through a context with other KV pages (teacher forcing:
  // both read the text's tokens), counting positions whose most likely next token agrees.
  ContextPtr ref;
  if (!o.kv_compare.empty()) {
    KvOptions other = o.kv;
    other.type = o.kv_compare;
    v4_context_params rp = cp;
    if (!other.apply(rp)) return kExitUsage;
    v4_context* r = nullptr;
    if (v4_status st = v4_context_create(model.get(), &rp, &r); st != V4_OK)
      return fail_status("cannot create the comparison context", st);
    ref.reset(r);
  }
  int64_t agree = 0;
  Accumulator ref_acc;

  const v4_token bos = v4_token_bos(model.get());
  const int64_t first = n_ctx / 2;
  std::vector<v4_token> window(static_cast<size_t>(n_ctx));
  std::vector<int8_t> want(static_cast<size_t>(n_ctx), 0);
  for (int64_t j = first; j < n_ctx - 1; ++j) want[static_cast<size_t>(j)] = 1;

  std::fprintf(stderr,
               "perplexity: %zu tokens, %lld chunks of %lld, scoring the last %lld tokens of "
               "each\n",
               tokens.size(), static_cast<long long>(n_chunks), static_cast<long long>(n_ctx),
               static_cast<long long>(n_ctx - 1 - first));
  Accumulator acc;
  const auto t0 = Clock::now();
  for (int64_t c = 0; c < n_chunks; ++c) {
    const auto tc = Clock::now();
    std::copy(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx, window.begin());
    if (bos >= 0) window[0] = bos;
    if (v4_status st = v4_seq_clear(ctx.get(), -1); st != V4_OK)
      return fail_status("cannot clear the cache", st);
    v4_batch b{};
    b.n_tokens = static_cast<int32_t>(n_ctx);
    b.tokens = window.data();
    b.logits = want.data();
    if (v4_status st = v4_decode(ctx.get(), &b); st != V4_OK)
      return fail_status("decode failed in chunk " + std::to_string(c + 1), st);
    if (ref) {
      if (v4_status st = v4_seq_clear(ref.get(), -1); st != V4_OK)
        return fail_status("cannot clear the cache", st);
      if (v4_status st = v4_decode(ref.get(), &b); st != V4_OK)
        return fail_status("decode (comparison) failed in chunk " + std::to_string(c + 1), st);
    }
    for (int64_t j = first; j < n_ctx - 1; ++j) {
      const float* logits = v4_get_logits(ctx.get(), static_cast<int32_t>(j));
      if (!logits)
        return fail_status("no logits at position " + std::to_string(j), V4_ERR_INTERNAL);
      const v4_token next = window[static_cast<size_t>(j + 1)];
      const double nll = token_nll(logits, n_vocab, next);
      acc.nll += nll;
      acc.nll2 += nll * nll;
      ++acc.count;
      if (ref) {
        const float* rl = v4_get_logits(ref.get(), static_cast<int32_t>(j));
        if (!rl) return fail_status("no comparison logits", V4_ERR_INTERNAL);
        agree += std::max_element(logits, logits + n_vocab) - logits ==
                 std::max_element(rl, rl + n_vocab) - rl;
        const double rn = token_nll(rl, n_vocab, next);
        ref_acc.nll += rn;
        ref_acc.nll2 += rn * rn;
        ++ref_acc.count;
      }
    }
    std::fprintf(stderr, "chunk %lld/%lld: running perplexity %.4f (%.2f s)\n",
                 static_cast<long long>(c + 1), static_cast<long long>(n_chunks), acc.ppl(),
                 seconds_between(tc, Clock::now()));
  }
  const double seconds = seconds_between(t0, Clock::now());
  const double ppl = acc.ppl(), err = acc.ppl_err();
  if (!std::isfinite(ppl)) return fail("perplexity is not finite (the model produced NaN/Inf)");
  if (o.json) {
    std::printf(
        "{\"test\": \"perplexity\", \"model\": \"%s\", \"text\": \"%s\", \"ctx\": %lld, "
        "\"chunks\": %lld, \"tokens\": %zu, \"scored\": %lld, \"perplexity\": %.6f, "
        "\"ppl_err\": %.6f, \"mean_nll\": %.8f, \"seconds\": %.3f}\n",
        std::filesystem::path(o.model.empty() ? std::string("default") : o.model)
            .filename()
            .string()
            .c_str(),
        std::filesystem::path(o.text_file).filename().string().c_str(),
        static_cast<long long>(n_ctx), static_cast<long long>(n_chunks), tokens.size(),
        static_cast<long long>(acc.count), ppl, err, acc.nll / acc.count, seconds);
  } else {
    std::printf("perplexity: %.4f (+/- %.4f)\n", ppl, err);
  }
  if (ref) {
    const double rate = static_cast<double>(agree) / static_cast<double>(acc.count);
    if (o.json)
      std::printf("{\"test\": \"kv_compare\", \"kv_type\": \"%s\", \"compare_kv\": \"%s\", "
                  "\"top1_agreement\": %.6f, \"perplexity\": %.6f, \"compare_perplexity\": %.6f}\n",
                  o.kv.type.c_str(), o.kv_compare.c_str(), rate, ppl, ref_acc.ppl());
    else
      std::printf("top-1 agreement with %s KV pages: %.2f%% (%lld of %lld); their perplexity "
                  "%.4f\n",
                  o.kv_compare.c_str(), 100.0 * rate, static_cast<long long>(agree),
                  static_cast<long long>(acc.count), ref_acc.ppl());
  }
  std::fflush(stdout);
  std::fprintf(stderr, "perplexity: %lld tokens scored in %.2f s\n",
               static_cast<long long>(acc.count), seconds);
  return kExitOk;
}

}  // namespace

void register_perplexity(CLI::App& app, Action& action) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* cmd =
      app.add_subcommand("perplexity", "Perplexity of a model over a text (llama.cpp's method)");
  cmd->add_option("-m,--model", o->model, "Model file (default: the bundled model)");
  cmd->add_option("-f,--file", o->text_file, "Text file")->required();
  cmd->add_option("--ctx", o->ctx, "Tokens per chunk; the second half of each is scored")
      ->capture_default_str();
  cmd->add_option("--chunks", o->chunks, "Evaluate at most this many chunks (0: all)")
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "Threads (default: all cores)");
  add_load_option(cmd);
  add_kv_options(cmd, o->kv);
  cmd->add_option("--kv-compare", o->kv_compare,
                  "Also run with this KV type and report top-1 agreement (teacher forcing)")
      ->check(CLI::IsMember({"f32", "f16", "bf16", "fp8"}));
  add_backend_options(cmd, o->where);
  cmd->add_flag("--json", o->json, "Print the result as one JSON object");
  cmd->add_flag("-v,--verbose", o->verbose, "Show the library's log");
  cmd->callback([o, &action] { action = [o] { return perplexity_main(*o); }; });
}

}  // namespace v4::cli
