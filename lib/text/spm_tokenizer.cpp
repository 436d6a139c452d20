#include "lib/text/spm_tokenizer.h"

#include <algorithm>
#include <queue>

#include "lib/core/error.h"

namespace v4 {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// "<0xNN>" -> NN, else -1.
int parse_byte_token(std::string_view s) {
  if (s.size() != 6 || s[0] != '<' || s[1] != '0' || s[2] != 'x' || s[5] != '>') return -1;
  const int hi = hex_digit(s[3]);
  const int lo = hex_digit(s[4]);
  if (hi < 0 || lo < 0) return -1;
  return hi * 16 + lo;
}

// Length of the well-formed UTF-8 sequence starting at s[i], or 1 when the byte there does
// not start one (a stray continuation byte, an overlong or surrogate form, a truncated
// sequence): such a byte is a symbol of its own.
size_t utf8_symbol_len(std::string_view s, size_t i) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) return 1;
  size_t len = 0;
  uint8_t lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return 1;
  }
  if (i + len > s.size()) return 1;
  const auto b1 = static_cast<uint8_t>(s[i + 1]);
  if (b1 < lo || b1 > hi) return 1;
  for (size_t k = 2; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if (b < 0x80 || b > 0xBF) return 1;
  }
  return len;
}

// SentencePiece's remove_extra_whitespaces: drop leading and trailing spaces and collapse
// runs of spaces into one.
std::string collapse_spaces(std::string_view text) {
  std::string r;
  r.reserve(text.size());
  bool pending_space = false;
  for (char c : text) {
    if (c == ' ') {
      pending_space = !r.empty();
      continue;
    }
    if (pending_space) r.push_back(' ');
    pending_space = false;
    r.push_back(c);
  }
  return r;
}

struct Symbol {
  uint32_t off;  // into the escaped text
  uint32_t n;    // bytes; 0 once merged into its left neighbour
  int32_t prev;  // -1 at the ends
  int32_t next;
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t size;  // bytes of the merged text when the bigram was queued
};

// Orders the max-heap: highest score on top, and on equal scores the leftmost pair.
struct BigramLess {
  bool operator()(const Bigram& a, const Bigram& b) const {
    return a.score < b.score || (a.score == b.score && a.left > b.left);
  }
};

}  // namespace

SpmTokenizer::SpmTokenizer(const Vocab& v) : Tokenizer(v) {
  const int32_t n = vocab_.n_tokens();
  if (vocab_.scores.size() != vocab_.tokens.size() || vocab_.types.size() != vocab_.tokens.size()) {
    fail(Status::invalid_arg,
         "vocabulary has {} tokens, {} scores and {} types (call Vocab::finalize())",
         vocab_.tokens.size(), vocab_.scores.size(), vocab_.types.size());
  }
  byte_value_.assign(static_cast<size_t>(n), -1);
  for (int32_t id = 0; id < n; ++id) {
    if (vocab_.type(id) == TokenType::byte) {
      const int b = parse_byte_token(vocab_.tokens[static_cast<size_t>(id)]);
      if (b >= 0) byte_value_[static_cast<size_t>(id)] = static_cast<int16_t>(b);
    }
  }
  for (int b = 0; b < 256; ++b) {
    const int32_t id = vocab_.find(fmt::format("<0x{:02X}>", b));
    byte_ids_[static_cast<size_t>(b)] = id;
    if (id >= 0) {
      const TokenType t = vocab_.type(id);
      if (t == TokenType::byte || t == TokenType::normal || t == TokenType::undefined) {
        byte_value_[static_cast<size_t>(id)] = static_cast<int16_t>(b);
      }
    }
  }
}

int32_t SpmTokenizer::mergeable_id(std::string_view text) const {
  const int32_t id = vocab_.find(text);
  if (id < 0) return -1;
  // Like SentencePiece, text never turns into control, unknown, unused or byte tokens.
  const TokenType t = vocab_.type(id);
  if (t == TokenType::normal || t == TokenType::undefined || t == TokenType::user_defined) {
    return id;
  }
  return -1;
}

void SpmTokenizer::emit_bytes(std::string_view bytes, std::vector<int32_t>& out) const {
  for (char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    int32_t id = byte_ids_[b];
    if (id < 0) id = vocab_.unk;
    if (id < 0) {
      fail(Status::invalid_arg,
           "cannot tokenize byte 0x{:02X}: the vocabulary has neither a <0x{:02X}> token nor an "
           "unknown token",
           b, b);
    }
    out.push_back(id);
  }
}

