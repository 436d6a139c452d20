#include "lib/text/utf8_stream.h"

namespace v4 {

namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

void Utf8Stream::push_byte(uint8_t b, std::string& out) {
  if (n_ != 0) {
    // Allowed range of this continuation byte (the second byte is restricted for some
    // lead bytes, to exclude overlong forms, surrogates and code points above U+10FFFF).
    uint8_t lo = 0x80, hi = 0xBF;
    if (n_ == 1) {
      const auto lead = static_cast<uint8_t>(buf_[0]);
      if (lead == 0xE0) lo = 0xA0;
      if (lead == 0xED) hi = 0x9F;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;
    }
    if (b >= lo && b <= hi) {
      buf_[n_++] = static_cast<char>(b);
      if (n_ == need_) {
        out.append(buf_, n_);
        reset();
      }
      return;
    }
    // The held prefix can never complete: replace it, then read `b` as a new start.
    out.append(kReplacement);
    reset();
  }
  if (b < 0x80) {
    out.push_back(static_cast<char>(b));
  } else if (b >= 0xC2 && b <= 0xDF) {
    need_ = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need_ = 3;
  } else if (b >= 0xF0 && b <= 0xF4) {
    need_ = 4;
  } else {
    out.append(kReplacement);  // stray continuation byte, C0/C1, F5..FF
    return;
  }
  if (need_ != 0) {
    buf_[0] = static_cast<char>(b);
    n_ = 1;
  }
}

void Utf8Stream::push(std::string_view bytes, std::string& out) {
  size_t i = 0;
  // Fast path: copy ASCII runs straight through when nothing is held.
  while (i < bytes.size()) {
    if (n_ == 0) {
      size_t j = i;
      while (j < bytes.size() && static_cast<uint8_t>(bytes[j]) < 0x80) ++j;
      if (j > i) {
        out.append(bytes.data() + i, j - i);
        i = j;
        continue;
      }
    }
    push_byte(static_cast<uint8_t>(bytes[i]), out);
    ++i;
  }
}

void Utf8Stream::flush(std::string& out) {
  if (n_ != 0) out.append(kReplacement);
  reset();
}

std::string Utf8Stream::push(std::string_view bytes) {
  std::string r;
  push(bytes, r);
  return r;
}

std::string Utf8Stream::flush() {
  std::string r;
  flush(r);
  return r;
}

}  // namespace v4
