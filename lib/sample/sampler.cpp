#include "lib/sample/sampler.h"

#include <algorithm>
#include <cmath>

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

Sampler::Sampler(int32_t n_vocab, const SamplerSettings& settings)
    : s_(settings), n_vocab_(n_vocab), rng_(settings.seed) {
  if (n_vocab < 1) fail(Status::invalid_arg, "sampler: the model has no vocabulary");
  if (!(s_.repeat_penalty > 0.0f))
    fail(Status::invalid_arg, "sampler: repeat penalty {} must be > 0", s_.repeat_penalty);
  if (s_.repeat_last_n < 0)
    fail(Status::invalid_arg, "sampler: repeat_last_n {} must be >= 0", s_.repeat_last_n);
  if (std::isnan(s_.temperature) || std::isnan(s_.top_p) || std::isnan(s_.min_p))
    fail(Status::invalid_arg, "sampler: temperature, top_p and min_p must be numbers");
  cand_.resize(n_vocab);
  history_.resize(static_cast<size_t>(s_.repeat_last_n));
  seen_.assign(n_vocab, 0);
}

void Sampler::reset() {
  hist_next_ = hist_size_ = 0;
  rng_.reseed(s_.seed);
}

void Sampler::accept(int32_t token) {
  if (history_.empty()) return;
  history_[hist_next_] = token;
  hist_next_ = (hist_next_ + 1) % history_.size();
  hist_size_ = std::min(hist_size_ + 1, history_.size());
}

// llama.cpp's rule: a seen token's positive logit is divided, a negative one multiplied.
void Sampler::apply_penalty() {
  if (s_.repeat_penalty == 1.0f || hist_size_ == 0) return;
  for (size_t i = 0; i < hist_size_; ++i) {
    const int32_t t = history_[i];
    if (t < 0 || t >= n_vocab_ || seen_[t]) continue;
    seen_[t] = 1;
    float& l = cand_[t].logit;
    l = l > 0.0f ? l / s_.repeat_penalty : l * s_.repeat_penalty;
  }
  for (size_t i = 0; i < hist_size_; ++i)
    if (history_[i] >= 0 && history_[i] < n_vocab_) seen_[history_[i]] = 0;
}

int32_t Sampler::sample(const float* logits) {
  for (int32_t i = 0; i < n_vocab_; ++i) cand_[i] = {i, logits[i], 0.0f};
  apply_penalty();
  int32_t token;
  if (s_.temperature <= 0.0f) {
    token = 0;
    for (int32_t i = 1; i < n_vocab_; ++i)
      if (cand_[i].logit > cand_[token].logit) token = i;
  } else {
    token = draw();
  }
  accept(token);
  return token;
}

int32_t Sampler::draw() {
  // Highest logit first; ties by lower id so the order never depends on the sort.
  const auto by_logit = [](const Candidate& a, const Candidate& b) {
    return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
  };
  size_t n = cand_.size();
  if (s_.top_k > 0 && static_cast<size_t>(s_.top_k) < n) {
    std::partial_sort(cand_.begin(), cand_.begin() + s_.top_k, cand_.end(), by_logit);
    n = static_cast<size_t>(s_.top_k);
  } else {
    std::sort(cand_.begin(), cand_.end(), by_logit);
  }
  // Probabilities at temperature 1 for the top-p / min-p filters (as llama.cpp does).
  const auto softmax = [&](float temp) {
    const float mx = cand_[0].logit;
    double sum = 0.0;
    for (size_t i = 0; i < n; ++i) {
      cand_[i].p = std::exp((cand_[i].logit - mx) / temp);
      sum += cand_[i].p;
    }
    for (size_t i = 0; i < n; ++i) cand_[i].p = static_cast<float>(cand_[i].p / sum);
  };
  softmax(1.0f);
  if (s_.top_p < 1.0f) {
    double cum = 0.0;
    size_t keep = n;
    for (size_t i = 0; i < n; ++i) {
      cum += cand_[i].p;
      if (cum >= s_.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = std::max<size_t>(1, keep);
  }
  if (s_.min_p > 0.0f) {
    const float threshold = cand_[0].p * s_.min_p;
    size_t keep = 1;
    while (keep < n && cand_[keep].p >= threshold) ++keep;
    n = keep;
  }
  softmax(s_.temperature);
  const double r = rng_.uniform();
  double cum = 0.0;
  for (size_t i = 0; i < n; ++i) {
    cum += cand_[i].p;
    if (r < cum) return cand_[i].id;
  }
  return cand_[n - 1].id;
}

}  // namespace v4
