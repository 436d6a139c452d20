// Built instead of the CUDA backend when V4_CUDA is off: the same two entry points, saying why
// there is no CUDA device, so callers need no #ifdef.
#include "backends/cuda/cuda_backend.h"
#include "lib/core/error.h"

namespace v4 {

CudaProbe probe_cuda() {
  CudaProbe p;
  p.reason =
      "no CUDA device: this build of v4engine has no CUDA backend (configure with -DV4_CUDA=ON)";
  return p;
}

std::vector<DeviceInfo> cuda_devices() { return {}; }

bool cuda_can_access_peer(int, int) { return false; }

void cuda_copy_to_host(void*, const void*, size_t) {
  fail(Status::no_device, "{}", probe_cuda().reason);
}
void cuda_copy_to_device(void*, const void*, size_t) {
  fail(Status::no_device, "{}", probe_cuda().reason);
}

void* cuda_device_alloc(size_t) { fail(Status::no_device, "{}", probe_cuda().reason); }
void cuda_device_free(void*) {}

std::unique_ptr<Backend> make_cuda_backend(int device) {
  fail(Status::no_device, "cuda device {}: {}", device, probe_cuda().reason);
}

}  // namespace v4
