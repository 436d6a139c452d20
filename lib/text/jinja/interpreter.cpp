#include "lib/text/jinja/interpreter.h"

#include <cmath>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "lib/text/jinja/builtins.h"
#include "lib/text/jinja/parser.h"
#include "lib/text/jinja/pystr.h"
#include "lib/text/jinja/source.h"

namespace v4::jinja {

namespace {

[[noreturn]] void error(const std::string& what) { throw TemplateError(what); }

std::string undefined_what(const Value& v) {
  return v.undefined_name().empty() ? std::string("value is undefined")
                                    : "'" + v.undefined_name() + "' is undefined";
}

class Interpreter {
 public:
  Interpreter(const Program& program, const Limits& limits) : program_(program), budget_(limits) {}

  ~Interpreter() {
    // Namespaces are the only mutable values, so the only way to build a reference cycle:
    // empty them all so that everything is freed, and freed without deep recursion.
    for (auto& ns : namespaces_) ns->attrs = Dict();
  }

  Interpreter(const Interpreter&) = delete;
  Interpreter& operator=(const Interpreter&) = delete;

  std::string run(const Dict& variables) {
    frames_.emplace_back();
    define_globals();
    for (const auto& [k, v] : variables.entries())
      if (k.is_string()) assign(k.str(), v);
    std::string out;
    out_ = &out;
    exec(program_.body);
    return out;
  }

  size_t pos() const { return pos_; }

 private:
  enum class Flow { normal, break_, continue_ };
  struct Frame {
    std::vector<std::pair<std::string, Value>> vars;
  };

  // ---- scopes -------------------------------------------------------------------------

  const Value* lookup(std::string_view name) const {
    for (size_t i = frames_.size(); i-- > 0;) {
      if (i != 0 && i < base_) continue;  // a macro does not see its caller's locals
      for (const auto& [k, v] : frames_[i].vars)
        if (k == name) return &v;
    }
    return nullptr;
  }

  void assign(std::string_view name, Value v) {
    auto& vars = frames_.back().vars;
    for (auto& [k, old] : vars) {
      if (k == name) {
        old = std::move(v);
        return;
      }
    }
    vars.emplace_back(std::string(name), std::move(v));
  }

  // ---- globals ------------------------------------------------------------------------

  Value function(std::string name, std::function<Value(const CallArgs&)> fn) {
    auto c = std::make_shared<Callable>();
    c->name = std::move(name);
    c->fn = std::move(fn);
    return Value::callable(std::move(c));
  }

  Value make_namespace(Dict attrs) {
    auto ns = std::make_shared<Namespace>();
    ns->attrs = std::move(attrs);
    namespaces_.push_back(ns);
    return Value::ns(std::move(ns));
  }

  // Keyword arguments (and an optional leading dict or list of pairs) as a Dict.
  Dict dict_from_args(const CallArgs& a, const char* fn) {
    Dict d;
    if (a.pos.size() > 1) error(std::string(fn) + "() takes at most 1 positional argument");
    if (!a.pos.empty()) {
      const Value& init = a.pos[0];
      if (init.is_dict()) {
        for (const auto& [k, v] : init.dict().entries()) d.set(k, v);
      } else if (init.is_list()) {
        for (const Value& pair : init.items()) {
          if (!pair.is_list() || pair.items().size() != 2)
            error(std::string(fn) + "(): each element must be a pair");
          d.set(pair.items()[0], pair.items()[1]);
        }
      } else {
        error(std::string(fn) + "() argument must be a dict");
      }
    }
    budget_.list(d.size() + a.kw.size());
    for (const auto& [k, v] : a.kw) d.set(k, v);
    return d;
  }

  void define_globals() {
    assign("range", function("range", [this](const CallArgs& a) { return range(a); }));
    assign("namespace", function("namespace", [this](const CallArgs& a) {
             return make_namespace(dict_from_args(a, "namespace"));
           }));
    assign("dict", function("dict", [this](const CallArgs& a) {
             return Value::dict(dict_from_args(a, "dict"));
           }));
    assign("raise_exception", function("raise_exception", [](const CallArgs& a) -> Value {
             const Value* msg = a.get(0, "message");
             throw RaisedError(msg && msg->is_string() ? msg->str() : std::string("(no message)"));
           }));
  }

