// Pre-tokenizers of the byte-level BPE families: the regex splits a text goes through before
// BPE merges, chosen by the GGUF key tokenizer.ggml.pre. Each family is a list of PCRE2
// patterns (UTF-8, Unicode properties, JIT) applied in sequence: every pattern splits each
// piece the previous one produced into its matches and the text between them (HF tokenizers'
// Split(behavior = Isolated), llama.cpp's unicode_regex_split). docs/TOKENIZERS.md lists the
// patterns and their sources.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace v4 {

// One family as the tables know it.
struct PreTokenizerFamily {
  const char* name;                   // canonical tokenizer.ggml.pre value
  std::vector<const char*> aliases;   // other names GGUF files carry for the same rules
  std::vector<const char*> patterns;  // applied in order
  bool ignore_merges = false;         // a pre-token that is a vocabulary token is taken whole
  bool add_bos = false;               // default of tokenizer.ggml.add_bos_token for this family
};

// The family for a tokenizer.ggml.pre name (canonical or alias), or nullptr.
const PreTokenizerFamily* find_pretokenizer_family(std::string_view name);
// All families, in the order docs/TOKENIZERS.md lists them.
const std::vector<PreTokenizerFamily>& pretokenizer_families();
// "default, gpt-2, llama-bpe, ..." (canonical names and aliases), for error messages.
std::string supported_pretokenizer_names();

class PreTokenizer {
 public:
  // Compiles the family's patterns. An unknown name throws Status::unsupported listing the
  // supported names.
  explicit PreTokenizer(std::string_view name);
  // Custom pattern list (tests). A pattern that does not compile throws Status::invalid_arg.
  PreTokenizer(std::string name, const std::vector<std::string>& patterns);
  ~PreTokenizer();
  PreTokenizer(const PreTokenizer&) = delete;
  PreTokenizer& operator=(const PreTokenizer&) = delete;

  const std::string& name() const { return name_; }
  bool ignore_merges() const { return ignore_merges_; }

  // Appends the pieces of `text` to `out`: views into `text`, in order, non-empty, and
  // together exactly `text`. Invalid UTF-8 is allowed: ill-formed bytes never match a
  // pattern, so they end up in the pieces between matches. Thread-safe.
  void split(std::string_view text, std::vector<std::string_view>& out) const;
  // Convenience form returning copies.
  std::vector<std::string> split(std::string_view text) const;

 private:
  struct Compiled;
  void compile(const std::vector<std::string>& patterns);

  std::string name_;
  bool ignore_merges_ = false;
  std::vector<std::unique_ptr<Compiled>> regexes_;
};

// Splits `text` with the named family's patterns (compiles them on every call; for tests and
// tools, not hot paths).
std::vector<std::string> pretokenize(std::string_view family, std::string_view text);

}  // namespace v4
