// Error plumbing shared by every C API file: the thread-local message behind
// v4_last_error(), and guarded(), which runs C++ code and turns any exception into a
// v4_status. Nothing thrown inside the library gets past a guarded() call.
#pragma once

#include <exception>
#include <new>
#include <cstring>
#include <string>

#include "lib/core/error.h"
#include "v4engine.h"

namespace v4::api {

v4_status set_error(v4_status status, const std::string& message);
const char* last_error();

template <class F>
v4_status guarded(F&& f) {
  try {
    f();
    return V4_OK;
  } catch (const v4::Error& e) {
    return set_error(static_cast<v4_status>(e.status()), e.what());
  } catch (const std::bad_alloc&) {
    return set_error(V4_ERR_OOM, "out of memory");
  } catch (const std::exception& e) {
    return set_error(V4_ERR_INTERNAL, std::string("internal error: ") + e.what());
  } catch (...) {
    return set_error(V4_ERR_INTERNAL, "internal error: unknown exception");
  }
}

// Copies params over defaults, honouring a smaller struct_size from older callers.
template <class T>
bool read_params(const T* in, T* out) {
  if (!in) return true;
  if (in->struct_size < sizeof(size_t) || in->struct_size > sizeof(T)) return false;
  const size_t n = in->struct_size;
  std::memcpy(static_cast<void*>(out), in, n);
  out->struct_size = sizeof(T);
  return true;
}

}  // namespace v4::api

#define V4_REQUIRE(cond, what)                                          \
  do {                                                                  \
    if (!(cond)) return ::v4::api::set_error(V4_ERR_INVALID_ARG, what); \
  } while (0)
