#include "lib/text/jinja/parser.h"

#include <cerrno>
#include <cstdlib>
#include <initializer_list>
#include <utility>

#include "lib/text/jinja/builtins.h"
#include "lib/text/jinja/lexer.h"
#include "lib/text/jinja/source.h"

namespace v4::jinja {

namespace {

bool is_one_of(std::string_view s, std::initializer_list<std::string_view> set) {
  for (std::string_view x : set)
    if (s == x) return true;
  return false;
}

class Parser {
 public:
  Parser(std::string source, int max_nesting)
      : source_(std::move(source)), max_nesting_(max_nesting) {
    toks_ = tokenize(source_);
  }

  Program run() {
    Program prog;
    std::string end;
    prog.body = parse_body({}, &end, 0);
    prog.source = std::move(source_);
    return prog;
  }

 private:
  // ---- token helpers ------------------------------------------------------------------

  const Token& cur() const { return toks_[i_]; }
  const Token& peek(size_t k = 1) const {
    return toks_[i_ + k < toks_.size() ? i_ + k : toks_.size() - 1];
  }
  void advance() {
    if (i_ + 1 < toks_.size()) ++i_;
  }
  bool at_op(std::string_view op) const { return cur().kind == Tok::op && cur().value == op; }
  bool at_name(std::string_view name) const {
    return cur().kind == Tok::name && cur().value == name;
  }
  bool skip_op(std::string_view op) {
    if (!at_op(op)) return false;
    advance();
    return true;
  }
  bool skip_name(std::string_view name) {
    if (!at_name(name)) return false;
    advance();
    return true;
  }

  [[noreturn]] void error(size_t pos, const std::string& what) {
    fail_at(source_, pos, "syntax error: " + what);
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Tok::text:
        return "template text";
      case Tok::var_begin:
        return "'{{'";
      case Tok::var_end:
        return "end of print statement '}}'";
      case Tok::block_begin:
        return "'{%'";
      case Tok::block_end:
        return "end of statement block '%}'";
      case Tok::name:
        return "'" + t.value + "'";
      case Tok::string:
        return "string";
      case Tok::integer:
      case Tok::floating:
        return "number " + t.value;
      case Tok::op:
        return "'" + t.value + "'";
      case Tok::eof:
        return "end of template";
    }
    return "token";
  }

  [[noreturn]] void unexpected(const std::string& expected) {
    error(cur().pos, "unexpected " + describe(cur()) + ", expected " + expected);
  }

  void expect_op(std::string_view op) {
    if (!skip_op(op)) unexpected("'" + std::string(op) + "'");
  }
  std::string expect_name() {
    if (cur().kind != Tok::name) unexpected("a name");
    std::string n = cur().value;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().kind != Tok::block_end) unexpected("end of statement block '%}'");
    advance();
  }

  // Limits nesting of blocks (and, separately, of expressions).
  class Nest {
   public:
    Nest(Parser& p, int& depth, size_t pos, const char* what) : depth_(depth) {
      if (++depth_ > p.max_nesting_)
        p.error(pos, std::string(what) + " nested more than " + std::to_string(p.max_nesting_) +
                         " levels deep");
    }
    ~Nest() { --depth_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;

   private:
    int& depth_;
  };

  // ---- statements ---------------------------------------------------------------------

  // Parses nodes until a block tag whose name is one of `ends` (consumed, name stored in
  // *end; the rest of that tag is left to the caller) or, when `ends` is empty, until the end
  // of the template. `open_pos` is the position of the tag that opened the block.
  Body parse_body(std::initializer_list<std::string_view> ends, std::string* end, size_t open_pos) {
    Nest nest(*this, block_depth_, cur().pos, "blocks");
    Body body;
    for (;;) {
      const Token& t = cur();
      switch (t.kind) {
        case Tok::eof:
          if (ends.size() != 0) {
            std::string names;
            for (std::string_view e : ends)
              names += (names.empty() ? "'" : " or '") + std::string(e) + "'";
            error(open_pos, "block is never closed: expected " + names);
          }
          *end = {};
          return body;
        case Tok::text: {
          auto n = std::make_unique<Node>();
          n->kind = NodeKind::text;
          n->pos = t.pos;
          n->text = t.value;
          body.push_back(std::move(n));
          advance();
          break;
        }
        case Tok::var_begin: {
          auto n = std::make_unique<Node>();
          n->kind = NodeKind::output;
          n->pos = t.pos;
          advance();
          n->expr = parse_tuple(true);
          if (cur().kind != Tok::var_end) unexpected("end of print statement '}}'");
          advance();
          body.push_back(std::move(n));
          break;
        }
        case Tok::block_begin: {
          const size_t tag_pos = t.pos;
          advance();
          if (cur().kind != Tok::name) unexpected("a statement name");
          const std::string& name = cur().value;
          for (std::string_view e : ends) {
            if (name == e) {
              *end = name;
              advance();
              return body;
            }
          }
          body.push_back(parse_statement(tag_pos));
          break;
        }
        default:
          unexpected("template text or a tag");
      }
    }
  }

