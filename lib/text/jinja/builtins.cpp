#include "lib/text/jinja/builtins.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>

#include "lib/text/jinja/json.h"
#include "lib/text/jinja/limits.h"
#include "lib/text/jinja/pystr.h"

namespace v4::jinja {

namespace {

// ---- helpers ------------------------------------------------------------------------------

[[noreturn]] void type_error(const std::string& what) { throw TemplateError(what); }

Value make_str(Budget& b, std::string s) {
  b.string(s.size());
  return Value::string(std::move(s));
}

Value make_list(Budget& b, std::vector<Value> items) {
  b.list(items.size());
  return Value::list(std::move(items));
}

// Rejects positional arguments past `max_pos` and keywords not in `names`.
void check_args(const CallArgs& a, size_t max_pos, std::initializer_list<std::string_view> names,
                std::string_view fn) {
  if (a.pos.size() > max_pos)
    type_error(std::string(fn) + "() takes at most " + std::to_string(max_pos) +
               " positional argument(s), " + std::to_string(a.pos.size()) + " given");
  for (const auto& [k, v] : a.kw) {
    bool ok = false;
    for (std::string_view n : names) ok = ok || k == n;
    if (!ok) type_error(std::string(fn) + "() got an unexpected keyword argument '" + k + "'");
  }
}

int64_t int_arg(const CallArgs& a, size_t i, std::string_view name, int64_t dflt,
                std::string_view fn) {
  const Value* v = a.get(i, name);
  if (!v || v->is_none()) return dflt;
  if (!v->is_int() && !v->is_bool())
    type_error(std::string(fn) + "(): '" + std::string(name) + "' must be an integer, not '" +
               v->type_name() + "'");
  return v->as_int();
}

bool bool_arg(const CallArgs& a, size_t i, std::string_view name, bool dflt) {
  const Value* v = a.get(i, name);
  return v ? v->truthy() : dflt;
}

// A string argument; `dflt` null means required.
std::string str_arg(const CallArgs& a, size_t i, std::string_view name, const char* dflt,
                    std::string_view fn) {
  const Value* v = a.get(i, name);
  if (!v || v->is_undefined()) {
    if (!dflt) type_error(std::string(fn) + "() missing argument '" + std::string(name) + "'");
    return dflt;
  }
  if (!v->is_string())
    type_error(std::string(fn) + "(): '" + std::string(name) + "' must be a string, not '" +
               v->type_name() + "'");
  return v->str();
}

std::string text_of(const Value& v, Budget& b) {
  std::string s = v.to_string(b);
  b.bytes(s.size());
  return s;
}

// Checks that replacing every `old_s` in `s` with `new_s` stays within the string limit.
void check_replace_size(Budget& b, std::string_view s, std::string_view old_s,
                        std::string_view new_s, int64_t count) {
  if (new_s.size() <= old_s.size()) return;
  uint64_t hits = 0;
  if (old_s.empty()) {
    hits = pystr::length(s) + 1;
  } else {
    for (size_t p = s.find(old_s); p != std::string_view::npos; p = s.find(old_s, p + old_s.size()))
      ++hits;
  }
  if (count >= 0) hits = std::min<uint64_t>(hits, static_cast<uint64_t>(count));
  const uint64_t grow = new_s.size() - old_s.size();
  const uint64_t limit = b.limits().max_output_bytes;
  if (hits > 0 && grow > (limit + 1) / hits) b.string(limit + 1);
  b.string(s.size() + hits * grow);
}

// Attribute path lookup as selectattr/map/sort use it: "a.b", digits index lists.
Value get_path(const Value& obj, std::string_view path) {
  Value cur = obj;
  size_t start = 0;
  for (;;) {
    const size_t dot = path.find('.', start);
    const std::string_view part =
        path.substr(start, dot == std::string_view::npos ? dot : dot - start);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(),
                                                     [](char c) { return c >= '0' && c <= '9'; });
    if (digits && part.size() < 18)
      cur = get_item(cur, Value::integer(std::strtoll(std::string(part).c_str(), nullptr, 10)));
    else
      cur = get_attr(cur, part);
    if (dot == std::string_view::npos) return cur;
    start = dot + 1;
  }
}

Value list_of_chars(const std::string& s, Budget& b) {
  const std::vector<size_t> offs = pystr::char_offsets(s);
  std::vector<Value> items;
  b.list(offs.size() - 1);
  items.reserve(offs.size() - 1);
  for (size_t k = 0; k + 1 < offs.size(); ++k)
    items.push_back(Value::string(s.substr(offs[k], offs[k + 1] - offs[k])));
  return Value::list(std::move(items));
}

// Python slice-free index normalisation; -1 when out of range.
int64_t norm_index(int64_t i, size_t n) {
  if (i < 0) i += static_cast<int64_t>(n);
  return (i < 0 || i >= static_cast<int64_t>(n)) ? -1 : i;
}

// ---- tests ----------------------------------------------------------------------------------

bool t_defined(Budget&, const Value& v, const CallArgs&) { return !v.is_undefined(); }
bool t_undefined(Budget&, const Value& v, const CallArgs&) { return v.is_undefined(); }
bool t_none(Budget&, const Value& v, const CallArgs&) { return v.is_none(); }
bool t_boolean(Budget&, const Value& v, const CallArgs&) { return v.is_bool(); }
bool t_true(Budget&, const Value& v, const CallArgs&) { return v.is_bool() && v.as_bool(); }
bool t_false(Budget&, const Value& v, const CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool t_integer(Budget&, const Value& v, const CallArgs&) { return v.is_int(); }
bool t_float(Budget&, const Value& v, const CallArgs&) { return v.is_float(); }
bool t_number(Budget&, const Value& v, const CallArgs&) { return v.is_number(); }
bool t_string(Budget&, const Value& v, const CallArgs&) { return v.is_string(); }
bool t_mapping(Budget&, const Value& v, const CallArgs&) { return v.is_dict(); }
bool t_iterable(Budget&, const Value& v, const CallArgs&) {
  return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
}
bool t_sequence(Budget&, const Value& v, const CallArgs&) {
  return v.is_list() || v.is_dict() || v.is_string() || v.is_undefined();
}
bool t_callable(Budget&, const Value& v, const CallArgs&) { return v.is_callable(); }
bool t_escaped(Budget&, const Value&, const CallArgs&) { return false; }

bool t_lower(Budget&, const Value& v, const CallArgs&) {
  if (!v.is_string()) return false;
  bool cased = false;
  for (char c : v.str()) {
    if (c >= 'A' && c <= 'Z') return false;
    if (c >= 'a' && c <= 'z') cased = true;
  }
  return cased;
}

bool t_upper(Budget&, const Value& v, const CallArgs&) {
  if (!v.is_string()) return false;
  bool cased = false;
  for (char c : v.str()) {
    if (c >= 'a' && c <= 'z') return false;
    if (c >= 'A' && c <= 'Z') cased = true;
  }
  return cased;
}

int64_t int_operand(const Value& v, const char* test) {
  if (!v.is_int() && !v.is_bool())
    type_error(std::string("test '") + test + "' needs an integer, not '" + v.type_name() + "'");
  return v.as_int();
}

bool t_odd(Budget&, const Value& v, const CallArgs&) { return int_operand(v, "odd") % 2 != 0; }
bool t_even(Budget&, const Value& v, const CallArgs&) { return int_operand(v, "even") % 2 == 0; }

bool t_divisibleby(Budget&, const Value& v, const CallArgs& a) {
  const int64_t n = int_arg(a, 0, "num", 0, "divisibleby");
  if (n == 0) type_error("divisibleby(0): division by zero");
  return int_operand(v, "divisibleby") % n == 0;
}

const Value& test_operand(const CallArgs& a, const char* test) {
  const Value* o = a.get(0, "other");
  if (!o) type_error(std::string("test '") + test + "' needs an argument");
  return *o;
}

bool t_eq(Budget& b, const Value& v, const CallArgs& a) {
  return v.equals(test_operand(a, "=="), b);
}
bool t_ne(Budget& b, const Value& v, const CallArgs& a) {
  return !v.equals(test_operand(a, "!="), b);
}
bool t_lt(Budget& b, const Value& v, const CallArgs& a) {
  return v.compare(test_operand(a, "<"), b) < 0;
}
bool t_le(Budget& b, const Value& v, const CallArgs& a) {
  return v.compare(test_operand(a, "<="), b) <= 0;
}
bool t_gt(Budget& b, const Value& v, const CallArgs& a) {
  return v.compare(test_operand(a, ">"), b) > 0;
}
bool t_ge(Budget& b, const Value& v, const CallArgs& a) {
  return v.compare(test_operand(a, ">="), b) >= 0;
}

bool t_sameas(Budget& b, const Value& v, const CallArgs& a) {
  const Value& o = test_operand(a, "sameas");
  if (v.is_scalar() || o.is_scalar()) return v.type() == o.type() && v.scalar_equals(o);
  return v.type() == o.type() && v.equals(o, b);
}

bool t_in(Budget& b, const Value& v, const CallArgs& a) {
  return contains(b, test_operand(a, "in"), v);
}

struct TestEntry {
  std::string_view name;
  TestFn fn;
};

constexpr TestEntry kTests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"boolean", t_boolean},
    {"true", t_true},
    {"false", t_false},
    {"integer", t_integer},
    {"float", t_float},
    {"number", t_number},
    {"string", t_string},
    {"mapping", t_mapping},
    {"iterable", t_iterable},
    {"sequence", t_sequence},
    {"callable", t_callable},
    {"escaped", t_escaped},
    {"lower", t_lower},
    {"upper", t_upper},
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"ne", t_ne},
    {"!=", t_ne},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"le", t_le},
    {"<=", t_le},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"sameas", t_sameas},
    {"in", t_in},
};

