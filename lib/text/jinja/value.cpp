#include "lib/text/jinja/value.h"

#include <algorithm>

#include "lib/text/jinja/limits.h"
#include "lib/text/jinja/pystr.h"

namespace v4::jinja {

const Value* CallArgs::get(size_t i, std::string_view name) const {
  if (i < pos.size()) return &pos[i];
  for (const auto& [k, v] : kw)
    if (k == name) return &v;
  return nullptr;
}

Value Value::undefined(std::string name) {
  Value v;
  v.v_ = Undef{std::move(name)};
  return v;
}

Value Value::none() {
  Value v;
  v.v_ = NoneTag{};
  return v;
}

Value Value::boolean(bool b) {
  Value v;
  v.v_ = b;
  return v;
}

Value Value::integer(int64_t i) {
  Value v;
  v.v_ = i;
  return v;
}

Value Value::floating(double d) {
  Value v;
  v.v_ = d;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.v_ = StrPtr(std::make_shared<const std::string>(std::move(s)));
  return v;
}

Value Value::list(std::vector<Value> items) {
  int depth = 1;
  for (const Value& item : items) depth = std::max(depth, item.depth() + 1);
  if (depth > kMaxValueDepth)
    throw TemplateError("value nested more than " + std::to_string(kMaxValueDepth) +
                        " levels deep");
  auto data = std::make_shared<ListData>();
  data->items = std::move(items);
  data->depth = depth;
  Value v;
  v.v_ = ListPtr(std::move(data));
  return v;
}

Value Value::dict(Dict d) {
  int depth = 1;
  for (const auto& [k, val] : d.entries())
    depth = std::max({depth, k.depth() + 1, val.depth() + 1});
  if (depth > kMaxValueDepth)
    throw TemplateError("value nested more than " + std::to_string(kMaxValueDepth) +
                        " levels deep");
  d.depth_ = depth;
  Value v;
  v.v_ = DictPtr(std::make_shared<const Dict>(std::move(d)));
  return v;
}

Value Value::ns(std::shared_ptr<Namespace> n) {
  Value v;
  v.v_ = NsPtr(std::move(n));
  return v;
}

Value Value::callable(std::shared_ptr<const Callable> c) {
  Value v;
  v.v_ = FnPtr(std::move(c));
  return v;
}

int64_t Value::as_int() const {
  if (is_bool()) return as_bool() ? 1 : 0;
  return std::get<int64_t>(v_);
}

double Value::as_double() const {
  if (is_float()) return std::get<double>(v_);
  return static_cast<double>(as_int());
}

int Value::depth() const {
  switch (type()) {
    case Type::list:
      return std::get<ListPtr>(v_)->depth;
    case Type::dict:
      return dict().depth_;
    default:
      return 0;
  }
}

bool Value::truthy() const {
  switch (type()) {
    case Type::undefined:
    case Type::none:
      return false;
    case Type::boolean:
      return as_bool();
    case Type::integer:
      return as_int() != 0;
    case Type::floating:
      return as_double() != 0.0;
    case Type::string:
      return !str().empty();
    case Type::list:
      return !items().empty();
    case Type::dict:
      return !dict().empty();
    case Type::ns:
    case Type::callable:
      return true;
  }
  return false;
}

std::string Value::to_string(Budget& budget) const {
  switch (type()) {
    case Type::undefined:
      return "";
    case Type::string:
      return str();
    default:
      return repr(budget);
  }
}

std::string Value::repr(Budget& budget) const {
  std::string out;
  append_repr(out, budget);
  return out;
}

void Value::append_repr(std::string& out, Budget& budget) const {
  budget.step();
  switch (type()) {
    case Type::undefined:
      out += "Undefined";
      break;
    case Type::none:
      out += "None";
      break;
    case Type::boolean:
      out += as_bool() ? "True" : "False";
      break;
    case Type::integer:
      out += std::to_string(as_int());
      break;
    case Type::floating:
      out += pystr::float_repr(as_double());
      break;
    case Type::string:
      budget.string(str().size());
      budget.check_size(out.size() + str().size());
      out += pystr::repr(str());
      break;
    case Type::list: {
      out += '[';
      bool first = true;
      for (const Value& item : items()) {
        if (!first) out += ", ";
        first = false;
        item.append_repr(out, budget);
      }
      out += ']';
      break;
    }
    case Type::dict: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : dict().entries()) {
        if (!first) out += ", ";
        first = false;
        k.append_repr(out, budget);
        out += ": ";
        v.append_repr(out, budget);
      }
      out += '}';
      break;
    }
    case Type::ns:
      out += "<Namespace>";
      break;
    case Type::callable:
      out += "<function " + callable().name + ">";
      break;
  }
  budget.check_size(out.size());
}

