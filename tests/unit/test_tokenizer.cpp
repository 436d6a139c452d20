// Vocabulary loading, the SentencePiece ("llama") tokenizer and the UTF-8 stream decoder.
#include <algorithm>
#include <catch2/catch.hpp>

#include "tests/unit/test_support.h"
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "lib/core/error.h"
#include "lib/model/gguf.h"
#include "lib/text/spm_tokenizer.h"
#include "lib/text/utf8_stream.h"
#include "lib/text/vocab.h"

using v4::SpmTokenizer;
using v4::Status;
using v4::TokenType;
using v4::Utf8Stream;
using v4::Vocab;

using v4test::read_file;
using v4test::split_on;
using v4test::status_of;

namespace {

std::string join_ids(const std::vector<int32_t>& ids) {
  std::string r;
  for (int32_t id : ids) r += " " + std::to_string(id);
  return r;
}

std::string pieces(const SpmTokenizer& tok, const std::vector<int32_t>& ids) {
  std::string r;
  for (int32_t id : ids) tok.append_piece(id, r);
  return r;
}

// A vocab built in code: tokens with scores, all normal unless typed.
Vocab make_vocab(const std::vector<std::pair<std::string, float>>& toks, bool space_prefix) {
  Vocab v;
  v.kind = v4::VocabKind::spm;
  v.model_name = "llama";
  for (const auto& [t, s] : toks) {
    v.tokens.push_back(t);
    v.scores.push_back(s);
  }
  v.add_space_prefix = space_prefix;
  v.finalize();
  return v;
}

// Minimal GGUF v3 image with metadata only, for vocab-loading edge cases.
struct MiniGguf {
  std::vector<uint8_t> kv;
  uint64_t n_kv = 0;

  void raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    kv.insert(kv.end(), b, b + n);
  }
  void u32(uint32_t v) { raw(&v, 4); }
  void u64(uint64_t v) { raw(&v, 8); }
  void str(const std::string& s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  void key(const std::string& k, uint32_t type) {
    ++n_kv;
    str(k);
    u32(type);
  }
  void set_string(const std::string& k, const std::string& v) {
    key(k, 8);
    str(v);
  }
  void set_u32(const std::string& k, uint32_t v) {
    key(k, 4);
    u32(v);
  }
  void set_i32(const std::string& k, int32_t v) {
    key(k, 5);
    raw(&v, 4);
  }
  void set_bool(const std::string& k, bool v) {
    key(k, 7);
    const uint8_t b = v ? 1 : 0;
    raw(&b, 1);
  }
  void set_strings(const std::string& k, const std::vector<std::string>& v) {
    key(k, 9);
    u32(8);
    u64(v.size());
    for (const auto& s : v) str(s);
  }
  void set_f32s(const std::string& k, const std::vector<float>& v) {
    key(k, 9);
    u32(6);
    u64(v.size());
    for (float f : v) raw(&f, 4);
  }
  void set_i32s(const std::string& k, const std::vector<int32_t>& v) {
    key(k, 9);
    u32(5);
    u64(v.size());
    for (int32_t i : v) raw(&i, 4);
  }
  std::vector<uint8_t> bytes() const {
    std::vector<uint8_t> out = {'G', 'G', 'U', 'F'};
    auto put = [&](const void* p, size_t n) {
      const auto* b = static_cast<const uint8_t*>(p);
      out.insert(out.end(), b, b + n);
    };
    const uint32_t version = 3;
    const uint64_t n_tensors = 0;
    put(&version, 4);
    put(&n_tensors, 8);
    put(&n_kv, 8);
    out.insert(out.end(), kv.begin(), kv.end());
    while (out.size() % 32 != 0) out.push_back(0);
    return out;
  }
};

const std::vector<std::string> kTinyTokens = {"<unk>", "<s>", "</s>", "\xE2\x96\x81", "a", "b"};

Vocab load_vocab(const std::string& path, std::vector<std::string>* warnings = nullptr) {
  auto f = v4::gguf::File::open(path);
  return Vocab::from_gguf(*f, [&](const std::string& w) {
    if (warnings) warnings->push_back(w);
  });
}

}  // namespace