// Applies the test named by args.pos[first] (with the rest as its arguments) to v.
bool apply_named_test(Budget& b, const Value& v, const CallArgs& args, size_t first,
                      std::string_view fn) {
  if (args.pos.size() <= first) return v.truthy();
  const Value& name = args.pos[first];
  if (!name.is_string()) type_error(std::string(fn) + "(): the test name must be a string");
  const TestFn test = find_test(name.str());
  if (!test) type_error("no test named '" + name.str() + "'");
  CallArgs rest;
  rest.pos.assign(args.pos.begin() + static_cast<std::ptrdiff_t>(first) + 1, args.pos.end());
  return test(b, v, rest);
}

// ---- filters --------------------------------------------------------------------------------

Value f_abs(Budget&, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "abs");
  if (v.is_float()) return Value::floating(std::fabs(v.as_double()));
  if (v.is_int() || v.is_bool()) {
    const int64_t i = v.as_int();
    if (i == INT64_MIN) type_error("integer overflow in abs()");
    return Value::integer(i < 0 ? -i : i);
  }
  type_error(std::string("bad operand type for abs(): '") + v.type_name() + "'");
}

Value f_attr(Budget&, const Value& v, const CallArgs& a) {
  check_args(a, 1, {"name"}, "attr");
  return get_attr(v, str_arg(a, 0, "name", nullptr, "attr"));
}