  NodePtr parse_statement(size_t tag_pos) {
    const std::string tag = cur().value;
    const size_t pos = cur().pos;
    if (tag == "if") return parse_if(tag_pos);
    if (tag == "for") return parse_for(tag_pos);
    if (tag == "set") return parse_set(tag_pos);
    if (tag == "macro") return parse_macro(tag_pos);
    if (tag == "filter") return parse_filter_block(tag_pos);
    if (tag == "generation") {
      advance();
      expect_block_end();
      auto n = make_node(NodeKind::scope, tag_pos);
      std::string end;
      n->body = parse_body({"endgeneration"}, &end, tag_pos);
      expect_block_end();
      return n;
    }
    if (tag == "break" || tag == "continue") {
      if (loop_depth_ == 0) error(pos, "'" + tag + "' outside a loop");
      advance();
      expect_block_end();
      return make_node(tag == "break" ? NodeKind::break_ : NodeKind::continue_, tag_pos);
    }
    if (is_one_of(tag, {"include", "extends", "block", "import", "from", "call", "raw", "with",
                        "autoescape", "do"}))
      error(pos, "the '" + tag + "' tag is not supported");
    if (tag.rfind("end", 0) == 0 || tag == "elif" || tag == "else")
      error(pos, "unexpected '" + tag + "'");
    error(pos, "unknown tag '" + tag + "'");
  }

  static NodePtr make_node(NodeKind kind, size_t pos) {
    auto n = std::make_unique<Node>();
    n->kind = kind;
    n->pos = pos;
    return n;
  }

  NodePtr parse_if(size_t tag_pos) {
    auto n = make_node(NodeKind::if_, tag_pos);
    advance();  // if
    for (;;) {
      Branch br;
      br.cond = parse_tuple(false);
      expect_block_end();
      std::string end;
      br.body = parse_body({"elif", "else", "endif"}, &end, tag_pos);
      n->branches.push_back(std::move(br));
      if (end == "elif") continue;
      if (end == "else") {
        expect_block_end();
        n->else_body = parse_body({"endif"}, &end, tag_pos);
      }
      expect_block_end();
      return n;
    }
  }

  std::vector<std::string> parse_targets() {
    std::vector<std::string> names;
    const bool paren = skip_op("(");
    do {
      if (paren && at_op(")")) break;
      names.push_back(expect_name());
    } while (skip_op(","));
    if (paren) expect_op(")");
    return names;
  }

  NodePtr parse_for(size_t tag_pos) {
    auto n = make_node(NodeKind::for_, tag_pos);
    advance();  // for
    n->targets = parse_targets();
    if (!skip_name("in")) unexpected("'in'");
    n->expr = parse_tuple(false);
    if (skip_name("if")) n->cond = parse_expression(true);
    if (at_name("recursive")) error(cur().pos, "recursive loops are not supported");
    expect_block_end();
    std::string end;
    ++loop_depth_;
    n->body = parse_body({"endfor", "else"}, &end, tag_pos);
    --loop_depth_;
    if (end == "else") {
      expect_block_end();
      n->else_body = parse_body({"endfor"}, &end, tag_pos);
    }
    expect_block_end();
    return n;
  }

