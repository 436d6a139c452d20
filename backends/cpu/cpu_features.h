// What the CPU we run on can do, read once from CPUID. One binary runs on any x86-64
// machine; kernels for newer instruction sets are chosen at run time.
#pragma once

namespace v4::cpu {

struct CpuFeatures {
  bool avx2 = false;     // with FMA and F16C
  bool avx512 = false;   // F + BW + VL
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
};

const CpuFeatures& cpu_features();
// "avx512-vnni", "avx2", "scalar": the best kernel family in use (for logs and benches).
const char* cpu_kernel_family();

}  // namespace v4::cpu
