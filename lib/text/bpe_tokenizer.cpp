#include "lib/text/bpe_tokenizer.h"
#include "lib/text/utf8.h"

#include <algorithm>

#include "lib/core/error.h"

namespace v4 {

namespace {

bool is_printable_byte(uint32_t b) {
  return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct ByteMap {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 68> from_extra{};  // code point 256 + i -> byte
  ByteMap() {
    uint32_t n = 0;
    for (uint32_t b = 0; b < 256; ++b) {
      if (is_printable_byte(b)) {
        to_cp[b] = b;
      } else {
        to_cp[b] = 256 + n;
        from_extra[n] = static_cast<int16_t>(b);
        ++n;
      }
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}


// Decodes one well-formed UTF-8 sequence at s[i]; returns its length, or 0 when ill-formed.
size_t decode_utf8(std::string_view s, size_t i, uint32_t& cp) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  size_t len = 0;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  return len;
}

int parse_byte_token(std::string_view s) {
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  if (s.size() != 6 || s.substr(0, 3) != "<0x" || s[5] != '>') return -1;
  const int hi = hex(s[3]), lo = hex(s[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

}  // namespace

uint32_t bpe_byte_to_codepoint(uint8_t b) { return byte_map().to_cp[b]; }

int bpe_codepoint_to_byte(uint32_t cp) {
  if (cp < 256) return is_printable_byte(cp) ? static_cast<int>(cp) : -1;
  if (cp < 256 + 68) return byte_map().from_extra[cp - 256];
  return -1;
}

// Per-call scratch space, reused across the words of one text.
struct BpeTokenizer::Work {
  struct Sym {
    int32_t id;
    uint32_t start;  // byte offset in the word
    uint32_t len;    // 0 once merged into its left neighbour
    int32_t prev;
    int32_t next;
  };
  struct Cand {
    int32_t rank;
    int32_t left;
    int32_t right;
    int32_t left_id;
    int32_t right_id;
    int32_t result;
  };
  // Max-heap order for std::push_heap: the top is the lowest rank, then the leftmost pair.
  static bool later(const Cand& a, const Cand& b) {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
  std::vector<std::string_view> pieces;
  std::vector<Sym> syms;
  std::vector<Cand> heap;
  std::string encoded;
};

BpeTokenizer::BpeTokenizer(const Vocab& v) : Tokenizer(v) {
  pre_ = std::make_unique<PreTokenizer>(vocab_.pre.empty() ? std::string_view("default")
                                                           : std::string_view(vocab_.pre));
  if (vocab_.merges.empty()) {
    fail(Status::bad_format,
         "tokenizer.ggml.merges is missing or empty: a byte-level BPE vocabulary needs its merges");
  }
  const int32_t n = vocab_.n_tokens();
  byte_value_.assign(static_cast<size_t>(n), -1);
  for (int32_t id = 0; id < n; ++id) {
    if (vocab_.type(id) == TokenType::byte) {
      const int b = parse_byte_token(vocab_.tokens[static_cast<size_t>(id)]);
      if (b >= 0) byte_value_[static_cast<size_t>(id)] = static_cast<int16_t>(b);
    }
  }
  for (int b = 0; b < 256; ++b) {
    std::string& t = byte_text_[static_cast<size_t>(b)];
    append_utf8(t, bpe_byte_to_codepoint(static_cast<uint8_t>(b)));
    byte_token_[static_cast<size_t>(b)] = vocab_.find(t);
  }

  merges_.reserve(vocab_.merges.size());
  for (size_t i = 0; i < vocab_.merges.size(); ++i) {
    const std::string& m = vocab_.merges[i];
    // As llama.cpp: the separator is the first space after the first byte.
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos) continue;
    const std::string left = m.substr(0, sp);
    const std::string right = m.substr(sp + 1);
    const int32_t l = symbol_id(left);
    const int32_t r = symbol_id(right);
    const int32_t res = symbol_id(left + right);
    merges_.emplace(pair_key(l, r), Merge{static_cast<int32_t>(i), res});  // first rank wins
  }
  for (int b = 0; b < 256; ++b) {
    int32_t s = byte_token_[static_cast<size_t>(b)];
    if (s < 0) {
      auto it = extra_symbols_.find(byte_text_[static_cast<size_t>(b)]);
      if (it != extra_symbols_.end()) s = it->second;
    }
    byte_symbol_[static_cast<size_t>(b)] = s;
  }
}

BpeTokenizer::~BpeTokenizer() = default;

int32_t BpeTokenizer::symbol_id(const std::string& text) {
  const int32_t id = vocab_.find(text);
  if (id >= 0) return id;
  auto [it, inserted] = extra_symbols_.try_emplace(
      text, vocab_.n_tokens() + static_cast<int32_t>(extra_symbols_.size()));
  return it->second;
}

void BpeTokenizer::check_usable() const {
  if (vocab_.tokens.empty()) fail(Status::invalid_arg, "the model has no tokenizer vocabulary");
}

void BpeTokenizer::emit_symbol(int32_t sym, std::string_view bytes,
                               std::vector<int32_t>& out) const {
  if (sym >= 0 && sym < vocab_.n_tokens()) {
    out.push_back(sym);
    return;
  }
  // Not a token: one token per byte (the stand-in character's token), else unk. A byte
  // with neither is dropped, as llama.cpp and HF tokenizers do (Falcon's vocabulary has no
  // token for some control bytes and for 0xF2, for instance).
  for (char c : bytes) {
    const auto b = static_cast<uint8_t>(c);
    const int32_t id = byte_token_[b] >= 0 ? byte_token_[b] : vocab_.unk;
    if (id >= 0) out.push_back(id);
  }
}

void BpeTokenizer::encode_word(std::string_view word, Work& w, std::vector<int32_t>& out) const {
  if (pre_->ignore_merges()) {
    w.encoded.clear();
    for (char c : word) w.encoded += byte_text_[static_cast<uint8_t>(c)];
    const int32_t id = vocab_.find(w.encoded);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const size_t n = word.size();
  if (n == 1) {
    emit_symbol(byte_symbol_[static_cast<uint8_t>(word[0])], word, out);
    return;
  }
  if (n > static_cast<size_t>(INT32_MAX)) {
    fail(Status::invalid_arg, "a pre-token of {} bytes is too long to tokenize", n);
  }

  auto& syms = w.syms;
  syms.resize(n);
  for (size_t i = 0; i < n; ++i) {
    syms[i] = Work::Sym{byte_symbol_[static_cast<uint8_t>(word[i])], static_cast<uint32_t>(i), 1,
                        static_cast<int32_t>(i) - 1, static_cast<int32_t>(i) + 1};
  }
  syms[n - 1].next = -1;

  auto& heap = w.heap;
  heap.clear();
  auto try_add = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const int32_t a = syms[static_cast<size_t>(left)].id;
    const int32_t b = syms[static_cast<size_t>(right)].id;
    if (a < 0 || b < 0) return;
    auto it = merges_.find(pair_key(a, b));
    if (it == merges_.end()) return;
    heap.push_back(Work::Cand{it->second.rank, left, right, a, b, it->second.result});
    std::push_heap(heap.begin(), heap.end(), Work::later);
  };
  for (size_t i = 1; i < n; ++i) try_add(static_cast<int32_t>(i - 1), static_cast<int32_t>(i));

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), Work::later);
    const Work::Cand c = heap.back();
    heap.pop_back();
    Work::Sym& l = syms[static_cast<size_t>(c.left)];
    Work::Sym& r = syms[static_cast<size_t>(c.right)];
    // Stale: one side was merged away or changed since the pair was queued.
    if (l.len == 0 || r.len == 0 || l.next != c.right || l.id != c.left_id || r.id != c.right_id) {
      continue;
    }
    l.id = c.result;
    l.len += r.len;
    r.len = 0;
    l.next = r.next;
    if (r.next >= 0) syms[static_cast<size_t>(r.next)].prev = c.left;
    try_add(l.prev, c.left);
    try_add(c.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = syms[static_cast<size_t>(i)].next) {
    const Work::Sym& s = syms[static_cast<size_t>(i)];
    emit_symbol(s.id, word.substr(s.start, s.len), out);
  }
}

void BpeTokenizer::encode(std::string_view text, bool /*after_special*/,
                          std::vector<int32_t>& out) const {
  Work w;
  pre_->split(text, w.pieces);
  for (std::string_view word : w.pieces) encode_word(word, w, out);
}

void BpeTokenizer::append_piece(int32_t id, std::string& out, bool render_special) const {
  if (append_special_piece(id, out, render_special)) return;
  const std::string& text = vocab_.tokens[static_cast<size_t>(id)];
  if (vocab_.type(id) == TokenType::byte) {
    if (const int16_t b = byte_value_[static_cast<size_t>(id)]; b >= 0) {
      out.push_back(static_cast<char>(static_cast<uint8_t>(b)));
      return;
    }
  }
  // Stand-in characters back to bytes; anything else is copied as it is.
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const size_t len = decode_utf8(text, i, cp);
    if (len == 0) {
      out.push_back(text[i]);
      ++i;
      continue;
    }
    const int b = bpe_codepoint_to_byte(cp);
    if (b >= 0) {
      out.push_back(static_cast<char>(static_cast<uint8_t>(b)));
    } else {
      out.append(text, i, len);
    }
    i += len;
  }
}

}  // namespace v4
