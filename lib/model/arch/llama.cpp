// Llama (and the many models stored as "llama" in GGUF: Mistral, TinyLlama, Llama 2/3).
// Metadata keys and tensor names are llama.cpp's.
#include <cmath>
#include <optional>
#include <string>

#include "lib/core/error.h"
#include "lib/core/kv_view.h"
#include "lib/model/arch/arch.h"
#include "lib/model/weights.h"

namespace v4 {
namespace {

struct LayerWeights {
  const gguf::TensorInfo *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
  const gguf::TensorInfo *bq, *bk, *bv, *bo;  // optional biases
};

uint32_t read_dim(const gguf::File& f, const std::string& key, std::optional<uint32_t> fallback,
                  uint32_t max) {
  std::optional<uint32_t> v = f.get_u32(key);
  if (!v) {
    if (!fallback) fail(Status::bad_format, "{}: required key '{}' is missing", f.path(), key);
    v = fallback;
  }
  if (*v < 1 || *v > max)
    fail(Status::bad_format, "{}: key '{}' = {} is out of range (1..{})", f.path(), key, *v, max);
  return *v;
}

class Llama final : public Architecture {
 public:
  explicit Llama(const gguf::File& f) : file_(f) {
    const std::string a = "llama";
    info_.name = a;
    info_.n_embd = static_cast<int32_t>(read_dim(f, a + ".embedding_length", std::nullopt, 1u << 20));
    info_.n_layer = static_cast<int32_t>(read_dim(f, a + ".block_count", std::nullopt, 4096));
    info_.n_ctx_train = static_cast<int32_t>(read_dim(f, a + ".context_length", 2048, 1u << 30));
    n_ff_ = static_cast<int32_t>(read_dim(f, a + ".feed_forward_length", std::nullopt, 1u << 22));
    n_head_ = static_cast<int32_t>(read_dim(f, a + ".attention.head_count", std::nullopt, 65536));
    n_head_kv_ = static_cast<int32_t>(
        read_dim(f, a + ".attention.head_count_kv", static_cast<uint32_t>(n_head_), 65536));
    if (info_.n_embd % n_head_ != 0 && !f.find(a + ".attention.key_length"))
      fail(Status::bad_format,
           "{}: llama.attention.head_count = {} does not divide llama.embedding_length = {}",
           f.path(), n_head_, info_.n_embd);
    head_dim_ = static_cast<int32_t>(
        read_dim(f, a + ".attention.key_length", info_.n_embd / n_head_, 4096));
    const int32_t v_dim = static_cast<int32_t>(
        read_dim(f, a + ".attention.value_length", static_cast<uint32_t>(head_dim_), 4096));
    if (v_dim != head_dim_)
      fail(Status::unsupported, "{}: different key ({}) and value ({}) head sizes", f.path(),
           head_dim_, v_dim);
    if (n_head_ % n_head_kv_ != 0)
      fail(Status::bad_format,
           "{}: llama.attention.head_count_kv = {} does not divide head_count = {}", f.path(),
           n_head_kv_, n_head_);
    eps_ = f.get_f32(a + ".attention.layer_norm_rms_epsilon").value_or(1e-5f);
    if (!(eps_ > 0.0f && eps_ < 1.0f))
      fail(Status::bad_format, "{}: rms epsilon {} is out of range (0..1)", f.path(), eps_);
    read_rope(f, a);

    // Tensors, with shapes checked against the hyper-parameters.
    WeightSet w(f);
    const int64_t d = info_.n_embd, q_dim = int64_t{n_head_} * head_dim_,
                  kv_dim = int64_t{n_head_kv_} * head_dim_, ff = n_ff_;
    const gguf::TensorInfo* emb = f.find_tensor("token_embd.weight");
    if (!emb) fail(Status::bad_format, "{}: required tensor 'token_embd.weight' is missing", f.path());
    info_.n_vocab = static_cast<int32_t>(emb->ne[1]);
    tok_embd_ = &w.require("token_embd.weight", {d, info_.n_vocab});
    output_norm_ = &w.require("output_norm.weight", {d});
    output_ = w.optional("output.weight", {d, info_.n_vocab});
    if (!output_) output_ = tok_embd_;  // tied embeddings
    rope_freqs_ = w.optional("rope_freqs.weight", {rope_.n_dims / 2});
    if (f.find_tensor("blk.0.ffn_gate_exps.weight"))
      fail(Status::unsupported, "{}: mixture-of-experts llama models are not supported yet", f.path());
    for (int32_t l = 0; l < info_.n_layer; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      LayerWeights lw{};
      lw.attn_norm = &w.require(p + "attn_norm.weight", {d});
      lw.wq = &w.require(p + "attn_q.weight", {d, q_dim});
      lw.wk = &w.require(p + "attn_k.weight", {d, kv_dim});
      lw.wv = &w.require(p + "attn_v.weight", {d, kv_dim});
      lw.wo = &w.require(p + "attn_output.weight", {q_dim, d});
      lw.bq = w.optional(p + "attn_q.bias", {q_dim});
      lw.bk = w.optional(p + "attn_k.bias", {kv_dim});
      lw.bv = w.optional(p + "attn_v.bias", {kv_dim});
      lw.bo = w.optional(p + "attn_output.bias", {d});
      lw.ffn_norm = &w.require(p + "ffn_norm.weight", {d});
      lw.w_gate = &w.require(p + "ffn_gate.weight", {d, ff});
      lw.w_up = &w.require(p + "ffn_up.weight", {d, ff});
      lw.w_down = &w.require(p + "ffn_down.weight", {ff, d});
      layers_.push_back(lw);
    }
  }

