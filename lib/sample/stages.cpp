// The built-in sampler stages. Semantics follow llama.cpp's samplers of the same names.
#include <algorithm>
#include <cmath>

#include "lib/core/error.h"
#include "lib/sample/sampler.h"

namespace v4 {
namespace {

class Greedy final : public SamplerStage {
 public:
  const char* name() const override { return "greedy"; }
  bool terminal() const override { return true; }
  void apply(Candidates& c, Rng&) override {
    size_t best = 0;
    for (size_t i = 1; i < c.size; ++i) {
      const TokenData& a = c.data[i];
      const TokenData& b = c.data[best];
      if (a.logit > b.logit || (a.logit == b.logit && a.id < b.id)) best = i;
    }
    c.selected = static_cast<int64_t>(best);
  }
};

// A seeded draw from softmax(logits) over the live candidates.
class Dist final : public SamplerStage {
 public:
  const char* name() const override { return "dist"; }
  bool terminal() const override { return true; }
  void apply(Candidates& c, Rng& rng) override {
    c.softmax();
    const double r = rng.uniform();
    double cum = 0.0;
    for (size_t i = 0; i < c.size; ++i) {
      cum += c.data[i].p;
      if (r < cum) {
        c.selected = static_cast<int64_t>(i);
        return;
      }
    }
    c.selected = static_cast<int64_t>(c.size - 1);
  }
};

class Temperature final : public SamplerStage {
 public:
  explicit Temperature(float t) : t_(t) {}
  const char* name() const override { return "temperature"; }
  void apply(Candidates& c, Rng&) override {
    if (t_ <= 0.0f) {  // only the best survives
      c.sort_top(1);
      return;
    }
    for (size_t i = 0; i < c.size; ++i) c.data[i].logit /= t_;
  }

 private:
  float t_;
};

class TopK final : public SamplerStage {
 public:
  explicit TopK(int32_t k) : k_(k) {}
  const char* name() const override { return "top-k"; }
  void apply(Candidates& c, Rng&) override {
    if (k_ > 0) c.sort_top(static_cast<size_t>(k_));
  }

 private:
  int32_t k_;
};

class TopP final : public SamplerStage {
 public:
  TopP(float p, size_t min_keep) : p_(p), min_keep_(std::max<size_t>(1, min_keep)) {}
  const char* name() const override { return "top-p"; }
  void apply(Candidates& c, Rng&) override {
    if (p_ >= 1.0f || c.size == 0) return;
    c.softmax();
    double cum = 0.0;
    for (size_t i = 0; i < c.size; ++i) {
      cum += c.data[i].p;
      if (cum >= p_ && i + 1 >= min_keep_) {
        c.size = i + 1;
        return;
      }
    }
  }

 private:
  float p_;
  size_t min_keep_;
};

class MinP final : public SamplerStage {
 public:
  MinP(float p, size_t min_keep) : p_(p), min_keep_(std::max<size_t>(1, min_keep)) {}
  const char* name() const override { return "min-p"; }
  void apply(Candidates& c, Rng&) override {
    if (p_ <= 0.0f || c.size == 0) return;
    c.softmax();
    const float threshold = c.data[0].p * p_;
    size_t keep = 1;
    while (keep < c.size && (c.data[keep].p >= threshold || keep < min_keep_)) ++keep;
    c.size = keep;
  }

 private:
  float p_;
  size_t min_keep_;
};

// Locally typical sampling: keep the tokens whose surprise is closest to the entropy.
class Typical final : public SamplerStage {
 public:
  Typical(float p, size_t min_keep) : p_(p), min_keep_(std::max<size_t>(1, min_keep)) {}
  const char* name() const override { return "typical"; }
  void prepare(int32_t n_vocab) override { scored_.resize(static_cast<size_t>(n_vocab)); }
  void apply(Candidates& c, Rng&) override {
    if (p_ >= 1.0f || c.size == 0) return;
    c.softmax();
    double entropy = 0.0;
    for (size_t i = 0; i < c.size; ++i)
      if (c.data[i].p > 0.0f) entropy -= c.data[i].p * std::log(static_cast<double>(c.data[i].p));
    for (size_t i = 0; i < c.size; ++i) {
      const double surprise = c.data[i].p > 0.0f ? -std::log(static_cast<double>(c.data[i].p)) : 1e30;
      scored_[i] = {static_cast<float>(std::fabs(surprise - entropy)), c.data[i]};
    }
    std::sort(scored_.begin(), scored_.begin() + static_cast<std::ptrdiff_t>(c.size),
              [](const Scored& a, const Scored& b) {
                return a.shift != b.shift ? a.shift < b.shift : a.td.id < b.td.id;
              });
    double cum = 0.0;
    size_t keep = c.size;
    for (size_t i = 0; i < c.size; ++i) {
      cum += scored_[i].td.p;
      if (cum > p_ && i + 1 >= min_keep_) {
        keep = i + 1;
        break;
      }
    }
    for (size_t i = 0; i < keep; ++i) c.data[i] = scored_[i].td;
    c.size = keep;
    c.sorted = false;
  }