  Value range(const CallArgs& a) {
    if (!a.kw.empty()) error("range() takes no keyword arguments");
    if (a.pos.empty() || a.pos.size() > 3) error("range() takes 1 to 3 arguments");
    for (const Value& v : a.pos)
      if (!v.is_int() && !v.is_bool())
        error(std::string("range() arguments must be integers, not '") + v.type_name() + "'");
    int64_t start = 0, stop, step = 1;
    if (a.pos.size() == 1) {
      stop = a.pos[0].as_int();
    } else {
      start = a.pos[0].as_int();
      stop = a.pos[1].as_int();
      if (a.pos.size() == 3) step = a.pos[2].as_int();
    }
    if (step == 0) error("range() arg 3 must not be zero");
    // Count in unsigned arithmetic so that extreme bounds cannot overflow.
    uint64_t count = 0;
    if (step > 0 && start < stop) {
      const uint64_t span = static_cast<uint64_t>(stop) - static_cast<uint64_t>(start);
      count = (span - 1) / static_cast<uint64_t>(step) + 1;
    } else if (step < 0 && start > stop) {
      const uint64_t span = static_cast<uint64_t>(start) - static_cast<uint64_t>(stop);
      const uint64_t mag = static_cast<uint64_t>(-(step + 1)) + 1;
      count = (span - 1) / mag + 1;
    }
    if (count > budget_.limits().max_loop_iterations)
      error("range() of " + std::to_string(count) + " elements exceeds the loop limit");
    budget_.list(static_cast<size_t>(count));
    std::vector<Value> items;
    items.reserve(static_cast<size_t>(count));
    int64_t x = start;
    for (uint64_t i = 0; i < count; ++i, x += (i < count ? step : 0))
      items.push_back(Value::integer(x));
    return Value::list(std::move(items));
  }

  // ---- statements ---------------------------------------------------------------------

  void emit(std::string_view s) {
    budget_.check_size(out_->size() + s.size());
    budget_.bytes(s.size());
    out_->append(s);
  }

  Flow exec(const Body& body) {
    for (const NodePtr& n : body) {
      const Flow f = exec_node(*n);
      if (f != Flow::normal) return f;
    }
    return Flow::normal;
  }

  // Renders `body` into a string instead of the output.
  std::string capture(const Body& body) {
    std::string buf;
    std::string* saved = out_;
    out_ = &buf;
    exec(body);
    out_ = saved;
    return buf;
  }

  Flow exec_node(const Node& n) {
    budget_.step();
    pos_ = n.pos;
    switch (n.kind) {
      case NodeKind::text:
        emit(n.text);
        return Flow::normal;
      case NodeKind::output: {
        const Value v = eval(*n.expr);
        if (v.is_string()) {
          emit(v.str());
        } else {
          emit(v.to_string(budget_));
        }
        return Flow::normal;
      }
      case NodeKind::if_:
        for (const Branch& br : n.branches)
          if (eval(*br.cond).truthy()) return exec(br.body);
        return exec(n.else_body);
      case NodeKind::for_:
        exec_for(n);
        return Flow::normal;
      case NodeKind::set: {
        Value v = eval(*n.expr);
        pos_ = n.pos;
        if (!n.attr.empty()) {
          const Value* target = lookup(n.targets[0]);
          if (!target || !target->is_ns())
            error("cannot assign attribute '" + n.attr + "' on '" + n.targets[0] +
                  "': not a namespace");
          target->ns().attrs.set(n.attr, std::move(v));
        } else if (n.targets.size() == 1) {
          assign(n.targets[0], std::move(v));
        } else {
          unpack(n.targets, v);
        }
        return Flow::normal;
      }
      case NodeKind::set_block:
        assign(n.targets[0], Value::string(capture(n.body)));
        return Flow::normal;
      case NodeKind::macro: {
        const Node* m = &n;
        assign(n.name,
               function(n.name, [this, m](const CallArgs& a) { return call_macro(*m, a); }));
        return Flow::normal;
      }
      case NodeKind::break_:
        return Flow::break_;
      case NodeKind::continue_:
        return Flow::continue_;
      case NodeKind::filter_block: {
        Value saved = std::move(block_input_);
        block_input_ = Value::string(capture(n.body));
        const Value v = eval(*n.expr);
        block_input_ = std::move(saved);
        emit(v.to_string(budget_));
        return Flow::normal;
      }
      case NodeKind::scope:
        return exec(n.body);
    }
    return Flow::normal;
  }

