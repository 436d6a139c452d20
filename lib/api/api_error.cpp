#include "lib/api/api_error.h"

namespace v4::api {
namespace {
thread_local std::string g_last_error;
}

v4_status set_error(v4_status status, const std::string& message) {
  g_last_error = message;
  return status;
}

const char* last_error() { return g_last_error.c_str(); }

}  // namespace v4::api
