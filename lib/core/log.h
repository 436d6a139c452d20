// The library never prints: it hands each log line to a sink the application chose
// (per context, per model, or the global one set through the C API).
#pragma once

#include <fmt/format.h>

#include <string>
#include <utility>

namespace v4 {

enum class LogLevel : int { debug = 0, info = 1, warn = 2, error = 3 };

using LogFn = void (*)(int level, const char* text, void* user);

struct Logger {
  LogFn fn = nullptr;  // nullptr: use the global sink
  void* user = nullptr;

  void write(LogLevel level, const std::string& text) const;
  template <class... Args>
  void operator()(LogLevel level, fmt::format_string<Args...> f, Args&&... args) const {
    write(level, fmt::format(f, std::forward<Args>(args)...));
  }
};

void set_global_log(LogFn fn, void* user);

}  // namespace v4