  void unpack(const std::vector<std::string>& targets, const Value& v) {
    if (!v.is_list())
      error(std::string("cannot unpack a '") + v.type_name() + "' into " +
            std::to_string(targets.size()) + " names");
    if (v.items().size() != targets.size())
      error("cannot unpack " + std::to_string(v.items().size()) + " values into " +
            std::to_string(targets.size()) + " names");
    for (size_t i = 0; i < targets.size(); ++i) assign(targets[i], v.items()[i]);
  }

  void bind_targets(const Node& n, const Value& item) {
    if (n.targets.size() == 1)
      assign(n.targets[0], item);
    else
      unpack(n.targets, item);
  }

  void exec_for(const Node& n) {
    const Value iterable = eval(*n.expr);
    pos_ = n.pos;
    if (iterable.is_none() || iterable.is_bool() || iterable.is_number() || iterable.is_ns() ||
        iterable.is_callable())
      error(std::string("'") + iterable.type_name() + "' object is not iterable");
    // Lists are iterated in place; other iterables (dict keys, characters) are materialised.
    std::vector<Value> owned;
    const std::vector<Value>* items = &owned;
    if (iterable.is_list())
      items = &iterable.items();
    else
      owned = iterate(iterable, budget_);
    frames_.emplace_back();
    const size_t frame = frames_.size() - 1;
    if (n.cond) {
      std::vector<Value> kept;
      for (const Value& item : *items) {
        budget_.iteration();
        bind_targets(n, item);
        if (eval(*n.cond).truthy()) kept.push_back(item);
      }
      owned = std::move(kept);
      items = &owned;
      frames_[frame].vars.clear();
    }
    if (items->empty()) {
      frames_.pop_back();
      exec(n.else_body);
      return;
    }
    const int64_t len = static_cast<int64_t>(items->size());
    // One cycle() per loop, reading the current index.
    auto index = std::make_shared<int64_t>(0);
    const Value cycle = function("cycle", [index](const CallArgs& a) -> Value {
      if (a.pos.empty()) throw TemplateError("loop.cycle() needs at least one argument");
      return a.pos[static_cast<size_t>(*index) % a.pos.size()];
    });
    for (int64_t i = 0; i < len; ++i) {
      budget_.iteration();
      pos_ = n.pos;
      *index = i;
      bind_targets(n, (*items)[static_cast<size_t>(i)]);
      Dict loop;
      if (loop_keys_.empty())
        for (const char* k : {"index", "index0", "revindex", "revindex0", "first", "last", "length",
                              "depth", "depth0", "previtem", "nextitem", "cycle"})
          loop_keys_.push_back(Value::string(k));
      loop.append_new(loop_keys_[0], Value::integer(i + 1));
      loop.append_new(loop_keys_[1], Value::integer(i));
      loop.append_new(loop_keys_[2], Value::integer(len - i));
      loop.append_new(loop_keys_[3], Value::integer(len - i - 1));
      loop.append_new(loop_keys_[4], Value::boolean(i == 0));
      loop.append_new(loop_keys_[5], Value::boolean(i == len - 1));
      loop.append_new(loop_keys_[6], Value::integer(len));
      loop.append_new(loop_keys_[7], Value::integer(1));
      loop.append_new(loop_keys_[8], Value::integer(0));
      loop.append_new(loop_keys_[9],
                      i > 0 ? (*items)[static_cast<size_t>(i - 1)] : Value::undefined("previtem"));
      loop.append_new(loop_keys_[10], i + 1 < len ? (*items)[static_cast<size_t>(i + 1)]
                                                  : Value::undefined("nextitem"));
      loop.append_new(loop_keys_[11], cycle);
      assign("loop", Value::dict(std::move(loop)));
      const Flow f = exec(n.body);
      if (f == Flow::break_) break;
    }
    frames_.pop_back();
  }

