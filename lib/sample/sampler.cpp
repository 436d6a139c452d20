#include "lib/sample/sampler.h"

#include "lib/core/error.h"

namespace v4 {

void Rng::reseed(uint64_t seed) {
  uint64_t x = seed;
  for (uint64_t& s : s_) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    s = z ^ (z >> 31);
  }
}

uint64_t Rng::next() {
  const auto rotl = [](uint64_t v, int k) { return (v << k) | (v >> (64 - k)); };
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

Sampler::Sampler(int32_t n_vocab, uint64_t seed) : n_vocab_(n_vocab), seed_(seed), rng_(seed) {
  if (n_vocab < 1) fail(Status::invalid_arg, "sampler: the model has no vocabulary");
  cand_.data.resize(static_cast<size_t>(n_vocab));
  fallback_dist_ = make_dist();
}

Sampler::Sampler(int32_t n_vocab, const SamplerSettings& s) : Sampler(n_vocab, s.seed) {
  if (s.repeat_penalty != 1.0f || s.frequency_penalty != 0.0f || s.presence_penalty != 0.0f)
    add(make_penalties(s.repeat_last_n, s.repeat_penalty, s.frequency_penalty, s.presence_penalty));
  else if (!(s.repeat_penalty > 0.0f) || s.repeat_last_n < 0)
    add(make_penalties(s.repeat_last_n, s.repeat_penalty, 0.0f, 0.0f));  // validates
  if (std::isnan(s.temperature)) fail(Status::invalid_arg, "sampler: temperature is not a number");
  if (s.temperature <= 0.0f) {
    add(make_greedy());
    return;
  }
  if (s.top_k > 0) add(make_top_k(s.top_k));
  if (s.typical_p < 1.0f) add(make_typical(s.typical_p, 1));
  if (s.top_p < 1.0f) add(make_top_p(s.top_p, 1));
  if (s.min_p > 0.0f) add(make_min_p(s.min_p, 1));
  add(make_temperature(s.temperature));
  add(make_dist());
}

void Sampler::add(std::unique_ptr<SamplerStage> stage) {
  stage->prepare(n_vocab_);
  stages_.push_back(std::move(stage));
}

int32_t Sampler::sample(const float* logits) {
  for (int32_t i = 0; i < n_vocab_; ++i) cand_.data[i] = {i, logits[i], 0.0f};
  cand_.size = static_cast<size_t>(n_vocab_);
  cand_.sorted = false;
  cand_.selected = -1;
  for (auto& st : stages_) {
    st->apply(cand_, rng_);
    if (cand_.size == 0) fail(Status::invalid_arg, "sampler stage '{}' removed every candidate", st->name());
    if (st->terminal()) break;
  }
  if (cand_.selected < 0) fallback_dist_->apply(cand_, rng_);
  if (cand_.selected < 0 || static_cast<size_t>(cand_.selected) >= cand_.size)
    fail(Status::invalid_arg, "sampler chain selected no valid candidate");
  const int32_t token = cand_.data[static_cast<size_t>(cand_.selected)].id;
  if (token < 0 || token >= n_vocab_)
    fail(Status::invalid_arg, "sampler chain selected token {} outside the vocabulary", token);
  accept(token);
  return token;
}

void Sampler::accept(int32_t token) {
  for (auto& st : stages_) st->accept(token);
}

void Sampler::reset() {
  rng_.reseed(seed_);
  for (auto& st : stages_) st->reset();
}

}  // namespace v4
