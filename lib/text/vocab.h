// The tokenizer vocabulary of a model: token strings, scores, types and special ids,
// read from GGUF `tokenizer.ggml.*` metadata (llama.cpp's keys and conventions).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace v4 {

namespace gguf {
class File;
}

// GGUF tokenizer.ggml.token_type values.
enum class TokenType : int32_t {
  undefined = 0,
  normal = 1,
  unknown = 2,
  control = 3,
  user_defined = 4,
  unused = 5,
  byte = 6,
};

// tokenizer.ggml.model: "llama" -> spm, "gpt2" -> bpe, "no_vocab"/"none"/absent -> none.
enum class VocabKind { none, spm, bpe };

const char* vocab_kind_name(VocabKind k);

// Hash usable for heterogeneous lookup (find by std::string_view without a copy).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

struct Vocab {
  VocabKind kind = VocabKind::none;
  std::string model_name;  // the tokenizer.ggml.model string as read ("" when absent)

  std::vector<std::string> tokens;
  std::vector<float> scores;     // same size as tokens (0 when the file has no scores)
  std::vector<TokenType> types;  // same size as tokens (normal when the file has no types)

  int32_t bos = -1, eos = -1, eot = -1, eom = -1, unk = -1, pad = -1, sep = -1;  // -1 = absent
  bool add_bos = false;
  bool add_eos = false;
  bool add_space_prefix = false;
  bool remove_extra_whitespaces = false;

  // Byte-level BPE only: tokenizer.ggml.pre ("default" when the file has none) and the
  // merges in rank order, each "left right" as stored in tokenizer.ggml.merges.
  std::string pre;
  std::vector<std::string> merges;

  // Whitespace a special token swallows when it is split out of a text (llama.cpp's LSTRIP /
  // RSTRIP token attributes). GGUF has no key for them; from_gguf sets them by model name
  // (Phi-3). Per token, a mask of kStripLeft / kStripRight; empty when no token strips.
  static constexpr uint8_t kStripLeft = 1;
  static constexpr uint8_t kStripRight = 2;
  std::vector<uint8_t> strip;
  uint8_t strip_of(int32_t id) const {
    return valid_id(id) && static_cast<size_t>(id) < strip.size() ? strip[static_cast<size_t>(id)]
                                                                  : 0;
  }

  // Token text -> id. When a text appears twice the later id wins (as in llama.cpp).
  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> token_to_id;

  int32_t n_tokens() const { return static_cast<int32_t>(tokens.size()); }
  bool valid_id(int32_t id) const { return id >= 0 && id < n_tokens(); }
  // The id of a token text, or -1.
  int32_t find(std::string_view text) const;
  TokenType type(int32_t id) const;  // undefined for out-of-range ids
  bool is_eog(int32_t id) const;     // eos, eot or eom
  bool is_control(int32_t id) const;

  // Rebuilds token_to_id from tokens and fills missing scores/types (for vocabs built in
  // code). Throws bad_format if scores/types are non-empty and differ in size from tokens.
  void finalize();

  // Reads tokenizer.ggml.* keys. Out-of-range special ids are reported through `warn`
  // (naming the key and value) and treated as absent. Count mismatches and wrongly typed
  // keys throw Status::bad_format naming the key; an unknown tokenizer model throws
  // Status::unsupported. Without an eot_token_id key, EOT is found by text as llama.cpp
  // does ("<|eot_id|>", "<|im_end|>", "<|end|>", ...). add_bos_token defaults to true for
  // SentencePiece and for the BPE families that want it (llama-bpe), false otherwise.
  static Vocab from_gguf(const gguf::File& f, const std::function<void(const std::string&)>& warn);
};

}  // namespace v4
