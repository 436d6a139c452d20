// Parses tokens into a Program: the statement tags {% if/elif/else %}, {% for %} (with an
// optional `if` filter and {% else %}), {% set %} (names, tuples, namespace attributes, and the
// block form), {% macro %}, {% break %}/{% continue %}, {% filter %}, {% generation %}, and
// Jinja's expression grammar with its operator precedence. Unknown filters and tests are
// rejected here, as Jinja does when it compiles a template. Tags this engine does not
// implement (include, extends, block, import, call, raw, with) are errors.
#pragma once

#include <string>

#include "lib/text/jinja/ast.h"

namespace v4::jinja {

// Throws v4::Error(bad_format) with line and column on any syntax error, on an unknown
// filter or test, and when blocks or expressions nest deeper than max_nesting.
Program parse(std::string source, int max_nesting);

}  // namespace v4::jinja
