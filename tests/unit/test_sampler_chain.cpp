// The sampler chain's stages, checked by their statistics on fixed logits.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <vector>

#include "lib/core/error.h"
#include "lib/sample/sampler.h"

using namespace v4;

namespace {

std::vector<float> ramp_logits(int n) {
  std::vector<float> l(n);
  for (int i = 0; i < n; ++i) l[i] = std::sin(i * 1.7f) * 3.0f;  // a fixed, unsorted spread
  return l;
}

std::vector<int> best_ids(const std::vector<float>& l, int k) {
  std::vector<int> ids(l.size());
  for (size_t i = 0; i < l.size(); ++i) ids[i] = static_cast<int>(i);
  std::sort(ids.begin(), ids.end(), [&](int a, int b) { return l[a] > l[b]; });
  ids.resize(k);
  return ids;
}

std::map<int, int> histogram(Sampler& s, const std::vector<float>& l, int draws) {
  std::map<int, int> h;
  for (int i = 0; i < draws; ++i) h[s.sample(l.data())]++;
  return h;
}

}  // namespace

TEST_CASE("top-k never returns a token outside the k best", "[sample][chain]") {
  const auto l = ramp_logits(200);
  const auto best = best_ids(l, 5);
  Sampler s(200, 11);
  s.add(make_top_k(5));
  s.add(make_temperature(2.0f));  // flatten so all five are reached
  const auto h = histogram(s, l, 3000);
  CHECK(h.size() == 5);
  for (const auto& [tok, n] : h) CHECK(std::find(best.begin(), best.end(), tok) != best.end());
}

TEST_CASE("min-p keeps exactly the tokens with p >= min_p * p_max", "[sample][chain]") {
  // Probabilities proportional to 8, 4, 2, 1: with min_p 0.25, 8/4/2 stay (2 >= 0.25*8) and 1 goes.
  std::vector<float> l = {std::log(1.0f), std::log(8.0f), std::log(2.0f), std::log(4.0f)};
  Sampler s(4, 3);
  s.add(make_min_p(0.25f, 1));
  const auto h = histogram(s, l, 4000);
  CHECK(h.count(0) == 0);
  CHECK(h.size() == 3);
  // The survivors keep their relative odds: 8 : 4 : 2 of 14.
  CHECK(h.at(1) / 4000.0 == Approx(8.0 / 14).margin(0.03));
  CHECK(h.at(3) / 4000.0 == Approx(4.0 / 14).margin(0.03));
  Sampler t(4, 3);
  t.add(make_min_p(0.2501f, 1));  // now 2/8 < 0.2501: only 8 and 4 remain
  CHECK(histogram(t, l, 1000).size() == 2);
}

TEST_CASE("the seeded draw follows softmax probabilities", "[sample][chain]") {
  std::vector<float> l = {0.0f, std::log(3.0f)};  // p = 0.25, 0.75
  Sampler s(2, 99);
  const auto h = histogram(s, l, 20000);  // no terminal stage: the chain draws
  CHECK(h.at(1) / 20000.0 == Approx(0.75).margin(0.015));
}

TEST_CASE("temperature sharpens and flattens", "[sample][chain]") {
  std::vector<float> l = {0.0f, 1.0f};
  Sampler cold(2, 1), hot(2, 1);
  cold.add(make_temperature(0.25f));
  hot.add(make_temperature(4.0f));
  const double p_cold = histogram(cold, l, 10000)[1] / 10000.0;
  const double p_hot = histogram(hot, l, 10000)[1] / 10000.0;
  CHECK(p_cold == Approx(1.0 / (1.0 + std::exp(-4.0))).margin(0.02));
  CHECK(p_hot == Approx(1.0 / (1.0 + std::exp(-0.25))).margin(0.02));
  Sampler zero(2, 1);
  zero.add(make_temperature(0.0f));
  CHECK(histogram(zero, l, 100).size() == 1);
}

TEST_CASE("typical sampling drops the most and the least surprising tails", "[sample][chain]") {
  // One dominant token and a flat tail: entropy is low, so the dominant token is typical
  // and very unlikely tail tokens are not.
  std::vector<float> l(50, 0.0f);
  l[7] = 6.0f;
  Sampler s(50, 5);
  s.add(make_typical(0.5f, 1));
  const auto h = histogram(s, l, 500);
  CHECK(h.size() == 1);
  CHECK(h.count(7) == 1);
  Sampler off(50, 5);
  off.add(make_typical(1.0f, 1));  // p = 1: no-op
  CHECK(histogram(off, l, 3000).size() > 10);
}

TEST_CASE("frequency and presence penalties subtract per occurrence and once", "[sample][chain]") {
  std::vector<float> l = {1.0f, 1.05f, 0.0f};
  Sampler s(3, 1);
  s.add(make_penalties(8, 1.0f, 0.0f, 0.1f));  // presence 0.1 pushes 1 below 0
  s.add(make_greedy());
  s.accept(1);
  CHECK(s.sample(l.data()) == 0);
  Sampler f(3, 1);
  f.add(make_penalties(8, 1.0f, 0.02f, 0.0f));
  f.add(make_greedy());
  f.accept(1);
  f.accept(1);  // 1.05 - 2*0.02 = 1.01 still wins
  CHECK(f.sample(l.data()) == 1);  // and this records a third occurrence
  CHECK(f.sample(l.data()) == 0);  // 1.05 - 3*0.02 = 0.99 < 1.0
  Sampler w(3, 1);
  w.add(make_penalties(1, 1.0f, 0.0f, 1.0f));  // window of one token
  w.add(make_greedy());
  w.accept(1);
  w.accept(2);  // 1 fell out of the window
  CHECK(w.sample(l.data()) == 1);
}

TEST_CASE("logit bias can ban or force tokens", "[sample][chain]") {
  const auto l = ramp_logits(30);
  const int best = best_ids(l, 1)[0];
  Sampler ban(30, 1);
  ban.add(make_logit_bias({{best, -INFINITY}}));
  ban.add(make_greedy());
  CHECK(ban.sample(l.data()) == best_ids(l, 2)[1]);
  Sampler force(30, 1);
  force.add(make_logit_bias({{3, 100.0f}}));
  CHECK(histogram(force, l, 50).size() == 1);
  Sampler bad(30, 1);
  CHECK_THROWS_AS(bad.add(make_logit_bias({{30, 1.0f}})), Error);
}

TEST_CASE("a chain is deterministic for a seed and restarts on reset", "[sample][chain]") {
  const auto l = ramp_logits(100);
  SamplerSettings st;
  st.seed = 1234;
  st.temperature = 1.3f;
  st.top_k = 20;
  st.top_p = 0.9f;
  st.min_p = 0.02f;
  st.typical_p = 0.95f;
  st.repeat_penalty = 1.2f;
  st.frequency_penalty = 0.1f;
  st.presence_penalty = 0.1f;
  Sampler a(100, st), b(100, st);
  CHECK(a.n_stages() == 7);
  std::vector<int> first;
  for (int i = 0; i < 200; ++i) {
    const int t = a.sample(l.data());
    first.push_back(t);
    CHECK(t == b.sample(l.data()));
  }
  a.reset();
  for (int i = 0; i < 200; ++i) CHECK(a.sample(l.data()) == first[i]);
  std::set<int> distinct(first.begin(), first.end());
  CHECK(distinct.size() > 3);
}
