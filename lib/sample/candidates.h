// The working set a sampler chain transforms: token ids with logits (and
// probabilities once a stage computes them), possibly sorted and truncated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace v4 {

struct TokenData {
  int32_t id;
  float logit;
  float p;
};

struct Candidates {
  std::vector<TokenData> data;  // capacity n_vocab, allocated once
  size_t size = 0;              // live entries: data[0 .. size)
  bool sorted = false;          // by logit, highest first (ties: lower id first)
  int64_t selected = -1;        // index chosen by a terminal stage

  void sort_by_logit();
  void sort_top(size_t k);      // sorts so that the k best lead, then size = k
  // Fills p with softmax(logit / 1) over the live entries (sorts first).
  void softmax();
};

}  // namespace v4
