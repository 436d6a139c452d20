/*
 * v4engine: embeddable LLM inference engine. The stable C interface.
 *
 * Conventions
 *  - Every function that can fail returns a v4_status; V4_OK is 0, errors are negative.
 *    The message of the most recent failure on the calling thread is v4_last_error().
 *  - Handles are opaque; every *_free function accepts NULL. Params structs start with `struct_size` (set by the
 *    *_default_params() functions) so that older callers keep working when fields are
 *    added at the end.
 *  - Nothing aborts, exits, prints or throws across this interface. The library logs only
 *    through the callbacks you set.
 *
 * Thread safety
 *  - A v4_model is immutable after loading: any number of contexts on any threads may
 *    share it, and the model-level functions (tokenize, detokenize, metadata) may be
 *    called concurrently.
 *  - A v4_context and a v4_sampler are used by one thread at a time (no internal
 *    locking). Different contexts may run concurrently.
 *  - v4_set_log_callback is global and should be called before other threads start.
 *  - v4_last_error() is per thread.
 */
#ifndef V4ENGINE_H
#define V4ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define V4_VERSION_MAJOR 0
#define V4_VERSION_MINOR 1
#define V4_VERSION_PATCH 0
#define V4_VERSION_NUMBER (V4_VERSION_MAJOR * 10000 + V4_VERSION_MINOR * 100 + V4_VERSION_PATCH)

#if defined(_WIN32)
#define V4_API __declspec(dllexport)
#else
#define V4_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum v4_status {
  V4_OK = 0,
  V4_ERR_INVALID_ARG = -1,      /* a parameter is out of range or inconsistent */
  V4_ERR_IO = -2,               /* a file could not be opened, read or written */
  V4_ERR_FORMAT = -3,           /* a model file is malformed or inconsistent */
  V4_ERR_UNSUPPORTED = -4,      /* valid request this model/build cannot do */
  V4_ERR_OOM = -5,              /* memory could not be allocated */
  V4_ERR_CONTEXT_FULL = -6,     /* the KV cache or the context length is exhausted */
  V4_ABORTED = -7,              /* the abort callback asked to stop a decode */
  V4_CANCELLED = -8,            /* the progress callback cancelled loading */
  V4_ERR_NO_DEVICE = -9,        /* a requested backend/device is not available */
  V4_ERR_INTERNAL = -10,        /* a bug: please report with v4_last_error() */
  V4_ERR_BUFFER_TOO_SMALL = -11 /* output buffer too small; the needed size is returned */
} v4_status;

typedef int32_t v4_token;
typedef int32_t v4_pos;
typedef int32_t v4_seq_id;

typedef struct v4_model v4_model;
typedef struct v4_context v4_context;
typedef struct v4_sampler v4_sampler;
typedef struct v4_threadpool v4_threadpool;

/* ---- Version, errors, logging ------------------------------------------------------- */

V4_API const char* v4_version(void); /* "0.1.0" */
V4_API const char* v4_status_string(v4_status status);
/* Message of the last failed call on this thread ("" if none). Valid until the next call
 * into the library on this thread. */
V4_API const char* v4_last_error(void);

typedef enum v4_log_level {
  V4_LOG_DEBUG = 0,
  V4_LOG_INFO = 1,
  V4_LOG_WARN = 2,
  V4_LOG_ERROR = 3
} v4_log_level;

/* `text` is one line without a trailing newline. */
typedef void (*v4_log_fn)(v4_log_level level, const char* text, void* user);

/* Global log sink, used where no per-model/per-context callback is set. NULL silences. */
V4_API void v4_set_log_callback(v4_log_fn fn, void* user);

/* ---- Models --------------------------------------------------------------------------- */

/* How weight bytes reach memory.
 *  - MMAP: map the file; fast start and shared page cache, but the kernel may evict pages
 *    under memory pressure and re-read them during decoding.
 *  - READ: read the tensor data into anonymous memory (2 MiB huge pages where allowed),
 *    with O_DIRECT for large files; never evicted (only swapped). The AUTO choice.
 *  - MLOCK: map the file and lock it in memory (needs RLIMIT_MEMLOCK). */
