// C API: sampler chains.
#include <cmath>
#include <cstring>

#include "lib/api/api_error.h"
#include "lib/api/handles.h"

namespace {

using v4::api::guarded;
using v4::api::read_params;
using v4::api::set_error;

// Adapts a v4_sampler_iface to a chain stage. The candidate arrays share their layout.
class CustomStage final : public v4::SamplerStage {
 public:
  CustomStage(const v4_sampler_iface& iface, void* state) : iface_(iface), state_(state) {
    name_ = iface.name ? iface.name : "custom";
  }
  ~CustomStage() override {
    if (iface_.free_state) iface_.free_state(state_);
  }
  const char* name() const override { return name_.c_str(); }
  bool terminal() const override { return iface_.terminal; }
  void accept(int32_t t) override {
    if (iface_.accept) iface_.accept(state_, t);
  }
  void reset() override {
    if (iface_.reset) iface_.reset(state_);
  }
  void apply(v4::Candidates& c, v4::Rng&) override {
    v4_token_data_array a{reinterpret_cast<v4_token_data*>(c.data.data()), c.size, c.sorted,
                          c.selected};
    iface_.apply(state_, &a);
    if (a.size == 0 || a.size > c.size)
      v4::fail(v4::Status::invalid_arg, "sampler stage '{}' returned {} candidates (had {})",
               name_, a.size, c.size);
    c.size = a.size;
    c.sorted = a.sorted;
    c.selected = a.selected;
  }

 private:
  v4_sampler_iface iface_;
  void* state_;
  std::string name_;
};

static_assert(sizeof(v4_token_data) == sizeof(v4::TokenData));

template <class Make>
v4_status add_stage(v4_sampler* chain, Make make) {
  V4_REQUIRE(chain, "v4_sampler_add: chain is NULL");
  return guarded([&] { chain->impl->add(make()); });
}

}  // namespace

