#include "backends/cpu/dot_kernels.h"

#include "backends/cpu/cpu_features.h"

namespace v4::cpu {

const DotKernel* find_dot_kernel(DType t) {
  const CpuFeatures& f = cpu_features();
#if defined(__x86_64__)
  if (f.avx2) return avx2_dot_kernel(t);
#else
  (void)f;
  (void)t;
#endif
  return nullptr;
}

}  // namespace v4::cpu
