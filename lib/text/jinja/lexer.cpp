#include "lib/text/jinja/lexer.h"

#include <cstdlib>

#include "lib/text/jinja/pystr.h"
#include "lib/text/jinja/source.h"

namespace v4::jinja {

namespace {

bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// Advances past whitespace (Python's set) starting at pos.
size_t skip_space(std::string_view s, size_t pos) {
  while (pos < s.size()) {
    size_t len;
    if (!pystr::is_space(pystr::decode_at(s, pos, &len))) break;
    pos += len;
  }
  return pos;
}

bool all_space(std::string_view s) { return skip_space(s, 0) == s.size(); }

bool starts_with(std::string_view s, size_t pos, std::string_view what) {
  return s.substr(pos, what.size()) == what;
}

class Lexer {
 public:
  explicit Lexer(std::string_view src) : src_(src) {}

  std::vector<Token> run() {
    size_t pos = 0;
    const size_t n = src_.size();
    while (pos < n) {
      const size_t tag = find_tag(pos);
      const size_t text_end = tag == std::string_view::npos ? n : tag;
      std::string text(src_.substr(pos, text_end - pos));
      const bool line_start = pos == 0 || src_[pos - 1] == '\n';
      if (tag != std::string_view::npos) {
        const char kind = src_[tag + 1];
        const char mod = tag + 2 < n ? src_[tag + 2] : '\0';
        if (mod == '-') {
          text = pystr::strip(text, false, true);
        } else if (mod != '+' && kind != '{') {
          // lstrip_blocks: drop the indentation before a block or comment tag that starts a line.
          const size_t nl = text.rfind('\n');
          const size_t l = nl == std::string::npos ? 0 : nl + 1;
          if ((l > 0 || line_start) && l < text.size() &&
              all_space(std::string_view(text).substr(l)))
            text.resize(l);
        }
      }
      if (!text.empty()) toks_.push_back({Tok::text, pos, std::move(text)});
      if (tag == std::string_view::npos) break;
      pos = tag;
      if (src_[tag + 1] == '#')
        pos = comment(tag);
      else
        pos = tag_body(tag);
    }
    toks_.push_back({Tok::eof, n, {}});
    return std::move(toks_);
  }

 private:
  size_t find_tag(size_t pos) const {
    for (;;) {
      pos = src_.find('{', pos);
      if (pos == std::string_view::npos || pos + 1 >= src_.size()) return std::string_view::npos;
      const char c = src_[pos + 1];
      if (c == '{' || c == '%' || c == '#') return pos;
      ++pos;
    }
  }

  // Skips a comment starting at `tag`; returns the position after it.
  size_t comment(size_t tag) {
    size_t start = tag + 2;
    if (start < src_.size() && (src_[start] == '-' || src_[start] == '+')) ++start;
    const size_t end = src_.find("#}", start);
    if (end == std::string_view::npos) fail_at(src_, tag, "syntax error: unterminated comment");
    const char mod = end > start ? src_[end - 1] : '\0';
    size_t pos = end + 2;
    if (mod == '-')
      pos = skip_space(src_, pos);
    else if (mod != '+' && pos < src_.size() && src_[pos] == '\n')
      ++pos;  // trim_blocks
    return pos;
  }

  // Lexes a {{ ... }} or {% ... %} tag starting at `tag`; returns the position after it.
  size_t tag_body(size_t tag) {
    const bool var = src_[tag + 1] == '{';
    toks_.push_back({var ? Tok::var_begin : Tok::block_begin, tag, {}});
    size_t pos = tag + 2;
    if (pos < src_.size() && (src_[pos] == '-' || src_[pos] == '+')) ++pos;
    int balance = 0;
    for (;;) {
      pos = skip_space(src_, pos);
      if (pos >= src_.size())
        fail_at(src_, tag,
                var ? "syntax error: '{{' is never closed by '}}'"
                    : "syntax error: '{%' is never closed by '%}'");
      if (balance == 0) {
        if (var) {
          if (starts_with(src_, pos, "-}}")) {
            toks_.push_back({Tok::var_end, pos, {}});
            return skip_space(src_, pos + 3);
          }
          if (starts_with(src_, pos, "}}")) {
            toks_.push_back({Tok::var_end, pos, {}});
            return pos + 2;
          }
        } else {
          if (starts_with(src_, pos, "-%}")) {
            toks_.push_back({Tok::block_end, pos, {}});
            return skip_space(src_, pos + 3);
          }
          if (starts_with(src_, pos, "+%}")) {
            toks_.push_back({Tok::block_end, pos, {}});
            return pos + 3;
          }
          if (starts_with(src_, pos, "%}")) {
            toks_.push_back({Tok::block_end, pos, {}});
            pos += 2;
            if (pos < src_.size() && src_[pos] == '\n') ++pos;  // trim_blocks
            return pos;
          }
        }
      }
      pos = token(pos, balance);
    }
  }

