// Values of the template language: undefined, none, bool, int, float, string, list, dict
// (insertion-ordered, like Python's), namespace (mutable attributes) and callable. Strings,
// lists and dicts are immutable once built and shared by reference, so copying a Value is
// cheap. Every container records its nesting depth and refuses to be deeper than
// kMaxValueDepth, which bounds the recursion of every walk (printing, JSON, equality,
// destruction); walks also charge the render's Budget per element.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace v4::jinja {

class Value;
class Dict;
class Budget;
struct Namespace;
struct Callable;

// A failure while rendering (type error, limit, ...). The interpreter adds the position.
class TemplateError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// raise_exception(message) called by the template.
class RaisedError : public TemplateError {
 public:
  using TemplateError::TemplateError;
};

inline constexpr int kMaxValueDepth = 64;

struct ListData {
  std::vector<Value> items;
  int depth = 1;
};

// Arguments of a call, filter or test (after the filtered value).
struct CallArgs {
  std::vector<Value> pos;
  std::vector<std::pair<std::string, Value>> kw;
  // Argument `i` if given positionally, else the keyword `name`, else null.
  const Value* get(size_t i, std::string_view name) const;
};

class Value {
 public:
  enum class Type : uint8_t {
    undefined,
    none,
    boolean,
    integer,
    floating,
    string,
    list,
    dict,
    ns,
    callable
  };

  Value() = default;  // undefined
  static Value undefined(std::string name);
  static Value none();
  static Value boolean(bool b);
  static Value integer(int64_t i);
  static Value floating(double d);
  static Value string(std::string s);
  static Value list(std::vector<Value> items);  // throws TemplateError when too deep
  static Value dict(Dict d);                    // throws TemplateError when too deep
  static Value ns(std::shared_ptr<Namespace> n);
  static Value callable(std::shared_ptr<const Callable> c);

  Type type() const { return static_cast<Type>(v_.index()); }
  bool is_undefined() const { return type() == Type::undefined; }
  bool is_none() const { return type() == Type::none; }
  bool is_bool() const { return type() == Type::boolean; }
  bool is_int() const { return type() == Type::integer; }
  bool is_float() const { return type() == Type::floating; }
  bool is_number() const { return is_int() || is_float() || is_bool(); }  // bool is an int
  bool is_string() const { return type() == Type::string; }
  bool is_list() const { return type() == Type::list; }
  bool is_dict() const { return type() == Type::dict; }
  bool is_ns() const { return type() == Type::ns; }
  bool is_callable() const { return type() == Type::callable; }

  bool as_bool() const { return std::get<bool>(v_); }
  // Integer value of an int or a bool.
  int64_t as_int() const;
  // Numeric value of an int, bool or float.
  double as_double() const;
  const std::string& str() const { return *std::get<StrPtr>(v_); }
  const std::vector<Value>& items() const { return std::get<ListPtr>(v_)->items; }
  const Dict& dict() const { return *std::get<DictPtr>(v_); }
  Namespace& ns() const { return *std::get<NsPtr>(v_); }
  const Callable& callable() const { return *std::get<FnPtr>(v_); }
  // Name of the missing variable or attribute an undefined value stands for ("" if unknown).
  const std::string& undefined_name() const { return std::get<Undef>(v_).name; }

  // Nesting depth: 0 for scalars, 1 for a flat list/dict, ...
  int depth() const;
  bool is_scalar() const { return type() <= Type::string; }
  // Python truthiness (undefined is false).
  bool truthy() const;
  // Python str() as Jinja prints it: undefined -> "", None -> "None", True -> "True", lists
  // and dicts as their repr. The walks below charge the budget per element and stop at its
  // string size limit.
  std::string to_string(Budget& budget) const;
  // Python repr().
  std::string repr(Budget& budget) const;
  void append_repr(std::string& out, Budget& budget) const;
  // Python ==: 1 == 1.0 == True, lists and dicts compared by content.
  bool equals(const Value& other, Budget& budget) const;
  // == for scalars (no walk needed); false when either is not a scalar.
  bool scalar_equals(const Value& other) const;
  // Python ordering for <, <=, >, >=: numbers, strings (by code point), lists; -1/0/1.
  // Throws TemplateError for other combinations.
  int compare(const Value& other, Budget& budget) const;
  // Python-like type name for messages: 'str', 'int', 'list', 'dict', 'NoneType', ...
  const char* type_name() const;

 private:
  struct Undef {
    std::string name;
  };
  struct NoneTag {};
  using StrPtr = std::shared_ptr<const std::string>;
  using ListPtr = std::shared_ptr<const ListData>;
  using DictPtr = std::shared_ptr<const Dict>;
  using NsPtr = std::shared_ptr<Namespace>;
  using FnPtr = std::shared_ptr<const Callable>;
  std::variant<Undef, NoneTag, bool, int64_t, double, StrPtr, ListPtr, DictPtr, NsPtr, FnPtr> v_;
};

// Insertion-ordered mapping with scalar keys (lists and dicts are unhashable, as in Python).
// Lookups are linear: template dicts are small.
class Dict {
 public:
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  // Replaces the value of an existing key or appends a new entry. Throws TemplateError for a
  // key that is not a scalar.
  void set(Value key, Value value);
  void set(std::string_view key, Value value) {
    set(Value::string(std::string(key)), std::move(value));
  }
  // Appends an entry whose string key the caller knows to be new (no duplicate check).
  void append_new(Value key, Value value) {
    entries_.emplace_back(std::move(key), std::move(value));
  }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  const std::vector<std::pair<Value, Value>>& entries() const { return entries_; }

 private:
  friend class Value;
  std::vector<std::pair<Value, Value>> entries_;
  int depth_ = 1;  // set when wrapped in a Value
};

// namespace(): the one mutable object, for state that must survive a loop's scope.
struct Namespace {
  Dict attrs;
};

struct Callable {
  std::string name;
  std::function<Value(const CallArgs&)> fn;
};

}  // namespace v4::jinja
