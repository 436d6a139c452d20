// The C ABI: every entry point converts C++ results and exceptions into a v4_status
// and a thread-local message. Nothing thrown inside gets past this file.
#include "v4engine.h"

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "lib/api/api_error.h"
#include "lib/api/handles.h"
#include "lib/core/error.h"
#include "lib/core/log.h"
#include "lib/core/threadpool.h"
#include "lib/model/model.h"
#include "lib/runtime/backend_registry.h"
#include "lib/runtime/context.h"
#include "lib/runtime/session.h"
#include "lib/sample/sampler.h"
#include "lib/text/utf8_stream.h"

namespace {

using v4::api::guarded;
using v4::api::read_params;
using v4::api::set_error;

v4::Logger logger(v4_log_fn fn, void* user) {
  v4::Logger l;
  l.fn = reinterpret_cast<v4::LogFn>(fn);
  l.user = user;
  return l;
}

v4_status copy_out(const std::string& s, char* buf, size_t cap, size_t* needed, bool nul) {
  if (needed) *needed = s.size();
  if (!buf || cap < s.size() + (nul ? 1 : 0)) {
    return set_error(V4_ERR_BUFFER_TOO_SMALL,
                     "buffer of " + std::to_string(cap) + " bytes is too small; " +
                         std::to_string(s.size() + (nul ? 1 : 0)) + " needed");
  }
  std::memcpy(buf, s.data(), s.size());
  if (nul) buf[s.size()] = '\0';
  return V4_OK;
}

}  // namespace