  // Lexes one expression token at pos; returns the position after it.
  size_t token(size_t pos, int& balance) {
    const char c = src_[pos];
    if (is_name_start(c)) {
      size_t e = pos;
      while (e < src_.size() && is_name_char(src_[e])) ++e;
      toks_.push_back({Tok::name, pos, std::string(src_.substr(pos, e - pos))});
      return e;
    }
    if (is_digit(c)) return number(pos);
    if (c == '\'' || c == '"') return string(pos);
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", "<=", ">="};
    for (std::string_view op : kTwo) {
      if (starts_with(src_, pos, op)) {
        toks_.push_back({Tok::op, pos, std::string(op)});
        return pos + 2;
      }
    }
    static constexpr std::string_view kOne = "+-*/%~<>=.,:|()[]{}";
    if (kOne.find(c) != std::string_view::npos) {
      if (c == '(' || c == '[' || c == '{') ++balance;
      if (c == ')' || c == ']' || c == '}') {
        if (balance == 0) fail_at(src_, pos, std::string("syntax error: unexpected '") + c + "'");
        --balance;
      }
      toks_.push_back({Tok::op, pos, std::string(1, c)});
      return pos + 1;
    }
    size_t len;
    pystr::decode_at(src_, pos, &len);
    fail_at(src_, pos,
            "syntax error: unexpected character '" + std::string(src_.substr(pos, len)) + "'");
  }

  size_t number(size_t pos) {
    size_t e = pos;
    auto digits = [&] {
      while (e < src_.size() && (is_digit(src_[e]) ||
                                 (src_[e] == '_' && e + 1 < src_.size() && is_digit(src_[e + 1]))))
        ++e;
    };
    digits();
    bool is_float = false;
    if (e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
      is_float = true;
      ++e;
      digits();
    }
    if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
      size_t k = e + 1;
      if (k < src_.size() && (src_[k] == '+' || src_[k] == '-')) ++k;
      if (k < src_.size() && is_digit(src_[k])) {
        is_float = true;
        e = k;
        digits();
      }
    }
    std::string spelling;
    for (size_t i = pos; i < e; ++i)
      if (src_[i] != '_') spelling += src_[i];
    toks_.push_back({is_float ? Tok::floating : Tok::integer, pos, std::move(spelling)});
    return e;
  }

  // A quoted string with Python escapes (as Jinja decodes them: unicode-escape).
  size_t string(size_t pos) {
    const char q = src_[pos];
    std::string out;
    size_t i = pos + 1;
    for (;;) {
      if (i >= src_.size()) fail_at(src_, pos, "syntax error: unterminated string");
      const char c = src_[i];
      if (c == q) break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) fail_at(src_, pos, "syntax error: unterminated string");
      const char d = src_[i + 1];
      i += 2;
      switch (d) {
        case '\n':
          break;  // line continuation
        case '\\':
          out += '\\';
          break;
        case '\'':
          out += '\'';
          break;
        case '"':
          out += '"';
          break;
        case 'a':
          out += '\a';
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
        case 'v':
          out += '\v';
          break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t nd = d == 'x' ? 2 : (d == 'u' ? 4 : 8);
          if (i + nd > src_.size())
            fail_at(src_, i - 2, std::string("syntax error: truncated \\") + d + " escape");
          for (size_t k = 0; k < nd; ++k)
            if (!is_hex(src_[i + k]))
              fail_at(src_, i - 2, std::string("syntax error: truncated \\") + d + " escape");
          const uint32_t cp = static_cast<uint32_t>(
              std::strtoul(std::string(src_.substr(i, nd)).c_str(), nullptr, 16));
          if (cp > 0x10FFFF) fail_at(src_, i - 2, "syntax error: escape out of range");
          pystr::append_utf8(out, cp);
          i += nd;
          break;
        }
        default:
          if (d >= '0' && d <= '7') {
            uint32_t cp = static_cast<uint32_t>(d - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i)
              cp = cp * 8 + static_cast<uint32_t>(src_[i] - '0');
            pystr::append_utf8(out, cp);
          } else {
            out += '\\';  // unknown escapes stay as written
            out += d;
          }
      }
    }
    toks_.push_back({Tok::string, pos, std::move(out)});
    return i + 1;
  }

  std::string_view src_;
  std::vector<Token> toks_;
};

}  // namespace

std::string normalize_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(std::string_view source) { return Lexer(source).run(); }

}  // namespace v4::jinja
