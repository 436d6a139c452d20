// A CUDA-enabled build on a machine without the NVIDIA driver (or without any CUDA device):
// asking for CUDA devices reports "no CUDA device" instead of failing, a CUDA backend cannot
// be made, and the bundled model still runs on the CPU in the same process with the
// reference output. On a machine with devices the first part checks the device list instead.
#include <fstream>
#include <sstream>

#include "backends/cuda/cuda_backend.h"
#include "lib/core/error.h"
#include "tests/model/model_fixture.h"

namespace {

v4::Status make_backend_status(int device) {
  try {
    v4::make_cuda_backend(device);
  } catch (const v4::Error& e) {
    return e.status();
  }
  return v4::Status::ok;
}

}  // namespace

TEST_CASE("without a CUDA device the library says so and runs the model on the CPU",
          "[model][cuda]") {
  const v4::CudaProbe probe = v4::probe_cuda();
  INFO("probe: " << probe.device_count << " device(s); " << probe.reason);
  if (probe.device_count == 0) {
    CHECK(probe.reason.rfind("no CUDA device", 0) == 0);
    CHECK(v4::cuda_devices().empty());
    CHECK(make_backend_status(0) == v4::Status::no_device);
  } else {
    CHECK(probe.reason.empty());
    CHECK(v4::cuda_devices().size() == static_cast<size_t>(probe.device_count));
  }
  CHECK(make_backend_status(-1) == v4::Status::no_device);
  CHECK(v4::probe_cuda().reason == probe.reason);  // asked once, cached

  v4test::ModelHandle m;
  std::ifstream f(std::string(V4_TEST_DATA_DIR) + "/stories260K-expected.txt");
  std::stringstream expected;
  expected << f.rdbuf();
  const std::string out =
      "Once upon a time" + v4test::generate(m.m, "Once upon a time", 40, 0.0f, 0);
  REQUIRE(out.size() > 60);
  CHECK(expected.str().rfind(out, 0) == 0);
}
