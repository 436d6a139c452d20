// SentencePiece-style ("llama") tokenizer over a Vocab, as llama.cpp implements it:
// characters are merged pairwise, best-scoring pair first, and characters that never
// become a vocabulary token fall back to <0xNN> byte tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/text/vocab.h"

namespace v4 {

class SpmTokenizer {
 public:
  // Keeps a reference to `v`, which must outlive the tokenizer.
  explicit SpmTokenizer(const Vocab& v);

  // Appends token ids to `out`. add_bos adds vocab.bos first when the vocab has one.
  // parse_special: text matching a control, user-defined or unknown token's string is
  // emitted as that token (longest match at each position); the text between is tokenized
  // normally, each run after a special token with its own space prefix (as llama.cpp).
  // Throws Status::unsupported for a BPE vocab, Status::invalid_arg for a vocab without
  // tokens or when a byte cannot be represented (no byte tokens and no unk).
  void tokenize(std::string_view text, bool add_bos, bool parse_special,
                std::vector<int32_t>& out) const;

  // Bytes of one token as text: U+2581 becomes ' ', <0xNN> byte tokens become that raw
  // byte, control/unknown/unused tokens give "" unless render_special, user-defined
  // tokens give their text verbatim. Out-of-range ids throw Status::invalid_arg.
  std::string piece(int32_t id, bool render_special = false) const;
  // Same, appended to `out` (no allocation when `out` has capacity).
  void append_piece(int32_t id, std::string& out, bool render_special = false) const;

  // The <0xNN> token for a byte, or -1 when the vocab has none.
  int32_t byte_token(uint8_t b) const { return byte_ids_[b]; }

  const Vocab& vocab() const { return vocab_; }

 private:
  void tokenize_fragment(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const;
  void emit_bytes(std::string_view bytes, std::vector<int32_t>& out) const;
  int32_t mergeable_id(std::string_view text) const;  // -1 unless a normal-ish token

  const Vocab& vocab_;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> token per byte, or -1
  std::vector<int16_t> byte_value_;      // per token: the byte a byte token stands for, or -1
  // Special tokens (control/user-defined/unknown) by first byte, longest first.
  std::array<std::vector<int32_t>, 256> special_by_first_;
};

}  // namespace v4