extern "C" {

const char* v4_version(void) { return V4_VERSION_STRING; }

const char* v4_status_string(v4_status status) {
  if (status == V4_ERR_BUFFER_TOO_SMALL) return "buffer too small";
  return v4::status_name(static_cast<v4::Status>(status));
}

const char* v4_last_error(void) { return v4::api::last_error(); }

void v4_set_log_callback(v4_log_fn fn, void* user) {
  v4::set_global_log(reinterpret_cast<v4::LogFn>(fn), user);
}

v4_model_params v4_model_default_params(void) {
  v4_model_params p{};
  p.struct_size = sizeof(p);
  return p;
}

v4_status v4_model_load(const char* path, const v4_model_params* params, v4_model** out) {
  V4_REQUIRE(out != nullptr, "v4_model_load: out is NULL");
  *out = nullptr;
  V4_REQUIRE(path != nullptr, "v4_model_load: path is NULL");
  v4_model_params p = v4_model_default_params();
  V4_REQUIRE(read_params(params, &p), "v4_model_load: params->struct_size is invalid");
  return guarded([&] {
    v4::ModelLoadOptions o;
    o.vocab_only = p.vocab_only;
    o.progress = p.progress;
    o.progress_user = p.progress_user;
    o.log = logger(p.log, p.log_user);
    if (p.load_mode < V4_LOAD_AUTO || p.load_mode > V4_LOAD_MLOCK)
      v4::fail(v4::Status::invalid_arg, "v4_model_load: unknown load mode {}",
               static_cast<int>(p.load_mode));
    o.load_mode = static_cast<v4::LoadMode>(p.load_mode);
    auto m = std::make_unique<v4_model>();
    m->impl = v4::Model::load(path, o);
    m->arch_name = m->impl->arch() ? m->impl->arch()->info().name : "";
    for (const auto& kv : m->impl->file().kvs()) m->meta_keys.push_back(kv.key);
    *out = m.release();
  });
}

void v4_model_free(v4_model* model) { delete model; }

v4_load_mode v4_model_load_mode(const v4_model* m) {
  return m ? static_cast<v4_load_mode>(m->impl->load_mode()) : V4_LOAD_AUTO;
}

const char* v4_load_mode_name(v4_load_mode mode) {
  return v4::load_mode_name(static_cast<v4::LoadMode>(mode));
}

int32_t v4_model_n_vocab(const v4_model* m) {
  return m ? m->impl->vocab().n_tokens() : 0;
}
int32_t v4_model_n_ctx_train(const v4_model* m) {
  return m && m->impl->arch() ? m->impl->arch()->info().n_ctx_train : 0;
}
int32_t v4_model_n_embd(const v4_model* m) {
  return m && m->impl->arch() ? m->impl->arch()->info().n_embd : 0;
}
int32_t v4_model_n_layer(const v4_model* m) {
  return m && m->impl->arch() ? m->impl->arch()->info().n_layer : 0;
}
uint64_t v4_model_n_params(const v4_model* m) { return m ? m->impl->n_params() : 0; }
uint64_t v4_model_size_bytes(const v4_model* m) { return m ? m->impl->weight_bytes() : 0; }
const char* v4_model_arch(const v4_model* m) { return m ? m->arch_name.c_str() : ""; }
const char* v4_model_name(const v4_model* m) { return m ? m->impl->name().c_str() : ""; }
const char* v4_model_chat_template(const v4_model* m) {
  return m && !m->impl->chat_template().empty() ? m->impl->chat_template().c_str() : nullptr;
}

int32_t v4_model_meta_count(const v4_model* m) {
  return m ? static_cast<int32_t>(m->meta_keys.size()) : 0;
}

v4_status v4_model_meta_key(const v4_model* m, int32_t i, const char** key) {
  V4_REQUIRE(m && key, "v4_model_meta_key: NULL argument");
  V4_REQUIRE(i >= 0 && i < static_cast<int32_t>(m->meta_keys.size()),
             "v4_model_meta_key: index out of range");
  *key = m->meta_keys[i].c_str();
  return V4_OK;
}

v4_status v4_model_meta_value(const v4_model* m, const char* key, char* buf, size_t cap,
                              size_t* needed) {
  V4_REQUIRE(m && key, "v4_model_meta_value: NULL argument");
  const v4::gguf::KeyValue* kv = m->impl->file().find(key);
  if (!kv) return set_error(V4_ERR_INVALID_ARG, std::string("no metadata key '") + key + "'");
  std::string s;
  using VT = v4::gguf::ValueType;
  switch (kv->type) {
    case VT::string: s = std::string(kv->str); break;
    case VT::f32: case VT::f64: s = fmt::format("{}", kv->f); break;
    case VT::boolean: s = kv->u ? "true" : "false"; break;
    case VT::i8: case VT::i16: case VT::i32: case VT::i64: s = std::to_string(kv->i); break;
    case VT::array: {
      s = fmt::format("[{} x {}]", kv->count, v4::gguf::value_type_name(kv->elem_type));
      if (kv->elem_type == VT::string && !kv->strings.empty())
        s += fmt::format(" \"{}\", ...", kv->strings[0]);
      break;
    }
    default: s = std::to_string(kv->u); break;
  }
  return copy_out(s, buf, cap, needed, true);
}

int32_t v4_model_n_tensors(const v4_model* m) {
  return m ? static_cast<int32_t>(m->impl->file().tensors().size()) : 0;
}

v4_status v4_model_tensor(const v4_model* m, int32_t i, v4_tensor_info* info) {
  V4_REQUIRE(m && info, "v4_model_tensor: NULL argument");
  const auto& ts = m->impl->file().tensors();
  V4_REQUIRE(i >= 0 && i < static_cast<int32_t>(ts.size()), "v4_model_tensor: index out of range");
  const auto& t = ts[i];
  info->name = t.name.c_str();
  info->type = v4::type_name(t.file_type);
  info->n_dims = t.n_dims;
  for (int d = 0; d < 4; ++d) info->ne[d] = t.ne[d];
  info->nbytes = t.nbytes;
  return V4_OK;
}

v4_status v4_model_check(const v4_model* m) {
  V4_REQUIRE(m, "v4_model_check: model is NULL");
  return guarded([&] { m->impl->check_values(); });
}

v4_token v4_token_bos(const v4_model* m) { return m ? m->impl->vocab().bos : -1; }
v4_token v4_token_eos(const v4_model* m) { return m ? m->impl->vocab().eos : -1; }
v4_token v4_token_eot(const v4_model* m) { return m ? m->impl->vocab().eot : -1; }
bool v4_token_is_eog(const v4_model* m, v4_token t) { return m && m->impl->vocab().is_eog(t); }

v4_status v4_tokenize(const v4_model* m, const char* text, size_t len, bool add_bos,
                      bool parse_special, v4_token* tokens, int32_t cap, int32_t* n_tokens) {
  V4_REQUIRE(m && n_tokens && (text || len == 0), "v4_tokenize: NULL argument");
  V4_REQUIRE(cap >= 0 && (tokens || cap == 0), "v4_tokenize: bad output buffer");
  std::vector<int32_t> ids;
  const v4_status s = guarded([&] {
    m->impl->tokenize(std::string_view(text ? text : "", len), add_bos, parse_special, ids);
  });
  if (s != V4_OK) return s;
  *n_tokens = static_cast<int32_t>(ids.size());
  if (static_cast<int32_t>(ids.size()) > cap)
    return set_error(V4_ERR_BUFFER_TOO_SMALL,
                     "token buffer holds " + std::to_string(cap) + " tokens; " +
                         std::to_string(ids.size()) + " needed");
  std::copy(ids.begin(), ids.end(), tokens);
  return V4_OK;
}

v4_status v4_token_to_piece(const v4_model* m, v4_token token, bool render_special, char* buf,
                            size_t cap, size_t* n_bytes) {
  V4_REQUIRE(m, "v4_token_to_piece: model is NULL");
  if (!m->impl->vocab().valid_id(token))
    return set_error(V4_ERR_INVALID_ARG, "token id " + std::to_string(token) +
                                             " is outside the vocabulary 0.." +
                                             std::to_string(m->impl->vocab().n_tokens() - 1));
  std::string piece;
  if (render_special && m->impl->tokenizer())
    piece = m->impl->tokenizer()->piece(token, true);
  else
    piece = m->impl->piece(token);
  return copy_out(piece, buf, cap, n_bytes, false);
}

v4_status v4_detokenize(const v4_model* m, const v4_token* tokens, int32_t n, bool render_special,
                        char* buf, size_t cap, size_t* n_bytes) {
  V4_REQUIRE(m && (tokens || n == 0) && n >= 0, "v4_detokenize: bad argument");
  const v4::Vocab& v = m->impl->vocab();
  std::string out;
  bool strip_space = true;  // the dummy prefix of the first text piece
  for (int32_t i = 0; i < n; ++i) {
    if (!v.valid_id(tokens[i]))
      return set_error(V4_ERR_INVALID_ARG, "token " + std::to_string(i) + " has id " +
                                               std::to_string(tokens[i]) +
                                               ", outside the vocabulary");
    std::string piece = render_special && m->impl->tokenizer()
                            ? m->impl->tokenizer()->piece(tokens[i], true)
                            : m->impl->piece(tokens[i]);
    if (strip_space && v.kind == v4::VocabKind::spm && v.add_space_prefix && !piece.empty() &&
        piece[0] == ' ')
      piece.erase(0, 1);
    if (!piece.empty()) strip_space = false;
    out += piece;
  }
  return copy_out(out, buf, cap, n_bytes, true);
}

v4_status v4_threadpool_create(int32_t n_threads, v4_threadpool** out) {
  V4_REQUIRE(out, "v4_threadpool_create: out is NULL");
  V4_REQUIRE(n_threads >= 0 && n_threads <= 1024, "v4_threadpool_create: n_threads out of range");
  return guarded([&] {
    auto p = std::make_unique<v4_threadpool>();
    p->impl = std::make_unique<v4::ThreadPool>(n_threads == 0 ? v4::ThreadPool::default_thread_count()
                                                              : n_threads);
    *out = p.release();
  });
}

void v4_threadpool_free(v4_threadpool* pool) { delete pool; }

v4_context_params v4_context_default_params(void) {
  v4_context_params p{};
  p.struct_size = sizeof(p);
  p.n_ctx = 0;
  p.n_batch = 512;
  p.n_seq_max = 1;
  p.kv_page_tokens = 32;
  p.kv_type = V4_KV_F32;
  return p;
}

namespace {
v4::DType kv_dtype(v4_kv_type t) {
  switch (t) {
    case V4_KV_F16: return v4::DType::F16;
    case V4_KV_BF16: return v4::DType::BF16;
    case V4_KV_FP8: return v4::DType::FP8_KV;
    default: return v4::DType::F32;
  }
}
}  // namespace

v4_status v4_context_create(v4_model* model, const v4_context_params* params, v4_context** out) {
  V4_REQUIRE(out, "v4_context_create: out is NULL");
  *out = nullptr;
  V4_REQUIRE(model, "v4_context_create: model is NULL");
  v4_context_params p = v4_context_default_params();
  V4_REQUIRE(read_params(params, &p), "v4_context_create: params->struct_size is invalid");
  V4_REQUIRE(p.kv_type >= V4_KV_F32 && p.kv_type <= V4_KV_FP8,
             "v4_context_create: unknown kv_type");
  return guarded([&] {
    v4::ContextOptions o;
    o.n_ctx = p.n_ctx;
    o.n_batch = p.n_batch;
    o.n_seq_max = p.n_seq_max;
    o.n_threads = p.n_threads;
    o.n_threads_batch = p.n_threads_batch;
    o.shared_pool = p.threadpool ? p.threadpool->impl.get() : nullptr;
    o.kv_page_tokens = p.kv_page_tokens;
    o.kv_type = kv_dtype(p.kv_type);
    o.kv_budgets.hot_bytes = p.kv_device_bytes;
    o.kv_budgets.warm_bytes = p.kv_host_bytes;
    if (p.kv_disk_dir) o.kv_budgets.disk.dir = p.kv_disk_dir;
    o.kv_budgets.disk.max_bytes = p.kv_disk_max_bytes;
    o.kv_budgets.disk.compress = p.kv_disk_compress;
    o.abort = p.abort_callback;
    o.abort_user = p.abort_user;
    o.log = p.log ? logger(p.log, p.log_user) : model->impl->log();
    if (p.backend) o.backend = p.backend;
    if (p.device) o.device = p.device;
    if (p.devices) o.devices = p.devices;
    if (p.split) o.split = p.split;
    auto c = std::make_unique<v4_context>();
    c->model = model;
    c->impl = std::make_unique<v4::Context>(*model->impl, o);
    c->text.reserve(256);
    *out = c.release();
  });
}

void v4_context_free(v4_context* ctx) { delete ctx; }
uint32_t v4_context_n_ctx(const v4_context* ctx) { return ctx ? ctx->impl->n_ctx() : 0; }
const v4_model* v4_context_model(const v4_context* ctx) { return ctx ? ctx->model : nullptr; }

v4_status v4_decode(v4_context* ctx, const v4_batch* batch) {
  V4_REQUIRE(ctx && batch, "v4_decode: NULL argument");
  return guarded([&] {
    v4::BatchView b;
    b.n_tokens = batch->n_tokens;
    b.tokens = batch->tokens;
    b.pos = batch->pos;
    b.seq = batch->seq_id;
    b.logits = batch->logits;
    ctx->impl->decode(b);
  });
}

const float* v4_get_logits(v4_context* ctx, int32_t i) {
  if (!ctx) {
    set_error(V4_ERR_INVALID_ARG, "v4_get_logits: ctx is NULL");
    return nullptr;
  }
  const float* l = ctx->impl->logits(i);
  if (!l) set_error(V4_ERR_INVALID_ARG, "no logits for batch token " + std::to_string(i) +
                                            " of the last decode (not requested?)");
  return l;
}

v4_status v4_seq_clear(v4_context* ctx, v4_seq_id seq) {
  V4_REQUIRE(ctx, "v4_seq_clear: ctx is NULL");
  return guarded([&] { ctx->impl->seq_clear(seq); });
}

v4_status v4_seq_remove(v4_context* ctx, v4_seq_id seq, v4_pos p0, v4_pos p1) {
  V4_REQUIRE(ctx, "v4_seq_remove: ctx is NULL");
  return guarded([&] { ctx->impl->seq_remove(seq, p0, p1); });
}

v4_status v4_seq_copy(v4_context* ctx, v4_seq_id src, v4_seq_id dst) {
  V4_REQUIRE(ctx, "v4_seq_copy: ctx is NULL");
  return guarded([&] { ctx->impl->seq_copy(src, dst); });
}

v4_pos v4_seq_length(const v4_context* ctx, v4_seq_id seq) {
  if (!ctx || seq < 0 || seq >= static_cast<int32_t>(ctx->impl->kv().n_seq_max())) return 0;
  return ctx->impl->kv().seq_length(seq);
}

v4_status v4_context_kv_stats(const v4_context* ctx, v4_kv_stats* out) {
  V4_REQUIRE(ctx && out, "v4_context_kv_stats: NULL argument");
  V4_REQUIRE(out->struct_size >= offsetof(v4_kv_stats, stall_seconds) + sizeof(double),
             "v4_context_kv_stats: set out->struct_size = sizeof(v4_kv_stats)");
  const v4::KvStats st = ctx->impl->kv().stats();
  v4_kv_tier_stats* tiers[3] = {&out->device, &out->host, &out->disk};
  for (int t = 0; t < 3; ++t)
    *tiers[t] = {st.tiers[t].blocks, st.tiers[t].bytes, st.tiers[t].capacity_bytes};
  out->disk_bytes_read = st.disk_io.bytes_read;
  out->disk_bytes_written = st.disk_io.bytes_written;
  out->block_reads = st.block_reads;
  out->block_hits = st.block_hits;
  out->stall_seconds = st.stall_seconds;
  return V4_OK;
}

v4_status v4_session_save(v4_context* ctx, v4_seq_id seq, const char* path) {
  V4_REQUIRE(ctx && path, "v4_session_save: NULL argument");
  return guarded([&] { v4::save_session(*ctx->impl, seq, path); });
}

v4_status v4_session_load(v4_context* ctx, v4_seq_id seq, const char* path, v4_token* tokens,
                          size_t cap, size_t* n_tokens) {
  V4_REQUIRE(ctx && path, "v4_session_load: NULL argument");
  V4_REQUIRE(tokens || cap == 0, "v4_session_load: tokens is NULL but cap > 0");
  return guarded([&] {
    const std::vector<int32_t> t = v4::load_session(*ctx->impl, seq, path);
    if (cap > 0) std::memcpy(tokens, t.data(), std::min(cap, t.size()) * sizeof(int32_t));
    if (n_tokens) *n_tokens = t.size();
  });
}

v4_status v4_context_describe_plan(v4_context* ctx, char* buf, size_t cap, size_t* n_bytes) {
  V4_REQUIRE(ctx, "v4_context_describe_plan: ctx is NULL");
  std::string s;
  const v4_status st = guarded([&] { s = ctx->impl->describe_plan(); });
  if (st != V4_OK) return st;
  return copy_out(s, buf, cap, n_bytes, true);
}

v4_status v4_devices_describe(char* buf, size_t cap, size_t* n_bytes) {
  std::string s;
  const v4_status st = guarded([&] { s = v4::describe_devices(); });
  if (st != V4_OK) return st;
  return copy_out(s, buf, cap, n_bytes, true);
}

v4_generate_params v4_generate_default_params(void) {
  v4_generate_params p{};
  p.struct_size = sizeof(p);
  p.n_predict = 128;
  p.add_bos = true;
  return p;
}

v4_status v4_generate(v4_context* ctx, v4_sampler* sampler, const char* prompt,
                      const v4_generate_params* params, int32_t* n_generated) {
  V4_REQUIRE(ctx && sampler, "v4_generate: NULL context or sampler");
  v4_generate_params p = v4_generate_default_params();
  V4_REQUIRE(read_params(params, &p), "v4_generate: params->struct_size is invalid");
  V4_REQUIRE(p.n_predict >= 0, "v4_generate: n_predict must be >= 0");
  if (n_generated) *n_generated = 0;
  return guarded([&] {
    const v4::Model& model = ctx->impl->model();
    std::vector<int32_t> ids;
    if (p.prompt_tokens) {
      if (p.n_prompt_tokens < 0) v4::fail(v4::Status::invalid_arg, "n_prompt_tokens < 0");
      ids.assign(p.prompt_tokens, p.prompt_tokens + p.n_prompt_tokens);
    } else {
      const std::string_view text = prompt ? prompt : "";
      model.tokenize(text, p.add_bos, p.parse_special, ids);
    }
    if (ids.empty()) {
      if (model.vocab().bos < 0)
        v4::fail(v4::Status::invalid_arg, "empty prompt and the model has no BOS token to start from");
      ids.push_back(model.vocab().bos);
    }
    for (int32_t t : ids) sampler->impl->accept(t);
    std::vector<int32_t> seqs(ids.size(), p.seq);
    v4::BatchView b;
    b.n_tokens = static_cast<int32_t>(ids.size());
    b.tokens = ids.data();
    b.seq = seqs.data();
    ctx->impl->decode(b);
    ctx->stream.reset();
    // Strip the dummy-prefix space of the first generated text when nothing printed yet
    // and the prompt was only BOS.
    bool strip_space = ids.size() == 1 && ids[0] == model.vocab().bos && model.vocab().add_space_prefix;
    int32_t token = 0;
    for (int32_t n = 0; n < p.n_predict; ++n) {
      token = sampler->impl->sample(ctx->impl->logits(-1));
      if (model.vocab().is_eog(token)) break;
      if (n_generated) *n_generated = n + 1;
      std::string_view piece = model.piece(token);
      if (strip_space && !piece.empty()) {
        if (piece[0] == ' ') piece.remove_prefix(1);
        strip_space = false;
      }
      ctx->text.clear();
      ctx->stream.push(piece, ctx->text);
      if (p.on_token && !p.on_token(token, ctx->text.data(), ctx->text.size(), p.user)) break;
      if (n + 1 == p.n_predict) break;
      v4::BatchView one;
      one.n_tokens = 1;
      one.tokens = &token;
      one.seq = &p.seq;
      ctx->impl->decode(one);
    }
    ctx->text.clear();
    ctx->stream.flush(ctx->text);
    if (!ctx->text.empty() && p.on_token)
      p.on_token(-1, ctx->text.data(), ctx->text.size(), p.user);
  });
}

}  // extern "C"
