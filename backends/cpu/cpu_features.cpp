#include "backends/cpu/cpu_features.h"

#include <cstdlib>
#include <cstring>

namespace v4::cpu {
namespace {

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  f.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl");
  f.avx512_vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
  f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
  // V4_CPU=scalar|avx2 caps the kernels (testing the fallbacks on a newer machine).
  if (const char* cap = std::getenv("V4_CPU")) {
    if (std::strcmp(cap, "scalar") == 0) f = CpuFeatures{};
    if (std::strcmp(cap, "avx2") == 0) f.avx512 = f.avx512_vnni = f.avx512_bf16 = false;
  }
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const char* cpu_kernel_family() {
  const CpuFeatures& f = cpu_features();
  if (f.avx512_vnni) return "avx512-vnni";
  if (f.avx2) return "avx2";
  return "scalar";
}

}  // namespace v4::cpu