  const ArchInfo& info() const override { return info_; }
  int32_t max_head_dim() const override { return head_dim_; }
  int32_t max_query_group() const override { return n_head_ / n_head_kv_; }

  std::vector<KvComponentSpec> kv_components(DType kv_type) const override {
    std::vector<KvComponentSpec> c;
    for (int32_t l = 0; l < info_.n_layer; ++l) {
      c.push_back({"blk." + std::to_string(l) + ".k", kv_type, int64_t{n_head_kv_} * head_dim_, l});
      c.push_back({"blk." + std::to_string(l) + ".v", kv_type, int64_t{n_head_kv_} * head_dim_, l});
    }
    return c;
  }

  ForwardGraph build(Graph& g, int32_t n_tokens, int32_t n_outputs, KvView* kv) const override {
    ForwardGraph fg;
    fg.tokens = g.input(DType::I32, n_tokens, 1, 1, "tokens");
    fg.positions = g.input(DType::I32, n_tokens, 1, 1, "positions");
    Tensor* freq = rope_freqs_ ? weight_leaf(g, *rope_freqs_) : nullptr;
    const float kq_scale = 1.0f / std::sqrt(static_cast<float>(head_dim_));

    Tensor* x = g.get_rows(weight_leaf(g, *tok_embd_), fg.tokens);
    for (int32_t l = 0; l < info_.n_layer; ++l) {
      const LayerWeights& lw = layers_[l];
      g.set_layer(l);
      Tensor* h = g.mul(g.rms_norm(x, eps_), weight_leaf(g, *lw.attn_norm));
      Tensor* q = linear(g, lw.wq, lw.bq, h);
      Tensor* k = linear(g, lw.wk, lw.bk, h);
      Tensor* v = linear(g, lw.wv, lw.bv, h);
      q = g.rope(g.reshape(q, head_dim_, n_head_, n_tokens), fg.positions, &rope_, freq);
      k = g.rope(g.reshape(k, head_dim_, n_head_kv_, n_tokens), fg.positions, &rope_, freq);
      Tensor* stored = g.kv_store(g.reshape(k, int64_t{head_dim_} * n_head_kv_, n_tokens), v, kv,
                                  2 * l, 2 * l + 1);
      Tensor* attn = g.attention(q, stored, kv, 2 * l, 2 * l + 1, n_head_kv_, kq_scale);
      x = g.add(x, linear(g, lw.wo, lw.bo, attn));

      h = g.mul(g.rms_norm(x, eps_), weight_leaf(g, *lw.ffn_norm));
      Tensor* ff = g.swiglu(g.mul_mat(weight_leaf(g, *lw.w_gate), h),
                            g.mul_mat(weight_leaf(g, *lw.w_up), h));
      x = g.add(x, g.mul_mat(weight_leaf(g, *lw.w_down), ff));
    }
    g.set_layer(info_.n_layer);
    if (n_outputs < n_tokens) {
      fg.out_ids = g.input(DType::I32, n_outputs, 1, 1, "out_ids");
      x = g.get_rows(x, fg.out_ids);
    }
    x = g.mul(g.rms_norm(x, eps_), weight_leaf(g, *output_norm_));
    fg.logits = g.mul_mat(weight_leaf(g, *output_), x);
    fg.logits->name = "logits";
    g.mark_output(fg.logits);
    return fg;
  }