  Value call_macro(const Node& m, const CallArgs& a) {
    if (call_depth_ >= budget_.limits().max_nesting)
      error("macro calls nested more than " + std::to_string(budget_.limits().max_nesting) +
            " levels deep");
    if (a.pos.size() > m.params.size())
      error("macro '" + m.name + "' takes " + std::to_string(m.params.size()) + " arguments, " +
            std::to_string(a.pos.size()) + " given");
    for (const auto& [k, v] : a.kw) {
      bool known = false;
      for (const Param& p : m.params) known = known || p.name == k;
      if (!known) error("macro '" + m.name + "' has no parameter '" + k + "'");
    }
    const size_t saved_base = base_;
    const size_t saved_pos = pos_;
    frames_.emplace_back();
    base_ = frames_.size() - 1;
    ++call_depth_;
    for (size_t i = 0; i < m.params.size(); ++i) {
      const Param& p = m.params[i];
      const Value* given = i < a.pos.size() ? &a.pos[i] : nullptr;
      if (!given)
        for (const auto& [k, v] : a.kw)
          if (k == p.name) given = &v;
      if (given)
        assign(p.name, *given);
      else if (p.default_value)
        assign(p.name, eval(*p.default_value));
      else
        assign(p.name, Value::undefined(p.name));
    }
    std::string text = capture(m.body);
    --call_depth_;
    frames_.pop_back();
    base_ = saved_base;
    pos_ = saved_pos;
    return Value::string(std::move(text));
  }

  // ---- expressions --------------------------------------------------------------------

  CallArgs eval_args(const std::vector<Arg>& args) {
    CallArgs out;
    for (const Arg& a : args) {
      if (a.name.empty())
        out.pos.push_back(eval(*a.value));
      else
        out.kw.emplace_back(a.name, eval(*a.value));
    }
    return out;
  }

  static std::string callee_name(const Expr& e) {
    if (e.kind == ExprKind::name || e.kind == ExprKind::attr) return e.name;
    return "object";
  }

  Value call_value(const Value& f, const CallArgs& args, const std::string& name) {
    if (f.is_callable()) return f.callable().fn(args);
    if (f.is_undefined()) error("'" + name + "' is undefined");
    error(std::string("'") + f.type_name() + "' object is not callable");
  }

