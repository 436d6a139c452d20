// Backend choice through the C API: v4_context_params.backend / .device (appended to the
// struct), the struct_size rule for older callers, and v4_devices_describe.
#include <cstddef>
#include <cstdlib>
#include <string>

#include "tests/model/model_fixture.h"

using namespace v4test;

namespace {

v4_status create(v4_model* m, v4_context_params p, v4_context** out) {
  p.log = quiet_log;
  p.n_ctx = 64;
  return v4_context_create(m, &p, out);
}

}  // namespace

TEST_CASE("an older caller without the backend fields still creates a context", "[api][backend]") {
  ModelHandle m;
  v4_context_params p = v4_context_default_params();
  p.backend = "no-such-backend";  // beyond the old struct_size: must not be read
  p.struct_size = offsetof(v4_context_params, backend);
  v4_context* c = nullptr;
  REQUIRE(create(m.m, p, &c) == V4_OK);
  v4_context_free(c);
}

TEST_CASE("unknown, missing and explicit backends", "[api][backend]") {
  ModelHandle m;
  v4_context* c = nullptr;
  v4_context_params p = v4_context_default_params();
  p.backend = "no-such-backend";
  CHECK(create(m.m, p, &c) == V4_ERR_INVALID_ARG);
  CHECK(std::string(v4_last_error()).find("unknown backend") != std::string::npos);
  CHECK(c == nullptr);

  p.backend = "cuda";  // here: not compiled in, or no driver/device
  const v4_status s = create(m.m, p, &c);
  CHECK((s == V4_ERR_UNSUPPORTED || s == V4_ERR_NO_DEVICE || s == V4_OK));
  if (s == V4_OK) v4_context_free(c);
  c = nullptr;

  p.backend = "cpu";
  REQUIRE(create(m.m, p, &c) == V4_OK);
  std::string plan(8192, '\0');
  size_t n = 0;
  REQUIRE(v4_context_describe_plan(c, plan.data(), plan.size(), &n) == V4_OK);
  CHECK(plan.find("backends: cpu\n") != std::string::npos);
  v4_context_free(c);
}

TEST_CASE("devices are described for every backend", "[api][backend]") {
  size_t n = 0;
  REQUIRE(v4_devices_describe(nullptr, 0, &n) == V4_ERR_BUFFER_TOO_SMALL);
  std::string text(n + 1, '\0');
  REQUIRE(v4_devices_describe(text.data(), text.size(), &n) == V4_OK);
  CHECK(text.find("cpu:\n  0: ") != std::string::npos);
}