typedef enum v4_load_mode {
  V4_LOAD_AUTO = 0,
  V4_LOAD_MMAP = 1,
  V4_LOAD_READ = 2,
  V4_LOAD_MLOCK = 3
} v4_load_mode;

/* Called during loading with progress in [0, 1]; return false to cancel (V4_CANCELLED). */
typedef bool (*v4_progress_fn)(float progress, void* user);

typedef struct v4_model_params {
  size_t struct_size;
  bool vocab_only;           /* load only the tokenizer (files without tensors allowed) */
  v4_progress_fn progress;   /* optional */
  void* progress_user;
  v4_log_fn log;             /* optional per-model log sink; NULL = global */
  void* log_user;
  v4_load_mode load_mode;
} v4_model_params;

V4_API v4_model_params v4_model_default_params(void);
V4_API v4_status v4_model_load(const char* path, const v4_model_params* params, v4_model** out);
V4_API void v4_model_free(v4_model* model);
/* The load mode actually used (never AUTO) and its name ("mmap", "read", "mlock"). */
V4_API v4_load_mode v4_model_load_mode(const v4_model* model);
V4_API const char* v4_load_mode_name(v4_load_mode mode);

V4_API int32_t v4_model_n_vocab(const v4_model* model);
V4_API int32_t v4_model_n_ctx_train(const v4_model* model);
V4_API int32_t v4_model_n_embd(const v4_model* model);
V4_API int32_t v4_model_n_layer(const v4_model* model);
V4_API uint64_t v4_model_n_params(const v4_model* model);
V4_API uint64_t v4_model_size_bytes(const v4_model* model);
V4_API const char* v4_model_arch(const v4_model* model);  /* "llama"; "" when vocab-only */
V4_API const char* v4_model_name(const v4_model* model);  /* general.name or file name */
/* The chat template (tokenizer.chat_template) or NULL when the model has none. */
V4_API const char* v4_model_chat_template(const v4_model* model);

/* Metadata as text: value of a key (arrays summarised), NUL-terminated. Returns
 * V4_ERR_INVALID_ARG when the key is absent, V4_ERR_BUFFER_TOO_SMALL when buf is too small.
 * *needed (may be NULL) is set to the text's length without the NUL. */
V4_API int32_t v4_model_meta_count(const v4_model* model);
V4_API v4_status v4_model_meta_key(const v4_model* model, int32_t i, const char** key);
V4_API v4_status v4_model_meta_value(const v4_model* model, const char* key, char* buf,
                                     size_t cap, size_t* needed);

typedef struct v4_tensor_info {
  const char* name;       /* valid while the model lives */
  const char* type;       /* "F32", "Q8_0", ... */
  int32_t n_dims;
  int64_t ne[4];          /* ne[0] is the row length */
  uint64_t nbytes;
} v4_tensor_info;

V4_API int32_t v4_model_n_tensors(const v4_model* model);
V4_API v4_status v4_model_tensor(const v4_model* model, int32_t i, v4_tensor_info* info);
/* Scans every weight for NaN/Inf (shapes are always checked at load). V4_ERR_FORMAT names
 * the first bad tensor. */
V4_API v4_status v4_model_check(const v4_model* model);

/* ---- Vocabulary ----------------------------------------------------------------------- */

V4_API v4_token v4_token_bos(const v4_model* model); /* -1 when absent */
V4_API v4_token v4_token_eos(const v4_model* model);
V4_API v4_token v4_token_eot(const v4_model* model);
V4_API bool v4_token_is_eog(const v4_model* model, v4_token token); /* EOS, EOT, EOM */

/* Tokenizes `len` bytes of UTF-8. add_bos follows the vocabulary's rule when true and the
 * vocabulary wants a BOS. parse_special turns special-token text ("<s>") into that token.
 * If cap is too small, returns V4_ERR_BUFFER_TOO_SMALL with *n_tokens = the count needed. */
V4_API v4_status v4_tokenize(const v4_model* model, const char* text, size_t len, bool add_bos,
                             bool parse_special, v4_token* tokens, int32_t cap,
                             int32_t* n_tokens);