  Value eval(const Expr& e) {
    budget_.step();
    pos_ = e.pos;
    switch (e.kind) {
      case ExprKind::literal:
        return e.value;
      case ExprKind::name: {
        const Value* v = lookup(e.name);
        return v ? *v : Value::undefined(e.name);
      }
      case ExprKind::attr: {
        const Value obj = eval(*e.a);
        pos_ = e.pos;
        if (obj.is_undefined()) error(undefined_what(obj));
        return get_attr(obj, e.name);
      }
      case ExprKind::item: {
        const Value obj = eval(*e.a);
        const Value key = eval(*e.b);
        pos_ = e.pos;
        if (obj.is_undefined()) error(undefined_what(obj));
        if (key.is_string()) budget_.bytes(key.str().size());
        return get_item(obj, key);
      }
      case ExprKind::slice:
        return eval_slice(e);
      case ExprKind::call: {
        const Expr& callee = *e.a;
        if (callee.kind == ExprKind::attr) {
          const Value obj = eval(*callee.a);
          CallArgs args = eval_args(e.args);
          pos_ = e.pos;
          if (obj.is_undefined()) error(undefined_what(obj));
          Value out;
          if (call_method(budget_, obj, callee.name, args, out)) return out;
          return call_value(get_attr(obj, callee.name), args, callee.name);
        }
        const Value f = eval(callee);
        CallArgs args = eval_args(e.args);
        pos_ = e.pos;
        return call_value(f, args, callee_name(callee));
      }
      case ExprKind::filter: {
        const Value input = e.a ? eval(*e.a) : block_input_;
        CallArgs args = eval_args(e.args);
        pos_ = e.pos;
        const FilterFn f = find_filter(e.name);
        if (!f) error("no filter named '" + e.name + "'");
        return f(budget_, input, args);
      }
      case ExprKind::test: {
        const Value v = eval(*e.a);
        CallArgs args = eval_args(e.args);
        pos_ = e.pos;
        const TestFn t = find_test(e.name);
        if (!t) error("no test named '" + e.name + "'");
        return Value::boolean(t(budget_, v, args) != e.negated);
      }
      case ExprKind::unary: {
        const Value v = eval(*e.a);
        pos_ = e.pos;
        if (e.name == "not") return Value::boolean(!v.truthy());
        if (v.is_undefined()) error(undefined_what(v));
        if (!v.is_number())
          error("bad operand type for unary " + e.name + ": '" + v.type_name() + "'");
        if (e.name == "+") return v.is_float() ? v : Value::integer(v.as_int());
        if (v.is_float()) return Value::floating(-v.as_double());
        if (v.as_int() == std::numeric_limits<int64_t>::min()) error("integer overflow");
        return Value::integer(-v.as_int());
      }
      case ExprKind::binary:
        return eval_binary(e);
      case ExprKind::compare:
        return eval_compare(e);
      case ExprKind::ternary:
        if (eval(*e.a).truthy()) return eval(*e.b);
        return e.c ? eval(*e.c) : Value::undefined("");
      case ExprKind::list:
      case ExprKind::tuple: {
        std::vector<Value> items;
        items.reserve(e.items.size());
        for (const ExprPtr& x : e.items) items.push_back(eval(*x));
        pos_ = e.pos;
        budget_.list(items.size());
        return Value::list(std::move(items));
      }
      case ExprKind::dict: {
        Dict d;
        for (size_t i = 0; i + 1 < e.items.size(); i += 2) {
          Value k = eval(*e.items[i]);
          Value v = eval(*e.items[i + 1]);
          pos_ = e.items[i]->pos;
          d.set(std::move(k), std::move(v));
        }
        pos_ = e.pos;
        budget_.list(d.size());
        return Value::dict(std::move(d));
      }
    }
    error("unknown expression");
  }

  static int64_t slice_bound(const Value* v, const char* what) {
    if (!v->is_int() && !v->is_bool())
      throw TemplateError(std::string("slice ") + what + " must be an integer or none, not '" +
                          v->type_name() + "'");
    return v->as_int();
  }

  Value eval_slice(const Expr& e) {
    const Value obj = eval(*e.a);
    Value bounds[3];
    for (int k = 0; k < 3; ++k)
      if (e.items[static_cast<size_t>(k)]) bounds[k] = eval(*e.items[static_cast<size_t>(k)]);
    pos_ = e.pos;
    if (obj.is_undefined()) error(undefined_what(obj));
    auto given = [&](int k) { return !bounds[k].is_undefined() && !bounds[k].is_none(); };
    const int64_t step = given(2) ? slice_bound(&bounds[2], "step") : 1;
    if (step == 0) error("slice step cannot be zero");
    std::vector<size_t> offs;
    int64_t n;
    if (obj.is_string()) {
      offs = pystr::char_offsets(obj.str());
      n = static_cast<int64_t>(offs.size()) - 1;
    } else if (obj.is_list()) {
      n = static_cast<int64_t>(obj.items().size());
    } else {
      error(std::string("'") + obj.type_name() + "' object is not subscriptable");
    }
    auto adjust = [&](int64_t x) {
      if (x < 0) {
        x += n;
        if (x < 0) x = step < 0 ? -1 : 0;
      } else if (x >= n) {
        x = step < 0 ? n - 1 : n;
      }
      return x;
    };
    const int64_t start =
        given(0) ? adjust(slice_bound(&bounds[0], "start")) : (step < 0 ? n - 1 : 0);
    const int64_t stop = given(1) ? adjust(slice_bound(&bounds[1], "stop")) : (step < 0 ? -1 : n);
    int64_t count = 0;
    if (step < 0) {
      if (stop < start) count = (start - stop - 1) / (-step) + 1;
    } else if (start < stop) {
      count = (stop - start - 1) / step + 1;
    }
    if (obj.is_string()) {
      std::string out;
      for (int64_t k = 0, i = start; k < count; ++k, i += step) {
        const size_t c = static_cast<size_t>(i);
        out.append(obj.str(), offs[c], offs[c + 1] - offs[c]);
      }
      budget_.string(out.size());
      return Value::string(std::move(out));
    }
    budget_.list(static_cast<size_t>(count));
    std::vector<Value> items;
    items.reserve(static_cast<size_t>(count));
    for (int64_t k = 0, i = start; k < count; ++k, i += step)
      items.push_back(obj.items()[static_cast<size_t>(i)]);
    return Value::list(std::move(items));
  }