  NodePtr parse_set(size_t tag_pos) {
    advance();  // set
    const size_t pos = cur().pos;
    std::vector<std::string> targets;
    std::string attr;
    targets.push_back(expect_name());
    if (skip_op(".")) {
      attr = expect_name();
    } else {
      while (skip_op(",")) targets.push_back(expect_name());
    }
    if (skip_op("=")) {
      auto n = make_node(NodeKind::set, tag_pos);
      n->targets = std::move(targets);
      n->attr = std::move(attr);
      n->expr = parse_tuple(true);
      expect_block_end();
      return n;
    }
    if (targets.size() != 1 || !attr.empty()) error(pos, "a block assignment takes a single name");
    if (cur().kind != Tok::block_end) unexpected("'=' or end of statement block '%}'");
    advance();
    auto n = make_node(NodeKind::set_block, tag_pos);
    n->targets = std::move(targets);
    std::string end;
    n->body = parse_body({"endset"}, &end, tag_pos);
    expect_block_end();
    return n;
  }

  NodePtr parse_macro(size_t tag_pos) {
    advance();  // macro
    auto n = make_node(NodeKind::macro, tag_pos);
    n->name = expect_name();
    expect_op("(");
    while (!at_op(")")) {
      Param p;
      p.name = expect_name();
      if (skip_op("=")) p.default_value = parse_expression(true);
      n->params.push_back(std::move(p));
      if (!skip_op(",")) break;
    }
    expect_op(")");
    expect_block_end();
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    std::string end;
    n->body = parse_body({"endmacro"}, &end, tag_pos);
    loop_depth_ = saved_loops;
    if (cur().kind == Tok::name) advance();  // {% endmacro name %}
    expect_block_end();
    return n;
  }

  NodePtr parse_filter_block(size_t tag_pos) {
    advance();  // filter
    auto n = make_node(NodeKind::filter_block, tag_pos);
    ExprPtr chain = parse_filter(nullptr);
    while (skip_op("|")) chain = parse_filter(std::move(chain));
    n->expr = std::move(chain);
    expect_block_end();
    std::string end;
    n->body = parse_body({"endfilter"}, &end, tag_pos);
    expect_block_end();
    return n;
  }

  // ---- expressions --------------------------------------------------------------------

  ExprPtr make_expr(ExprKind kind, size_t pos) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->pos = pos;
    return e;
  }

  // expr or expr, expr, ... (a tuple).
  ExprPtr parse_tuple(bool with_condexpr) {
    const size_t pos = cur().pos;
    ExprPtr first = parse_expression(with_condexpr);
    if (!at_op(",")) return first;
    auto t = make_expr(ExprKind::tuple, pos);
    t->items.push_back(std::move(first));
    while (skip_op(",")) {
      if (cur().kind == Tok::block_end || cur().kind == Tok::var_end || at_op(")")) break;
      t->items.push_back(parse_expression(with_condexpr));
    }
    return t;
  }

  ExprPtr parse_expression(bool with_condexpr) {
    Nest nest(*this, expr_depth_, cur().pos, "expressions");
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr e = parse_or();
    while (at_name("if")) {
      const size_t pos = cur().pos;
      advance();
      auto t = make_expr(ExprKind::ternary, pos);
      t->a = parse_or();
      t->b = std::move(e);
      if (skip_name("else")) {
        Nest nest(*this, expr_depth_, cur().pos, "expressions");
        t->c = parse_condexpr();
      }
      e = std::move(t);
    }
    return e;
  }

