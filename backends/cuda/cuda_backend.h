// The CUDA backend's entry points, in plain C++ (no CUDA header needed to call them). Built
// from backends/cuda when V4_CUDA is on; otherwise a stub with the same functions reports
// that the build has no CUDA (cuda_stub.cpp).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lib/core/backend.h"

namespace v4 {

// What the CUDA runtime said when first asked (once per process; the answer is cached).
struct CudaProbe {
  int device_count = 0;
  std::string reason;  // empty when device_count > 0: why no device can be used
};
CudaProbe probe_cuda();

// Every CUDA device with name and free/total memory; empty when there is none (probe_cuda()
// says why, and the first call logs "no CUDA device: ..." once).
std::vector<DeviceInfo> cuda_devices();

// Whether device `from` can copy straight into device `to` (peer access); false without CUDA.
// The placement planner (lib/exec/placement.h) takes this as its peer table.
bool cuda_can_access_peer(int from, int to);

// Copies between host memory and memory of a CUDA backend's alloc() (for the executor's copies
// at split boundaries until the Backend interface has copy calls, and for tests).
void cuda_copy_to_host(void* dst, const void* device_src, size_t bytes);
void cuda_copy_to_device(void* device_dst, const void* src, size_t bytes);
// Raw device memory on the current device (tests place KV pages there).
void* cuda_device_alloc(size_t bytes);
void cuda_device_free(void* device_ptr);

// A backend on device `device` (0-based). Throws Error(no_device) when there is no such device.
std::unique_ptr<Backend> make_cuda_backend(int device);

}  // namespace v4