  Value eval_binary(const Expr& e) {
    if (e.name == "and") {
      Value a = eval(*e.a);
      return a.truthy() ? eval(*e.b) : a;
    }
    if (e.name == "or") {
      Value a = eval(*e.a);
      return a.truthy() ? a : eval(*e.b);
    }
    const Value a = eval(*e.a);
    const Value b = eval(*e.b);
    pos_ = e.pos;
    return arithmetic(e.name, a, b);
  }

  [[noreturn]] void operand_error(const std::string& op, const Value& a, const Value& b) {
    if (a.is_undefined()) error(undefined_what(a));
    if (b.is_undefined()) error(undefined_what(b));
    error("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" +
          b.type_name() + "'");
  }

  Value repeat(const Value& seq, int64_t times) {
    if (times <= 0) return seq.is_string() ? Value::string("") : Value::list({});
    if (seq.is_string()) {
      const size_t unit = seq.str().size();
      if (unit != 0 && static_cast<uint64_t>(times) > budget_.limits().max_output_bytes / unit)
        budget_.string(budget_.limits().max_output_bytes + 1);
      budget_.string(unit * static_cast<size_t>(times));
      std::string out;
      out.reserve(unit * static_cast<size_t>(times));
      for (int64_t i = 0; i < times; ++i) out += seq.str();
      return Value::string(std::move(out));
    }
    const size_t unit = seq.items().size();
    if (unit != 0 && static_cast<uint64_t>(times) > budget_.limits().max_loop_iterations / unit)
      budget_.list(budget_.limits().max_loop_iterations + 1);
    budget_.list(unit * static_cast<size_t>(times));
    std::vector<Value> items;
    items.reserve(unit * static_cast<size_t>(times));
    for (int64_t i = 0; i < times; ++i)
      items.insert(items.end(), seq.items().begin(), seq.items().end());
    return Value::list(std::move(items));
  }

