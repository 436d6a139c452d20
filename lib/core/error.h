// One error type for the whole library: a status code plus a message that names
// the file, field or tensor involved. The C API turns it into a v4_status and the
// thread-local v4_last_error() text; it never crosses the ABI as an exception.
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace v4 {

// Values equal the C API's v4_status so conversion is a cast.
enum class Status : int {
  ok = 0,
  invalid_arg = -1,
  io = -2,
  bad_format = -3,
  unsupported = -4,
  out_of_memory = -5,
  context_full = -6,
  aborted = -7,
  cancelled = -8,
  no_device = -9,
  internal = -10,
};

const char* status_name(Status s);

class Error : public std::runtime_error {
 public:
  Error(Status status, std::string message)
      : std::runtime_error(std::move(message)), status_(status) {}
  Status status() const { return status_; }

 private:
  Status status_;
};

template <class... Args>
[[noreturn]] void fail(Status status, fmt::format_string<Args...> f, Args&&... args) {
  throw Error(status, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace v4
