#include "lib/core/log.h"

#include <atomic>

namespace v4 {
namespace {
std::atomic<LogFn> g_fn{nullptr};
std::atomic<void*> g_user{nullptr};
}  // namespace

void set_global_log(LogFn fn, void* user) {
  g_user.store(user);
  g_fn.store(fn);
}

void Logger::write(LogLevel level, const std::string& text) const {
  LogFn f = fn;
  void* u = user;
  if (!f) {
    f = g_fn.load();
    u = g_user.load();
  }
  if (f) f(static_cast<int>(level), text.c_str(), u);
}

}  // namespace v4