  ExprPtr binary(std::string op, size_t pos, ExprPtr a, ExprPtr b) {
    auto e = make_expr(ExprKind::binary, pos);
    e->name = std::move(op);
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (at_name("or")) {
      const size_t pos = cur().pos;
      advance();
      e = binary("or", pos, std::move(e), parse_and());
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (at_name("and")) {
      const size_t pos = cur().pos;
      advance();
      e = binary("and", pos, std::move(e), parse_not());
    }
    return e;
  }

  ExprPtr parse_not() {
    if (at_name("not")) {
      const size_t pos = cur().pos;
      Nest nest(*this, expr_depth_, pos, "expressions");
      advance();
      auto e = make_expr(ExprKind::unary, pos);
      e->name = "not";
      e->a = parse_not();
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    const size_t pos = cur().pos;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    for (;;) {
      std::string op;
      if (cur().kind == Tok::op && is_one_of(cur().value, {"==", "!=", "<", "<=", ">", ">="})) {
        op = cur().value;
        advance();
      } else if (at_name("in")) {
        op = "in";
        advance();
      } else if (at_name("not") && peek().kind == Tok::name && peek().value == "in") {
        op = "not in";
        advance();
        advance();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make_expr(ExprKind::compare, pos);
        cmp->items.push_back(std::move(first));
      }
      cmp->ops.push_back(std::move(op));
      cmp->items.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (at_op("+") || at_op("-")) {
      const std::string op = cur().value;
      const size_t pos = cur().pos;
      advance();
      e = binary(op, pos, std::move(e), parse_concat());
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (at_op("~")) {
      const size_t pos = cur().pos;
      advance();
      e = binary("~", pos, std::move(e), parse_math2());
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (at_op("*") || at_op("/") || at_op("//") || at_op("%")) {
      const std::string op = cur().value;
      const size_t pos = cur().pos;
      advance();
      e = binary(op, pos, std::move(e), parse_pow());
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (at_op("**")) {
      const size_t pos = cur().pos;
      advance();
      e = binary("**", pos, std::move(e), parse_unary(true));
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    ExprPtr e;
    if (at_op("-") || at_op("+")) {
      const size_t pos = cur().pos;
      Nest nest(*this, expr_depth_, pos, "expressions");
      e = make_expr(ExprKind::unary, pos);
      e->name = cur().value;
      advance();
      e->a = parse_unary(false);
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr literal(Value v, size_t pos) {
    auto e = make_expr(ExprKind::literal, pos);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    const size_t pos = t.pos;
    switch (t.kind) {
      case Tok::name: {
        const std::string& n = t.value;
        ExprPtr e;
        if (n == "true" || n == "True")
          e = literal(Value::boolean(true), pos);
        else if (n == "false" || n == "False")
          e = literal(Value::boolean(false), pos);
        else if (n == "none" || n == "None")
          e = literal(Value::none(), pos);
        else {
          e = make_expr(ExprKind::name, pos);
          e->name = n;
        }
        advance();
        return e;
      }
      case Tok::string: {
        std::string s = t.value;
        advance();
        while (cur().kind == Tok::string) {  // adjacent literals concatenate
          s += cur().value;
          advance();
        }
        return literal(Value::string(std::move(s)), pos);
      }
      case Tok::integer: {
        errno = 0;
        char* end = nullptr;
        const long long v = std::strtoll(t.value.c_str(), &end, 10);
        if (errno == ERANGE) error(pos, "integer literal " + t.value + " is too large");
        advance();
        return literal(Value::integer(v), pos);
      }
      case Tok::floating: {
        const double v = std::strtod(t.value.c_str(), nullptr);
        advance();
        return literal(Value::floating(v), pos);
      }
      case Tok::op:
        if (t.value == "(") {
          advance();
          if (skip_op(")")) return make_expr(ExprKind::tuple, pos);
          ExprPtr first = parse_expression(true);
          if (!at_op(",")) {
            expect_op(")");
            return first;
          }
          auto tup = make_expr(ExprKind::tuple, pos);
          tup->items.push_back(std::move(first));
          while (skip_op(",")) {
            if (at_op(")")) break;
            tup->items.push_back(parse_expression(true));
          }
          expect_op(")");
          return tup;
        }
        if (t.value == "[") {
          advance();
          auto list = make_expr(ExprKind::list, pos);
          while (!at_op("]")) {
            list->items.push_back(parse_expression(true));
            if (!skip_op(",")) break;
          }
          expect_op("]");
          return list;
        }
        if (t.value == "{") {
          advance();
          auto dict = make_expr(ExprKind::dict, pos);
          while (!at_op("}")) {
            dict->items.push_back(parse_expression(true));
            expect_op(":");
            dict->items.push_back(parse_expression(true));
            if (!skip_op(",")) break;
          }
          expect_op("}");
          return dict;
        }
        break;
      default:
        break;
    }
    unexpected("an expression");
  }

  ExprPtr parse_postfix(ExprPtr e) {
    for (;;) {
      if (at_op(".")) {
        const size_t pos = e->pos;  // errors point at the start of the expression
        advance();
        if (cur().kind == Tok::name) {
          auto a = make_expr(ExprKind::attr, pos);
          a->a = std::move(e);
          a->name = cur().value;
          advance();
          e = std::move(a);
        } else if (cur().kind == Tok::integer) {
          auto it = make_expr(ExprKind::item, pos);
          it->a = std::move(e);
          it->b = parse_primary();
          e = std::move(it);
        } else {
          unexpected("an attribute name");
        }
      } else if (at_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (at_op("(")) {
        auto c = make_expr(ExprKind::call, e->pos);  // errors point at the callee
        c->a = std::move(e);
        parse_call_args(c->args);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    const size_t pos = obj->pos;
    Nest nest(*this, expr_depth_, pos, "expressions");
    advance();  // [
    ExprPtr start;
    if (!at_op(":")) {
      start = parse_expression(true);
      if (skip_op("]")) {
        auto it = make_expr(ExprKind::item, pos);
        it->a = std::move(obj);
        it->b = std::move(start);
        return it;
      }
    }
    expect_op(":");
    auto s = make_expr(ExprKind::slice, pos);
    s->a = std::move(obj);
    s->items.push_back(std::move(start));
    s->items.push_back(at_op("]") || at_op(":") ? nullptr : parse_expression(true));
    ExprPtr step;
    if (skip_op(":") && !at_op("]")) step = parse_expression(true);
    s->items.push_back(std::move(step));
    expect_op("]");
    return s;
  }

  void parse_call_args(std::vector<Arg>& args) {
    Nest nest(*this, expr_depth_, cur().pos, "expressions");
    expect_op("(");
    while (!at_op(")")) {
      if (at_op("*") || at_op("**")) error(cur().pos, "*args and **kwargs are not supported");
      Arg a;
      if (cur().kind == Tok::name && peek().kind == Tok::op && peek().value == "=") {
        a.name = cur().value;
        advance();
        advance();
      } else {
        for (const Arg& prev : args)
          if (!prev.name.empty()) error(cur().pos, "positional argument follows keyword argument");
      }
      a.value = parse_expression(true);
      args.push_back(std::move(a));
      if (!skip_op(",")) break;
    }
    expect_op(")");
  }

  // `input | name(args)`: cur() is the filter name (the '|' already consumed).
  ExprPtr parse_filter(ExprPtr input) {
    const size_t pos = cur().pos;
    auto f = make_expr(ExprKind::filter, pos);
    f->name = expect_name();
    if (!find_filter(f->name)) error(pos, "no filter named '" + f->name + "'");
    f->a = std::move(input);
    if (at_op("(")) parse_call_args(f->args);
    return f;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    for (;;) {
      if (at_op("|")) {
        advance();
        e = parse_filter(std::move(e));
      } else if (at_name("is")) {
        e = parse_test(std::move(e));
      } else if (at_op("(")) {
        auto c = make_expr(ExprKind::call, e->pos);  // errors point at the callee
        c->a = std::move(e);
        parse_call_args(c->args);
        e = std::move(c);
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_test(ExprPtr e) {
    const size_t pos = cur().pos;
    advance();  // is
    auto t = make_expr(ExprKind::test, pos);
    t->negated = skip_name("not");
    const size_t name_pos = cur().pos;
    t->name = expect_name();
    if (!find_test(t->name)) error(name_pos, "no test named '" + t->name + "'");
    t->a = std::move(e);
    if (at_op("(")) {
      parse_call_args(t->args);
    } else if ((cur().kind == Tok::name || cur().kind == Tok::string ||
                cur().kind == Tok::integer || cur().kind == Tok::floating || at_op("[") ||
                at_op("{")) &&
               !(cur().kind == Tok::name &&
                 is_one_of(cur().value, {"else", "or", "and", "if", "is"}))) {
      Arg a;
      a.value = parse_postfix(parse_primary());
      t->args.push_back(std::move(a));
    }
    return t;
  }

  std::string source_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  int max_nesting_;
  int block_depth_ = 0;
  int expr_depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

Program parse(std::string source, int max_nesting) {
  return Parser(normalize_source(source), max_nesting).run();
}

}  // namespace v4::jinja
