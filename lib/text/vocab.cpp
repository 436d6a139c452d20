#include "lib/text/vocab.h"

#include <algorithm>
#include <cctype>

#include "lib/core/error.h"
#include "lib/model/gguf.h"
#include "lib/text/pretokenizer.h"

namespace v4 {

namespace {

constexpr const char* kKeyModel = "tokenizer.ggml.model";
constexpr const char* kKeyTokens = "tokenizer.ggml.tokens";
constexpr const char* kKeyScores = "tokenizer.ggml.scores";
constexpr const char* kKeyTypes = "tokenizer.ggml.token_type";
constexpr const char* kKeyPre = "tokenizer.ggml.pre";
constexpr const char* kKeyMerges = "tokenizer.ggml.merges";

// Texts that mark the end of a turn, in the order they are tried when the file names no EOT
// (from llama.cpp's llama-vocab.cpp).
constexpr const char* kEotTexts[] = {
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "<\xEF\xBD\x9C\x65nd\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>",  // <｜end▁of▁sentence｜>
    "<end_of_utterance>"};

// Phi-3's special tokens swallow the whitespace that follows them (llama.cpp sets RSTRIP by
// model name: every control / user-defined / unknown token and "</s>", except "<unk>",
// "<s>" and "<|endoftext|>").
void set_phi3_strip(Vocab& v) {
  v.strip.assign(v.tokens.size(), 0);
  for (int32_t id = 0; id < v.n_tokens(); ++id) {
    const TokenType t = v.type(id);
    if (t == TokenType::control || t == TokenType::user_defined || t == TokenType::unknown) {
      v.strip[static_cast<size_t>(id)] = Vocab::kStripRight;
    }
  }
  for (const char* s : {"</s>"}) {
    if (const int32_t id = v.find(s); id >= 0)
      v.strip[static_cast<size_t>(id)] = Vocab::kStripRight;
  }
  for (const char* s : {"<unk>", "<s>", "<|endoftext|>"}) {
    if (const int32_t id = v.find(s); id >= 0) v.strip[static_cast<size_t>(id)] = 0;
  }
}

bool is_unsigned_int(gguf::ValueType t) {
  using VT = gguf::ValueType;
  return t == VT::u8 || t == VT::u16 || t == VT::u32 || t == VT::u64;
}

bool is_signed_int(gguf::ValueType t) {
  using VT = gguf::ValueType;
  return t == VT::i8 || t == VT::i16 || t == VT::i32 || t == VT::i64;
}

// Reads an optional special-token id. Absent -> -1. Out of range -> -1 plus a warning.
int32_t read_special_id(const gguf::File& f, const char* key, int32_t n_tokens,
                        const std::function<void(const std::string&)>& warn) {
  const gguf::KeyValue* kv = f.find(key);
  if (kv == nullptr) return -1;
  bool in_range = false;
  int64_t id = -1;
  std::string shown;
  if (is_unsigned_int(kv->type)) {
    shown = std::to_string(kv->u);
    in_range = kv->u < static_cast<uint64_t>(n_tokens);
    id = in_range ? static_cast<int64_t>(kv->u) : -1;
  } else if (is_signed_int(kv->type)) {
    shown = std::to_string(kv->i);
    in_range = kv->i >= 0 && kv->i < n_tokens;
    id = in_range ? kv->i : -1;
  } else {
    fail(Status::bad_format, "{}: key {} has type {}, expected an integer token id", f.path(), key,
         gguf::value_type_name(kv->type));
  }
  if (!in_range) {
    if (warn) {
      warn(fmt::format("{}: {} = {} is not a token id (vocabulary has {} tokens); ignored",
                       f.path(), key, shown, n_tokens));
    }
    return -1;
  }
  return static_cast<int32_t>(id);
}

bool read_bool(const gguf::File& f, const char* key, bool def) {
  std::optional<bool> v = f.get_bool(key);
  return v ? *v : def;
}

}  // namespace

const char* vocab_kind_name(VocabKind k) {
  switch (k) {
    case VocabKind::none:
      return "none";
    case VocabKind::spm:
      return "spm";
    case VocabKind::bpe:
      return "bpe";
  }
  return "?";
}

int32_t Vocab::find(std::string_view text) const {
  auto it = token_to_id.find(text);
  return it == token_to_id.end() ? -1 : it->second;
}

TokenType Vocab::type(int32_t id) const {
  if (!valid_id(id) || static_cast<size_t>(id) >= types.size()) return TokenType::undefined;
  return types[static_cast<size_t>(id)];
}

bool Vocab::is_eog(int32_t id) const { return id >= 0 && (id == eos || id == eot || id == eom); }

bool Vocab::is_control(int32_t id) const { return type(id) == TokenType::control; }

void Vocab::finalize() {
  const size_t n = tokens.size();
  if (n > static_cast<size_t>(INT32_MAX)) {
    fail(Status::bad_format, "vocabulary has {} tokens, more than an int32 id can address", n);
  }
  if (scores.empty()) scores.assign(n, 0.0f);
  if (types.empty()) types.assign(n, TokenType::normal);
  if (scores.size() != n) {
    fail(Status::bad_format, "vocabulary has {} tokens but {} scores", n, scores.size());
  }
  if (types.size() != n) {
    fail(Status::bad_format, "vocabulary has {} tokens but {} token types", n, types.size());
  }
  token_to_id.clear();
  token_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) token_to_id[tokens[i]] = static_cast<int32_t>(i);
}