Value f_capitalize(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "capitalize");
  return make_str(b, pystr::capitalize(text_of(v, b)));
}

Value f_center(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 1, {"width"}, "center");
  const std::string s = text_of(v, b);
  const int64_t width = int_arg(a, 0, "width", 80, "center");
  const int64_t len = static_cast<int64_t>(pystr::length(s));
  if (width <= len) return make_str(b, s);
  b.string(s.size() + static_cast<size_t>(width - len));
  const int64_t pad = width - len;
  // Python puts the extra space on the right when the string length and width are both odd.
  const int64_t left = pad / 2 + (pad & width & 1);
  return Value::string(std::string(static_cast<size_t>(left), ' ') + s +
                       std::string(static_cast<size_t>(pad - left), ' '));
}

Value f_length(Budget&, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "length");
  switch (v.type()) {
    case Value::Type::string:
      return Value::integer(static_cast<int64_t>(pystr::length(v.str())));
    case Value::Type::list:
      return Value::integer(static_cast<int64_t>(v.items().size()));
    case Value::Type::dict:
      return Value::integer(static_cast<int64_t>(v.dict().size()));
    case Value::Type::undefined:
      return Value::integer(0);
    default:
      type_error(std::string("object of type '") + v.type_name() + "' has no len()");
  }
}

Value f_default(Budget&, const Value& v, const CallArgs& a) {
  check_args(a, 2, {"default_value", "boolean"}, "default");
  const bool boolean = bool_arg(a, 1, "boolean", false);
  if (v.is_undefined() || (boolean && !v.truthy())) {
    const Value* d = a.get(0, "default_value");
    return d ? *d : Value::string("");
  }
  return v;
}

Value dict_items(Budget& b, const Value& v) {
  std::vector<Value> items;
  b.list(v.dict().size());
  for (const auto& [k, val] : v.dict().entries()) items.push_back(Value::list({k, val}));
  return Value::list(std::move(items));
}

// Sort key text for case-insensitive comparison.
Value fold_case(const Value& v, bool case_sensitive) {
  if (case_sensitive || !v.is_string()) return v;
  return Value::string(pystr::lower(v.str()));
}

void sort_values(Budget& b, std::vector<Value>& items, bool reverse,
                 const std::function<Value(const Value&)>& key) {
  std::vector<std::pair<Value, size_t>> keyed;
  keyed.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(key(items[i]), i);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    const int c = x.first.compare(y.first, b);
    return reverse ? c > 0 : c < 0;
  });
  std::vector<Value> out;
  out.reserve(items.size());
  for (const auto& [k, i] : keyed) out.push_back(items[i]);
  items = std::move(out);
}

Value f_dictsort(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 3, {"case_sensitive", "by", "reverse"}, "dictsort");
  if (!v.is_dict()) type_error("dictsort() needs a dict");
  const bool cs = bool_arg(a, 0, "case_sensitive", false);
  const std::string by = str_arg(a, 1, "by", "key", "dictsort");
  if (by != "key" && by != "value") type_error("dictsort(): 'by' must be 'key' or 'value'");
  const size_t idx = by == "key" ? 0 : 1;
  std::vector<Value> items = dict_items(b, v).items();
  sort_values(b, items, bool_arg(a, 2, "reverse", false),
              [&](const Value& kv) { return fold_case(kv.items()[idx], cs); });
  return Value::list(std::move(items));
}

Value f_escape(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "escape");
  const std::string s = text_of(v, b);
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return make_str(b, std::move(out));
}

Value f_first(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "first");
  if (v.is_list()) return v.items().empty() ? Value::undefined("first") : v.items().front();
  if (v.is_undefined()) return Value::undefined("first");
  std::vector<Value> items = iterate(v, b);
  return items.empty() ? Value::undefined("first") : items.front();
}

Value f_last(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "last");
  if (v.is_list()) return v.items().empty() ? Value::undefined("last") : v.items().back();
  if (v.is_undefined()) return Value::undefined("last");
  std::vector<Value> items = iterate(v, b);
  return items.empty() ? Value::undefined("last") : items.back();
}

bool parse_int_text(std::string_view text, int64_t base, int64_t* out) {
  std::string s = pystr::strip(text, true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, static_cast<int>(base));
  if (errno != 0 || *end != '\0') return false;
  *out = v;
  return true;
}

bool parse_float_text(std::string_view text, double* out) {
  const std::string s = pystr::strip(text, true, true);
  if (s.empty()) return false;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (*end != '\0') return false;
  *out = d;
  return true;
}

