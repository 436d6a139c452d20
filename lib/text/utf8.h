// Small UTF-8 helpers shared by the tokenizers and the template engine.
#pragma once

#include <cstdint>
#include <string>

namespace v4 {

// Appends the UTF-8 encoding of code point cp; surrogates and values above U+10FFFF become
// U+FFFD.
void append_utf8(std::string& out, uint32_t cp);

}  // namespace v4