 private:
  static Tensor* linear(Graph& g, const gguf::TensorInfo* w, const gguf::TensorInfo* b, Tensor* x) {
    Tensor* y = g.mul_mat(weight_leaf(g, *w), x);
    return b ? g.add(y, weight_leaf(g, *b)) : y;
  }

  void read_rope(const gguf::File& f, const std::string& a) {
    rope_.mode = RopeMode::norm;
    rope_.n_dims = static_cast<int32_t>(
        read_dim(f, a + ".rope.dimension_count", static_cast<uint32_t>(head_dim_), 4096));
    if (rope_.n_dims > head_dim_ || rope_.n_dims % 2 != 0)
      fail(Status::bad_format, "{}: rope dimension count {} must be even and at most the head size {}",
           f.path(), rope_.n_dims, head_dim_);
    rope_.freq_base = f.get_f32(a + ".rope.freq_base").value_or(10000.0f);
    if (!(rope_.freq_base > 1.0f))
      fail(Status::bad_format, "{}: rope frequency base {} must be > 1", f.path(), rope_.freq_base);
    const std::string type = std::string(f.get_string(a + ".rope.scaling.type").value_or("none"));
    float factor = f.get_f32(a + ".rope.scaling.factor").value_or(0.0f);
    if (factor == 0.0f) factor = f.get_f32(a + ".rope.scale_linear").value_or(1.0f);
    if (!(factor >= 1.0f) && type != "none")
      fail(Status::bad_format, "{}: rope scaling factor {} must be >= 1", f.path(), factor);
    rope_.n_ctx_orig = static_cast<int32_t>(
        f.get_u32(a + ".rope.scaling.original_context_length").value_or(info_.n_ctx_train));
    if (type == "none") {
      rope_.freq_scale = factor >= 1.0f ? 1.0f / factor : 1.0f;  // legacy scale_linear
    } else if (type == "linear") {
      rope_.freq_scale = 1.0f / factor;
    } else if (type == "yarn") {
      rope_.freq_scale = 1.0f / factor;
      rope_.ext_factor = f.get_f32(a + ".rope.scaling.yarn_ext_factor").value_or(1.0f);
      rope_.attn_factor = f.get_f32(a + ".rope.scaling.attn_factor").value_or(1.0f);
      rope_.beta_fast = f.get_f32(a + ".rope.scaling.yarn_beta_fast").value_or(32.0f);
      rope_.beta_slow = f.get_f32(a + ".rope.scaling.yarn_beta_slow").value_or(1.0f);
    } else {
      fail(Status::unsupported, "{}: rope scaling type '{}' is not supported (none, linear, yarn)",
           f.path(), type);
    }
  }

  const gguf::File& file_;
  ArchInfo info_;
  int32_t n_ff_ = 0, n_head_ = 0, n_head_kv_ = 0, head_dim_ = 0;
  float eps_ = 1e-5f;
  RopeParams rope_;
  const gguf::TensorInfo *tok_embd_ = nullptr, *output_norm_ = nullptr, *output_ = nullptr,
                         *rope_freqs_ = nullptr;
  std::vector<LayerWeights> layers_;
};

}  // namespace

std::unique_ptr<Architecture> make_llama(const gguf::File& file) {
  return std::make_unique<Llama>(file);
}

}  // namespace v4
