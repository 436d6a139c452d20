// The CPU backend: host memory, reference kernels, the shared thread pool.
#pragma once

#include <memory>

#include "lib/core/backend.h"

namespace v4 {

// reference_only: run every op with its reference kernel (for testing the fast ones).
std::unique_ptr<Backend> make_cpu_backend(bool reference_only = false);

}  // namespace v4