Value f_float(Budget&, const Value& v, const CallArgs& a) {
  check_args(a, 1, {"default"}, "float");
  if (v.is_number()) return Value::floating(v.as_double());
  double d;
  if (v.is_string() && parse_float_text(v.str(), &d)) return Value::floating(d);
  const Value* dflt = a.get(0, "default");
  return dflt ? *dflt : Value::floating(0.0);
}

Value f_int(Budget&, const Value& v, const CallArgs& a) {
  check_args(a, 2, {"default", "base"}, "int");
  if (v.is_int() || v.is_bool()) return Value::integer(v.as_int());
  if (v.is_float()) {
    const double d = v.as_double();
    if (std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(static_cast<int64_t>(d));
  }
  if (v.is_string()) {
    const int64_t base = int_arg(a, 1, "base", 10, "int");
    int64_t i;
    if (base >= 2 && base <= 36 && parse_int_text(v.str(), base, &i)) return Value::integer(i);
    double d;
    if (parse_float_text(v.str(), &d) && std::isfinite(d) && std::fabs(d) < 9.2e18)
      return Value::integer(static_cast<int64_t>(d));
  }
  const Value* dflt = a.get(0, "default");
  return dflt ? *dflt : Value::integer(0);
}

std::vector<std::string> split_lines(std::string_view s) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || s[i] == '\r') {
      lines.emplace_back(s.substr(start, i - start));
      if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') ++i;
      start = i + 1;
    }
  }
  if (start < s.size()) lines.emplace_back(s.substr(start));
  return lines;
}

Value f_indent(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 3, {"width", "first", "blank"}, "indent");
  std::string pad;
  const Value* w = a.get(0, "width");
  if (w && w->is_string()) {
    pad = w->str();
  } else {
    const int64_t n = int_arg(a, 0, "width", 4, "indent");
    if (n > 0) {
      b.string(static_cast<size_t>(n));
      pad.assign(static_cast<size_t>(n), ' ');
    }
  }
  const bool first = bool_arg(a, 1, "first", false);
  const bool blank = bool_arg(a, 2, "blank", false);
  const std::vector<std::string> lines = split_lines(text_of(v, b) + "\n");
  uint64_t size = pad.size();
  for (const auto& l : lines) size += l.size() + 1 + pad.size();
  b.string(size);
  std::string out;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      out += '\n';
      if (blank || !lines[i].empty()) out += pad;
    }
    out += lines[i];
  }
  if (first) out = pad + out;
  return Value::string(std::move(out));
}

Value f_items(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "items");
  if (v.is_undefined()) return Value::list({});
  if (!v.is_dict()) type_error(std::string("items() needs a dict, not '") + v.type_name() + "'");
  return dict_items(b, v);
}

Value f_join(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 2, {"d", "attribute"}, "join");
  const std::string sep = str_arg(a, 0, "d", "", "join");
  const Value* attr = a.get(1, "attribute");
  std::vector<Value> items = iterate(v, b);
  std::vector<std::string> parts;
  uint64_t size = 0;
  for (const Value& item : items) {
    const Value x = attr && !attr->is_none() ? get_path(item, text_of(*attr, b)) : item;
    parts.push_back(text_of(x, b));
    size += parts.back().size() + sep.size();
    b.check_size(size);
  }
  b.bytes(size);
  std::string out;
  out.reserve(size);
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return Value::string(std::move(out));
}

Value f_list(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "list");
  if (v.is_list()) return v;
  return make_list(b, iterate(v, b));
}

Value f_lower(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "lower");
  return make_str(b, pystr::lower(text_of(v, b)));
}

Value f_upper(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "upper");
  return make_str(b, pystr::upper(text_of(v, b)));
}

Value f_title(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "title");
  return make_str(b, pystr::title(text_of(v, b)));
}

Value f_map(Budget& b, const Value& v, const CallArgs& a) {
  std::vector<Value> items = iterate(v, b);
  std::vector<Value> out;
  out.reserve(items.size());
  if (const Value* attr = a.get(99, "attribute")) {
    check_args(a, 0, {"attribute", "default"}, "map");
    const std::string path = text_of(*attr, b);
    const Value* dflt = a.get(99, "default");
    for (const Value& item : items) {
      Value x = get_path(item, path);
      if (x.is_undefined() && dflt) x = *dflt;
      out.push_back(std::move(x));
    }
    return make_list(b, std::move(out));
  }
  if (a.pos.empty() || !a.pos[0].is_string()) type_error("map() needs a filter name or attribute=");
  const FilterFn f = find_filter(a.pos[0].str());
  if (!f) type_error("no filter named '" + a.pos[0].str() + "'");
  CallArgs rest;
  rest.pos.assign(a.pos.begin() + 1, a.pos.end());
  rest.kw = a.kw;
  for (const Value& item : items) {
    b.step();
    out.push_back(f(b, item, rest));
  }
  return make_list(b, std::move(out));
}

Value min_max(Budget& b, const Value& v, const CallArgs& a, bool want_max, const char* fn) {
  check_args(a, 2, {"case_sensitive", "attribute"}, fn);
  const bool cs = bool_arg(a, 0, "case_sensitive", false);
  const Value* attr = a.get(1, "attribute");
  std::vector<Value> items = iterate(v, b);
  if (items.empty()) return Value::undefined(fn);
  auto key = [&](const Value& x) {
    return fold_case(attr && !attr->is_none() ? get_path(x, text_of(*attr, b)) : x, cs);
  };
  size_t best = 0;
  Value best_key = key(items[0]);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = key(items[i]);
    const int c = k.compare(best_key, b);
    if (want_max ? c > 0 : c < 0) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}