Vocab Vocab::from_gguf(const gguf::File& f, const std::function<void(const std::string&)>& warn) {
  Vocab v;
  std::optional<std::string_view> model = f.get_string(kKeyModel);
  v.model_name = model ? std::string(*model) : std::string();
  if (!model || *model == "no_vocab" || *model == "none") {
    v.kind = VocabKind::none;
    return v;
  }
  if (*model == "llama") {
    v.kind = VocabKind::spm;
  } else if (*model == "gpt2") {
    v.kind = VocabKind::bpe;
  } else {
    fail(Status::unsupported, "{}: {} = '{}' is not a supported tokenizer (llama, gpt2)", f.path(),
         kKeyModel, *model);
  }

  const gguf::KeyValue* toks = f.get_array(kKeyTokens, gguf::ValueType::string);
  if (toks == nullptr) {
    fail(Status::bad_format, "{}: {} is missing (required for tokenizer model '{}')", f.path(),
         kKeyTokens, v.model_name);
  }
  const uint64_t n = toks->strings.size();
  if (n > static_cast<uint64_t>(INT32_MAX)) {
    fail(Status::bad_format, "{}: {} has {} entries, too many", f.path(), kKeyTokens, n);
  }
  v.tokens.reserve(n);
  for (std::string_view s : toks->strings) v.tokens.emplace_back(s);

  if (const gguf::KeyValue* sc = f.get_array(kKeyScores, gguf::ValueType::f32)) {
    if (sc->count != n) {
      fail(Status::bad_format, "{}: {} has {} entries but {} has {}", f.path(), kKeyScores,
           sc->count, kKeyTokens, n);
    }
    v.scores.resize(n);
    for (uint64_t i = 0; i < n; ++i) v.scores[i] = gguf::File::array_f32(*sc, i);
  }

  if (const gguf::KeyValue* ty = f.get_array(kKeyTypes, gguf::ValueType::i32)) {
    if (ty->count != n) {
      fail(Status::bad_format, "{}: {} has {} entries but {} has {}", f.path(), kKeyTypes,
           ty->count, kKeyTokens, n);
    }
    v.types.resize(n);
    uint64_t n_bad = 0;
    for (uint64_t i = 0; i < n; ++i) {
      const int64_t t = gguf::File::array_int(*ty, i);
      if (t < 0 || t > static_cast<int64_t>(TokenType::byte)) {
        ++n_bad;
        v.types[i] = TokenType::undefined;
      } else {
        v.types[i] = static_cast<TokenType>(t);
      }
    }
    if (n_bad != 0 && warn) {
      warn(fmt::format("{}: {} has {} values outside 0..6; treated as undefined", f.path(),
                       kKeyTypes, n_bad));
    }
  }

  v.finalize();

  const int32_t nt = v.n_tokens();
  v.bos = read_special_id(f, "tokenizer.ggml.bos_token_id", nt, warn);
  v.eos = read_special_id(f, "tokenizer.ggml.eos_token_id", nt, warn);
  v.eot = read_special_id(f, "tokenizer.ggml.eot_token_id", nt, warn);
  v.eom = read_special_id(f, "tokenizer.ggml.eom_token_id", nt, warn);
  v.unk = read_special_id(f, "tokenizer.ggml.unknown_token_id", nt, warn);
  v.pad = read_special_id(f, "tokenizer.ggml.padding_token_id", nt, warn);
  v.sep = read_special_id(f, "tokenizer.ggml.seperator_token_id", nt, warn);

  if (v.eot < 0 && !f.find("tokenizer.ggml.eot_token_id")) {
    for (const char* text : kEotTexts) {
      if (const int32_t id = v.find(text); id >= 0) {
        v.eot = id;
        break;
      }
    }
  }

  bool add_bos_default = v.kind == VocabKind::spm;
  if (v.kind == VocabKind::bpe) {
    std::optional<std::string_view> pre = f.get_string(kKeyPre);
    v.pre = pre && !pre->empty() ? std::string(*pre) : std::string("default");
    if (!pre && warn) {
      warn(
          fmt::format("{}: {} is missing; using the 'default' pre-tokenizer (tokenization may "
                      "differ from the model's own)",
                      f.path(), kKeyPre));
    }
    if (const PreTokenizerFamily* fam = find_pretokenizer_family(v.pre)) {
      add_bos_default = fam->add_bos;
    }
    if (const gguf::KeyValue* m = f.get_array(kKeyMerges, gguf::ValueType::string)) {
      v.merges.reserve(m->strings.size());
      for (std::string_view s : m->strings) v.merges.emplace_back(s);
    }
  }

  std::string name(f.get_string("general.name").value_or(""));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (name.find("phi-3") != std::string::npos || name.find("phi3") != std::string::npos) {
    set_phi3_strip(v);
  }

  const bool spm = v.kind == VocabKind::spm;
  v.add_bos = read_bool(f, "tokenizer.ggml.add_bos_token", add_bos_default);
  v.add_eos = read_bool(f, "tokenizer.ggml.add_eos_token", false);
  v.add_space_prefix = read_bool(f, "tokenizer.ggml.add_space_prefix", spm);
  v.remove_extra_whitespaces = read_bool(f, "tokenizer.ggml.remove_extra_whitespaces", false);
  return v;
}

}  // namespace v4
