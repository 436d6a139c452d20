// Byte-level BPE, the pre-tokenizer families, special-token splitting and the tokenizer
// interface shared with SentencePiece: llama.cpp's vocabulary test vectors, per-family split
// cases derived from the published patterns, round trips and a 1 MB speed check.
#include <algorithm>
#include <catch2/catch.hpp>

#include "tests/unit/test_support.h"
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "lib/core/error.h"
#include "lib/model/gguf.h"
#include "lib/model/model.h"
#include "lib/text/bpe_tokenizer.h"
#include "lib/text/pretokenizer.h"
#include "lib/text/spm_tokenizer.h"
#include "lib/text/tokenizer.h"
#include "lib/text/utf8_stream.h"
#include "lib/text/vocab.h"

using v4::BpeTokenizer;
using v4::Status;
using v4::Tokenizer;
using v4::TokenType;
using v4::Vocab;
using Strings = std::vector<std::string>;
using Ids = std::vector<int32_t>;

using v4test::read_file;
using v4test::split_on;
using v4test::status_of;

namespace {

Ids parse_ids(const std::string& line) {
  Ids ids;
  std::istringstream ss(line);
  int32_t id = 0;
  while (ss >> id) ids.push_back(id);
  return ids;
}

std::string show(const std::string& s) {
  std::string r;
  for (char c : s) {
    if (c == '\n') {
      r += "\\n";
    } else if (c == '\t') {
      r += "\\t";
    } else if (c == '\r') {
      r += "\\r";
    } else {
      r += c;
    }
  }
  return r;
}

std::string show(const Ids& ids) {
  std::string r;
  for (int32_t id : ids) r += (r.empty() ? "" : " ") + std::to_string(id);
  return r;
}

// A vocabulary file from tests/data with its tokenizer; loaded once per test binary.
struct Loaded {
  Vocab vocab;
  std::unique_ptr<Tokenizer> tok;
  Strings warnings;
};

const Loaded& load(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Loaded>> cache;
  auto& slot = cache[name];
  if (!slot) {
    auto l = std::make_unique<Loaded>();
    auto f = v4::gguf::File::open(std::string(V4_TEST_DATA_DIR) + "/ggml-vocab-" + name + ".gguf");
    l->vocab = Vocab::from_gguf(*f, [&](const std::string& w) { l->warnings.push_back(w); });
    l->tok = Tokenizer::create(l->vocab);
    REQUIRE(l->tok != nullptr);
    slot = std::move(l);
  }
  return *slot;
}

Ids tokenize(const Tokenizer& tok, const std::string& text, bool add_bos = false,
             bool parse_special = false) {
  Ids ids;
  tok.tokenize(text, add_bos, parse_special, ids);
  return ids;
}

std::string detokenize(const Tokenizer& tok, const Ids& ids) {
  std::string r;
  for (int32_t id : ids) tok.append_piece(id, r);
  return r;
}

const Strings kBpeVocabs = {"gpt-2", "deepseek-coder", "falcon"};
const Strings kSpmVocabs = {"llama-spm", "phi-3"};

// Random text: ASCII words, digits, whitespace runs, punctuation, Latin-1, Cyrillic, CJK,
// kana, Hangul, combining marks and 4-byte code points (emoji, supplementary CJK).
std::string random_utf8(std::mt19937& rng, size_t n_chars) {
  auto pick = [&](uint32_t lo, uint32_t hi) {
    return std::uniform_int_distribution<uint32_t>(lo, hi)(rng);
  };
  std::string s;
  for (size_t i = 0; i < n_chars; ++i) {
    uint32_t cp = 0;
    switch (pick(0, 13)) {
      case 0:
      case 1:
      case 2:
        cp = pick('a', 'z');
        break;
      case 3:
        cp = pick('A', 'Z');
        break;
      case 4:
        cp = pick('0', '9');
        break;
      case 5:
        cp = " \n\t\r  "[pick(0, 5)];
        break;
      case 6:
        cp = pick(0x21, 0x7E);
        break;
      case 7:
        cp = pick(0xA0, 0x17F);
        break;
      case 8:
        cp = pick(0x400, 0x4FF);
        break;
      case 9:
        cp = pick(0x4E00, 0x9FFF);
        break;
      case 10:
        cp = pick(0x3040, 0x30FF);
        break;
      case 11:
        cp = pick(0, 1) ? pick(0xAC00, 0xD7A3) : pick(0x300, 0x36F);
        break;
      case 12:
        cp = pick(0x1F300, 0x1FAFF);
        break;
      default:
        // Supplementary CJK or anything in planes 1-3 (4-byte sequences starting F0; the
        // vocabularies cover those lead bytes, Falcon's lacks F2 for instance).
        cp = pick(0, 1) ? pick(0x20000, 0x2A6DF) : pick(0x10000, 0x3FFFF);
        break;
    }
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      s += static_cast<char>(0xE0 | (cp >> 12));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      s += static_cast<char>(0xF0 | (cp >> 18));
      s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  return s;
}

// A small byte-level BPE vocabulary built in code.
Vocab make_bpe(const Strings& tokens, const Strings& merges, const std::string& pre = "gpt-2") {
  Vocab v;
  v.kind = v4::VocabKind::bpe;
  v.model_name = "gpt2";
  v.tokens = tokens;
  v.merges = merges;
  v.pre = pre;
  v.finalize();
  return v;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// llama.cpp's test vectors: every case of every vocabulary, no BOS, no special parsing.
// ---------------------------------------------------------------------------------------

TEST_CASE("vocab test vectors: every case of every vocabulary", "[tokenizer]") {
  for (const std::string name : {"gpt-2", "deepseek-coder", "falcon", "llama-spm", "phi-3"}) {
    const Loaded& l = load(name);
    const std::string base = std::string(V4_TEST_DATA_DIR) + "/ggml-vocab-" + name + ".gguf";
    Strings inputs = split_on(read_file(base + ".inp"), "\n__ggml_vocab_test__\n");
    REQUIRE(inputs.size() >= 2);
    REQUIRE(inputs.back().empty());
    inputs.pop_back();
    Strings outputs = split_on(read_file(base + ".out"), "\n");
    if (!outputs.empty() && outputs.back().empty()) outputs.pop_back();
    REQUIRE(outputs.size() == inputs.size());

    size_t passed = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Ids got = tokenize(*l.tok, inputs[i]);
      const Ids expected = parse_ids(outputs[i]);
      INFO(name << " case " << i << ": '" << show(inputs[i]) << "'\n  expected: " << show(expected)
                << "\n  got:      " << show(got));
      CHECK(got == expected);
      if (got == expected) ++passed;
    }
    INFO(name << ": " << passed << " of " << inputs.size() << " cases pass");
    CHECK(passed == inputs.size());
    std::printf("vocab vectors %-15s %zu/%zu cases pass\n", name.c_str(), passed, inputs.size());
  }
}

TEST_CASE("BPE vocab metadata: pre-tokenizer, merges, special ids, add_bos defaults",
          "[tokenizer]") {
  const Loaded& gpt2 = load("gpt-2");
  CHECK(gpt2.vocab.kind == v4::VocabKind::bpe);
  CHECK(gpt2.vocab.pre == "gpt-2");
  CHECK(gpt2.vocab.merges.size() == 50000);
  CHECK(gpt2.vocab.bos == 50256);
  CHECK(gpt2.vocab.eos == 50256);
  CHECK(gpt2.vocab.eot == 50256);   // found by its text, "<|endoftext|>"
  CHECK_FALSE(gpt2.vocab.add_bos);  // BPE default, no key in the file
  CHECK_FALSE(gpt2.vocab.add_space_prefix);
  CHECK(gpt2.warnings.empty());

  const Loaded& dsc = load("deepseek-coder");
  CHECK(dsc.vocab.pre == "deepseek-coder");
  CHECK(dsc.vocab.add_bos);  // tokenizer.ggml.add_bos_token = true
  CHECK(dsc.vocab.bos == 32013);
  CHECK(dsc.vocab.eos == 32014);
  CHECK(dsc.vocab.pad == 32014);
  CHECK(dsc.vocab.eot == 32014);  // "<｜end▁of▁sentence｜>", by text

  const Loaded& phi3 = load("phi-3");
  CHECK(phi3.vocab.kind == v4::VocabKind::spm);
  CHECK(phi3.vocab.eos == 32000);
  CHECK(phi3.vocab.eot == 32007);  // "<|end|>", by text
  CHECK(phi3.vocab.is_eog(32007));
  CHECK(phi3.vocab.strip_of(32010) == Vocab::kStripRight);  // <|user|>
  CHECK(phi3.vocab.strip_of(2) == Vocab::kStripRight);      // </s>
  CHECK(phi3.vocab.strip_of(1) == 0);                       // <s>
  CHECK(phi3.vocab.strip_of(32000) == 0);                   // <|endoftext|>
  CHECK(load("llama-spm").vocab.strip.empty());

  CHECK(dynamic_cast<const BpeTokenizer*>(gpt2.tok.get()) != nullptr);
  CHECK(dynamic_cast<const v4::SpmTokenizer*>(phi3.tok.get()) != nullptr);
}

// ---------------------------------------------------------------------------------------
// Pre-tokenizers: cases derived from each family's published patterns.
// ---------------------------------------------------------------------------------------

namespace {

void check_splits(const std::string& family,
                  const std::vector<std::pair<std::string, Strings>>& cases) {
  const v4::PreTokenizer pre(family);
  for (const auto& [text, expected] : cases) {
    INFO(family << ": '" << show(text) << "'");
    CHECK(pre.split(text) == expected);
  }
}

}  // namespace

TEST_CASE("pre-tokenizer gpt-2 (also mpt, phi-2)", "[tokenizer]") {
  const std::vector<std::pair<std::string, Strings>> cases = {
      {"Hello world", {"Hello", " world"}},
      {"I've 12345 it's", {"I", "'ve", " 12345", " it", "'s"}},  // contractions; digits in one run
      {"I'VE", {"I", "'", "VE"}},                                // case-sensitive contractions
      {"a\n\nb", {"a", "\n", "\n", "b"}},                        // \s+(?!\S) then \s+
      {"  hi   ", {" ", " hi", "   "}},  // a run of spaces leaves its last one to the word
      {"\t\tx", {"\t", "\t", "x"}},
      {"x = 3.14;", {"x", " =", " 3", ".", "14", ";"}},
      {"\xE6\x88\x91\xE6\x83\xB3"
       "apple 1314",
       {"\xE6\x88\x91\xE6\x83\xB3"
        "apple",
        " 1314"}},  // CJK is \p{L}
      {"\xF0\x9F\x98\x81\xF0\x9F\x98\x81 ok",
       {"\xF0\x9F\x98\x81\xF0\x9F\x98\x81", " ok"}},  // emoji
  };
  check_splits("gpt-2", cases);
  check_splits("mpt", cases);
  check_splits("phi-2", cases);
}

TEST_CASE("pre-tokenizer llama-bpe (Llama 3)", "[tokenizer]") {
  check_splits(
      "llama-bpe",
      {
          {"12345", {"123", "45"}},  // digits in groups of 1-3
          {"1234567", {"123", "456", "7"}},
          {"I've 12345 it's", {"I", "'ve", " ", "123", "45", " it", "'s"}},
          {"I'VE", {"I", "'VE"}},  // case-insensitive contractions
          {"a\n\nb", {"a", "\n\n", "b"}},
          {"line\r\n  next", {"line", "\r\n", " ", " next"}},
          {"I'm  fine", {"I", "'m", " ", " fine"}},
          {"\t\tx", {"\t", "\tx"}},  // one non-letter prefix joins the word
          {".Hello", {".Hello"}},
          {"hello!!!\n\n", {"hello", "!!!\n\n"}},  // punctuation takes trailing newlines
          {"\xE6\x88\x91\xE6\x83\xB3"
           "apple",
           {"\xE6\x88\x91\xE6\x83\xB3"
            "apple"}},
          {"\xF0\x9F\x98\x81\xF0\x9F\x98\x81 ok", {"\xF0\x9F\x98\x81\xF0\x9F\x98\x81", " ok"}},
      });
}

TEST_CASE("pre-tokenizer qwen2", "[tokenizer]") {
  check_splits("qwen2", {
                            {"12345", {"1", "2", "3", "4", "5"}},  // one digit per piece
                            {"abc123", {"abc", "1", "2", "3"}},
                            {"I've it's", {"I", "'ve", " it", "'s"}},
                            {"I'VE", {"I", "'VE"}},
                            {"a\n\nb", {"a", "\n\n", "b"}},
                            {"  hi   ", {" ", " hi", "   "}},
                        });
  CHECK(v4::pretokenize("deepseek-r1-qwen", "x 12") == Strings{"x", " ", "1", "2"});
}

TEST_CASE("pre-tokenizer deepseek-llm", "[tokenizer]") {
  check_splits("deepseek-llm",
               {
                   {"Hello world", {"Hello", " world"}},
                   {"I've 12345", {"I", "'", "ve", " ", "12345"}},  // no contraction rule; \p{N}+
                   {"a\nb", {"a", "\n", "b"}},                      // every newline alone
                   {"hi   ", {"hi", "   "}},                        // trailing whitespace run
                   {"\xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8"
                    "apple\xE5\xB7\xA5\xE4\xBD\x9C",
                    {"\xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8", "apple", "\xE5\xB7\xA5\xE4\xBD\x9C"}},
                   {"hello!!!", {"hello", "!!!"}},
                   // The punctuation class [!-/:-~...] covers ASCII letters too, so a word
                   // mixing Latin-1 and ASCII letters splits there; Greek stays a word.
                   {"\xC3\x84pfel \xCE\xA9", {"\xC3\x84", "pfel", " \xCE\xA9"}},
               });
}

TEST_CASE("pre-tokenizer deepseek-coder", "[tokenizer]") {
  check_splits("deepseek-coder",
               {
                   {"12345", {"1", "2", "3", "4", "5"}},
                   {"hello, world", {"hello", ",", " world"}},
                   {"I've", {"I", "'", "ve"}},
                   {"a\n\nb", {"a", "\n", "\n", "b"}},
                   {"x = 3", {"x", " = ", "3"}},  // '=' is a symbol, not \p{P}: stays in the gap
                   {"\xE6\x88\x91\xE6\x83\xB3"
                    "apple",
                    {"\xE6\x88\x91\xE6\x83\xB3", "apple"}},
               });
}

TEST_CASE("pre-tokenizer deepseek-v3 (and joyai-llm)", "[tokenizer]") {
  const std::vector<std::pair<std::string, Strings>> cases = {
      {"12345", {"123", "45"}},
      {"abc123", {"abc", "123"}},
      {"Hello world!", {"Hello", " world", "!"}},
      {"HelloWorld's", {"HelloWorld", "'s"}},  // ASCII punctuation + ASCII letters
      {".Hello", {".Hello"}},
      {"a\n\nb", {"a", "\n\n", "b"}},
      // CJK ideographs and kana are one run, split from Latin letters.
      {"\xE3\x81\x93\xE3\x82\x93\xE4\xB8\x96\xE7\x95\x8C"
       "abc",
       {"\xE3\x81\x93\xE3\x82\x93\xE4\xB8\x96\xE7\x95\x8C", "abc"}},
      {"\xF0\x9F\x98\x81\xF0\x9F\x98\x81 ok", {"\xF0\x9F\x98\x81\xF0\x9F\x98\x81", " ok"}},
  };
  check_splits("deepseek-v3", cases);
  check_splits("joyai-llm", cases);
}

TEST_CASE("pre-tokenizer falcon", "[tokenizer]") {
  check_splits("falcon", {
                             {"1234567", {"123", "456", "7"}},
                             {"I've 12345", {"I", "'", "ve", " ", "123", "45"}},
                             {"x = 3.14;", {"x", " ", "=", " 3", ".", "14", ";"}},
                             {"hello!!!", {"hello", "!!!"}},
                             {"a\n\nb", {"a", "\n", "\n", "b"}},
                         });
}

TEST_CASE("pre-tokenizer starcoder and refact", "[tokenizer]") {
  for (const std::string name : {"starcoder", "refact"}) {
    check_splits(name, {
                           {"abc123", {"abc", "1", "2", "3"}},  // every digit alone
                           {"I've it's", {"I", "'ve", " it", "'s"}},
                           {"x = 3.14", {"x", " =", " ", "3", ".", "1", "4"}},
                       });
  }
}

TEST_CASE("pre-tokenizer gpt-4o", "[tokenizer]") {
  check_splits("gpt-4o", {
                             {"HelloWorld's", {"Hello", "World's"}},  // case change splits words
                             {"I've it's", {"I've", " it's"}},        // contraction stays attached
                             {"12345", {"123", "45"}},
                             {"path/to/\nfile", {"path", "/to", "/\n", "file"}},
                             {"a\n\nb", {"a", "\n\n", "b"}},
                             {"  hi   ", {" ", " hi", "   "}},
                         });
}

TEST_CASE("pre-tokenizer default", "[tokenizer]") {
  check_splits("default", {
                              {"x = 3.14;", {"x", " ", "=", " ", "3", ".", "14", ";"}},
                              {"1234567", {"123", "456", "7"}},
                          });
}

TEST_CASE("pre-tokenizers: unknown names, coverage of any input", "[tokenizer]") {
  try {
    v4::PreTokenizer p("no-such-tokenizer");
    FAIL("expected an error");
  } catch (const v4::Error& e) {
    CHECK(e.status() == Status::unsupported);
    const std::string msg = e.what();
    CHECK(msg.find("no-such-tokenizer") != std::string::npos);
    for (const char* n :
         {"default", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "deepseek-v3",
          "joyai-llm", "falcon", "starcoder", "refact", "mpt", "phi-2", "gpt-4o"}) {
      CHECK(msg.find(n) != std::string::npos);
    }
  }
  CHECK(status_of([] { v4::PreTokenizer p("bad", {"(unclosed"}); }) == Status::invalid_arg);

  // The pieces always cover the input exactly, valid UTF-8 or not.
  std::mt19937 rng(7);
  for (const v4::PreTokenizerFamily& fam : v4::pretokenizer_families()) {
    const v4::PreTokenizer pre(fam.name);
    for (int iter = 0; iter < 50; ++iter) {
      std::string s = random_utf8(rng, 1 + rng() % 60);
      if (iter % 5 == 0) s.insert(rng() % (s.size() + 1), "\xFF\xC3\x80\x80");  // ill-formed
      std::vector<std::string_view> pieces;
      pre.split(s, pieces);
      std::string joined;
      bool none_empty = true;
      for (std::string_view p : pieces) {
        joined += p;
        none_empty = none_empty && !p.empty();
      }
      INFO(fam.name << ": '" << show(s) << "'");
      CHECK(joined == s);
      CHECK(none_empty);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Merges, special tokens, BOS/EOS, on hand-built and real vocabularies.
// ---------------------------------------------------------------------------------------

TEST_CASE("BPE merges: lowest rank first, leftmost on ties, ignore_merges", "[tokenizer]") {
  const Strings toks = {"a", "b", "c", "ab", "bc", "abc", "aa", "z"};
  {
    // "b c" outranks "a b": a + bc, then "a bc" -> abc.
    const Vocab v = make_bpe(toks, {"b c", "a b", "a bc"});
    const BpeTokenizer tok(v);
    CHECK(tokenize(tok, "abc") == Ids{5});
    CHECK(tokenize(tok, "ab") == Ids{3});
  }
  {
    // "a b" first: ab + c, and there is no "ab c" merge.
    const Vocab v = make_bpe(toks, {"a b", "b c", "a bc"});
    const BpeTokenizer tok(v);
    CHECK(tokenize(tok, "abc") == Ids{3, 2});
    CHECK(tokenize(tok, "aaa") == Ids{0, 0, 0});
  }
  {
    const Vocab v = make_bpe(toks, {"a a"});
    const BpeTokenizer tok(v);
    CHECK(tokenize(tok, "aaa") == Ids{6, 0});  // leftmost pair first
    CHECK(tokenize(tok, "aaaa") == Ids{6, 6});
  }
  {
    // llama-bpe takes a pre-token that is a whole token without merging.
    const Vocab lv = make_bpe(toks, {"a b"}, "llama-bpe");
    CHECK(tokenize(BpeTokenizer(lv), "abc") == Ids{5});
    const Vocab gv = make_bpe(toks, {"a b"}, "gpt-2");
    CHECK(tokenize(BpeTokenizer(gv), "abc") == Ids{3, 2});
  }
  {
    // A byte without a token: unk when there is one, else dropped (as llama.cpp and HF).
    Vocab v = make_bpe(toks, {"a b"});
    const BpeTokenizer t1(v);
    CHECK(tokenize(t1, "aqb") == Ids{0, 1});
    v.unk = 7;
    const BpeTokenizer t2(v);
    CHECK(tokenize(t2, "aq") == Ids{0, 7});
  }
  {
    // A merge whose result is not a token still merges; the symbol falls back to bytes.
    const Vocab v = make_bpe({"a", "b", "c", "abc"}, {"a b", "ab c"});
    CHECK(tokenize(BpeTokenizer(v), "abc") == Ids{3});
    CHECK(tokenize(BpeTokenizer(v), "ab") == Ids{0, 1});
  }
  CHECK(status_of([&] { BpeTokenizer t(make_bpe(toks, {"a b"}, "klingon")); }) ==
        Status::unsupported);
  CHECK(status_of([&] { BpeTokenizer t(make_bpe(toks, {})); }) == Status::bad_format);
}

TEST_CASE("special tokens: split order, parse_special, strip, BOS and EOS", "[tokenizer]") {
  SECTION("longest special token first, then leftmost occurrences (llama.cpp's order)") {
    Vocab v = make_bpe({"a", "b", "c", "d", "ab", "bcd", "xy", "yz", "x", "y", "z"}, {"a b"});
    for (int id : {4, 5, 6, 7}) v.types[static_cast<size_t>(id)] = TokenType::user_defined;
    v.finalize();
    const BpeTokenizer tok(v);
    // "bcd" (3 bytes) is split out before "ab" (2 bytes), although "ab" starts first.
    CHECK(tokenize(tok, "abcd") == Ids{0, 5});
    // Equal lengths: the lower id first.
    CHECK(tokenize(tok, "xyz") == Ids{6, 10});
    std::vector<Tokenizer::Fragment> frags;
    tok.split_special("zabcdab", false, frags);
    REQUIRE(frags.size() == 3);
    CHECK(frags[0].token == -1);  // "za": its "ab" overlaps "bcd", which went first
    CHECK(frags[0].begin == 0);
    CHECK(frags[0].end == 2);
    CHECK(frags[1].token == 5);
    CHECK(frags[2].token == 4);
  }
  SECTION("gpt-2: control tokens only with parse_special; add_bos follows the vocab") {
    const Loaded& l = load("gpt-2");
    CHECK(tokenize(*l.tok, "<|endoftext|>", false, true) == Ids{50256});
    const Ids plain = tokenize(*l.tok, "<|endoftext|>");
    CHECK(plain.size() > 1);
    CHECK(std::find(plain.begin(), plain.end(), 50256) == plain.end());
    CHECK(detokenize(*l.tok, plain) == "<|endoftext|>");
    CHECK(tokenize(*l.tok, "Hello", true) == tokenize(*l.tok, "Hello"));  // add_bos = false
    CHECK(tokenize(*l.tok, "a<|endoftext|>b", false, true) ==
          Ids{tokenize(*l.tok, "a")[0], 50256, tokenize(*l.tok, "b")[0]});
    CHECK(l.tok->piece(50256).empty());
    CHECK(l.tok->piece(50256, true) == "<|endoftext|>");
  }
  SECTION("deepseek-coder: BOS from metadata; user-defined tokens split without parse_special") {
    const Loaded& l = load("deepseek-coder");
    const Ids ids = tokenize(*l.tok, "Hi", true);
    REQUIRE(ids.size() >= 2);
    CHECK(ids[0] == 32013);
    CHECK(tokenize(*l.tok, "\xC3\xB5") == Ids{32000});  // "õ" is a user-defined token
    CHECK(l.tok->piece(32000) == "\xC3\xB5");
    CHECK(tokenize(*l.tok, "<|EOT|>") == Ids{32021});  // user-defined too
  }
  SECTION("phi-3: special tokens swallow the whitespace after them") {
    const Loaded& l = load("phi-3");
    const Ids hello = tokenize(*l.tok, "Hello");
    Ids expected{32010};
    expected.insert(expected.end(), hello.begin(), hello.end());
    CHECK(tokenize(*l.tok, "<|user|>\n  Hello", false, true) == expected);
    CHECK(tokenize(*l.tok, "<|user|>Hello", false, true) == expected);
    // </s> is user-defined in this vocab: split out even without parse_special.
    const Ids ids = tokenize(*l.tok, "a</s> b");
    CHECK(std::find(ids.begin(), ids.end(), 2) != ids.end());
  }
  SECTION("add_eos appends EOS together with BOS") {
    Vocab v = make_bpe({"a", "b", "ab", "<s>", "</s>"}, {"a b"});
    v.types[3] = TokenType::control;
    v.types[4] = TokenType::control;
    v.bos = 3;
    v.eos = 4;
    v.add_bos = true;
    v.add_eos = true;
    const BpeTokenizer tok(v);
    CHECK(tokenize(tok, "ab", true) == Ids{3, 2, 4});
    CHECK(tokenize(tok, "ab", false) == Ids{2});
    CHECK(tokenize(tok, "", true) == Ids{3, 4});
  }
}

// ---------------------------------------------------------------------------------------
// Detokenization: round trips and streaming.
// ---------------------------------------------------------------------------------------

TEST_CASE("round trip on byte-level BPE vocabs: random UTF-8 and raw bytes", "[tokenizer]") {
  std::mt19937 rng(42);
  for (const std::string& name : kBpeVocabs) {
    const Loaded& l = load(name);
    size_t failures = 0;
    for (int iter = 0; iter < 200; ++iter) {
      std::string s = random_utf8(rng, 1 + rng() % 80);
      // Ill-formed UTF-8 (a stray continuation byte, a truncated sequence): bytes survive.
      if (iter % 10 == 0) s += "\x80\xE6\x97";
      const Ids ids = tokenize(*l.tok, s);
      const std::string back = detokenize(*l.tok, ids);
      if (back != s) {
        ++failures;
        INFO(name << ": '" << show(s) << "' -> '" << show(back) << "'");
        CHECK(back == s);
      }
      // Streaming the pieces through Utf8Stream gives the one-shot text (for valid UTF-8).
      if (iter % 10 != 0) {
        v4::Utf8Stream stream;
        std::string streamed;
        for (int32_t id : ids) stream.push(l.tok->piece(id), streamed);
        stream.flush(streamed);
        CHECK(streamed == back);
      }
    }
    CHECK(failures == 0);
  }
}

TEST_CASE("round trip on SentencePiece vocabs, up to the dummy-prefix space", "[tokenizer]") {
  std::mt19937 rng(43);
  for (const std::string& name : kSpmVocabs) {
    const Loaded& l = load(name);
    for (int iter = 0; iter < 200; ++iter) {
      const std::string s = random_utf8(rng, 1 + rng() % 80);
      const Ids ids = tokenize(*l.tok, s);
      const std::string back = detokenize(*l.tok, ids);
      INFO(name << ": '" << show(s) << "'");
      CHECK(back == " " + s);
      v4::Utf8Stream stream;
      std::string streamed;
      for (int32_t id : ids) stream.push(l.tok->piece(id), streamed);
      stream.flush(streamed);
      CHECK(streamed == back);
    }
  }
}

TEST_CASE("Model on vocab-only BPE files: tokenize, precomputed pieces", "[tokenizer]") {
  for (const std::string& name : kBpeVocabs) {
    v4::ModelLoadOptions opts;
    opts.vocab_only = true;
    auto m = v4::Model::load(std::string(V4_TEST_DATA_DIR) + "/ggml-vocab-" + name + ".gguf", opts);
    REQUIRE(m->tokenizer() != nullptr);
    const std::string text = "Hello, world! \xE6\x88\x91 \xF0\x9F\xA6\x99 123\n";
    Ids ids;
    m->tokenize(text, false, false, ids);
    std::string back;
    for (int32_t id : ids) back += m->piece(id);
    INFO(name);
    CHECK(back == text);
    CHECK(m->piece(ids[0]) == m->tokenizer()->piece(ids[0]));
  }
}

// ---------------------------------------------------------------------------------------
// Speed: 1 MB of English text with the GPT-2 vocabulary (hidden; run with "[.bench]").
// ---------------------------------------------------------------------------------------

TEST_CASE("tokenize 1 MB of English text with the gpt-2 vocab", "[.bench]") {
  const std::string sample = read_file(std::string(V4_TEST_DATA_DIR) + "/tinystories-sample.txt");
  REQUIRE(!sample.empty());
  std::string text;
  while (text.size() < (1u << 20)) text += sample;
  text.resize(1u << 20);
  const Loaded& l = load("gpt-2");
  double best = 1e9;
  size_t n_tokens = 0;
  for (int rep = 0; rep < 3; ++rep) {
    Ids ids;
    ids.reserve(text.size() / 3);
    const auto t0 = std::chrono::steady_clock::now();
    l.tok->tokenize(text, false, false, ids);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
    n_tokens = ids.size();
  }
  std::printf("gpt-2: tokenized %zu bytes into %zu tokens in %.3f s (best of 3), %.1f MB/s\n",
              text.size(), n_tokens, best, static_cast<double>(text.size()) / best / 1e6);
  CHECK(best < 1.0);
}