extern "C" {

v4_sampler_params v4_sampler_default_params(void) {
  v4_sampler_params p{};
  p.struct_size = sizeof(p);
  const v4::SamplerSettings d;
  p.seed = d.seed;
  p.temperature = d.temperature;
  p.top_k = d.top_k;
  p.top_p = d.top_p;
  p.min_p = d.min_p;
  p.repeat_penalty = d.repeat_penalty;
  p.repeat_last_n = d.repeat_last_n;
  p.typical_p = d.typical_p;
  p.frequency_penalty = d.frequency_penalty;
  p.presence_penalty = d.presence_penalty;
  return p;
}

v4_status v4_sampler_create(const v4_model* model, const v4_sampler_params* params,
                            v4_sampler** out) {
  V4_REQUIRE(out, "v4_sampler_create: out is NULL");
  *out = nullptr;
  V4_REQUIRE(model, "v4_sampler_create: model is NULL");
  v4_sampler_params p = v4_sampler_default_params();
  V4_REQUIRE(read_params(params, &p), "v4_sampler_create: params->struct_size is invalid");
  return guarded([&] {
    v4::SamplerSettings s;
    s.seed = p.seed;
    s.temperature = p.temperature;
    s.top_k = p.top_k;
    s.top_p = p.top_p;
    s.min_p = p.min_p;
    s.repeat_penalty = p.repeat_penalty;
    s.repeat_last_n = p.repeat_last_n;
    s.typical_p = p.typical_p;
    s.frequency_penalty = p.frequency_penalty;
    s.presence_penalty = p.presence_penalty;
    auto smp = std::make_unique<v4_sampler>();
    smp->impl = std::make_unique<v4::Sampler>(model->impl->vocab().n_tokens(), s);
    *out = smp.release();
  });
}

v4_status v4_sampler_chain_create(const v4_model* model, uint64_t seed, v4_sampler** out) {
  V4_REQUIRE(out, "v4_sampler_chain_create: out is NULL");
  *out = nullptr;
  V4_REQUIRE(model, "v4_sampler_chain_create: model is NULL");
  return guarded([&] {
    auto smp = std::make_unique<v4_sampler>();
    smp->impl = std::make_unique<v4::Sampler>(model->impl->vocab().n_tokens(), seed);
    *out = smp.release();
  });
}

void v4_sampler_free(v4_sampler* s) { delete s; }

v4_status v4_sampler_add_greedy(v4_sampler* c) { return add_stage(c, [] { return v4::make_greedy(); }); }
v4_status v4_sampler_add_dist(v4_sampler* c) { return add_stage(c, [] { return v4::make_dist(); }); }
v4_status v4_sampler_add_temperature(v4_sampler* c, float t) {
  return add_stage(c, [&] { return v4::make_temperature(t); });
}
v4_status v4_sampler_add_top_k(v4_sampler* c, int32_t k) {
  return add_stage(c, [&] { return v4::make_top_k(k); });
}
v4_status v4_sampler_add_top_p(v4_sampler* c, float p, size_t min_keep) {
  return add_stage(c, [&] { return v4::make_top_p(p, min_keep); });
}
v4_status v4_sampler_add_min_p(v4_sampler* c, float p, size_t min_keep) {
  return add_stage(c, [&] { return v4::make_min_p(p, min_keep); });
}
v4_status v4_sampler_add_typical(v4_sampler* c, float p, size_t min_keep) {
  return add_stage(c, [&] { return v4::make_typical(p, min_keep); });
}
v4_status v4_sampler_add_penalties(v4_sampler* c, int32_t last_n, float repeat, float frequency,
                                   float presence) {
  return add_stage(c, [&] { return v4::make_penalties(last_n, repeat, frequency, presence); });
}
v4_status v4_sampler_add_logit_bias(v4_sampler* c, const v4_logit_bias* biases, size_t n) {
  V4_REQUIRE(biases || n == 0, "v4_sampler_add_logit_bias: biases is NULL");
  return add_stage(c, [&] {
    std::vector<std::pair<int32_t, float>> b;
    for (size_t i = 0; i < n; ++i) b.emplace_back(biases[i].token, biases[i].bias);
    return v4::make_logit_bias(b);
  });
}
v4_status v4_sampler_add_custom(v4_sampler* c, const v4_sampler_iface* iface, void* state) {
  V4_REQUIRE(iface && iface->apply, "v4_sampler_add_custom: iface or iface->apply is NULL");
  V4_REQUIRE(iface->struct_size >= sizeof(size_t) && iface->struct_size <= sizeof(v4_sampler_iface),
             "v4_sampler_add_custom: iface->struct_size is invalid");
  v4_sampler_iface copy{};
  std::memcpy(&copy, iface, iface->struct_size);
  return add_stage(c, [&] { return std::make_unique<CustomStage>(copy, state); });
}

int32_t v4_sampler_n_stages(const v4_sampler* c) {
  return c ? static_cast<int32_t>(c->impl->n_stages()) : 0;
}
const char* v4_sampler_stage_name(const v4_sampler* c, int32_t i) {
  if (!c || i < 0 || i >= static_cast<int32_t>(c->impl->n_stages())) return nullptr;
  return c->impl->stage(static_cast<size_t>(i)).name();
}

v4_status v4_sampler_sample(v4_sampler* s, v4_context* ctx, int32_t i, v4_token* out) {
  V4_REQUIRE(s && ctx && out, "v4_sampler_sample: NULL argument");
  const float* logits = ctx->impl->logits(i);
  if (!logits)
    return set_error(V4_ERR_INVALID_ARG, "v4_sampler_sample: no logits for batch token " +
                                             std::to_string(i) + " of the last decode");
  return guarded([&] { *out = s->impl->sample(logits); });
}

v4_status v4_sampler_sample_logits(v4_sampler* s, const float* logits, v4_token* out) {
  V4_REQUIRE(s && logits && out, "v4_sampler_sample_logits: NULL argument");
  return guarded([&] { *out = s->impl->sample(logits); });
}

void v4_sampler_accept(v4_sampler* s, v4_token token) {
  if (s) s->impl->accept(token);
}
void v4_sampler_reset(v4_sampler* s) {
  if (s) s->impl->reset();
}

}  // extern "C"
