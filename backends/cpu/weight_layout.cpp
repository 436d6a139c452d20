#include "backends/cpu/weight_layout.h"

#include <cstdlib>
#include <cstring>

#include "backends/cpu/dot_kernels.h"
#include "lib/core/error.h"
#include "lib/core/quant/repack.h"

namespace v4::cpu {

namespace {

// The regrouped layouts of a type, best first, and the row length each needs.
struct Candidate {
  DType from, to;
  int64_t group;
};
constexpr Candidate kCandidates[] = {
    {DType::Q4_0, DType::Q4_0_X16, 512}, {DType::Q4_0, DType::Q4_0_R4, 128},
    {DType::Q8_0, DType::Q8_0_X16, 512}, {DType::Q8_0, DType::Q8_0_R4, 128},
};

// V4_CPU_LAYOUT=r4 (no X16) or plain (no regrouping), for A/B benchmarks of the layouts.
int64_t largest_group_allowed() {
  static const int64_t allowed = [] {
    const char* e = std::getenv("V4_CPU_LAYOUT");
    if (e && std::strcmp(e, "plain") == 0) return int64_t{0};
    if (e && std::strcmp(e, "r4") == 0) return int64_t{128};
    return int64_t{512};
  }();
  return allowed;
}

}  // namespace

DType preferred_weight_layout(DType type, int64_t ne0) {
  for (const Candidate& c : kCandidates)
    if (c.from == type && ne0 % c.group == 0 && c.group <= largest_group_allowed() &&
        find_dot_kernel(c.to) != nullptr)
      return c.to;
  return type;
}

void convert_weight_layout(void* data, DType from, DType to, int64_t ne0, int64_t n_rows) {
  if (from == DType::Q4_0 && to == DType::Q4_0_R4) return repack_q4_0_to_r4(data, ne0 / 128 * n_rows);
  if (from == DType::Q8_0 && to == DType::Q8_0_R4) return repack_q8_0_to_r4(data, ne0 / 128 * n_rows);
  if (from == DType::Q4_0 && to == DType::Q4_0_X16) return repack_q4_0_to_x16(data, ne0 / 512 * n_rows);
  if (from == DType::Q8_0 && to == DType::Q8_0_X16) return repack_q8_0_to_x16(data, ne0 / 512 * n_rows);
  fail(Status::internal, "no layout conversion from {} to {}", type_name(from), type_name(to));
}

}  // namespace v4::cpu