 private:
  struct Scored {
    float shift;
    TokenData td;
  };
  float p_;
  size_t min_keep_;
  std::vector<Scored> scored_;
};

// Repetition (llama.cpp's rule: positive logits divided, negative multiplied), frequency
// (minus count x f) and presence (minus p once) penalties over the last N tokens.
class Penalties final : public SamplerStage {
 public:
  Penalties(int32_t last_n, float repeat, float frequency, float presence)
      : repeat_(repeat), frequency_(frequency), presence_(presence),
        history_(static_cast<size_t>(std::max(0, last_n))) {}
  const char* name() const override { return "penalties"; }
  void prepare(int32_t n_vocab) override { counts_.assign(static_cast<size_t>(n_vocab), 0); }
  void accept(int32_t token) override {
    if (history_.empty() || token < 0 || token >= static_cast<int32_t>(counts_.size())) return;
    history_[next_] = token;
    next_ = (next_ + 1) % history_.size();
    filled_ = std::min(filled_ + 1, history_.size());
  }
  void reset() override { next_ = filled_ = 0; }
  void apply(Candidates& c, Rng&) override {
    if (filled_ == 0 || (repeat_ == 1.0f && frequency_ == 0.0f && presence_ == 0.0f)) return;
    for (size_t i = 0; i < filled_; ++i) ++counts_[history_[i]];
    for (size_t i = 0; i < c.size; ++i) {
      TokenData& t = c.data[i];
      const int32_t n = counts_[t.id];
      if (n == 0) continue;
      t.logit = t.logit > 0.0f ? t.logit / repeat_ : t.logit * repeat_;
      t.logit -= static_cast<float>(n) * frequency_ + presence_;
    }
    for (size_t i = 0; i < filled_; ++i) counts_[history_[i]] = 0;
    c.sorted = false;
  }

 private:
  float repeat_, frequency_, presence_;
  std::vector<int32_t> history_;
  size_t next_ = 0, filled_ = 0;
  std::vector<int32_t> counts_;
};

class LogitBias final : public SamplerStage {
 public:
  explicit LogitBias(std::vector<std::pair<int32_t, float>> bias) : bias_(std::move(bias)) {}
  const char* name() const override { return "logit-bias"; }
  void prepare(int32_t n_vocab) override {
    for (const auto& [tok, b] : bias_)
      if (tok < 0 || tok >= n_vocab)
        fail(Status::invalid_arg, "logit bias for token {} outside the vocabulary 0..{}", tok,
             n_vocab - 1);
  }
  void apply(Candidates& c, Rng&) override {
    // Candidates are still in id order when this runs first; otherwise search.
    for (const auto& [tok, b] : bias_) {
      if (static_cast<size_t>(tok) < c.size && c.data[tok].id == tok) {
        c.data[tok].logit += b;
        continue;
      }
      for (size_t i = 0; i < c.size; ++i)
        if (c.data[i].id == tok) c.data[i].logit += b;
    }
    c.sorted = false;
  }

 private:
  std::vector<std::pair<int32_t, float>> bias_;
};

void check_unit(float p, const char* what) {
  if (!(p >= 0.0f)) fail(Status::invalid_arg, "sampler: {} {} must be >= 0", what, p);
}

}  // namespace

std::unique_ptr<SamplerStage> make_greedy() { return std::make_unique<Greedy>(); }
std::unique_ptr<SamplerStage> make_dist() { return std::make_unique<Dist>(); }
std::unique_ptr<SamplerStage> make_temperature(float t) {
  if (std::isnan(t)) fail(Status::invalid_arg, "sampler: temperature is not a number");
  return std::make_unique<Temperature>(t);
}
std::unique_ptr<SamplerStage> make_top_k(int32_t k) { return std::make_unique<TopK>(k); }
std::unique_ptr<SamplerStage> make_top_p(float p, size_t min_keep) {
  check_unit(p, "top-p");
  return std::make_unique<TopP>(p, min_keep);
}
std::unique_ptr<SamplerStage> make_min_p(float p, size_t min_keep) {
  check_unit(p, "min-p");
  return std::make_unique<MinP>(p, min_keep);
}
std::unique_ptr<SamplerStage> make_typical(float p, size_t min_keep) {
  check_unit(p, "typical-p");
  return std::make_unique<Typical>(p, min_keep);
}
std::unique_ptr<SamplerStage> make_penalties(int32_t last_n, float repeat, float frequency,
                                             float presence) {
  if (!(repeat > 0.0f)) fail(Status::invalid_arg, "sampler: repeat penalty {} must be > 0", repeat);
  if (last_n < 0) fail(Status::invalid_arg, "sampler: penalty window {} must be >= 0", last_n);
  if (std::isnan(frequency) || std::isnan(presence))
    fail(Status::invalid_arg, "sampler: frequency and presence penalties must be numbers");
  return std::make_unique<Penalties>(last_n, repeat, frequency, presence);
}
std::unique_ptr<SamplerStage> make_logit_bias(const std::vector<std::pair<int32_t, float>>& bias) {
  return std::make_unique<LogitBias>(bias);
}

}  // namespace v4
