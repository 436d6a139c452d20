// Where the tool finds a model when -m is not given.
#pragma once

#include <string>
#include <vector>

namespace v4::cli {

// The candidates, in order: $V4_MODEL (when set and non-empty, it is the only candidate), the
// path compiled in (V4_DEFAULT_MODEL: the source tree's models/stories260K-f32.gguf), and
// <exe dir>/../share/v4engine/models/stories260K-f32.gguf (an installed tree).
std::vector<std::string> default_model_candidates();

// The -m value when non-empty, else the first existing candidate; "" when none exists.
std::string resolve_model_path(const std::string& cli_value);

}  // namespace v4::cli