/* Text bytes of one token (may be part of a UTF-8 sequence). Control tokens give "" unless
 * render_special. Not NUL-terminated; *n_bytes = bytes written (or needed). */
V4_API v4_status v4_token_to_piece(const v4_model* model, v4_token token, bool render_special,
                                   char* buf, size_t cap, size_t* n_bytes);
/* Text of a token sequence. The dummy-prefix space of the first piece after BOS (or of the
 * very first piece) is dropped. Output is NUL-terminated when it fits. */
V4_API v4_status v4_detokenize(const v4_model* model, const v4_token* tokens, int32_t n_tokens,
                               bool render_special, char* buf, size_t cap, size_t* n_bytes);

/* ---- Chat templates ------------------------------------------------------------------ */

typedef struct v4_chat_message {
  const char* role;     /* "system", "user", "assistant", ... (NULL: V4_ERR_INVALID_ARG) */
  const char* content;  /* NULL: V4_ERR_INVALID_ARG */
} v4_chat_message;

/* Renders messages with a chat template: `tmpl` when non-NULL, else the model's
 * tokenizer.chat_template. add_generation_prompt appends the assistant turn's opening.
 * Output is NUL-terminated; *n_bytes (may be NULL) excludes the NUL. Returns
 * V4_ERR_INVALID_ARG when no template is available, V4_ERR_FORMAT when the template cannot
 * be parsed or raises an error, V4_ERR_BUFFER_TOO_SMALL with *n_bytes set when cap is too
 * small. `model` may be NULL when tmpl is given. */
V4_API v4_status v4_chat_apply_template(const v4_model* model, const char* tmpl,
                                        const v4_chat_message* messages, size_t n_messages,
                                        bool add_generation_prompt, char* buf, size_t cap,
                                        size_t* n_bytes);
/* The family a template belongs to ("llama3", "chatml", "deepseek3", "mistral", "phi3",
 * "llama2", ...) or "unknown". Informational (shown by `v4 chat`). */
V4_API const char* v4_chat_template_family(const char* tmpl);

/* ---- Thread pools --------------------------------------------------------------------- */

/* A pool that several contexts may share (one decode at a time runs on it; the pool
 * serialises them). Free it after every context that uses it. */
V4_API v4_status v4_threadpool_create(int32_t n_threads, v4_threadpool** out);
V4_API void v4_threadpool_free(v4_threadpool* pool);

/* ---- Contexts ------------------------------------------------------------------------- */

/* Return true to abort the running decode (it then returns V4_ABORTED and leaves the KV
 * cache as it was before the call). Checked between operations. */
typedef bool (*v4_abort_fn)(void* user);

/* Storage of K/V rows. FP8: E4M3 values with one power-of-two scale per 32 values (0.52x
 * the bytes of F16/BF16), quantised once when a row is written; see docs/FORMAT.md. */
typedef enum v4_kv_type {
  V4_KV_F32 = 0,
  V4_KV_F16 = 1,
  V4_KV_BF16 = 2,
  V4_KV_FP8 = 3
} v4_kv_type;

