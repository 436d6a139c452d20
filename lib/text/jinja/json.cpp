#include "lib/text/jinja/json.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "lib/text/jinja/limits.h"
#include "lib/text/jinja/pystr.h"

namespace v4::jinja {

namespace {

void append_json_string(std::string& out, std::string_view s, bool ensure_ascii) {
  out += '"';
  for (size_t i = 0; i < s.size();) {
    size_t len;
    const uint32_t cp = pystr::decode_at(s, i, &len);
    const char c = s[i];
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default: {
        char buf[16];
        if (cp < 0x20) {
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
          out += buf;
        } else if (ensure_ascii && cp >= 0x80) {
          if (cp >= 0x10000) {
            const uint32_t v = cp - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                          0xDC00 + (v & 0x3FF));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(cp));
          }
          out += buf;
        } else {
          out.append(s.substr(i, len));
        }
      }
    }
    i += len;
  }
  out += '"';
}

class Writer {
 public:
  Writer(const JsonOptions& o, Budget& budget) : o_(o), budget_(budget) {
    item_sep_ = !o.item_separator.empty() ? o.item_separator : (o.indent >= 0 ? "," : ", ");
    key_sep_ = !o.key_separator.empty() ? o.key_separator : ": ";
  }

  void write(const Value& v, int level) {
    budget_.step();
    switch (v.type()) {
      case Value::Type::none:
        out_ += "null";
        break;
      case Value::Type::boolean:
        out_ += v.as_bool() ? "true" : "false";
        break;
      case Value::Type::integer:
        out_ += std::to_string(v.as_int());
        break;
      case Value::Type::floating: {
        const double d = v.as_double();
        if (std::isnan(d))
          out_ += "NaN";
        else if (std::isinf(d))
          out_ += d < 0 ? "-Infinity" : "Infinity";
        else
          out_ += pystr::float_repr(d);
        break;
      }
      case Value::Type::string:
        budget_.string(v.str().size());
        budget_.check_size(out_.size() + v.str().size());
        append_json_string(out_, v.str(), o_.ensure_ascii);
        break;
      case Value::Type::list: {
        const auto& items = v.items();
        if (items.empty()) {
          out_ += "[]";
          break;
        }
        out_ += '[';
        for (size_t i = 0; i < items.size(); ++i) {
          if (i) out_ += item_sep_;
          newline(level + 1);
          write(items[i], level + 1);
        }
        newline(level);
        out_ += ']';
        break;
      }
      case Value::Type::dict: {
        const auto& entries = v.dict().entries();
        if (entries.empty()) {
          out_ += "{}";
          break;
        }
        std::vector<const std::pair<Value, Value>*> order;
        for (const auto& e : entries) order.push_back(&e);
        if (o_.sort_keys) {
          std::stable_sort(order.begin(), order.end(), [&](auto* a, auto* b) {
            return key_text(a->first) < key_text(b->first);
          });
        }
        out_ += '{';
        bool first = true;
        for (const auto* e : order) {
          if (!first) out_ += item_sep_;
          first = false;
          newline(level + 1);
          append_json_string(out_, key_text(e->first), o_.ensure_ascii);
          out_ += key_sep_;
          write(e->second, level + 1);
        }
        newline(level);
        out_ += '}';
        break;
      }
      default:
        throw TemplateError(std::string("Object of type ") + v.type_name() +
                            " is not JSON serializable");
    }
    budget_.check_size(out_.size());
  }

  std::string take() { return std::move(out_); }

 private:
  // JSON object keys are strings; Python converts scalar keys.
  static std::string key_text(const Value& k) {
    switch (k.type()) {
      case Value::Type::string:
        return k.str();
      case Value::Type::none:
        return "null";
      case Value::Type::boolean:
        return k.as_bool() ? "true" : "false";
      case Value::Type::integer:
        return std::to_string(k.as_int());
      case Value::Type::floating:
        return pystr::float_repr(k.as_double());
      default:
        throw TemplateError(std::string("keys must be str, int, float, bool or None, not ") +
                            k.type_name());
    }
  }

  void newline(int level) {
    if (o_.indent < 0) return;
    out_ += '\n';
    out_.append(static_cast<size_t>(o_.indent) * static_cast<size_t>(level), ' ');
  }

  const JsonOptions& o_;
  Budget& budget_;
  std::string item_sep_, key_sep_;
  std::string out_;
};

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}

  Value document() {
    Value v = value(0);
    ws();
    if (i_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) {
    throw TemplateError("invalid JSON at offset " + std::to_string(i_) + ": " + what);
  }

  void ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  bool lit(std::string_view w) {
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }

  Value value(int depth) {
    if (depth >= kMaxValueDepth) fail("nested too deeply");
    ws();
    if (i_ >= s_.size()) fail("unexpected end");
    const char c = s_[i_];
    if (c == '{') {
      ++i_;
      Dict d;
      ws();
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return Value::dict(std::move(d));
      }
      for (;;) {
        ws();
        if (i_ >= s_.size() || s_[i_] != '"') fail("expected a string key");
        std::string key = string();
        ws();
        if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':'");
        ++i_;
        d.set(Value::string(std::move(key)), value(depth + 1));
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          return Value::dict(std::move(d));
        }
        fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      ++i_;
      std::vector<Value> items;
      ws();
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return Value::list(std::move(items));
      }
      for (;;) {
        items.push_back(value(depth + 1));
        ws();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == ']') {
          ++i_;
          return Value::list(std::move(items));
        }
        fail("expected ',' or ']'");
      }
    }
    if (c == '"') return Value::string(string());
    if (lit("true")) return Value::boolean(true);
    if (lit("false")) return Value::boolean(false);
    if (lit("null")) return Value::none();
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    fail("unexpected character");
  }

  Value number() {
    const size_t start = i_;
    bool is_float = false;
    if (s_[i_] == '-') ++i_;
    while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    if (i_ < s_.size() && s_[i_] == '.') {
      is_float = true;
      ++i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      is_float = true;
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
    }
    const std::string text(s_.substr(start, i_ - start));
    if (text == "-" || text.empty()) fail("bad number");
    if (!is_float) {
      errno = 0;
      const long long v = std::strtoll(text.c_str(), nullptr, 10);
      if (errno != ERANGE) return Value::integer(v);
    }
    return Value::floating(std::strtod(text.c_str(), nullptr));
  }

  uint32_t hex4() {
    if (i_ + 4 > s_.size()) fail("truncated \\u escape");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9')
        v |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        v |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        v |= static_cast<uint32_t>(h - 'A' + 10);
      else
        fail("bad \\u escape");
    }
    return v;
  }

  std::string string() {
    ++i_;  // "
    std::string out;
    for (;;) {
      if (i_ >= s_.size()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) fail("unterminated string");
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(i_, 2) == "\\u") {
            i_ += 2;
            const uint32_t lo = hex4();
            if (lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          }
          pystr::append_utf8(out, cp);
          break;
        }
        default:
          fail("bad escape");
      }
    }
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

std::string to_json(const Value& v, const JsonOptions& options, Budget& budget) {
  Writer w(options, budget);
  w.write(v, 0);
  return w.take();
}

Value parse_json(std::string_view text) { return Reader(text).document(); }

}  // namespace v4::jinja