TEST_CASE("llama-spm vocab matches llama.cpp's tokenizer test cases", "[tokenizer]") {
  const std::string dir = V4_TEST_DATA_DIR;
  std::vector<std::string> warnings;
  const Vocab v = load_vocab(dir + "/ggml-vocab-llama-spm.gguf", &warnings);
  REQUIRE(v.kind == v4::VocabKind::spm);
  REQUIRE(v.n_tokens() == 32000);
  CHECK(v.bos == 1);
  CHECK(v.eos == 2);
  CHECK(v.unk == 0);
  CHECK(v.add_bos);
  CHECK(v.add_space_prefix);
  CHECK(warnings.empty());
  const SpmTokenizer tok(v);

  std::vector<std::string> inputs =
      split_on(read_file(dir + "/ggml-vocab-llama-spm.gguf.inp"), "\n__ggml_vocab_test__\n");
  REQUIRE(inputs.size() >= 2);
  REQUIRE(inputs.back().empty());
  inputs.pop_back();
  std::vector<std::string> outputs =
      split_on(read_file(dir + "/ggml-vocab-llama-spm.gguf.out"), "\n");
  if (!outputs.empty() && outputs.back().empty()) outputs.pop_back();
  REQUIRE(outputs.size() == inputs.size());

  size_t passed = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::vector<int32_t> ids;
    tok.tokenize(inputs[i], /*add_bos=*/false, /*parse_special=*/false, ids);
    std::string expected = outputs[i];
    if (!expected.empty() && expected[0] != ' ') expected = " " + expected;
    INFO("case " << i << ": text '" << inputs[i] << "'");
    CHECK(join_ids(ids) == expected);
    if (join_ids(ids) == expected) ++passed;
    // Detokenizing gives the text back with the space prefix.
    CHECK(pieces(tok, ids) == (inputs[i].empty() ? "" : " " + inputs[i]));
  }
  CHECK(passed == inputs.size());
}

