// The built-in filters, tests and methods (str, dict) of the template language, written to
// behave as Jinja2 and Python do for the values chat templates use. Every function charges the
// work it does to the render's Budget, so no argument can make one run away.
#pragma once

#include <string_view>
#include <vector>

#include "lib/text/jinja/value.h"

namespace v4::jinja {

class Budget;

using FilterFn = Value (*)(Budget& budget, const Value& input, const CallArgs& args);
using TestFn = bool (*)(Budget& budget, const Value& input, const CallArgs& args);

// Null when there is no such filter / test.
FilterFn find_filter(std::string_view name);
TestFn find_test(std::string_view name);

// Calls the method `name` of a str, dict or list value ("strip", "split", "get", "items",
// ...). Returns false (and leaves `out` alone) when the value's type has no such method.
bool call_method(Budget& budget, const Value& self, std::string_view name, const CallArgs& args,
                 Value& out);

// Python iteration: list items, dict keys, string characters; undefined iterates as empty.
// Throws TemplateError for values that are not iterable.
std::vector<Value> iterate(const Value& v, Budget& budget);

// `item in container`: substring, list element, dict key; false for undefined. Throws
// TemplateError for containers that are not iterable.
bool contains(Budget& budget, const Value& container, const Value& item);

// obj.name: dict key, namespace attribute; undefined when absent (or for other types).
Value get_attr(const Value& obj, std::string_view name);
// obj[key]: dict key, list/string index (negative from the end), namespace attribute;
// undefined when absent.
Value get_item(const Value& obj, const Value& key);

}  // namespace v4::jinja