Value f_max(Budget& b, const Value& v, const CallArgs& a) { return min_max(b, v, a, true, "max"); }
Value f_min(Budget& b, const Value& v, const CallArgs& a) { return min_max(b, v, a, false, "min"); }

Value select_impl(Budget& b, const Value& v, const CallArgs& a, bool keep, bool by_attr,
                  const char* fn) {
  std::vector<Value> items = iterate(v, b);
  std::vector<Value> out;
  std::string attr;
  if (by_attr) {
    if (a.pos.empty() || !a.pos[0].is_string())
      type_error(std::string(fn) + "() needs an attribute name");
    attr = a.pos[0].str();
  }
  for (const Value& item : items) {
    b.step();
    const Value x = by_attr ? get_path(item, attr) : item;
    if (apply_named_test(b, x, a, by_attr ? 1 : 0, fn) == keep) out.push_back(item);
  }
  return make_list(b, std::move(out));
}

Value f_select(Budget& b, const Value& v, const CallArgs& a) {
  return select_impl(b, v, a, true, false, "select");
}
Value f_reject(Budget& b, const Value& v, const CallArgs& a) {
  return select_impl(b, v, a, false, false, "reject");
}
Value f_selectattr(Budget& b, const Value& v, const CallArgs& a) {
  return select_impl(b, v, a, true, true, "selectattr");
}
Value f_rejectattr(Budget& b, const Value& v, const CallArgs& a) {
  return select_impl(b, v, a, false, true, "rejectattr");
}

Value f_replace(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 3, {"old", "new", "count"}, "replace");
  const std::string s = text_of(v, b);
  const std::string old_s = str_arg(a, 0, "old", nullptr, "replace");
  const std::string new_s = str_arg(a, 1, "new", nullptr, "replace");
  const int64_t count = int_arg(a, 2, "count", -1, "replace");
  check_replace_size(b, s, old_s, new_s, count);
  return Value::string(pystr::replace(s, old_s, new_s, count));
}

Value f_reverse(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "reverse");
  if (v.is_string()) {
    const std::vector<size_t> offs = pystr::char_offsets(v.str());
    std::string out;
    out.reserve(v.str().size());
    for (size_t k = offs.size() - 1; k > 0; --k)
      out.append(v.str(), offs[k - 1], offs[k] - offs[k - 1]);
    return make_str(b, std::move(out));
  }
  std::vector<Value> items = iterate(v, b);
  std::reverse(items.begin(), items.end());
  return make_list(b, std::move(items));
}

Value f_round(Budget&, const Value& v, const CallArgs& a) {
  check_args(a, 2, {"precision", "method"}, "round");
  if (!v.is_number())
    type_error(std::string("round() needs a number, not '") + v.type_name() + "'");
  const int64_t precision = int_arg(a, 0, "precision", 0, "round");
  const Value* m = a.get(1, "method");
  const std::string method = m && m->is_string() ? m->str() : "common";
  const double scale =
      std::pow(10.0, static_cast<double>(std::clamp<int64_t>(precision, -300, 300)));
  const double x = v.as_double() * scale;
  double r;
  if (method == "common")
    r = std::nearbyint(x);  // Python's round(): half to even
  else if (method == "floor")
    r = std::floor(x);
  else if (method == "ceil")
    r = std::ceil(x);
  else
    type_error("round(): method must be 'common', 'ceil' or 'floor'");
  return Value::floating(r / scale);
}

Value f_safe(Budget&, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "safe");
  return v;
}

Value f_sort(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 3, {"reverse", "case_sensitive", "attribute"}, "sort");
  const bool reverse = bool_arg(a, 0, "reverse", false);
  const bool cs = bool_arg(a, 1, "case_sensitive", false);
  const Value* attr = a.get(2, "attribute");
  std::vector<Value> items = iterate(v, b);
  b.step(items.size() * 8);
  const std::string path = attr && !attr->is_none() ? text_of(*attr, b) : std::string();
  sort_values(b, items, reverse,
              [&](const Value& x) { return fold_case(path.empty() ? x : get_path(x, path), cs); });
  return make_list(b, std::move(items));
}

Value f_string(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "string");
  if (v.is_string()) return v;
  return make_str(b, text_of(v, b));
}

Value f_sum(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 2, {"attribute", "start"}, "sum");
  const Value* attr = a.get(0, "attribute");
  const Value* start = a.get(1, "start");
  bool is_float = start && start->is_float();
  int64_t isum = start && !is_float ? start->as_int() : 0;
  double fsum = start ? start->as_double() : 0.0;
  for (const Value& item : iterate(v, b)) {
    const Value x = attr && !attr->is_none() ? get_path(item, text_of(*attr, b)) : item;
    if (!x.is_number()) type_error(std::string("sum(): cannot add '") + x.type_name() + "'");
    if (x.is_float() && !is_float) {
      is_float = true;
      fsum = static_cast<double>(isum);
    }
    if (is_float) {
      fsum += x.as_double();
    } else if (__builtin_add_overflow(isum, x.as_int(), &isum)) {
      type_error("integer overflow in sum()");
    }
  }
  return is_float ? Value::floating(fsum) : Value::integer(isum);
}

