// The sampler chain: repetition penalty over the last N tokens, then either greedy
// argmax or top-k -> top-p -> min-p -> temperature -> a seeded draw. All buffers are
// sized once for the vocabulary, so sampling a token never allocates. Results depend
// only on the logits, the settings and the seed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace v4 {

struct SamplerSettings {
  uint64_t seed = 0;
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float repeat_penalty = 1.0f;
  int32_t repeat_last_n = 64;
};

// xoshiro256** seeded through splitmix64: the same stream on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next();
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)

 private:
  uint64_t s_[4];
};

class Sampler {
 public:
  Sampler(int32_t n_vocab, const SamplerSettings& settings);

  int32_t sample(const float* logits);   // also records the token
  void accept(int32_t token);             // record a token chosen elsewhere (the prompt)
  void reset();
  const SamplerSettings& settings() const { return s_; }

 private:
  struct Candidate {
    int32_t id;
    float logit;
    float p;
  };
  void apply_penalty();
  int32_t draw();

  SamplerSettings s_;
  int32_t n_vocab_;
  Rng rng_;
  std::vector<Candidate> cand_;
  std::vector<int32_t> history_;  // ring buffer of the last repeat_last_n tokens
  size_t hist_next_ = 0;
  size_t hist_size_ = 0;
  std::vector<uint8_t> seen_;     // per token: already penalised in this step
};

}  // namespace v4