typedef struct v4_context_params {
  size_t struct_size;
  uint32_t n_ctx;            /* KV capacity in tokens over all sequences; 0 = train ctx */
  uint32_t n_batch;          /* max tokens per internal step; larger batches are split */
  uint32_t n_seq_max;        /* sequence ids allowed: 0 .. n_seq_max-1 */
  int32_t n_threads;         /* threads for one-token steps; <= 0: all cores */
  int32_t n_threads_batch;   /* threads for multi-token steps; <= 0: same as n_threads */
  v4_threadpool* threadpool; /* optional shared pool; overrides the thread counts */
  uint32_t kv_page_tokens;   /* tokens per KV page (a power of two <= 128); 0 = 32 */
  v4_kv_type kv_type;        /* storage type of K/V rows */
  v4_abort_fn abort_callback;
  void* abort_user;
  v4_log_fn log;             /* optional per-context log sink; NULL = the model's */
  void* log_user;
  /* KV tiers (docs/KV_TIERS.md). Budgets in bytes; 0 = no limit. Blocks beyond the device
   * budget go to host RAM, beyond the host budget to files under kv_disk_dir. */
  uint64_t kv_device_bytes;  /* the memory attention reads (on the CPU: a host pool) */
  uint64_t kv_host_bytes;    /* host RAM tier */
  const char* kv_disk_dir;   /* NULL: no disk tier; else an existing writable directory */
  uint64_t kv_disk_max_bytes;
  bool kv_disk_compress;     /* zstd-compress blocks on disk */
  /* Where the graph runs (fields added with the Vulkan backend; callers built with an
   * older, smaller struct_size get the defaults). Ops a GPU backend lacks run on the CPU. */
  const char* backend;       /* "auto" or NULL: a GPU when one works, else the CPU (one
                                info log line says why); "cpu"; "vulkan"; "cuda" */
  const char* device;        /* index or part of the name (see v4_devices_describe);
                                NULL or "": the best device of that backend */
  /* Layer split over several devices of one backend (fields added after `device`). */
  const char* devices;       /* NULL: one device (`device`); "0,1": each device holds a
                                contiguous run of layers, activations cross through host
                                memory; overrides `device` */
  const char* split;         /* with devices: NULL or "auto" (by free memory) or ratios
                                such as "3,1" */
} v4_context_params;

V4_API v4_context_params v4_context_default_params(void);
V4_API v4_status v4_context_create(v4_model* model, const v4_context_params* params,
                                   v4_context** out);
V4_API void v4_context_free(v4_context* ctx);
V4_API uint32_t v4_context_n_ctx(const v4_context* ctx);
V4_API const v4_model* v4_context_model(const v4_context* ctx);

/* A batch is a list of tokens, each with its position, sequence and whether its logits
 * are wanted. Prefill and decode are the same call. The arrays belong to the caller.
 *  - pos may be NULL: each token continues its sequence.
 *  - seq_id may be NULL: every token belongs to sequence 0.
 *  - logits may be NULL: only the last token's logits are produced.
 * A sequence's positions must continue it without gaps (next position = v4_seq_length).
 * Beyond the context: V4_ERR_CONTEXT_FULL and the cache is left as it was. */
typedef struct v4_batch {
  int32_t n_tokens;
  const v4_token* tokens;
  const v4_pos* pos;
  const v4_seq_id* seq_id;
  const int8_t* logits;
} v4_batch;

V4_API v4_status v4_decode(v4_context* ctx, const v4_batch* batch);

/* Logits of the i-th token of the last batch (i < 0 counts from the end: -1 = last
 * token). NULL (and v4_last_error set) when that token's logits were not requested.
 * Valid until the next decode. Row length = v4_model_n_vocab. */
V4_API const float* v4_get_logits(v4_context* ctx, int32_t i);

/* Sequence operations. seq = -1 means every sequence. p1 < 0 means "to the end".
 * Removing a range that is not the tail of a sequence returns V4_ERR_UNSUPPORTED. */
V4_API v4_status v4_seq_clear(v4_context* ctx, v4_seq_id seq);
V4_API v4_status v4_seq_remove(v4_context* ctx, v4_seq_id seq, v4_pos p0, v4_pos p1);
/* Makes dst a copy of src (dst's old contents are dropped). Pages are shared until
 * written. */
V4_API v4_status v4_seq_copy(v4_context* ctx, v4_seq_id src, v4_seq_id dst);
/* Number of positions stored for seq (= the next position to decode). */
V4_API v4_pos v4_seq_length(const v4_context* ctx, v4_seq_id seq);

/* ---- KV statistics and sessions ------------------------------------------------------ */

typedef struct v4_kv_tier_stats {
  uint64_t blocks;          /* blocks (one layer's page) held */
  uint64_t bytes;           /* bytes of those blocks */
  uint64_t capacity_bytes;  /* the tier's budget as allocated */
} v4_kv_tier_stats;