Value f_tojson(Budget& b, const Value& v, const CallArgs& a) {
  // Hugging Face's signature: tojson(x, ensure_ascii=False, indent=None, separators=None,
  // sort_keys=False).
  check_args(a, 4, {"ensure_ascii", "indent", "separators", "sort_keys"}, "tojson");
  JsonOptions o;
  o.ensure_ascii = bool_arg(a, 0, "ensure_ascii", false);
  const Value* indent = a.get(1, "indent");
  if (indent && !indent->is_none()) {
    if (!indent->is_int()) type_error("tojson(): indent must be an integer");
    o.indent = static_cast<int>(std::clamp<int64_t>(indent->as_int(), 0, 64));
  }
  const Value* seps = a.get(2, "separators");
  if (seps && !seps->is_none()) {
    if (!seps->is_list() || seps->items().size() != 2 || !seps->items()[0].is_string() ||
        !seps->items()[1].is_string())
      type_error("tojson(): separators must be a pair of strings");
    o.item_separator = seps->items()[0].str();
    o.key_separator = seps->items()[1].str();
  }
  o.sort_keys = bool_arg(a, 3, "sort_keys", false);
  return Value::string(to_json(v, o, b));
}

Value f_trim(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 1, {"chars"}, "trim");
  const Value* chars = a.get(0, "chars");
  std::string set;
  if (chars && !chars->is_none()) set = text_of(*chars, b);
  return make_str(
      b, pystr::strip(text_of(v, b), true, true, chars && !chars->is_none() ? &set : nullptr));
}

Value f_unique(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 2, {"case_sensitive", "attribute"}, "unique");
  const bool cs = bool_arg(a, 0, "case_sensitive", false);
  const Value* attr = a.get(1, "attribute");
  std::vector<Value> out, seen;
  for (const Value& item : iterate(v, b)) {
    const Value k =
        fold_case(attr && !attr->is_none() ? get_path(item, text_of(*attr, b)) : item, cs);
    bool dup = false;
    for (const Value& s : seen) {
      if (s.equals(k, b)) {
        dup = true;
        break;
      }
    }
    if (!dup) {
      seen.push_back(k);
      out.push_back(item);
    }
  }
  return make_list(b, std::move(out));
}

Value f_wordcount(Budget& b, const Value& v, const CallArgs& a) {
  check_args(a, 0, {}, "wordcount");
  return Value::integer(static_cast<int64_t>(pystr::split_whitespace(text_of(v, b), -1).size()));
}

struct FilterEntry {
  std::string_view name;
  FilterFn fn;
};

constexpr FilterEntry kFilters[] = {
    {"abs", f_abs},
    {"attr", f_attr},
    {"capitalize", f_capitalize},
    {"center", f_center},
    {"count", f_length},
    {"d", f_default},
    {"default", f_default},
    {"dictsort", f_dictsort},
    {"e", f_escape},
    {"escape", f_escape},
    {"first", f_first},
    {"float", f_float},
    {"indent", f_indent},
    {"int", f_int},
    {"items", f_items},
    {"join", f_join},
    {"last", f_last},
    {"length", f_length},
    {"list", f_list},
    {"lower", f_lower},
    {"map", f_map},
    {"max", f_max},
    {"min", f_min},
    {"reject", f_reject},
    {"rejectattr", f_rejectattr},
    {"replace", f_replace},
    {"reverse", f_reverse},
    {"round", f_round},
    {"safe", f_safe},
    {"select", f_select},
    {"selectattr", f_selectattr},
    {"sort", f_sort},
    {"string", f_string},
    {"sum", f_sum},
    {"title", f_title},
    {"tojson", f_tojson},
    {"trim", f_trim},
    {"unique", f_unique},
    {"upper", f_upper},
    {"wordcount", f_wordcount},
};

// ---- methods --------------------------------------------------------------------------------

bool prefix_match(Budget& b, const std::string& s, const Value& arg, bool suffix, const char* fn) {
  auto one = [&](const Value& p) {
    if (!p.is_string())
      type_error(std::string(fn) + "() argument must be str or a tuple of str, not '" +
                 p.type_name() + "'");
    const std::string& x = p.str();
    if (x.size() > s.size()) return false;
    return suffix ? s.compare(s.size() - x.size(), x.size(), x) == 0
                  : s.compare(0, x.size(), x) == 0;
  };
  if (arg.is_list()) {
    for (const Value& p : arg.items()) {
      b.step();
      if (one(p)) return true;
    }
    return false;
  }
  return one(arg);
}

int64_t char_index(const std::string& s, size_t byte_pos) {
  return static_cast<int64_t>(pystr::length(std::string_view(s).substr(0, byte_pos)));
}

