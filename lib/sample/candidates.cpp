#include "lib/sample/candidates.h"

#include <algorithm>
#include <cmath>

namespace v4 {
namespace {
bool by_logit(const TokenData& a, const TokenData& b) {
  return a.logit != b.logit ? a.logit > b.logit : a.id < b.id;
}
}  // namespace

void Candidates::sort_by_logit() {
  if (sorted) return;
  std::sort(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(size), by_logit);
  sorted = true;
}

void Candidates::sort_top(size_t k) {
  if (k >= size) {
    sort_by_logit();
    return;
  }
  if (!sorted)
    std::partial_sort(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(k),
                      data.begin() + static_cast<std::ptrdiff_t>(size), by_logit);
  size = k;
  sorted = true;
}

void Candidates::softmax() {
  sort_by_logit();
  if (size == 0) return;
  const float mx = data[0].logit;
  double sum = 0.0;
  for (size_t i = 0; i < size; ++i) {
    data[i].p = std::exp(data[i].logit - mx);
    sum += data[i].p;
  }
  for (size_t i = 0; i < size; ++i) data[i].p = static_cast<float>(data[i].p / sum);
}

}  // namespace v4
