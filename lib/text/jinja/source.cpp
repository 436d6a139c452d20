#include "lib/text/jinja/source.h"

#include <algorithm>

#include "lib/core/error.h"
#include "lib/text/jinja/pystr.h"

namespace v4::jinja {

Location locate(std::string_view source, size_t pos) {
  pos = std::min(pos, source.size());
  Location loc;
  size_t line_start = 0;
  for (size_t i = 0; i < pos; ++i) {
    if (source[i] == '\n') {
      ++loc.line;
      line_start = i + 1;
    }
  }
  loc.column = pystr::length(source.substr(line_start, pos - line_start)) + 1;
  return loc;
}

void fail_at(std::string_view source, size_t pos, std::string_view what) {
  const Location loc = locate(source, pos);
  fail(Status::bad_format, "chat template: line {}, column {}: {}", loc.line, loc.column, what);
}

}  // namespace v4::jinja