bool string_method(Budget& b, const std::string& s, std::string_view name, const CallArgs& a,
                   Value& out) {
  b.bytes(s.size());  // every method scans or copies the string at most a few times
  auto strip_chars = [&](const char* fn) -> std::optional<std::string> {
    check_args(a, 1, {"chars"}, fn);
    const Value* c = a.get(0, "chars");
    if (!c || c->is_none()) return std::nullopt;
    if (!c->is_string()) type_error(std::string(fn) + "() arg must be None or str");
    return c->str();
  };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    const std::string fn(name);
    const auto chars = strip_chars(fn.c_str());
    out = Value::string(
        pystr::strip(s, name != "rstrip", name != "lstrip", chars ? &*chars : nullptr));
    return true;
  }
  if (name == "split" || name == "rsplit") {
    check_args(a, 2, {"sep", "maxsplit"}, "split");
    const Value* sep = a.get(0, "sep");
    const int64_t maxsplit = int_arg(a, 1, "maxsplit", -1, "split");
    std::vector<std::string> parts;
    if (!sep || sep->is_none()) {
      if (name == "rsplit" && maxsplit >= 0) type_error("rsplit(None, maxsplit) is not supported");
      parts = pystr::split_whitespace(s, maxsplit);
    } else {
      if (!sep->is_string()) type_error("split(): sep must be a string");
      if (sep->str().empty()) type_error("empty separator");
      parts = name == "split" ? pystr::split(s, sep->str(), maxsplit)
                              : pystr::rsplit(s, sep->str(), maxsplit);
    }
    std::vector<Value> items;
    b.list(parts.size());
    for (auto& p : parts) items.push_back(Value::string(std::move(p)));
    out = Value::list(std::move(items));
    return true;
  }
  if (name == "splitlines") {
    check_args(a, 0, {}, "splitlines");
    std::vector<Value> items;
    for (auto& l : split_lines(s)) items.push_back(Value::string(std::move(l)));
    out = make_list(b, std::move(items));
    return true;
  }
  if (name == "startswith" || name == "endswith") {
    check_args(a, 1, {}, "startswith");
    if (a.pos.empty()) type_error(std::string(name) + "() takes one argument");
    out = Value::boolean(prefix_match(b, s, a.pos[0], name == "endswith",
                                      name == "endswith" ? "endswith" : "startswith"));
    return true;
  }
  if (name == "upper" || name == "lower" || name == "title" || name == "capitalize") {
    check_args(a, 0, {}, "upper");
    out = Value::string(name == "upper"   ? pystr::upper(s)
                        : name == "lower" ? pystr::lower(s)
                        : name == "title" ? pystr::title(s)
                                          : pystr::capitalize(s));
    return true;
  }
  if (name == "replace") {
    check_args(a, 3, {"old", "new", "count"}, "replace");
    const std::string old_s = str_arg(a, 0, "old", nullptr, "replace");
    const std::string new_s = str_arg(a, 1, "new", nullptr, "replace");
    const int64_t count = int_arg(a, 2, "count", -1, "replace");
    check_replace_size(b, s, old_s, new_s, count);
    out = Value::string(pystr::replace(s, old_s, new_s, count));
    return true;
  }
  if (name == "find" || name == "rfind" || name == "count" || name == "index") {
    check_args(a, 1, {}, "find");
    const std::string sub = str_arg(a, 0, "sub", nullptr, "find");
    if (name == "count") {
      int64_t n = 0;
      if (sub.empty()) {
        n = static_cast<int64_t>(pystr::length(s)) + 1;
      } else {
        for (size_t p = s.find(sub); p != std::string::npos; p = s.find(sub, p + sub.size())) ++n;
      }
      out = Value::integer(n);
      return true;
    }
    const size_t p = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (p == std::string::npos && name == "index") type_error("substring not found");
    out = Value::integer(p == std::string::npos ? -1 : char_index(s, p));
    return true;
  }
  if (name == "join") {
    check_args(a, 1, {}, "join");
    if (a.pos.empty()) type_error("join() takes one argument");
    std::string res;
    bool first = true;
    for (const Value& item : iterate(a.pos[0], b)) {
      if (!item.is_string())
        type_error(std::string("sequence item: expected str instance, ") + item.type_name() +
                   " found");
      if (!first) res += s;
      first = false;
      b.check_size(res.size() + item.str().size());
      b.bytes(s.size() + item.str().size());
      res += item.str();
    }
    out = Value::string(std::move(res));
    return true;
  }
  if (name == "removeprefix" || name == "removesuffix") {
    check_args(a, 1, {}, "removeprefix");
    const std::string x = str_arg(a, 0, "prefix", nullptr, "removeprefix");
    std::string res = s;
    if (name == "removeprefix" && s.compare(0, x.size(), x) == 0 && x.size() <= s.size())
      res = s.substr(x.size());
    if (name == "removesuffix" && x.size() <= s.size() &&
        s.compare(s.size() - x.size(), x.size(), x) == 0)
      res = s.substr(0, s.size() - x.size());
    out = Value::string(std::move(res));
    return true;
  }
  if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace" ||
      name == "islower" || name == "isupper") {
    check_args(a, 0, {}, "is");
    bool r = !s.empty();
    if (name == "islower" || name == "isupper") {
      CallArgs none;
      r = name == "islower" ? t_lower(b, Value::string(s), none)
                            : t_upper(b, Value::string(s), none);
    } else {
      for (char c : s) {
        const bool digit = c >= '0' && c <= '9';
        const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        const bool space = c == ' ' || (c >= '\t' && c <= '\r');
        if ((name == "isdigit" && !digit) || (name == "isalpha" && !alpha) ||
            (name == "isalnum" && !digit && !alpha) || (name == "isspace" && !space))
          r = false;
      }
    }
    out = Value::boolean(r);
    return true;
  }
  return false;
}