typedef struct v4_kv_stats {
  size_t struct_size;          /* set to sizeof(v4_kv_stats) before the call */
  v4_kv_tier_stats device, host, disk;
  uint64_t disk_bytes_read, disk_bytes_written;
  uint64_t block_reads;        /* blocks attention read since the context was created */
  uint64_t block_hits;         /* ... of which were already in memory (not on disk) */
  double stall_seconds;        /* time decoding waited for disk reads */
} v4_kv_stats;

V4_API v4_status v4_context_kv_stats(const v4_context* ctx, v4_kv_stats* out);

/* Saves sequence seq (its tokens and KV rows) to path: a versioned, checksummed file
 * written atomically (temporary file, fsync, rename). */
V4_API v4_status v4_session_save(v4_context* ctx, v4_seq_id seq, const char* path);
/* Replaces sequence seq with a saved session. A file made by another model or KV type,
 * or a damaged one, is refused (V4_ERR_FORMAT) before the sequence changes.
 * The session's tokens are copied to tokens (up to cap); *n_tokens gets their count. */
V4_API v4_status v4_session_load(v4_context* ctx, v4_seq_id seq, const char* path,
                                 v4_token* tokens, size_t cap, size_t* n_tokens);

/* Human-readable description of the executor's placement and memory plan for a one-token
 * decode step (what `v4 info --plan` prints), NUL-terminated; *n_bytes excludes the NUL. */
V4_API v4_status v4_context_describe_plan(v4_context* ctx, char* buf, size_t cap,
                                          size_t* n_bytes);

/* Every backend compiled in with its devices (index, name, memory heaps, features): what
 * `v4 info --devices` prints. NUL-terminated; *n_bytes excludes the NUL. */
V4_API v4_status v4_devices_describe(char* buf, size_t cap, size_t* n_bytes);

/* ---- Sampling ------------------------------------------------------------------------- */

/* A sampler is a chain of stages. Each stage transforms the candidate list (all tokens
 * with their logits); a terminal stage (greedy or dist) selects one. A chain without a
 * terminal stage ends with a seeded draw (dist). Same seed + same stages + same logits =>
 * same token, on every machine and thread count. Sampling never allocates. */

typedef struct v4_sampler_params {
  size_t struct_size;
  uint64_t seed;             /* RNG seed */
  float temperature;         /* <= 0: greedy (argmax) */
  int32_t top_k;             /* <= 0: off */
  float top_p;               /* >= 1: off */
  float min_p;               /* <= 0: off */
  float repeat_penalty;      /* 1: off */
  int32_t repeat_last_n;     /* window of recent tokens the penalties look at */
  float typical_p;           /* >= 1: off */
  float frequency_penalty;   /* 0: off; subtracts count x value */
  float presence_penalty;    /* 0: off; subtracts value once for any seen token */
} v4_sampler_params;

V4_API v4_sampler_params v4_sampler_default_params(void);
/* The standard chain for params: penalties -> top-k -> typical -> top-p -> min-p ->
 * temperature -> dist (or penalties -> greedy when temperature <= 0). */
V4_API v4_status v4_sampler_create(const v4_model* model, const v4_sampler_params* params,
                                   v4_sampler** out);
/* An empty chain to build stage by stage with the v4_sampler_add_* functions. */
V4_API v4_status v4_sampler_chain_create(const v4_model* model, uint64_t seed, v4_sampler** out);
V4_API void v4_sampler_free(v4_sampler* sampler);

V4_API v4_status v4_sampler_add_greedy(v4_sampler* chain);
V4_API v4_status v4_sampler_add_dist(v4_sampler* chain);
V4_API v4_status v4_sampler_add_temperature(v4_sampler* chain, float temperature);
V4_API v4_status v4_sampler_add_top_k(v4_sampler* chain, int32_t k);
V4_API v4_status v4_sampler_add_top_p(v4_sampler* chain, float p, size_t min_keep);
V4_API v4_status v4_sampler_add_min_p(v4_sampler* chain, float p, size_t min_keep);
V4_API v4_status v4_sampler_add_typical(v4_sampler* chain, float p, size_t min_keep);
V4_API v4_status v4_sampler_add_penalties(v4_sampler* chain, int32_t last_n, float repeat,
                                          float frequency, float presence);

