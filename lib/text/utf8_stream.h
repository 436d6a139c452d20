// Streams token pieces to text without ever emitting part of a UTF-8 sequence: bytes are
// held until their code point completes. A sequence proven invalid is emitted as one
// U+FFFD per maximal ill-formed subpart (the Unicode "substitution of maximal subparts"
// practice), and the byte that proved it invalid is then read afresh.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace v4 {

class Utf8Stream {
 public:
  // Appends the complete text that `bytes` finishes to `out` (no allocation when `out` has
  // capacity).
  void push(std::string_view bytes, std::string& out);
  // Appends U+FFFD for a dangling incomplete sequence, if any, and resets.
  void flush(std::string& out);

  // Convenience forms returning a new string.
  std::string push(std::string_view bytes);
  std::string flush();

  // Drops any held bytes.
  void reset() {
    n_ = 0;
    need_ = 0;
  }
  // Number of bytes held back waiting for the rest of a code point.
  size_t pending() const { return n_; }

 private:
  void push_byte(uint8_t b, std::string& out);

  char buf_[4] = {};
  uint8_t n_ = 0;     // bytes held in buf_
  uint8_t need_ = 0;  // total length of the sequence being held
};

}  // namespace v4