bool dict_method(Budget& b, const Value& self, std::string_view name, const CallArgs& a,
                 Value& out) {
  const Dict& d = self.dict();
  if (name == "get") {
    check_args(a, 2, {}, "get");
    if (a.pos.empty()) type_error("get() takes at least one argument");
    b.step(d.size() / 8);
    const Value* v = d.find(a.pos[0]);
    out = v ? *v : (a.pos.size() > 1 ? a.pos[1] : Value::none());
    return true;
  }
  if (name == "items") {
    check_args(a, 0, {}, "items");
    out = dict_items(b, self);
    return true;
  }
  if (name == "keys" || name == "values") {
    check_args(a, 0, {}, "keys");
    std::vector<Value> items;
    b.list(d.size());
    for (const auto& [k, v] : d.entries()) items.push_back(name == "keys" ? k : v);
    out = Value::list(std::move(items));
    return true;
  }
  return false;
}

bool list_method(Budget& b, const Value& self, std::string_view name, const CallArgs& a,
                 Value& out) {
  if (name == "index" || name == "count") {
    check_args(a, 1, {}, "index");
    if (a.pos.empty()) type_error(std::string(name) + "() takes one argument");
    int64_t n = 0, first = -1;
    const auto& items = self.items();
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].equals(a.pos[0], b)) {
        if (first < 0) first = static_cast<int64_t>(i);
        ++n;
      }
    }
    if (name == "index" && first < 0) type_error("list.index(x): x not in list");
    out = Value::integer(name == "index" ? first : n);
    return true;
  }
  return false;
}

}  // namespace

bool contains(Budget& b, const Value& container, const Value& item) {
  switch (container.type()) {
    case Value::Type::string:
      if (!item.is_string())
        type_error(std::string("'in <string>' requires string as left operand, not ") +
                   item.type_name());
      b.bytes(container.str().size());
      return container.str().find(item.str()) != std::string::npos;
    case Value::Type::list:
      for (const Value& x : container.items())
        if (x.equals(item, b)) return true;
      return false;
    case Value::Type::dict:
      b.step(container.dict().size() / 8);
      return item.is_scalar() && container.dict().find(item) != nullptr;
    case Value::Type::undefined:
      return false;
    default:
      type_error(std::string("argument of type '") + container.type_name() + "' is not iterable");
  }
}

FilterFn find_filter(std::string_view name) {
  for (const auto& f : kFilters)
    if (f.name == name) return f.fn;
  return nullptr;
}

TestFn find_test(std::string_view name) {
  for (const auto& t : kTests)
    if (t.name == name) return t.fn;
  return nullptr;
}

bool call_method(Budget& budget, const Value& self, std::string_view name, const CallArgs& args,
                 Value& out) {
  budget.step();
  if (self.is_string()) return string_method(budget, self.str(), name, args, out);
  if (self.is_dict()) return dict_method(budget, self, name, args, out);
  if (self.is_list()) return list_method(budget, self, name, args, out);
  return false;
}

std::vector<Value> iterate(const Value& v, Budget& budget) {
  switch (v.type()) {
    case Value::Type::list:
      budget.step(v.items().size() / 16);
      return v.items();
    case Value::Type::dict: {
      std::vector<Value> keys;
      budget.list(v.dict().size());
      for (const auto& [k, val] : v.dict().entries()) keys.push_back(k);
      return keys;
    }
    case Value::Type::string:
      return list_of_chars(v.str(), budget).items();
    case Value::Type::undefined:
      return {};
    default:
      type_error(std::string("'") + v.type_name() + "' object is not iterable");
  }
}

Value get_attr(const Value& obj, std::string_view name) {
  if (obj.is_dict()) {
    const Value* v = obj.dict().find(name);
    return v ? *v : Value::undefined(std::string(name));
  }
  if (obj.is_ns()) {
    const Value* v = obj.ns().attrs.find(name);
    return v ? *v : Value::undefined(std::string(name));
  }
  return Value::undefined(std::string(name));
}

Value get_item(const Value& obj, const Value& key) {
  switch (obj.type()) {
    case Value::Type::dict: {
      if (!key.is_scalar()) return Value::undefined(key.is_string() ? key.str() : "");
      const Value* v = obj.dict().find(key);
      return v ? *v : Value::undefined(key.is_string() ? key.str() : "");
    }
    case Value::Type::list:
      if (key.is_int() || key.is_bool()) {
        const int64_t i = norm_index(key.as_int(), obj.items().size());
        if (i >= 0) return obj.items()[static_cast<size_t>(i)];
      }
      return Value::undefined("");
    case Value::Type::string:
      if (key.is_int() || key.is_bool()) {
        const std::vector<size_t> offs = pystr::char_offsets(obj.str());
        const int64_t i = norm_index(key.as_int(), offs.size() - 1);
        if (i >= 0) {
          const size_t k = static_cast<size_t>(i);
          return Value::string(obj.str().substr(offs[k], offs[k + 1] - offs[k]));
        }
      }
      return Value::undefined("");
    case Value::Type::ns:
      if (key.is_string()) return get_attr(obj, key.str());
      return Value::undefined("");
    default:
      return Value::undefined(key.is_string() ? key.str() : "");
  }
}

}  // namespace v4::jinja