bool Value::scalar_equals(const Value& o) const {
  if (is_number() && o.is_number()) {
    if (is_float() || o.is_float()) return as_double() == o.as_double();
    return as_int() == o.as_int();
  }
  if (type() != o.type() || !is_scalar()) return false;
  if (is_string()) return str() == o.str();
  return true;  // undefined == undefined, None == None
}

bool Value::equals(const Value& o, Budget& budget) const {
  budget.step();
  if (is_string() && o.is_string()) budget.bytes(std::min(str().size(), o.str().size()));
  if (is_scalar() || o.is_scalar()) return scalar_equals(o);
  if (type() != o.type()) return false;
  switch (type()) {
    case Type::list: {
      if (std::get<ListPtr>(v_) == std::get<ListPtr>(o.v_)) return true;
      const auto& a = items();
      const auto& b = o.items();
      if (a.size() != b.size()) return false;
      for (size_t i = 0; i < a.size(); ++i)
        if (!a[i].equals(b[i], budget)) return false;
      return true;
    }
    case Type::dict: {
      if (std::get<DictPtr>(v_) == std::get<DictPtr>(o.v_)) return true;
      const Dict& a = dict();
      const Dict& b = o.dict();
      if (a.size() != b.size()) return false;
      budget.step(a.size() * b.size() / 8);  // linear lookups
      for (const auto& [k, v] : a.entries()) {
        const Value* w = b.find(k);
        if (!w || !v.equals(*w, budget)) return false;
      }
      return true;
    }
    case Type::ns:
      return std::get<NsPtr>(v_) == std::get<NsPtr>(o.v_);
    case Type::callable:
      return std::get<FnPtr>(v_) == std::get<FnPtr>(o.v_);
    default:
      return false;
  }
}

int Value::compare(const Value& o, Budget& budget) const {
  budget.step();
  if (is_number() && o.is_number()) {
    if (is_float() || o.is_float()) {
      const double a = as_double(), b = o.as_double();
      return a < b ? -1 : (a > b ? 1 : 0);
    }
    const int64_t a = as_int(), b = o.as_int();
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  if (is_string() && o.is_string()) {
    budget.bytes(std::min(str().size(), o.str().size()));
    const int c = str().compare(o.str());
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
  if (is_list() && o.is_list()) {
    const auto& a = items();
    const auto& b = o.items();
    for (size_t i = 0; i < a.size() && i < b.size(); ++i)
      if (!a[i].equals(b[i], budget)) return a[i].compare(b[i], budget);
    return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
  }
  throw TemplateError(std::string("ordering not supported between instances of '") + type_name() +
                      "' and '" + o.type_name() + "'");
}

const char* Value::type_name() const {
  switch (type()) {
    case Type::undefined:
      return "undefined";
    case Type::none:
      return "NoneType";
    case Type::boolean:
      return "bool";
    case Type::integer:
      return "int";
    case Type::floating:
      return "float";
    case Type::string:
      return "str";
    case Type::list:
      return "list";
    case Type::dict:
      return "dict";
    case Type::ns:
      return "Namespace";
    case Type::callable:
      return "function";
  }
  return "?";
}

const Value* Dict::find(const Value& key) const {
  if (key.is_string()) return find(std::string_view(key.str()));
  for (const auto& [k, v] : entries_)
    if (k.scalar_equals(key)) return &v;
  return nullptr;
}

const Value* Dict::find(std::string_view key) const {
  for (const auto& [k, v] : entries_)
    if (k.is_string() && k.str() == key) return &v;
  return nullptr;
}

void Dict::set(Value key, Value value) {
  if (!key.is_scalar() || key.is_undefined())
    throw TemplateError(std::string("unhashable type: '") + key.type_name() + "'");
  for (auto& [k, v] : entries_) {
    if (k.scalar_equals(key)) {
      v = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

}  // namespace v4::jinja