typedef struct v4_logit_bias {
  v4_token token;
  float bias;  /* added to the logit; -INFINITY bans the token */
} v4_logit_bias;
V4_API v4_status v4_sampler_add_logit_bias(v4_sampler* chain, const v4_logit_bias* biases,
                                           size_t n);

/* A candidate as user stages see it. */
typedef struct v4_token_data {
  v4_token id;
  float logit;
  float p;  /* probability, valid only after a stage that computes it */
} v4_token_data;

typedef struct v4_token_data_array {
  v4_token_data* data;
  size_t size;      /* a stage may reorder entries and reduce size (never below 1) */
  bool sorted;      /* true when data is sorted by logit, highest first; clear it if you
                       change logits or order */
  int64_t selected; /* a terminal stage sets the index of the chosen entry; else -1 */
} v4_token_data_array;

/* A user-defined stage. apply is required; the rest may be NULL. */
typedef struct v4_sampler_iface {
  size_t struct_size;
  const char* name;
  void (*apply)(void* state, v4_token_data_array* candidates);
  void (*accept)(void* state, v4_token token);
  void (*reset)(void* state);
  void (*free_state)(void* state); /* called when the chain is freed */
  bool terminal;                   /* true if apply selects a token */
} v4_sampler_iface;
V4_API v4_status v4_sampler_add_custom(v4_sampler* chain, const v4_sampler_iface* iface,
                                       void* state);

/* Number of stages and the name of stage i ("top-k", ...; NULL when out of range). */
V4_API int32_t v4_sampler_n_stages(const v4_sampler* chain);
V4_API const char* v4_sampler_stage_name(const v4_sampler* chain, int32_t i);

/* Samples from the logits of batch token i (as v4_get_logits) and records the token in
 * the chain's history (for the penalties). */
V4_API v4_status v4_sampler_sample(v4_sampler* sampler, v4_context* ctx, int32_t i,
                                   v4_token* out);
/* Samples from a caller-provided logits row of n_vocab floats. */
V4_API v4_status v4_sampler_sample_logits(v4_sampler* sampler, const float* logits,
                                          v4_token* out);
/* Records a token the sampler did not choose (e.g. the prompt) in its history. */
V4_API void v4_sampler_accept(v4_sampler* sampler, v4_token token);
/* Forgets the history and restarts the RNG from the seed. */
V4_API void v4_sampler_reset(v4_sampler* sampler);

/* ---- Generation helper ---------------------------------------------------------------- */

/* Called once per generated token with the new complete UTF-8 text (possibly empty while a
 * multi-byte character is incomplete). Return false to stop. */
typedef bool (*v4_token_fn)(v4_token token, const char* text, size_t len, void* user);

typedef struct v4_generate_params {
  size_t struct_size;
  int32_t n_predict;            /* tokens to generate; stops earlier at end-of-generation */
  v4_seq_id seq;                /* sequence to extend (its cache is kept) */
  bool add_bos;                 /* for a text prompt */
  bool parse_special;           /* for a text prompt */
  const v4_token* prompt_tokens;/* if non-NULL, used instead of the text prompt */
  int32_t n_prompt_tokens;
  v4_token_fn on_token;
  void* user;
} v4_generate_params;

V4_API v4_generate_params v4_generate_default_params(void);
/* Evaluates the prompt (text or tokens) on `seq`, then samples until n_predict tokens,
 * an end-of-generation token, or the callback says stop. *n_generated may be NULL.
 * The callback is not called for the end-of-generation token. A final call with token -1
 * may deliver bytes held back by the UTF-8 decoder at the end. The last sampled token is
 * returned through the callback but not evaluated: the sequence then holds the prompt and
 * every generated token except the last (v4_seq_length tells exactly). */
V4_API v4_status v4_generate(v4_context* ctx, v4_sampler* sampler, const char* prompt,
                             const v4_generate_params* params, int32_t* n_generated);

#ifdef __cplusplus
}
#endif

#endif /* V4ENGINE_H */