void SpmTokenizer::encode(std::string_view text, bool after_special,
                          std::vector<int32_t>& out) const {
  const bool space_prefix = vocab_.add_space_prefix && after_special;
  std::string collapsed;
  if (vocab_.remove_extra_whitespaces) {
    collapsed = collapse_spaces(text);
    text = collapsed;
  }
  if (text.empty()) return;

  // Escape: ' ' -> U+2581, with the optional leading U+2581.
  std::string s;
  s.reserve(text.size() + kSpaceMark.size() * 4);
  if (space_prefix) s.append(kSpaceMark);
  for (char c : text) {
    if (c == ' ') {
      s.append(kSpaceMark);
    } else {
      s.push_back(c);
    }
  }
  if (s.size() > static_cast<size_t>(INT32_MAX)) {
    fail(Status::invalid_arg, "text of {} bytes is too long to tokenize", s.size());
  }

  // One symbol per UTF-8 character.
  std::vector<Symbol> syms;
  syms.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const size_t len = utf8_symbol_len(s, i);
    const auto idx = static_cast<int32_t>(syms.size());
    syms.push_back(Symbol{static_cast<uint32_t>(i), static_cast<uint32_t>(len), idx - 1, idx + 1});
    i += len;
  }
  syms.back().next = -1;

  std::vector<Bigram> heap_storage;
  heap_storage.reserve(syms.size());
  std::priority_queue<Bigram, std::vector<Bigram>, BigramLess> queue(BigramLess{},
                                                                     std::move(heap_storage));
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const Symbol& l = syms[static_cast<size_t>(left)];
    const Symbol& r = syms[static_cast<size_t>(right)];
    const std::string_view merged(s.data() + l.off, l.n + r.n);
    const int32_t id = mergeable_id(merged);
    if (id < 0) return;
    queue.push(Bigram{vocab_.scores[static_cast<size_t>(id)], left, right,
                      static_cast<uint32_t>(merged.size())});
  };

  for (size_t i = 1; i < syms.size(); ++i) {
    try_add(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));
  }

  while (!queue.empty()) {
    const Bigram bg = queue.top();
    queue.pop();
    Symbol& l = syms[static_cast<size_t>(bg.left)];
    Symbol& r = syms[static_cast<size_t>(bg.right)];
    // Stale entry: one side was merged away or grew since the pair was queued.
    if (l.n == 0 || r.n == 0 || l.next != bg.right || l.n + r.n != bg.size) continue;
    l.n += r.n;
    r.n = 0;
    l.next = r.next;
    if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = bg.left;
    try_add(l.prev, bg.left);
    try_add(bg.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
    const Symbol& sym = syms[static_cast<size_t>(i)];
    const std::string_view piece(s.data() + sym.off, sym.n);
    const int32_t id = mergeable_id(piece);
    if (id >= 0) {
      out.push_back(id);
    } else {
      emit_bytes(piece, out);
    }
  }
}

void SpmTokenizer::check_usable() const {
  if (vocab_.kind == VocabKind::bpe) {
    fail(Status::unsupported,
         "vocabulary '{}' is byte-level BPE; SentencePiece cannot tokenize it (use BpeTokenizer)",
         vocab_.model_name);
  }
  if (vocab_.kind == VocabKind::none || vocab_.tokens.empty()) {
    fail(Status::invalid_arg, "the model has no tokenizer vocabulary");
  }
}

void SpmTokenizer::append_piece(int32_t id, std::string& out, bool render_special) const {
  if (append_special_piece(id, out, render_special)) return;
  const std::string& text = vocab_.tokens[static_cast<size_t>(id)];
  const int16_t b = byte_value_[static_cast<size_t>(id)];
  if (b >= 0) {
    out.push_back(static_cast<char>(static_cast<uint8_t>(b)));
    return;
  }
  // Unescape U+2581 -> ' '.
  size_t i = 0;
  while (i < text.size()) {
    const size_t hit = text.find(kSpaceMark, i);
    if (hit == std::string::npos) {
      out.append(text, i, std::string::npos);
      break;
    }
    out.append(text, i, hit - i);
    out.push_back(' ');
    i = hit + kSpaceMark.size();
  }
}

}  // namespace v4
