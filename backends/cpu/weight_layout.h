// The CPU's preferred in-memory layouts for weights. When weights sit in writable memory
// (the read load mode), Q4_0 and Q8_0 matrices are regrouped in place if this CPU has
// kernels for the layout: rows of whole 512-value super-groups to Q4_0_X16 / Q8_0_X16
// (AVX-512 VNNI), else rows of whole 128-value groups to Q4_0_R4 / Q8_0_R4.
// Values are unchanged; only the order of bytes within each row.
#pragma once

#include <cstdint>

#include "lib/core/dtype.h"

namespace v4::cpu {

// The layout to compute `type` with, for rows of ne0 values (`type` if no better one).
DType preferred_weight_layout(DType type, int64_t ne0);
// Converts n_rows rows in place from `from` to `to` (a preferred layout of `from`).
void convert_weight_layout(void* data, DType from, DType to, int64_t ne0, int64_t n_rows);

}  // namespace v4::cpu
