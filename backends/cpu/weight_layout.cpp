#include "backends/cpu/weight_layout.h"

#include "backends/cpu/dot_kernels.h"
#include "lib/core/error.h"
#include "lib/core/quant/repack.h"

namespace v4::cpu {

DType preferred_weight_layout(DType type, int64_t ne0) {
  if (ne0 % 128 != 0) return type;
  const DType r4 = type == DType::Q4_0 ? DType::Q4_0_R4 : type == DType::Q8_0 ? DType::Q8_0_R4 : type;
  return r4 != type && find_dot_kernel(r4) != nullptr ? r4 : type;
}

void convert_weight_layout(void* data, DType from, DType to, int64_t ne0, int64_t n_rows) {
  const int64_t groups = ne0 / 128 * n_rows;
  if (from == DType::Q4_0 && to == DType::Q4_0_R4) return repack_q4_0_to_r4(data, groups);
  if (from == DType::Q8_0 && to == DType::Q8_0_R4) return repack_q8_0_to_r4(data, groups);
  fail(Status::internal, "no layout conversion from {} to {}", type_name(from), type_name(to));
}

}  // namespace v4::cpu
