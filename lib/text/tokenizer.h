// The tokenizer interface shared by SentencePiece (SpmTokenizer) and byte-level BPE
// (BpeTokenizer). The base class does what both do the same way, as llama.cpp does it:
// BOS/EOS from the vocabulary's rules, and splitting special-token text out of the input
// before the model-specific encoding of the text between.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lib/text/vocab.h"

namespace v4 {

class Tokenizer {
 public:
  // Keeps a reference to `v`, which must outlive the tokenizer.
  explicit Tokenizer(const Vocab& v);
  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // The tokenizer for the vocabulary's kind: SpmTokenizer for "llama", BpeTokenizer for
  // "gpt2"; nullptr for a vocabulary without tokens. Throws what the constructors throw
  // (an unknown pre-tokenizer name is Status::unsupported).
  static std::unique_ptr<Tokenizer> create(const Vocab& v);

  // Appends token ids to `out`. add_bos is "add the special tokens the vocabulary asks for":
  // BOS first when vocab.add_bos (and there is a BOS id), EOS last when vocab.add_eos.
  // User-defined tokens are always split out of the text; with parse_special control and
  // unknown tokens are too (each occurrence, longest token first, as llama.cpp). Text
  // between special tokens is encoded by the subclass. Thread-safe.
  void tokenize(std::string_view text, bool add_bos, bool parse_special,
                std::vector<int32_t>& out) const;

  // Bytes of one token, appended to `out` (no allocation when `out` has capacity). Control,
  // unknown and unused tokens give "" unless render_special; user-defined tokens give their
  // text. Out-of-range ids throw Status::invalid_arg.
  virtual void append_piece(int32_t id, std::string& out, bool render_special = false) const = 0;
  std::string piece(int32_t id, bool render_special = false) const;

  const Vocab& vocab() const { return vocab_; }

  // One span of the input after special tokens were split out: a token id, or text.
  struct Fragment {
    int32_t token;  // -1 for text
    size_t begin;   // text bytes [begin, end) when token < 0
    size_t end;
  };
  // The split itself (exposed for tests): fragments in order, text fragments non-empty.
  void split_special(std::string_view text, bool parse_special, std::vector<Fragment>& out) const;

 protected:
  // Checks the id (invalid_arg when out of range) and appends the text of a special token:
  // control, unknown and unused tokens only when render_special, user-defined ones always.
  // Returns false for ordinary (normal, byte) tokens, which the tokenizer decodes itself.
  bool append_special_piece(int32_t id, std::string& out, bool render_special) const;
  // Throws when the tokenizer cannot encode with this vocabulary.
  virtual void check_usable() const = 0;
  // Encodes one text fragment. `after_special`: the fragment starts the input or follows a
  // special token (SentencePiece adds its space prefix there).
  virtual void encode(std::string_view text, bool after_special,
                      std::vector<int32_t>& out) const = 0;

  const Vocab& vocab_;

 private:
  // Control / user-defined / unknown tokens with non-empty text, by first byte.
  std::array<std::vector<int32_t>, 256> special_by_first_;
  // The same tokens in the order they are split out: longest text first, then lowest id.
  std::vector<int32_t> special_order_;
};

}  // namespace v4
