// A small Jinja2 interpreter for chat templates. Template parses once; render() walks the tree
// with Jinja's scoping (a for loop or macro body has its own variables; namespace() objects
// carry state out of loops), Python value semantics, and the built-in globals range(),
// namespace(), dict() and raise_exception(). All limits of a render are in Limits.
#pragma once

#include <string>
#include <string_view>

#include "lib/text/jinja/ast.h"
#include "lib/text/jinja/limits.h"

namespace v4::jinja {

class Template {
 public:
  // Throws v4::Error(bad_format) with line and column when the source does not parse.
  explicit Template(std::string_view source, const Limits& limits = {});

  // Renders with `variables` as the template's global variables (they shadow the built-in
  // globals). Throws v4::Error(bad_format) with line and column on raise_exception(), on type
  // errors (such as an attribute of an undefined value), and when a limit is exceeded.
  // Thread-safe: a Template is immutable.
  std::string render(const Dict& variables) const;

  const Limits& limits() const { return limits_; }

 private:
  Program program_;
  Limits limits_;
};

}  // namespace v4::jinja
