// Splits a template into tokens. Whitespace control follows Jinja2 as Hugging Face configures
// it for chat templates: trim_blocks (the first newline after a block or comment tag is
// dropped) and lstrip_blocks (spaces and tabs before a block or comment tag at the start of a
// line are dropped), `{%-` / `-%}` (and the `{{`, `{#` forms) strip all whitespace on that
// side, `{%+` / `+%}` turn the two options off for one tag. Newlines are normalised to "\n"
// and one trailing newline is dropped (keep_trailing_newline off).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace v4::jinja {

enum class Tok : uint8_t {
  text,         // template text between tags (whitespace control applied)
  var_begin,    // {{
  var_end,      // }}
  block_begin,  // {%
  block_end,    // %}
  name,         // identifier or keyword
  string,       // string literal, escapes decoded
  integer,      // integer literal (underscores removed)
  floating,     // float literal
  op,           // operator or punctuation
  eof,
};

struct Token {
  Tok kind;
  size_t pos;         // byte offset in the normalised source
  std::string value;  // text, name, decoded string, number spelling or operator
};

// Normalises newlines ("\r\n", "\r" -> "\n") and drops one trailing newline. Token positions
// refer to this text.
std::string normalize_source(std::string_view source);

// Throws v4::Error(bad_format) with the position for unterminated tags, strings or comments
// and characters that cannot start a token.
std::vector<Token> tokenize(std::string_view source);

}  // namespace v4::jinja
