// The CPU backend: host memory, reference kernels, the shared thread pool.
#pragma once

#include <memory>

#include "lib/core/backend.h"

namespace v4 {

std::unique_ptr<Backend> make_cpu_backend();

}  // namespace v4
