#include "lib/text/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "lib/core/error.h"

namespace v4 {

namespace {

// The patterns. Where a family's tokenizer.json has one regex we use it verbatim (PCRE2
// understands (?i:...) and \p{Lu} classes, which llama.cpp rewrites for std::regex).

// GPT-2 (openai/gpt-2 encoder.py), also MPT, Phi-2, and the second stage of several others.
constexpr const char* kGpt2 =
    R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";

// Llama 3 (meta-llama/Meta-Llama-3-8B tokenizer.json): digits in groups of up to three.
constexpr const char* kLlama3 =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// Qwen2 (Qwen/Qwen2-7B tokenizer.json): as Llama 3 but one digit per piece.
constexpr const char* kQwen2 =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// GPT-4o (tiktoken o200k_base): case-aware words with an optional contraction suffix.
constexpr const char* kGpt4o =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

// DeepSeek LLM (deepseek-ai/deepseek-llm-7b-base tokenizer.json, a Sequence of Splits).
// The letter class is the file's literal list of cased-letter ranges, written as code points.
constexpr const char* kDeepseekLlmLetters =
    R"re(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})re"
    R"re(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A})re"
    R"re(\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})re"
    R"re(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})re"
    R"re(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})re"
    R"re(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D})re"
    R"re(\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4})re"
    R"re(\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4})re"
    R"re(\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124})re"
    R"re(\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F})re"
    R"re(\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})re"
    R"re(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})re"
    R"re(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17})re"
    R"re(\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3})re"
    R"re(\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})re"
    R"re(\x{1E900}-\x{1E943}]+)re";
// ASCII and full-width punctuation, curly quotes, ideographic space and full stop.
constexpr const char* kDeepseekLlmPunct =
    R"re(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)re";
// CJK ideographs (U+4E00..U+9FA5), U+0800..U+4E00 and Hangul syllables.
constexpr const char* kDeepseekCjk = R"re([\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+)re";

// DeepSeek V3 (deepseek-ai/DeepSeek-V3 tokenizer.json): digits by three, CJK + kana runs,
// then words with an optional leading ASCII punctuation mark.
constexpr const char* kDeepseekV3Cjk =
    R"re([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)re";
constexpr const char* kDeepseekV3Main =
    R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

std::vector<PreTokenizerFamily> make_families() {
  std::vector<PreTokenizerFamily> f;
  // llama.cpp's fallback for BPE files without tokenizer.ggml.pre.
  f.push_back(
      {"default", {}, {R"re([\p{P}\$\+<=>\^~\|]+)re", kGpt2, R"re(\p{N}+)re", "[0-9][0-9][0-9]"}});
  f.push_back({"gpt-2", {"mpt", "phi-2"}, {kGpt2}});
  f.push_back({"llama-bpe", {"llama3", "llama-v3"}, {kLlama3}, true, true});
  f.push_back({"qwen2", {"deepseek-r1-qwen"}, {kQwen2}});
  f.push_back({"deepseek-llm",
               {},
               {R"re([\r\n])re", kDeepseekLlmLetters, kDeepseekLlmPunct, R"re(\s+$)re",
                kDeepseekCjk, R"re(\p{N}+)re"}});
  f.push_back(
      {"deepseek-coder",
       {},
       {R"re([\r\n])re", R"re(\s?\p{L}+)re", R"re(\s?\p{P}+)re", kDeepseekCjk, R"re(\p{N})re"}});
  f.push_back(
      {"deepseek-v3", {"joyai-llm"}, {R"re(\p{N}{1,3})re", kDeepseekV3Cjk, kDeepseekV3Main}});
  // Falcon: HF Punctuation, then ByteLevel's GPT-2 regex, then digits in threes.
  f.push_back({"falcon", {}, {R"re([\p{P}\$\+<=>\^~\|`]+)re", kGpt2, "[0-9][0-9][0-9]"}});
  // StarCoder and Refact: every digit alone, then GPT-2.
  f.push_back({"starcoder", {"refact"}, {R"re(\p{N})re", kGpt2}});
  f.push_back({"gpt-4o", {}, {kGpt4o}});
  return f;
}

// Per-thread match state: match data (one ovector pair is all we read) and a JIT stack larger
// than the 32 KiB default, for long runs of letters in the patterns with nested repeats.
struct MatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* jit_stack = nullptr;

  MatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    if (!data || !context) fail(Status::out_of_memory, "cannot allocate PCRE2 match data");
    if (jit_stack) pcre2_jit_stack_assign(context, nullptr, jit_stack);
  }
  ~MatchState() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
  MatchState(const MatchState&) = delete;
  MatchState& operator=(const MatchState&) = delete;
};