  Value arithmetic(const std::string& op, const Value& a, const Value& b) {
    if (op == "~") {
      std::string s = a.to_string(budget_);
      const std::string t = b.to_string(budget_);
      budget_.string(s.size() + t.size());
      s += t;
      return Value::string(std::move(s));
    }
    const bool nums = a.is_number() && b.is_number();
    const bool floats = nums && (a.is_float() || b.is_float());
    if (op == "+") {
      if (nums) {
        if (floats) return Value::floating(a.as_double() + b.as_double());
        int64_t r;
        if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) error("integer overflow");
        return Value::integer(r);
      }
      if (a.is_string() && b.is_string()) {
        budget_.string(a.str().size() + b.str().size());
        return Value::string(a.str() + b.str());
      }
      if (a.is_list() && b.is_list()) {
        budget_.list(a.items().size() + b.items().size());
        std::vector<Value> items = a.items();
        items.insert(items.end(), b.items().begin(), b.items().end());
        return Value::list(std::move(items));
      }
      operand_error(op, a, b);
    }
    if (op == "*") {
      if (nums) {
        if (floats) return Value::floating(a.as_double() * b.as_double());
        int64_t r;
        if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) error("integer overflow");
        return Value::integer(r);
      }
      if ((a.is_string() || a.is_list()) && (b.is_int() || b.is_bool()))
        return repeat(a, b.as_int());
      if ((b.is_string() || b.is_list()) && (a.is_int() || a.is_bool()))
        return repeat(b, a.as_int());
      operand_error(op, a, b);
    }
    if (!nums) {
      if (op == "%" && a.is_string()) error("string formatting with '%' is not supported");
      operand_error(op, a, b);
    }
    if (op == "-") {
      if (floats) return Value::floating(a.as_double() - b.as_double());
      int64_t r;
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) error("integer overflow");
      return Value::integer(r);
    }
    if (op == "/") {
      if (b.as_double() == 0.0) error("division by zero");
      return Value::floating(a.as_double() / b.as_double());
    }
    if (op == "//" || op == "%") {
      if (floats) {
        const double x = a.as_double(), y = b.as_double();
        if (y == 0.0) error(op == "//" ? "float floor division by zero" : "float modulo");
        const double q = std::floor(x / y);
        return Value::floating(op == "//" ? q : x - q * y);
      }
      const int64_t x = a.as_int(), y = b.as_int();
      if (y == 0) error(op == "//" ? "integer division by zero" : "integer modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) {
        if (op == "%") return Value::integer(0);
        error("integer overflow");
      }
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        --q;
        r += y;
      }
      return Value::integer(op == "//" ? q : r);
    }
    if (op == "**") {
      if (floats || b.as_int() < 0) return Value::floating(std::pow(a.as_double(), b.as_double()));
      int64_t base = a.as_int(), exp = b.as_int(), r = 1;
      while (exp > 0) {
        budget_.step();
        if (exp & 1)
          if (__builtin_mul_overflow(r, base, &r)) error("integer overflow");
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base)) error("integer overflow");
      }
      return Value::integer(r);
    }
    error("unknown operator '" + op + "'");
  }

  Value eval_compare(const Expr& e) {
    Value left = eval(*e.items[0]);
    for (size_t i = 0; i < e.ops.size(); ++i) {
      Value right = eval(*e.items[i + 1]);
      pos_ = e.items[i + 1]->pos;
      const std::string& op = e.ops[i];
      bool r;
      if (op == "==") {
        r = left.equals(right, budget_);
      } else if (op == "!=") {
        r = !left.equals(right, budget_);
      } else if (op == "in" || op == "not in") {
        r = contains(budget_, right, left) == (op == "in");
      } else {
        if (left.is_undefined()) error(undefined_what(left));
        if (right.is_undefined()) error(undefined_what(right));
        const int c = left.compare(right, budget_);
        r = op == "<" ? c < 0 : op == "<=" ? c <= 0 : op == ">" ? c > 0 : c >= 0;
      }
      if (!r) return Value::boolean(false);
      left = std::move(right);
    }
    return Value::boolean(true);
  }

  const Program& program_;
  Budget budget_;
  std::vector<Frame> frames_;
  size_t base_ = 0;
  std::string* out_ = nullptr;
  int call_depth_ = 0;
  size_t pos_ = 0;
  Value block_input_;
  std::vector<std::shared_ptr<Namespace>> namespaces_;
  std::vector<Value> loop_keys_;  // keys of the `loop` dict, made once
};

}  // namespace

Template::Template(std::string_view source, const Limits& limits)
    : program_(parse(std::string(source), limits.max_nesting)), limits_(limits) {}

std::string Template::render(const Dict& variables) const {
  Interpreter in(program_, limits_);
  try {
    return in.run(variables);
  } catch (const RaisedError& e) {
    fail_at(program_.source, in.pos(), std::string("raise_exception: ") + e.what());
  } catch (const TemplateError& e) {
    fail_at(program_.source, in.pos(), e.what());
  }
}

}  // namespace v4::jinja
