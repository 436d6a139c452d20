// Memory read bandwidth probe for `v4 bench`: the ceiling that batch-1 decoding can reach
// (every weight is read once per generated token, so tokens/s <= bandwidth / bytes per token).
//
// Method: one buffer of at least 1 GiB (2 MiB aligned, transparent huge pages requested),
// touched by the measuring threads first (so it is resident and, on NUMA machines, local);
// then `passes` timed passes in which every thread sums its contiguous slice with the widest
// vector loads the CPU has (AVX-512, else AVX2, else scalar; chosen at run time with
// __builtin_cpu_supports, so one binary runs everywhere). The result is the best pass:
// bytes / (time from the common start to the last thread's end).
#pragma once

#include <cstddef>
#include <string>

namespace v4::cli {

struct MembwResult {
  double gbs = 0;       // best pass, 1e9 bytes per second
  double mean_gbs = 0;  // mean over the passes
  int threads = 0;
  size_t bytes = 0;  // buffer size
  int passes = 0;
  const char* isa = "";  // "avx512", "avx2" or "scalar"
};

inline constexpr size_t kMembwDefaultBytes = size_t{1} << 30;

// The vector width the probe uses on this CPU.
const char* membw_isa();

// Runs the probe with n_threads threads (>= 1). Throws std::runtime_error when the buffer
// cannot be allocated.
MembwResult measure_read_bandwidth(int n_threads, size_t bytes = kMembwDefaultBytes,
                                   int passes = 10);

// Number of CPUs this process may run on (the default thread count).
int available_cpus();

// CPU time of the whole machine (/proc/stat, all CPUs: busy = user + nice + system + irq +
// softirq + steal, steal being time the hypervisor gave to other guests) and of this process
// (/proc/self/stat), to tell whether other work competed with a measurement.
struct CpuSample {
  double wall = 0;      // seconds, steady clock
  double all_busy = 0;  // CPU-seconds, all CPUs
  double self = 0;      // CPU-seconds of this process
  int n_cpus = 0;
  bool ok = false;
};
CpuSample cpu_sample();
// Fraction of the machine's CPU capacity used by anything but this process between a and b
// (0 = nothing else ran, 1 = every CPU was busy elsewhere), or -1 when unknown (no /proc, or
// an interval too short for the 10 ms tick).
double others_cpu_fraction(const CpuSample& a, const CpuSample& b);

}  // namespace v4::cli
