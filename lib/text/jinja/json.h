// JSON in and out of template values. to_json follows Python's json.dumps as Hugging Face's
// `tojson` filter calls it (ensure_ascii off, separators ", " and ": ", or "," and ": " with an
// indent), so tool schemas render byte for byte as with transformers. parse_json builds values
// from JSON text (tool definitions, tests).
#pragma once

#include <string>
#include <string_view>

#include "lib/text/jinja/value.h"

namespace v4::jinja {

struct JsonOptions {
  int indent = -1;  // < 0: single line
  bool sort_keys = false;
  bool ensure_ascii = false;
  std::string item_separator;  // empty: Python's default for the indent mode
  std::string key_separator;   // empty: ": "
};

// Throws TemplateError for values JSON cannot hold (undefined, namespaces, functions) and when
// the text grows past the budget's string limit.
std::string to_json(const Value& v, const JsonOptions& options, Budget& budget);

// Throws TemplateError("invalid JSON ...") with the byte offset of the problem.
Value parse_json(std::string_view text);

}  // namespace v4::jinja
