// Byte-level BPE ("gpt2" vocab): GPT-2's tokenizer and its descendants (Llama 3, Qwen2,
// DeepSeek, Falcon, StarCoder, GPT-4o, ...). Text is split by the family's pre-tokenizer
// (tokenizer.ggml.pre, see pretokenizer.h); each piece's bytes become GPT-2's printable
// stand-in characters ("Ġ" for a space); then the merges in tokenizer.ggml.merges are applied
// lowest rank first (leftmost first on ties) until none applies, as llama.cpp and HF do.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/text/pretokenizer.h"
#include "lib/text/tokenizer.h"
#include "lib/text/vocab.h"

namespace v4 {

// GPT-2's byte <-> unicode mapping: printable Latin-1 bytes stand for themselves, the others
// (controls, space, 0x7F-0xA0, 0xAD) map to U+0100.. in byte order.
uint32_t bpe_byte_to_codepoint(uint8_t b);
// The byte a stand-in code point encodes, or -1.
int bpe_codepoint_to_byte(uint32_t cp);

class BpeTokenizer final : public Tokenizer {
 public:
  // Keeps a reference to `v`, which must outlive the tokenizer. A byte the vocabulary cannot
  // represent (no token for its stand-in character) becomes vocab.unk, or is dropped when
  // there is none. Throws Status::unsupported
  // for an unknown tokenizer.ggml.pre (naming the supported ones) and Status::bad_format when
  // the vocabulary has no merges.
  explicit BpeTokenizer(const Vocab& v);
  ~BpeTokenizer() override;

  using Tokenizer::tokenize;

  // Normal tokens decode their stand-in characters back to bytes (a character outside the
  // mapping is copied as UTF-8); user-defined tokens give their text; control, unknown and
  // unused tokens give "" unless render_special; <0xNN> byte tokens give the byte.
  void append_piece(int32_t id, std::string& out, bool render_special = false) const override;

  const PreTokenizer& pretokenizer() const { return *pre_; }

 protected:
  void check_usable() const override;
  void encode(std::string_view text, bool after_special, std::vector<int32_t>& out) const override;

 private:
  struct Work;
  struct Merge {
    int32_t rank;
    int32_t result;  // symbol id of the merged text
  };
  static uint64_t pair_key(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  int32_t symbol_id(const std::string& text);  // construction only
  void encode_word(std::string_view word, Work& w, std::vector<int32_t>& out) const;
  void emit_symbol(int32_t sym, std::string_view bytes, std::vector<int32_t>& out) const;

  std::unique_ptr<PreTokenizer> pre_;
  // Symbols are vocabulary ids, or ids >= n_tokens for texts that merges produce or consume
  // but that are not tokens themselves.
  std::unordered_map<std::string, int32_t> extra_symbols_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::array<int32_t, 256> byte_symbol_{};  // symbol of each byte's stand-in char, or -1
  std::array<int32_t, 256> byte_token_{};   // token of each byte's stand-in char, or -1
  std::array<std::string, 256> byte_text_;  // the stand-in char of each byte, UTF-8
  std::vector<int16_t> byte_value_;         // per token: the byte of a <0xNN> byte token, or -1
};

}  // namespace v4
