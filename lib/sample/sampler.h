// The sampler chain: stages that each transform the candidate set (penalties, logit
// bias, top-k, typical, top-p, min-p, temperature, user stages) and a terminal stage
// that selects a token (greedy or a seeded draw). Buffers are sized once for the
// vocabulary, so sampling never allocates. Results depend only on the logits, the
// stages and the seed: the same on every machine and thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/sample/candidates.h"

namespace v4 {

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

class SamplerStage {
 public:
  virtual ~SamplerStage() = default;
  virtual const char* name() const = 0;
  // Called once when the stage joins a chain: size buffers for the vocabulary here.
  virtual void prepare(int32_t /*n_vocab*/) {}
  virtual void apply(Candidates& c, Rng& rng) = 0;
  virtual void accept(int32_t) {}
  virtual void reset() {}
  virtual bool terminal() const { return false; }  // selects a token
};

// Built-in stages (lib/sample/stages.cpp). Parameters are validated; bad ones throw
// invalid_arg.
std::unique_ptr<SamplerStage> make_greedy();
std::unique_ptr<SamplerStage> make_dist();
std::unique_ptr<SamplerStage> make_temperature(float t);
std::unique_ptr<SamplerStage> make_top_k(int32_t k);
std::unique_ptr<SamplerStage> make_top_p(float p, size_t min_keep);
std::unique_ptr<SamplerStage> make_min_p(float p, size_t min_keep);
std::unique_ptr<SamplerStage> make_typical(float p, size_t min_keep);
std::unique_ptr<SamplerStage> make_penalties(int32_t last_n, float repeat, float frequency,
                                             float presence);
std::unique_ptr<SamplerStage> make_logit_bias(const std::vector<std::pair<int32_t, float>>& bias);

struct SamplerSettings {
  uint64_t seed = 0;
  float temperature = 0.8f;
  int32_t top_k = 40;
  float top_p = 0.95f;
  float min_p = 0.05f;
  float typical_p = 1.0f;
  float repeat_penalty = 1.0f;
  float frequency_penalty = 0.0f;
  float presence_penalty = 0.0f;
  int32_t repeat_last_n = 64;
};

class Sampler {
 public:
  Sampler(int32_t n_vocab, uint64_t seed);
  // The standard chain for a set of settings: penalties -> top-k -> typical -> top-p ->
  // min-p -> temperature -> draw, or penalties -> greedy when temperature <= 0.
  Sampler(int32_t n_vocab, const SamplerSettings& settings);

  void add(std::unique_ptr<SamplerStage> stage);
  int32_t sample(const float* logits);   // also records the token
  void accept(int32_t token);             // record a token chosen elsewhere (the prompt)
  void reset();
  size_t n_stages() const { return stages_.size(); }
  const SamplerStage& stage(size_t i) const { return *stages_[i]; }
  int32_t n_vocab() const { return n_vocab_; }

 private:
  int32_t n_vocab_;
  uint64_t seed_;
  Rng rng_;
  Candidates cand_;
  std::vector<std::unique_ptr<SamplerStage>> stages_;
  std::unique_ptr<SamplerStage> fallback_dist_;  // used when no terminal stage was added
};

}  // namespace v4
