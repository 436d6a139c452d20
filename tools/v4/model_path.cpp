#include "model_path.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace v4::cli {

namespace {

constexpr const char* kBundledModelName = "stories260K-f32.gguf";

std::filesystem::path executable_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return exe.parent_path();
}

}  // namespace

std::vector<std::string> default_model_candidates() {
  std::vector<std::string> out;
  const char* env = std::getenv("V4_MODEL");
  if (env && *env) {
    out.emplace_back(env);
    return out;
  }
#ifdef V4_DEFAULT_MODEL
  out.emplace_back(V4_DEFAULT_MODEL);
#endif
  auto dir = executable_dir();
  if (!dir.empty()) {
    out.push_back((dir / ".." / "share" / "v4engine" / "models" / kBundledModelName)
                      .lexically_normal()
                      .string());
  }
  return out;
}

std::string resolve_model_path(const std::string& cli_value) {
  if (!cli_value.empty()) return cli_value;
  const char* env = std::getenv("V4_MODEL");
  // An explicit $V4_MODEL is used as given, so that a wrong value is reported, not skipped.
  if (env && *env) return env;
  for (const auto& c : default_model_candidates()) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(c, ec)) return c;
  }
  return {};
}

}  // namespace v4::cli