TEST_CASE("stories260K vocab: metadata, warnings, round trip, byte fallback", "[tokenizer]") {
  std::vector<std::string> warnings;
  const Vocab v = load_vocab(std::string(V4_MODELS_DIR) + "/stories260K-f32.gguf", &warnings);
  REQUIRE(v.kind == v4::VocabKind::spm);
  CHECK(v.model_name == "llama");
  REQUIRE(v.n_tokens() == 512);
  CHECK(v.bos == 1);
  CHECK(v.eos == 2);
  CHECK(v.unk == 0);
  CHECK(v.sep == -1);
  CHECK(v.pad == -1);
  CHECK(v.add_bos);
  CHECK_FALSE(v.add_eos);
  CHECK(v.add_space_prefix);
  CHECK(v.is_eog(2));
  CHECK_FALSE(v.is_eog(1));
  CHECK_FALSE(v.is_eog(-1));
  CHECK(v.is_control(1));
  CHECK_FALSE(v.is_control(100));
  CHECK_FALSE(v.is_control(100000));

  auto warned_about = [&](const std::string& key) {
    for (const auto& w : warnings) {
      if (w.find(key) != std::string::npos && w.find("4294967295") != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  CHECK(warned_about("tokenizer.ggml.seperator_token_id"));
  CHECK(warned_about("tokenizer.ggml.padding_token_id"));
  CHECK(warnings.size() == 2);

  const SpmTokenizer tok(v);
  for (const std::string text :
       {"Once upon a time, there was a little girl named Lily.",
        "She liked to play outside.  Two spaces, then\nnew line!", "Hello world", "x"}) {
    std::vector<int32_t> ids;
    tok.tokenize(text, false, false, ids);
    INFO(text);
    REQUIRE(!ids.empty());
    CHECK(pieces(tok, ids) == " " + text);
  }

  SECTION("add_bos") {
    std::vector<int32_t> ids;
    tok.tokenize("Hello", true, false, ids);
    REQUIRE(ids.size() >= 2);
    CHECK(ids[0] == 1);
    CHECK(tok.piece(1).empty());
    CHECK(tok.piece(1, /*render_special=*/true) == "<s>");
    std::vector<int32_t> empty;
    tok.tokenize("", true, false, empty);
    CHECK(empty == std::vector<int32_t>{1});
    empty.clear();
    tok.tokenize("", false, false, empty);
    CHECK(empty.empty());
  }

  SECTION("byte fallback") {
    // ö and 日本 are not in this 512-token vocab (é is).
    for (const std::string text : {"\xC3\xB6", "\xE6\x97\xA5\xE6\x9C\xAC"}) {
      std::vector<int32_t> ids;
      tok.tokenize(text, false, false, ids);
      INFO(text);
      REQUIRE(ids.size() == text.size() + 1);
      CHECK(tok.piece(ids[0]) == " ");
      for (size_t i = 0; i < text.size(); ++i) {
        const int32_t expect = tok.byte_token(static_cast<uint8_t>(text[i]));
        REQUIRE(expect >= 0);
        CHECK(ids[i + 1] == expect);
        CHECK(v.type(ids[i + 1]) == TokenType::byte);
      }
      CHECK(pieces(tok, ids) == " " + text);
    }
  }

  SECTION("parse_special") {
    std::vector<int32_t> ids;
    tok.tokenize("<s>Hello", false, true, ids);
    REQUIRE(ids.size() >= 2);
    CHECK(ids[0] == 1);
    std::vector<int32_t> plain;
    tok.tokenize("Hello", false, false, plain);
    CHECK(std::vector<int32_t>(ids.begin() + 1, ids.end()) == plain);

    ids.clear();
    tok.tokenize("<s>Hello", false, false, ids);
    REQUIRE(!ids.empty());
    CHECK(std::find(ids.begin(), ids.end(), 1) == ids.end());
    CHECK(pieces(tok, ids) == " <s>Hello");

    ids.clear();
    tok.tokenize("Hi</s><s>", false, true, ids);
    REQUIRE(ids.size() >= 3);
    CHECK(ids[ids.size() - 2] == 2);
    CHECK(ids.back() == 1);
  }

  SECTION("bad ids") {
    CHECK(status_of([&] { tok.piece(512); }) == Status::invalid_arg);
    CHECK(status_of([&] { tok.piece(-1); }) == Status::invalid_arg);
  }
}

TEST_CASE("merges go best score first, not left to right", "[tokenizer]") {
  // "ab" and "bc" are both tokens. Left-to-right greedy would take "ab" + "c";
  // SentencePiece takes the better-scoring "bc" first, leaving "a" + "bc".
  const Vocab v = make_vocab({{"a", 0.f},
                              {"b", 0.f},
                              {"c", 0.f},
                              {"ab", -2.f},
                              {"bc", -1.f},
                              {"abc", -0.5f},
                              {"bcd", 5.f},
                              {"d", 0.f},
                              {"cd", -3.f}},
                             false);
  const SpmTokenizer tok(v);
  auto ids = [&](std::string_view text) {
    std::vector<int32_t> out;
    tok.tokenize(text, false, false, out);
    return out;
  };
  // "abc": "bc" (-1) beats "ab" (-2), then "a" + "bc" -> "abc".
  CHECK(ids("abc") == std::vector<int32_t>{5});
  // "abcd": "bc" (-1) beats "ab" (-2) and "cd" (-3); then "a"+"bc" -> "abc" (-0.5) and
  // "bc"+"d" -> "bcd" (5): "bcd" wins, leaving "a" + "bcd".
  CHECK(ids("abcd") == std::vector<int32_t>{0, 6});

  const Vocab w =
      make_vocab({{"a", 0.f}, {"b", 0.f}, {"c", 0.f}, {"ab", -2.f}, {"bc", -1.f}}, false);
  const SpmTokenizer tw(w);
  std::vector<int32_t> out;
  tw.tokenize("abc", false, false, out);
  CHECK(out == std::vector<int32_t>{0, 4});  // a + bc, not ab + c

  // Equal scores: the leftmost pair first ("ab" + "a", not "a" + "ba").
  const Vocab t = make_vocab({{"a", 0.f}, {"b", 0.f}, {"ab", -1.f}, {"ba", -1.f}}, false);
  const SpmTokenizer tt(t);
  out.clear();
  tt.tokenize("aba", false, false, out);
  CHECK(out == std::vector<int32_t>{2, 0});
  out.clear();
  tt.tokenize("bab", false, false, out);
  CHECK(out == std::vector<int32_t>{3, 1});
}

TEST_CASE("tokenizer edge cases on hand-built vocabs", "[tokenizer]") {
  SECTION("no byte tokens: unknown token per byte") {
    Vocab v = make_vocab({{"<unk>", 0.f}, {"a", 0.f}}, false);
    v.types[0] = TokenType::unknown;
    v.unk = 0;
    const SpmTokenizer tok(v);
    std::vector<int32_t> out;
    tok.tokenize("a\xC3\xA9", false, false, out);
    CHECK(out == std::vector<int32_t>{1, 0, 0});
    CHECK(tok.piece(0).empty());
  }
  SECTION("no byte tokens and no unk: error") {
    const Vocab v = make_vocab({{"a", 0.f}}, false);
    const SpmTokenizer tok(v);
    std::vector<int32_t> out;
    CHECK(status_of([&] { tok.tokenize("ab", false, false, out); }) == Status::invalid_arg);
  }
  SECTION("invalid UTF-8 bytes are their own symbols") {
    std::vector<std::pair<std::string, float>> toks = {{"a", 0.f}};
    for (int b = 0; b < 256; ++b) toks.push_back({fmt::format("<0x{:02X}>", b), 0.f});
    Vocab v = make_vocab(toks, false);
    for (int b = 0; b < 256; ++b) v.types[static_cast<size_t>(b) + 1] = TokenType::byte;
    const SpmTokenizer tok(v);
    std::vector<int32_t> out;
    // A truncated 3-byte sequence followed by 'a', then a stray continuation byte.
    const std::string text =
        "\xE6\x97"
        "a\x80";
    tok.tokenize(text, false, false, out);
    CHECK(out == std::vector<int32_t>{0xE6 + 1, 0x97 + 1, 0, 0x80 + 1});
    CHECK(pieces(tok, out) == text);
  }
  SECTION("text never becomes a control token") {
    Vocab v = make_vocab({{"x", 0.f}, {"y", 0.f}, {"xy", 0.f}, {"yx", -1.f}}, false);
    v.types[2] = TokenType::control;
    const SpmTokenizer tok(v);
    std::vector<int32_t> out;
    tok.tokenize("xy", false, false, out);
    CHECK(out == std::vector<int32_t>{0, 1});
    out.clear();
    tok.tokenize("xy", false, true, out);  // parse_special matches it as a special token
    CHECK(out == std::vector<int32_t>{2});
  }
  SECTION("remove_extra_whitespaces") {
    Vocab v = make_vocab({{"\xE2\x96\x81", 0.f}, {"a", 0.f}, {"b", 0.f}}, true);
    v.remove_extra_whitespaces = true;
    const SpmTokenizer tok(v);
    std::vector<int32_t> out;
    tok.tokenize("  a   b  ", false, false, out);
    CHECK(out == std::vector<int32_t>{0, 1, 0, 2});
    out.clear();
    tok.tokenize("   ", false, false, out);
    CHECK(out.empty());
  }
  SECTION("user-defined tokens render verbatim and split with parse_special") {
    Vocab v =
        make_vocab({{"\xE2\x96\x81", 0.f}, {"x", 0.f}, {"<tag>", 0.f}, {"<tag>long", 0.f}}, true);
    v.types[2] = TokenType::user_defined;
    v.types[3] = TokenType::user_defined;
    const SpmTokenizer tok(v);
    std::vector<int32_t> out;
    tok.tokenize("x<tag>longx<tag>", false, true, out);
    // Each text run after a special token gets its own space prefix (llama.cpp).
    CHECK(out == std::vector<int32_t>{0, 1, 3, 0, 1, 2});
    CHECK(tok.piece(3) == "<tag>long");
  }
  SECTION("BPE and empty vocabs") {
    Vocab b = make_vocab({{"a", 0.f}}, false);
    b.kind = v4::VocabKind::bpe;
    const SpmTokenizer tb(b);
    std::vector<int32_t> out;
    CHECK(status_of([&] { tb.tokenize("a", false, false, out); }) == Status::unsupported);
    const Vocab none;
    const SpmTokenizer tn(none);
    CHECK(status_of([&] { tn.tokenize("a", false, false, out); }) == Status::invalid_arg);
  }
  SECTION("unfinalized vocab is rejected") {
    Vocab v;
    v.kind = v4::VocabKind::spm;
    v.tokens = {"a"};
    CHECK(status_of([&] { SpmTokenizer t(v); }) == Status::invalid_arg);
  }
}

TEST_CASE("Vocab::from_gguf edge cases", "[tokenizer]") {
  auto load = [](const MiniGguf& g, std::vector<std::string>* warnings = nullptr) {
    const std::vector<uint8_t> bytes = g.bytes();
    auto f = v4::gguf::File::from_memory(bytes.data(), bytes.size(), "mini.gguf");
    return Vocab::from_gguf(*f, [&](const std::string& w) {
      if (warnings) warnings->push_back(w);
    });
  };

  SECTION("absent model -> none") {
    MiniGguf g;
    g.set_string("general.architecture", "llama");
    const Vocab v = load(g);
    CHECK(v.kind == v4::VocabKind::none);
    CHECK(v.n_tokens() == 0);
  }
  SECTION("gpt2 loads for metadata; tokenizing is unsupported") {
    MiniGguf g;
    g.set_string("tokenizer.ggml.model", "gpt2");
    g.set_strings("tokenizer.ggml.tokens", {"a", "b", "<|endoftext|>"});
    g.set_u32("tokenizer.ggml.eos_token_id", 2);
    const Vocab v = load(g);
    CHECK(v.kind == v4::VocabKind::bpe);
    CHECK(v.n_tokens() == 3);
    CHECK(v.eos == 2);
    CHECK_FALSE(v.add_bos);
    CHECK_FALSE(v.add_space_prefix);
    const SpmTokenizer tok(v);
    std::vector<int32_t> out;
    try {
      tok.tokenize("ab", false, false, out);
      FAIL("expected an error");
    } catch (const v4::Error& e) {
      CHECK(e.status() == Status::unsupported);
      CHECK(std::string(e.what()).find("SentencePiece cannot tokenize it") !=
            std::string::npos);
    }
  }
  SECTION("missing tokens") {
    MiniGguf g;
    g.set_string("tokenizer.ggml.model", "llama");
    CHECK(status_of([&] { load(g); }) == Status::bad_format);
  }
  SECTION("unknown model") {
    MiniGguf g;
    g.set_string("tokenizer.ggml.model", "rwkv");
    g.set_strings("tokenizer.ggml.tokens", kTinyTokens);
    CHECK(status_of([&] { load(g); }) == Status::unsupported);
  }
  SECTION("count mismatches name the key") {
    for (const std::string key : {"tokenizer.ggml.scores", "tokenizer.ggml.token_type"}) {
      MiniGguf g;
      g.set_string("tokenizer.ggml.model", "llama");
      g.set_strings("tokenizer.ggml.tokens", kTinyTokens);
      if (key == "tokenizer.ggml.scores") {
        g.set_f32s(key, {0.f, 1.f});
      } else {
        g.set_i32s(key, {1, 1, 1});
      }
      try {
        load(g);
        FAIL("expected an error");
      } catch (const v4::Error& e) {
        CHECK(e.status() == Status::bad_format);
        CHECK(std::string(e.what()).find(key) != std::string::npos);
      }
    }
  }
  SECTION("ids, defaults and flags") {
    MiniGguf g;
    g.set_string("tokenizer.ggml.model", "llama");
    g.set_strings("tokenizer.ggml.tokens", kTinyTokens);
    g.set_f32s("tokenizer.ggml.scores", {0, 0, 0, -1, -2, -3});
    g.set_i32s("tokenizer.ggml.token_type", {2, 3, 3, 1, 1, 9});
    g.set_u32("tokenizer.ggml.bos_token_id", 1);
    g.set_i32("tokenizer.ggml.eos_token_id", 2);
    g.set_i32("tokenizer.ggml.eot_token_id", -1);
    g.set_u32("tokenizer.ggml.eom_token_id", 6);
    g.set_bool("tokenizer.ggml.add_space_prefix", false);
    g.set_bool("tokenizer.ggml.add_eos_token", true);
    std::vector<std::string> warnings;
    const Vocab v = load(g, &warnings);
    CHECK(v.bos == 1);
    CHECK(v.eos == 2);
    CHECK(v.eot == -1);
    CHECK(v.eom == -1);
    CHECK(v.add_bos);  // spm default
    CHECK(v.add_eos);
    CHECK_FALSE(v.add_space_prefix);
    CHECK_FALSE(v.remove_extra_whitespaces);
    CHECK(v.scores[5] == -3.f);
    CHECK(v.types[5] == TokenType::undefined);  // 9 is not a token type
    CHECK(v.find("a") == 4);
    CHECK(v.find("zz") == -1);
    // eot (-1), eom (6) and the bad token type each warn.
    CHECK(warnings.size() == 3);
  }
}

TEST_CASE("Utf8Stream holds partial code points", "[tokenizer]") {
  Utf8Stream s;
  const std::string ri = "\xE6\x97\xA5";  // 日
  CHECK(s.push(ri.substr(0, 1)).empty());
  CHECK(s.pending() == 1);
  CHECK(s.push(ri.substr(1, 1)).empty());
  CHECK(s.push(ri.substr(2, 1)) == ri);
  CHECK(s.pending() == 0);
  CHECK(s.flush().empty());

  const std::string fffd = "\xEF\xBF\xBD";
  CHECK(s.push("a\x80"
               "b") == "a" + fffd + "b");  // stray continuation
  CHECK(s.push("\xFF") == fffd);           // never valid
  CHECK(s.push("\xE6\x97"
               "x") == fffd + "x");                     // truncated, then ASCII
  CHECK(s.push("\xC0\xAF") == fffd + fffd);             // overlong form
  CHECK(s.push("\xED\xA0\x80") == fffd + fffd + fffd);  // surrogate
  CHECK(s.push("\xF0\x9F\x98").empty());                // 3 of 4 bytes of 😀
  CHECK(s.flush() == fffd);                             // dangling prefix
  CHECK(s.pending() == 0);
  CHECK(s.push("\xF0\x9F\x98\x80") == "\xF0\x9F\x98\x80");
  CHECK(s.push("\xE6").empty());
  s.reset();
  CHECK(s.push("ok") == "ok");

  // Appending form reuses the caller's buffer.
  std::string out;
  out.reserve(64);
  const char* data = out.data();
  for (char c : std::string("h\xC3\xA9llo " + ri)) s.push(std::string_view(&c, 1), out);
  CHECK(out == "h\xC3\xA9llo " + ri);
  CHECK(out.data() == data);
}
