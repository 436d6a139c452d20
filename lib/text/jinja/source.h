// Positions in a template's source and the one way errors leave the template engine:
// v4::Error with Status::bad_format and "chat template: line L, column C: what".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace v4::jinja {

struct Location {
  size_t line = 1;    // 1-based
  size_t column = 1;  // 1-based, in characters
};

Location locate(std::string_view source, size_t pos);

// Throws v4::Error(Status::bad_format) naming the position of `pos` in `source`.
[[noreturn]] void fail_at(std::string_view source, size_t pos, std::string_view what);

}  // namespace v4::jinja
