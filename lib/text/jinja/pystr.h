// Python `str` semantics over UTF-8 bytes, as chat templates expect them: lengths, indices and
// slices count code points; strip/split know Python's whitespace set; repr quotes like Python.
// Case mapping (upper/lower/title/capitalize) is ASCII-only: other bytes pass through.
// Malformed UTF-8 never fails: each byte that does not start a valid sequence counts as one
// character.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/text/utf8.h"

namespace v4::jinja::pystr {

// Byte offset of every character, plus s.size() at the end (so offsets.size() == length + 1).
std::vector<size_t> char_offsets(std::string_view s);
// Number of characters (code points).
size_t length(std::string_view s);
bool is_ascii(std::string_view s);

// Python's str.isspace() for one code point.
bool is_space(uint32_t cp);

// str.strip / lstrip / rstrip; `chars` null means whitespace.
std::string strip(std::string_view s, bool left, bool right, const std::string* chars = nullptr);
// str.split() with no separator (runs of whitespace), and str.split(sep). maxsplit < 0: all.
std::vector<std::string> split_whitespace(std::string_view s, int64_t maxsplit);
std::vector<std::string> split(std::string_view s, std::string_view sep, int64_t maxsplit);
// str.rsplit(sep, maxsplit) (sep non-empty).
std::vector<std::string> rsplit(std::string_view s, std::string_view sep, int64_t maxsplit);
// str.replace(old, new, count); count < 0: all.
std::string replace(std::string_view s, std::string_view old_s, std::string_view new_s,
                    int64_t count);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);
std::string capitalize(std::string_view s);

// Python repr() of a str: single quotes unless the text has ' and no ", escapes as Python.
std::string repr(std::string_view s);
// Python repr() of a float: shortest round-trip digits, "1.0", "1e+16", "inf", "nan".
std::string float_repr(double d);

using v4::append_utf8;
// Decodes the character starting at s[i]; sets *len to its byte length (1 for a bad byte,
// whose value is then returned as is).
uint32_t decode_at(std::string_view s, size_t i, size_t* len);

}  // namespace v4::jinja::pystr
