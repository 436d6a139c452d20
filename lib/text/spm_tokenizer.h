// SentencePiece-style ("llama") tokenizer over a Vocab, as llama.cpp implements it:
// characters are merged pairwise, best-scoring pair first, and characters that never
// become a vocabulary token fall back to <0xNN> byte tokens.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/text/tokenizer.h"
#include "lib/text/vocab.h"

namespace v4 {

class SpmTokenizer final : public Tokenizer {
 public:
  // Keeps a reference to `v`, which must outlive the tokenizer.
  explicit SpmTokenizer(const Vocab& v);

  // Tokenizer::tokenize, plus: text after a special token (or at the start) gets the space
  // prefix when vocab.add_space_prefix; vocab.remove_extra_whitespaces collapses runs of
  // spaces first. Throws Status::unsupported for a BPE vocab, Status::invalid_arg for a
  // vocab without tokens or when a byte cannot be represented (no byte tokens and no unk).
  using Tokenizer::tokenize;

  // Bytes of one token as text: U+2581 becomes ' ', <0xNN> byte tokens become that raw
  // byte, control/unknown/unused tokens give "" unless render_special, user-defined
  // tokens give their text verbatim. Out-of-range ids throw Status::invalid_arg.
  void append_piece(int32_t id, std::string& out, bool render_special = false) const override;

  // The <0xNN> token for a byte, or -1 when the vocab has none.
  int32_t byte_token(uint8_t b) const { return byte_ids_[b]; }

 protected:
  void check_usable() const override;
  void encode(std::string_view text, bool after_special, std::vector<int32_t>& out) const override;

 private:
  void emit_bytes(std::string_view bytes, std::vector<int32_t>& out) const;
  int32_t mergeable_id(std::string_view text) const;  // -1 unless a normal-ish token

  std::array<int32_t, 256> byte_ids_{};  // <0xNN> token per byte, or -1
  std::vector<int16_t> byte_value_;      // per token: the byte a byte token stands for, or -1
};

}  // namespace v4
