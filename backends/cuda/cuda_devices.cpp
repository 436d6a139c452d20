// Device enumeration. The runtime is linked statically and loads the driver (libcuda.so) on
// first use; on a machine without the driver cudaGetDeviceCount returns an error instead of
// the library failing to load, and that error becomes the "no CUDA device" reason, logged once.
#include <cuda_runtime.h>

#include <mutex>

#include "backends/cuda/cuda_backend.h"
#include "backends/cuda/cuda_check.h"
#include "lib/core/log.h"

namespace v4 {

CudaProbe probe_cuda() {
  static const CudaProbe probe = [] {
    CudaProbe p;
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      cudaGetLastError();  // clear the sticky error so later calls start clean
      p.reason =
          fmt::format("no CUDA device: {} ({})", cudaGetErrorString(err), cudaGetErrorName(err));
    } else if (n == 0) {
      p.reason = "no CUDA device: the driver reports none";
    } else {
      p.device_count = n;
    }
    if (!p.reason.empty()) Logger{}(LogLevel::info, "{}", p.reason);
    return p;
  }();
  return probe;
}

std::vector<DeviceInfo> cuda_devices() {
  const CudaProbe probe = probe_cuda();
  std::vector<DeviceInfo> out;
  for (int d = 0; d < probe.device_count; ++d) {
    cudaDeviceProp prop{};
    V4_CUDA_CHECK(cudaGetDeviceProperties(&prop, d));
    DeviceInfo info;
    info.name = fmt::format("{} (sm_{}{})", prop.name, prop.major, prop.minor);
    info.kind = "gpu";
    int prev = 0;
    V4_CUDA_CHECK(cudaGetDevice(&prev));
    V4_CUDA_CHECK(cudaSetDevice(d));
    size_t free_b = 0, total_b = 0;
    V4_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    V4_CUDA_CHECK(cudaSetDevice(prev));
    info.memory_free = free_b;
    info.memory_total = total_b;
    out.push_back(std::move(info));
  }
  return out;
}

bool cuda_can_access_peer(int from, int to) {
  int ok = 0;
  return cudaDeviceCanAccessPeer(&ok, from, to) == cudaSuccess && ok != 0;
}

}  // namespace v4
