#include "lib/kv/spill_files.h"

#include <unistd.h>

#include <cstdlib>
#include <mutex>
#include <set>

namespace v4 {
namespace {

// Leaked on purpose: the atexit handler may run after static destructors would have.
struct Registry {
  std::mutex mu;
  std::set<std::string> paths;
};

Registry& registry() {
  static Registry* r = new Registry;
  return *r;
}

void remove_remaining() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  for (const std::string& p : r.paths) ::unlink(p.c_str());
  r.paths.clear();
}

}  // namespace

void spill_file_created(const std::string& path) {
  static const bool installed = std::atexit(remove_remaining) == 0;
  (void)installed;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.paths.insert(path);
}

void spill_file_removed(const std::string& path) {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.paths.erase(path);
}

}  // namespace v4
