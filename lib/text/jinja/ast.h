// The parsed form of a template: statements (text, output, if, for, set, macro, ...) holding
// expression trees. Every node keeps the byte offset of its first token for error messages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/text/jinja/value.h"

namespace v4::jinja {

struct Expr;
struct Node;
using ExprPtr = std::unique_ptr<Expr>;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

enum class ExprKind : uint8_t {
  literal,  // value
  name,     // name
  attr,     // a.name
  item,     // a[b]
  slice,    // a[items[0]:items[1]:items[2]] (null parts omitted)
  call,     // a(args)
  filter,   // a | name(args); a is null in a {% filter %} block
  test,     // a is [not] name(args)
  unary,    // op a: "not", "-", "+"
  binary,   // a op b: arithmetic, "and", "or", "~"
  compare,  // items[0] ops[0] items[1] ops[1] items[2] ... (chained, Python style)
  ternary,  // b if a else c (c may be null)
  list,     // [items]
  tuple,    // (items) or a, b
  dict,     // {items[0]: items[1], ...}
};

struct Arg {
  std::string name;  // empty: positional
  ExprPtr value;
};

struct Expr {
  ExprKind kind;
  size_t pos = 0;
  Value value;                   // literal
  std::string name;              // name, attribute, filter/test name, operator
  ExprPtr a, b, c;               // operands
  std::vector<ExprPtr> items;    // list/tuple/dict items, slice bounds, compare operands
  std::vector<std::string> ops;  // compare operators ("==", "in", "not in", ...)
  std::vector<Arg> args;         // call/filter/test arguments
  bool negated = false;          // test: "is not"
};

enum class NodeKind : uint8_t {
  text,       // text
  output,     // {{ expr }}
  if_,        // branches: (cond, body)..., else_body
  for_,       // for targets in expr [if cond]: body [else: else_body]
  set,        // set targets = expr, or set target.attr = expr (attr non-empty)
  set_block,  // {% set name %}body{% endset %}
  macro,      // {% macro name(params) %}body{% endmacro %}
  break_,
  continue_,
  filter_block,  // {% filter f %}body{% endfilter %}: expr is the filter with a null input
  scope,         // body rendered in place ({% generation %})
};

struct Branch {
  ExprPtr cond;
  Body body;
};

struct Param {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Node {
  NodeKind kind;
  size_t pos = 0;
  std::string text;                  // text
  ExprPtr expr;                      // output, set value, for iterable, filter
  ExprPtr cond;                      // for ... if cond
  std::vector<std::string> targets;  // for/set names (several: unpacking)
  std::string attr;                  // set ns.attr = ...: targets[0] is the namespace
  std::vector<Branch> branches;      // if / elif
  Body body, else_body;
  std::string name;           // macro name
  std::vector<Param> params;  // macro parameters
};

struct Program {
  std::string source;  // normalised source, for error positions
  Body body;
};

}  // namespace v4::jinja