MatchState& match_state() {
  thread_local MatchState s;
  return s;
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  const int n = pcre2_get_error_message(code, buf, sizeof buf);
  return n < 0 ? "error " + std::to_string(code) : std::string(reinterpret_cast<char*>(buf));
}

}  // namespace

const std::vector<PreTokenizerFamily>& pretokenizer_families() {
  static const std::vector<PreTokenizerFamily> families = make_families();
  return families;
}

const PreTokenizerFamily* find_pretokenizer_family(std::string_view name) {
  for (const PreTokenizerFamily& f : pretokenizer_families()) {
    if (name == f.name) return &f;
    for (const char* a : f.aliases) {
      if (name == a) return &f;
    }
  }
  return nullptr;
}

std::string supported_pretokenizer_names() {
  std::string r;
  for (const PreTokenizerFamily& f : pretokenizer_families()) {
    if (!r.empty()) r += ", ";
    r += f.name;
    for (const char* a : f.aliases) {
      r += ", ";
      r += a;
    }
  }
  return r;
}

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;
  std::string pattern;
  ~Compiled() { pcre2_code_free(code); }
};

PreTokenizer::PreTokenizer(std::string_view name) : name_(name) {
  const PreTokenizerFamily* f = find_pretokenizer_family(name);
  if (f == nullptr) {
    fail(Status::unsupported,
         "tokenizer.ggml.pre = '{}' is not a supported pre-tokenizer (supported: {})", name,
         supported_pretokenizer_names());
  }
  ignore_merges_ = f->ignore_merges;
  compile(std::vector<std::string>(f->patterns.begin(), f->patterns.end()));
}

PreTokenizer::PreTokenizer(std::string name, const std::vector<std::string>& patterns)
    : name_(std::move(name)) {
  compile(patterns);
}

PreTokenizer::~PreTokenizer() = default;

void PreTokenizer::compile(const std::vector<std::string>& patterns) {
  // UTF + UCP: \p{..}, \s and friends are Unicode-aware. MATCH_INVALID_UTF: ill-formed
  // bytes in the subject are skipped instead of failing the match. DOLLAR_ENDONLY: "$" is
  // the end of the piece only, as in std::regex and Rust's regex.
  const uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY;
  for (const std::string& p : patterns) {
    auto c = std::make_unique<Compiled>();
    c->pattern = p;
    int err = 0;
    PCRE2_SIZE err_off = 0;
    c->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(p.data()), p.size(), options, &err,
                            &err_off, nullptr);
    if (c->code == nullptr) {
      fail(Status::invalid_arg,
           "pre-tokenizer '{}': pattern /{}/ does not compile at offset {}: {}", name_, p, err_off,
           pcre2_message(err));
    }
    // Without JIT (not built in, or no executable memory) pcre2_match interprets: slower,
    // same results.
    pcre2_jit_compile(c->code, PCRE2_JIT_COMPLETE);
    regexes_.push_back(std::move(c));
  }
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  if (regexes_.empty()) {
    out.push_back(text);
    return;
  }
  MatchState& ms = match_state();
  std::vector<std::string_view> cur{text};
  std::vector<std::string_view> next;
  for (size_t r = 0; r < regexes_.size(); ++r) {
    const pcre2_code* code = regexes_[r]->code;
    const bool last = r + 1 == regexes_.size();
    std::vector<std::string_view>& dst = last ? out : next;
    next.clear();
    for (std::string_view piece : cur) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t gap = 0;  // start of the text not yet emitted
      size_t pos = 0;  // where the next match attempt starts
      while (pos < piece.size()) {
        int rc = pcre2_match(code, subject, piece.size(), pos, 0, ms.data, ms.context);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
          rc = pcre2_match(code, subject, piece.size(), pos, PCRE2_NO_JIT, ms.data, ms.context);
        }
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          fail(Status::internal, "pre-tokenizer '{}': matching /{}/ failed: {}", name_,
               regexes_[r]->pattern, pcre2_message(rc));
        }
        const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(ms.data);
        const size_t b = ov[0], e = ov[1];
        if (e <= b) {  // an empty match splits nothing; try from the next byte
          pos = b + 1;
          continue;
        }
        if (b > gap) dst.push_back(piece.substr(gap, b - gap));
        dst.push_back(piece.substr(b, e - b));
        gap = pos = e;
      }
      if (gap < piece.size()) dst.push_back(piece.substr(gap));
    }
    if (!last) cur.swap(next);
  }
}

std::vector<std::string> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> views;
  split(text, views);
  return std::vector<std::string>(views.begin(), views.end());
}

std::vector<std::string> pretokenize(std::string_view family, std::string_view text) {
  return PreTokenizer(family).split(text);
}

}  // namespace v4
