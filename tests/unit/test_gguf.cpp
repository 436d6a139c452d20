// GGUF reader/writer: the bundled files, a writer round trip, and hostile files built by
// patching one field of a small writer-produced file.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lib/core/error.h"
#include "lib/model/gguf.h"

namespace fs = std::filesystem;
using v4::DType;
using v4::Status;
using v4::gguf::File;
using v4::gguf::KeyValue;
using v4::gguf::TensorInfo;
using v4::gguf::ValueType;
using v4::gguf::Writer;
using Bytes = std::vector<uint8_t>;

namespace {

const std::string kModel = std::string(V4_MODELS_DIR) + "/stories260K-f32.gguf";
const std::string kVocab = std::string(V4_TEST_DATA_DIR) + "/ggml-vocab-llama-spm.gguf";

Bytes read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A scratch directory removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string t = (fs::temp_directory_path() / "v4-gguf-test-XXXXXX").string();
    REQUIRE(::mkdtemp(t.data()) != nullptr);
    path = t;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<std::string> entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path().filename().string());
    return out;
  }
};

// ---- The minimal valid file every hostile test patches ------------------------------
// kvs:     general.architecture = "llama", key.aaa = u32 7, key.bbb = u32 8,
//          list.f32 = [1, 2, 3] (f32 array)
// tensors: tensor.a  F32  ne {8, 2}  (64 bytes, offset 0)
//          tensor.b  F32  ne {4}     (16 bytes, offset 64)
//          tensor.q  Q8_0 ne {32, 2} (68 bytes, offset 96)
Writer minimal_writer() {
  Writer w;
  w.set_string("general.architecture", "llama");
  w.set_u32("key.aaa", 7);
  w.set_u32("key.bbb", 8);
  w.set_array_f32("list.f32", {1.0f, 2.0f, 3.0f});
  std::vector<float> a(16), b(4);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<float>(i);
  for (size_t i = 0; i < b.size(); ++i) b[i] = -static_cast<float>(i);
  w.add_tensor("tensor.a", DType::F32, {8, 2}, a.data(), a.size() * 4);
  w.add_tensor("tensor.b", DType::F32, {4}, b.data(), b.size() * 4);
  Bytes q(68, 0x11);
  w.add_tensor("tensor.q", DType::Q8_0, {32, 2}, q.data(), q.size());
  return w;
}
Bytes minimal() { return minimal_writer().to_bytes(); }

// Offset just past the length-prefixed string `s` (its first occurrence).
size_t after(const Bytes& f, std::string_view s) {
  Bytes pat(8);
  const uint64_t n = s.size();
  std::memcpy(pat.data(), &n, 8);
  pat.insert(pat.end(), s.begin(), s.end());
  const auto it = std::search(f.begin(), f.end(), pat.begin(), pat.end());
  REQUIRE(it != f.end());
  return static_cast<size_t>(it - f.begin()) + pat.size();
}
// Offset of the length prefix of the string `s`.
size_t at_string(const Bytes& f, std::string_view s) { return after(f, s) - s.size() - 8; }

void put32(Bytes& f, size_t pos, uint32_t v) {
  REQUIRE(pos + 4 <= f.size());
  std::memcpy(f.data() + pos, &v, 4);
}
void put64(Bytes& f, size_t pos, uint64_t v) {
  REQUIRE(pos + 8 <= f.size());
  std::memcpy(f.data() + pos, &v, 8);
}

// Field offsets of a tensor info (n_dims as written by the writer).
struct InfoAt {
  size_t n_dims, ne, type, offset;
};
InfoAt tensor_info(const Bytes& f, std::string_view name, int n_dims) {
  InfoAt r{};
  r.n_dims = after(f, name);
  r.ne = r.n_dims + 4;
  r.type = r.ne + 8 * static_cast<size_t>(n_dims);
  r.offset = r.type + 4;
  return r;
}

// Opening `f` must fail with bad_format and a message containing `what`.
void expect_bad(const Bytes& f, const std::string& what) {
  try {
    File::from_memory(f.data(), f.size(), "hostile.gguf");
  } catch (const v4::Error& e) {
    INFO(e.what());
    CHECK(e.status() == Status::bad_format);
    CHECK_THAT(e.what(), Catch::Contains("hostile.gguf"));
    CHECK_THAT(e.what(), Catch::Contains(what));
    return;
  }
  FAIL("opened a corrupt file without an error; expected: " << what);
}

}  // namespace

// ---------------------------------------------------------------------------
// Bundled files
// ---------------------------------------------------------------------------

TEST_CASE("gguf: the bundled model opens and reads", "[gguf]") {
  const auto f = File::open(kModel);
  CHECK(f->path() == kModel);
  CHECK(f->version() == 3);
  CHECK(f->kvs().size() == 19);
  CHECK(f->tensors().size() == 48);
  CHECK(f->alignment() == 32);
  CHECK(f->data_offset() == 14176);  // header ends at 14152, padded to 32
  CHECK(f->file_size() == fs::file_size(kModel));
  CHECK(f->get_u32("llama.embedding_length") == 64u);
  CHECK(f->get_u32("llama.block_count") == 5u);
  CHECK(f->get_string("general.architecture") == std::string_view("llama"));
  CHECK(f->get_f32("llama.attention.layer_norm_rms_epsilon").value() == Approx(1e-5f));
  CHECK_FALSE(f->get_u32("no.such.key").has_value());
  CHECK(f->find("no.such.key") == nullptr);

  const KeyValue* tokens = f->get_array("tokenizer.ggml.tokens", ValueType::string);
  REQUIRE(tokens != nullptr);
  CHECK(tokens->count == 512);
  REQUIRE(tokens->strings.size() == 512);
  CHECK(tokens->strings[0] == "<unk>");
  CHECK(tokens->strings[1] == "<s>");
  CHECK(tokens->strings[2] == "</s>");
  const KeyValue* types = f->get_array("tokenizer.ggml.token_type", ValueType::i32);
  REQUIRE(types != nullptr);
  CHECK(File::array_int(*types, 0) == 2);
  CHECK(File::array_int(*types, 1) == 3);
  const KeyValue* scores = f->get_array("tokenizer.ggml.scores", ValueType::f32);
  REQUIRE(scores != nullptr);
  CHECK(File::array_f32(*scores, 0) == 0.0f);

  const TensorInfo* t = f->find_tensor("blk.0.ffn_down.weight");
  REQUIRE(t != nullptr);
  CHECK(t->n_dims == 2);
  CHECK(t->ne[0] == 172);
  CHECK(t->ne[1] == 64);
  CHECK(t->ne[2] == 1);
  CHECK(t->type == DType::F32);
  CHECK(t->nbytes == 172u * 64u * 4u);
  CHECK(t->offset == 355840);
  CHECK(t->data == f->base() + f->data_offset() + t->offset);
  CHECK(t->data + t->nbytes <= f->base() + f->file_size());
  const TensorInfo* emb = f->find_tensor("token_embd.weight");
  REQUIRE(emb != nullptr);
  CHECK(emb->ne[0] == 64);
  CHECK(emb->ne[1] == 512);
  CHECK(emb->n_elements() == 64 * 512);
  CHECK(f->find_tensor("blk.99.nothing") == nullptr);

  // The same bytes through from_memory give the same view.
  const Bytes bytes = read_all(kModel);
  const auto m = File::from_memory(bytes.data(), bytes.size(), "model-in-memory");
  CHECK(m->kvs().size() == 19);
  CHECK(m->tensors().size() == 48);
  CHECK(std::memcmp(m->find_tensor("blk.0.ffn_down.weight")->data, t->data, t->nbytes) == 0);
}

TEST_CASE("gguf: a vocab-only file without tensors or trailing padding opens", "[gguf]") {
  const auto f = File::open(kVocab);
  CHECK(f->kvs().size() == 22);
  CHECK(f->tensors().empty());
  CHECK(f->get_bool("tokenizer.ggml.add_bos_token") == true);
  CHECK(f->get_bool("tokenizer.ggml.add_eos_token") == false);
  const KeyValue* tokens = f->get_array("tokenizer.ggml.tokens", ValueType::string);
  REQUIRE(tokens != nullptr);
  CHECK(tokens->strings.size() == 32000);
  CHECK(f->get_u32("llama.vocab_size") == 32000u);
}

TEST_CASE("gguf: typed getters check types and ranges", "[gguf]") {
  const auto f = File::open(kModel);
  try {
    (void)f->get_u32("general.architecture");
    FAIL("get_u32 on a string did not throw");
  } catch (const v4::Error& e) {
    CHECK(e.status() == Status::bad_format);
    CHECK(std::string(e.what()) ==
          kModel + ": key 'general.architecture' has type string, expected an unsigned integer");
  }
  CHECK_THROWS_AS(f->get_string("llama.block_count"), v4::Error);
  CHECK_THROWS_AS(f->get_f32("llama.block_count"), v4::Error);
  CHECK_THROWS_AS(f->get_bool("llama.block_count"), v4::Error);
  CHECK_THROWS_AS(f->get_u32("tokenizer.ggml.tokens"), v4::Error);
  CHECK_THROWS_AS(f->get_array("tokenizer.ggml.tokens", ValueType::f32), v4::Error);
  CHECK_THROWS_AS(f->get_array("llama.block_count", ValueType::u32), v4::Error);
  CHECK(f->get_int("llama.block_count") == 5);
  CHECK(f->get_uint("tokenizer.ggml.padding_token_id") == 4294967295u);

  Writer w;
  w.set_u64("big", uint64_t{1} << 40);
  w.set_i32("neg", -3);
  w.set_i32("pos", 12);
  w.set_u64("huge", ~uint64_t{0});
  const Bytes b = w.to_bytes();
  const auto g = File::from_memory(b.data(), b.size(), "getters.gguf");
  CHECK(g->get_uint("big") == uint64_t{1} << 40);
  CHECK_THROWS_WITH(g->get_u32("big"), Catch::Contains("out of range for u32"));
  CHECK_THROWS_WITH(g->get_uint("neg"), Catch::Contains("'neg'"));
  CHECK(g->get_int("neg") == -3);
  CHECK(g->get_u32("pos") == 12u);
  CHECK_THROWS_AS(g->get_int("huge"), v4::Error);
}

TEST_CASE("gguf: open() rejects missing files, directories and empty files", "[gguf]") {
  TempDir dir;
  const std::string missing = (dir.path / "missing.gguf").string();
  try {
    File::open(missing);
    FAIL("opened a missing file");
  } catch (const v4::Error& e) {
    CHECK(e.status() == Status::io);
    CHECK_THAT(e.what(), Catch::Contains(missing));
  }
  try {
    File::open(dir.path.string());
    FAIL("opened a directory");
  } catch (const v4::Error& e) {
    CHECK(e.status() == Status::io);
    CHECK_THAT(e.what(), Catch::Contains("directory"));
  }
  const std::string fifo = (dir.path / "fifo.gguf").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  try {
    File::open(fifo);  // must not block waiting for a writer
    FAIL("opened a FIFO");
  } catch (const v4::Error& e) {
    CHECK(e.status() == Status::io);
    CHECK_THAT(e.what(), Catch::Contains("not a regular file"));
  }
  const std::string empty = (dir.path / "empty.gguf").string();
  std::ofstream(empty).close();
  try {
    File::open(empty);
    FAIL("opened an empty file");
  } catch (const v4::Error& e) {
    CHECK(e.status() == Status::bad_format);
    CHECK_THAT(e.what(), Catch::Contains("empty"));
  }
}

// ---------------------------------------------------------------------------
// Writer round trips
// ---------------------------------------------------------------------------

TEST_CASE("gguf: writer round trip of every value type and F32/F16/Q8_0 tensors", "[gguf]") {
  Writer w;
  w.set_alignment(64);
  w.set_u32("v.u32", 0xdeadbeefu);
  w.set_i32("v.i32", -123456);
  w.set_u64("v.u64", 0x0123456789abcdefull);
  w.set_f32("v.f32", 3.25f);
  w.set_bool("v.true", true);
  w.set_bool("v.false", false);
  w.set_string("v.string", "hello, gguf");
  w.set_string("v.empty_string", "");
  w.set_array_strings("a.strings", {"a", "", "ünïcode", std::string(300, 'x')});
  w.set_array_f32("a.f32", {1.5f, -2.0f, 1e30f});
  w.set_array_i32("a.i32", {-1, 0, 2147483647});
  w.set_array_i32("a.empty", {});
  w.set_u32("v.replaced", 1);
  w.set_u32("v.replaced", 2);  // the second set replaces the first

  // The remaining scalar and array types go through copy_kv.
  auto scalar = [](const char* key, ValueType t) {
    KeyValue kv;
    kv.key = key;
    kv.type = t;
    return kv;
  };
  KeyValue kv = scalar("v.u8", ValueType::u8);
  kv.u = 250;
  w.copy_kv(kv);
  kv = scalar("v.i8", ValueType::i8);
  kv.i = -100;
  w.copy_kv(kv);
  kv = scalar("v.u16", ValueType::u16);
  kv.u = 65000;
  w.copy_kv(kv);
  kv = scalar("v.i16", ValueType::i16);
  kv.i = -32000;
  w.copy_kv(kv);
  kv = scalar("v.i64", ValueType::i64);
  kv.i = -(int64_t{1} << 50);
  w.copy_kv(kv);
  kv = scalar("v.f64", ValueType::f64);
  kv.f = 1.0 / 3.0;
  w.copy_kv(kv);
  const uint16_t u16s[3] = {1, 2, 65535};
  kv = scalar("a.u16", ValueType::array);
  kv.elem_type = ValueType::u16;
  kv.count = 3;
  kv.array_data = reinterpret_cast<const uint8_t*>(u16s);
  w.copy_kv(kv);
  const double f64s[2] = {0.5, -7.25};
  kv = scalar("a.f64", ValueType::array);
  kv.elem_type = ValueType::f64;
  kv.count = 2;
  kv.array_data = reinterpret_cast<const uint8_t*>(f64s);
  w.copy_kv(kv);
  const uint8_t bools[3] = {1, 0, 1};
  kv = scalar("a.bool", ValueType::array);
  kv.elem_type = ValueType::boolean;
  kv.count = 3;
  kv.array_data = bools;
  w.copy_kv(kv);

  std::vector<float> f32(3 * 5);
  for (size_t i = 0; i < f32.size(); ++i) f32[i] = 0.25f * static_cast<float>(i) - 1.0f;
  std::vector<uint16_t> f16 = {0x3c00, 0xbc00, 0x0000, 0x7bff, 0x0001, 0x8000};
  Bytes q8(34 * 4);
  for (size_t i = 0; i < q8.size(); ++i) q8[i] = static_cast<uint8_t>(i * 7 + 3);
  w.add_tensor("t.f32", DType::F32, {3, 5}, f32.data(), f32.size() * 4);
  w.add_tensor("t.f16", DType::F16, {2, 1, 3}, f16.data(), f16.size() * 2);
  w.add_tensor("t.q8_0", DType::Q8_0, {64, 1, 1, 2}, q8.data(), q8.size());

  const Bytes bytes = w.to_bytes();
  CHECK(bytes.size() % 64 == 0);
  const auto f = File::from_memory(bytes.data(), bytes.size(), "roundtrip.gguf");
  CHECK(f->version() == 3);
  CHECK(f->alignment() == 64);
  CHECK(f->data_offset() % 64 == 0);
  CHECK(f->get_u32("general.alignment") == 64u);
  CHECK(f->kvs().size() == 23);  // 22 keys set + general.alignment

  CHECK(f->get_u32("v.u32") == 0xdeadbeefu);
  CHECK(f->find("v.i32")->type == ValueType::i32);
  CHECK(f->get_int("v.i32") == -123456);
  CHECK(f->get_uint("v.u64") == 0x0123456789abcdefull);
  CHECK(f->get_f32("v.f32") == 3.25f);
  CHECK(f->get_bool("v.true") == true);
  CHECK(f->get_bool("v.false") == false);
  CHECK(f->get_string("v.string") == std::string_view("hello, gguf"));
  CHECK(f->get_string("v.empty_string") == std::string_view(""));
  CHECK(f->get_u32("v.replaced") == 2u);
  CHECK(f->find("v.u8")->type == ValueType::u8);
  CHECK(f->get_u32("v.u8") == 250u);
  CHECK(f->find("v.i8")->type == ValueType::i8);
  CHECK(f->get_int("v.i8") == -100);
  CHECK(f->find("v.u16")->type == ValueType::u16);
  CHECK(f->get_u32("v.u16") == 65000u);
  CHECK(f->find("v.i16")->type == ValueType::i16);
  CHECK(f->get_int("v.i16") == -32000);
  CHECK(f->get_int("v.i64") == -(int64_t{1} << 50));
  CHECK(f->find("v.f64")->type == ValueType::f64);
  CHECK(f->find("v.f64")->f == 1.0 / 3.0);

  const KeyValue* s = f->get_array("a.strings", ValueType::string);
  REQUIRE(s != nullptr);
  REQUIRE(s->strings.size() == 4);
  CHECK(s->strings[0] == "a");
  CHECK(s->strings[1].empty());
  CHECK(s->strings[2] == "ünïcode");
  CHECK(s->strings[3] == std::string(300, 'x'));
  const KeyValue* af = f->get_array("a.f32", ValueType::f32);
  REQUIRE(af != nullptr);
  REQUIRE(af->count == 3);
  CHECK(File::array_f32(*af, 0) == 1.5f);
  CHECK(File::array_f32(*af, 1) == -2.0f);
  CHECK(File::array_f32(*af, 2) == 1e30f);
  CHECK_THROWS_AS(File::array_f32(*af, 3), v4::Error);
  CHECK_THROWS_AS(File::array_int(*af, 0), v4::Error);
  const KeyValue* ai = f->get_array("a.i32", ValueType::i32);
  REQUIRE(ai != nullptr);
  REQUIRE(ai->count == 3);
  CHECK(File::array_int(*ai, 0) == -1);
  CHECK(File::array_int(*ai, 2) == 2147483647);
  CHECK(f->get_array("a.empty", ValueType::i32)->count == 0);
  const KeyValue* au = f->get_array("a.u16", ValueType::u16);
  REQUIRE(au != nullptr);
  CHECK(File::array_int(*au, 2) == 65535);
  const KeyValue* ad = f->get_array("a.f64", ValueType::f64);
  REQUIRE(ad != nullptr);
  CHECK(File::array_f32(*ad, 1) == -7.25f);
  const KeyValue* ab = f->get_array("a.bool", ValueType::boolean);
  REQUIRE(ab != nullptr);
  CHECK(File::array_int(*ab, 0) == 1);
  CHECK(File::array_int(*ab, 1) == 0);

  REQUIRE(f->tensors().size() == 3);
  const TensorInfo* t1 = f->find_tensor("t.f32");
  const TensorInfo* t2 = f->find_tensor("t.f16");
  const TensorInfo* t3 = f->find_tensor("t.q8_0");
  REQUIRE((t1 && t2 && t3));
  CHECK(t1->type == DType::F32);
  CHECK(t1->n_dims == 2);
  CHECK((t1->ne[0] == 3 && t1->ne[1] == 5));
  CHECK(t2->type == DType::F16);
  CHECK(t2->n_dims == 3);
  CHECK((t2->ne[0] == 2 && t2->ne[1] == 1 && t2->ne[2] == 3));
  CHECK(t3->type == DType::Q8_0);
  CHECK(t3->n_dims == 4);
  CHECK((t3->ne[0] == 64 && t3->ne[3] == 2));
  for (const TensorInfo& t : f->tensors()) {
    CHECK(t.offset % 64 == 0);
    CHECK(static_cast<size_t>(t.data - f->base()) % 64 == 0);
  }
  REQUIRE(t1->nbytes == f32.size() * 4);
  REQUIRE(t2->nbytes == f16.size() * 2);
  REQUIRE(t3->nbytes == q8.size());
  CHECK(std::memcmp(t1->data, f32.data(), t1->nbytes) == 0);
  CHECK(std::memcmp(t2->data, f16.data(), t2->nbytes) == 0);
  CHECK(std::memcmp(t3->data, q8.data(), t3->nbytes) == 0);

  // write_file produces the same bytes and leaves no temporary file behind.
  TempDir dir;
  const std::string path = (dir.path / "out.gguf").string();
  w.write_file(path);
  CHECK(read_all(path) == bytes);
  CHECK(dir.entries() == std::vector<std::string>{"out.gguf"});
  w.write_file(path);  // overwriting an existing file works too
  CHECK(dir.entries() == std::vector<std::string>{"out.gguf"});
  const auto g = File::open(path);
  CHECK(g->tensors().size() == 3);
  CHECK(std::memcmp(g->find_tensor("t.q8_0")->data, q8.data(), q8.size()) == 0);
}

TEST_CASE("gguf: copying the bundled model through the writer preserves everything", "[gguf]") {
  const auto f = File::open(kModel);
  Writer w;
  for (const KeyValue& kv : f->kvs()) w.copy_kv(kv);
  for (const TensorInfo& t : f->tensors())
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes);
  const Bytes b = w.to_bytes();
  // Same layout rules as the original writer (llama.cpp's): the bytes are identical.
  CHECK(b == read_all(kModel));
  const auto g = File::from_memory(b.data(), b.size(), "copy.gguf");
  REQUIRE(g->kvs().size() == f->kvs().size());
  for (size_t i = 0; i < f->kvs().size(); ++i) {
    const KeyValue& x = f->kvs()[i];
    const KeyValue& y = g->kvs()[i];
    CHECK(x.key == y.key);
    CHECK(x.type == y.type);
    CHECK(x.u == y.u);
    CHECK(x.i == y.i);
    CHECK(x.str == y.str);
    CHECK(x.count == y.count);
    CHECK(x.strings == y.strings);
  }
  REQUIRE(g->tensors().size() == f->tensors().size());
  for (size_t i = 0; i < f->tensors().size(); ++i) {
    const TensorInfo& x = f->tensors()[i];
    const TensorInfo& y = g->tensors()[i];
    CHECK(x.name == y.name);
    CHECK(x.offset == y.offset);
    REQUIRE(x.nbytes == y.nbytes);
    CHECK(std::memcmp(x.data, y.data, x.nbytes) == 0);
  }
}

TEST_CASE("gguf: a file without tensors has no data section padding", "[gguf]") {
  // Found by fuzz_gguf: a header-only file with alignment 2^30 was copied through the
  // writer, which padded it to 1 GiB.
  Writer w;
  w.set_alignment(size_t{1} << 30);
  w.set_string("general.name", "no tensors");
  const Bytes b = w.to_bytes();
  CHECK(b.size() < 256);
  const auto f = File::from_memory(b.data(), b.size(), "no-tensors.gguf");
  CHECK(f->alignment() == size_t{1} << 30);
  CHECK(f->tensors().empty());
  CHECK(f->data_offset() == b.size());
  CHECK(f->get_string("general.name") == std::string_view("no tensors"));
}

TEST_CASE("gguf: writer rejects bad input and reports write errors", "[gguf]") {
  Writer w;
  const float x[4] = {};
  CHECK_THROWS_AS(w.set_alignment(0), v4::Error);
  CHECK_THROWS_AS(w.set_alignment(48), v4::Error);
  CHECK_THROWS_AS(w.set_u64("general.alignment", 64), v4::Error);  // must be u32
  CHECK_THROWS_AS(w.set_string("", "empty key"), v4::Error);
  CHECK_THROWS_AS(w.add_tensor("", DType::F32, {4}, x, 16), v4::Error);
  CHECK_THROWS_AS(w.add_tensor("t", DType::F32, {4}, x, 12), v4::Error);  // wrong size
  CHECK_THROWS_AS(w.add_tensor("t", DType::F32, {0}, x, 0), v4::Error);   // empty dim
  CHECK_THROWS_AS(w.add_tensor("t", DType::F32, {1, 1, 1, 1, 4}, x, 16), v4::Error);
  CHECK_THROWS_AS(w.add_tensor("t", DType::Q8_0, {33}, x, 34), v4::Error);  // not a block
  w.add_tensor("t", DType::F32, {4}, x, 16);
  CHECK_THROWS_AS(w.add_tensor("t", DType::F32, {4}, x, 16), v4::Error);  // duplicate

  TempDir dir;
  const std::string bad = (dir.path / "no-such-dir" / "out.gguf").string();
  try {
    w.write_file(bad);
    FAIL("wrote into a missing directory");
  } catch (const v4::Error& e) {
    CHECK(e.status() == Status::io);
    CHECK_THAT(e.what(), Catch::Contains(bad));
    CHECK_THAT(e.what(), Catch::Contains("No such file or directory"));
  }
  CHECK(dir.entries().empty());
}

TEST_CASE("gguf: a write that fails midway (file size limit) removes the temp file", "[gguf]") {
  // In a child process: RLIMIT_FSIZE makes write() fail with EFBIG, as a full disk would
  // with ENOSPC, without touching the rest of the test run.
  TempDir dir;
  const std::string path = (dir.path / "big.gguf").string();
  Writer w;
  std::vector<float> data(64 * 1024);
  w.add_tensor("big", DType::F32, {static_cast<int64_t>(data.size())}, data.data(),
               data.size() * 4);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = {4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &lim) != 0) ::_exit(10);
    try {
      w.write_file(path);
    } catch (const v4::Error& e) {
      const std::string m = e.what();
      if (e.status() != Status::io) ::_exit(11);
      if (m.find(path) == std::string::npos) ::_exit(12);
      if (m.find(std::strerror(EFBIG)) == std::string::npos) ::_exit(13);
      ::_exit(0);
    }
    ::_exit(14);  // no error
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(dir.entries().empty());  // neither the final file nor the temporary one
}

// ---------------------------------------------------------------------------
// Hostile files
// ---------------------------------------------------------------------------

TEST_CASE("gguf: the minimal file is valid and its fields are where the tests patch", "[gguf]") {
  const Bytes f = minimal();
  const auto g = File::from_memory(f.data(), f.size(), "minimal.gguf");
  REQUIRE(g->tensors().size() == 3);
  REQUIRE(g->kvs().size() == 4);
  const InfoAt a = tensor_info(f, "tensor.a", 2);
  const InfoAt b = tensor_info(f, "tensor.b", 1);
  uint64_t v = 0;
  std::memcpy(&v, f.data() + b.offset, 8);
  CHECK(v == 64);
  std::memcpy(&v, f.data() + a.ne + 8, 8);
  CHECK(v == 2);
  uint32_t t = 0;
  std::memcpy(&t, f.data() + a.type, 4);
  CHECK(t == 0);
}

TEST_CASE("gguf: a file cut at any byte is rejected", "[gguf]") {
  SECTION("the minimal file, every byte") {
    const Bytes f = minimal();
    const auto g = File::from_memory(f.data(), f.size(), "x");
    size_t end = 0;  // end of the last tensor's data; the padding after it is optional
    for (const TensorInfo& t : g->tensors())
      end = std::max<size_t>(end, g->data_offset() + t.offset + t.nbytes);
    for (size_t n = 0; n < f.size(); ++n) {
      INFO("cut at " << n);
      if (n < end)
        expect_bad(Bytes(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n)), "");
      else
        CHECK_NOTHROW(File::from_memory(f.data(), n, "x"));
    }
  }
  SECTION("the bundled model, every KiB and every byte of the first 512") {
    const Bytes f = read_all(kModel);
    const auto g = File::from_memory(f.data(), f.size(), "x");
    size_t end = 0;
    for (const TensorInfo& t : g->tensors())
      end = std::max<size_t>(end, g->data_offset() + t.offset + t.nbytes);
    REQUIRE(end == f.size());  // no trailing padding: every shorter cut must fail
    auto cut = [&](size_t n) {
      INFO("cut at " << n);
      // A copy of exactly n bytes, so a sanitizer sees any read past the cut.
      const Bytes c(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
      expect_bad(c, "");
    };
    for (size_t n = 0; n < 512; ++n) cut(n);
    for (size_t n = 1024; n < f.size(); n += 1024) cut(n);
    cut(f.size() - 1);
  }
}

TEST_CASE("gguf: hostile headers", "[gguf]") {
  Bytes f = minimal();
  SECTION("bad magic") {
    f[0] = 'G', f[1] = 'G', f[2] = 'M', f[3] = 'L';
    expect_bad(f, "bad magic 'GGML'");
  }
  SECTION("version 1") {
    put32(f, 4, 1);
    expect_bad(f, "unsupported GGUF version 1, expected 2 or 3");
  }
  SECTION("version 99") {
    put32(f, 4, 99);
    expect_bad(f, "unsupported GGUF version 99");
  }
  SECTION("version 2 is accepted") {
    put32(f, 4, 2);
    CHECK(File::from_memory(f.data(), f.size(), "v2")->version() == 2);
  }
  SECTION("n_tensors = 2^62") {
    put64(f, 8, uint64_t{1} << 62);
    expect_bad(f, "tensor count 4611686018427387904 cannot fit");
  }
  SECTION("n_tensors slightly too big for the bytes left after the metadata") {
    put64(f, 8, 12);
    expect_bad(f, "");
  }
  SECTION("n_kv = 2^62") {
    put64(f, 16, uint64_t{1} << 62);
    expect_bad(f, "metadata key/value count 4611686018427387904 cannot fit");
  }
  SECTION("n_kv = 2^64 - 1") {
    put64(f, 16, ~uint64_t{0});
    expect_bad(f, "cannot fit");
  }
}

TEST_CASE("gguf: hostile metadata", "[gguf]") {
  Bytes f = minimal();
  SECTION("a key length past the end of the file") {
    put64(f, at_string(f, "key.aaa"), f.size());
    expect_bad(f, "key of metadata entry 1 at offset");
  }
  SECTION("a string value length of 2^63") {
    put64(f, after(f, "general.architecture") + 4, uint64_t{1} << 63);
    expect_bad(f, "value of key 'general.architecture' at offset");
  }
  SECTION("an empty key") {
    // Length 0 and the key's 7 bytes removed, so the rest of the file still lines up.
    const size_t at = at_string(f, "key.aaa");
    put64(f, at, 0);
    f.erase(f.begin() + static_cast<std::ptrdiff_t>(at + 8),
            f.begin() + static_cast<std::ptrdiff_t>(at + 15));
    expect_bad(f, "metadata entry 1 (offset " + std::to_string(at) + ") has an empty key");
  }
  SECTION("duplicate keys") {
    std::memcpy(f.data() + after(f, "key.bbb") - 3, "aaa", 3);
    expect_bad(f, "duplicate metadata key 'key.aaa'");
  }
  SECTION("unknown value type") {
    put32(f, after(f, "key.aaa"), 13);
    expect_bad(f, "key 'key.aaa' has unknown value type 13");
  }
  SECTION("unknown array element type") {
    put32(f, after(f, "list.f32") + 4, 1000);
    expect_bad(f, "array 'list.f32' has unknown element type 1000");
  }
  SECTION("nested arrays") {
    put32(f, after(f, "list.f32") + 4, 9);
    expect_bad(f, "key 'list.f32' is an array of arrays");
  }
  SECTION("an array count past the end of the file") {
    put64(f, after(f, "list.f32") + 8, uint64_t{1} << 61);
    expect_bad(f, "array 'list.f32' has 2305843009213693952 elements of type f32");
  }
  SECTION("a string array count past the end of the file") {
    Writer w = minimal_writer();
    w.set_array_strings("list.str", {"a", "b"});
    f = w.to_bytes();
    put64(f, after(f, "list.str") + 8, uint64_t{1} << 62);
    expect_bad(f, "array 'list.str' has 4611686018427387904 elements of type string");
  }
}

TEST_CASE("gguf: hostile alignment", "[gguf]") {
  Writer w = minimal_writer();
  w.set_alignment(64);
  Bytes f = w.to_bytes();
  REQUIRE(File::from_memory(f.data(), f.size(), "a")->alignment() == 64);
  const size_t value = after(f, "general.alignment") + 4;
  SECTION("alignment 0") {
    put32(f, value, 0);
    expect_bad(f, "key 'general.alignment' is 0, expected a non-zero power of two");
  }
  SECTION("alignment 3") {
    put32(f, value, 3);
    expect_bad(f, "key 'general.alignment' is 3, expected a non-zero power of two");
  }
  SECTION("alignment 48") {
    put32(f, value, 48);
    expect_bad(f, "key 'general.alignment' is 48, expected a non-zero power of two");
  }
  SECTION("alignment of type i32") {
    put32(f, value - 4, static_cast<uint32_t>(ValueType::i32));
    expect_bad(f, "key 'general.alignment' has type i32, expected u32");
  }
  SECTION("alignment 128 misaligns the tensor offsets") {
    put32(f, value, 128);
    expect_bad(f, "data offset 64 is not a multiple of the alignment 128");
  }
  SECTION("alignment 2^31 puts the data section past the end") {
    Writer one;  // a single tensor at offset 0, so only the data section start is wrong
    one.set_alignment(64);
    const float x[4] = {};
    one.add_tensor("t", DType::F32, {4}, x, 16);
    Bytes g = one.to_bytes();
    put32(g, after(g, "general.alignment") + 4, 0x80000000u);
    expect_bad(g,
               "the tensor data section (at offset 2147483648 after padding to 2147483648) "
               "starts past the end of the file");
  }
}

TEST_CASE("gguf: hostile tensor infos", "[gguf]") {
  Bytes f = minimal();
  const InfoAt a = tensor_info(f, "tensor.a", 2);
  const InfoAt b = tensor_info(f, "tensor.b", 1);
  const InfoAt q = tensor_info(f, "tensor.q", 2);
  SECTION("offset past the end of the file") {
    put64(f, b.offset, 1 << 20);
    expect_bad(f,
               "tensor 'tensor.b': data [offset 1048576, 16 bytes] runs past the end of the "
               "file");
  }
  SECTION("offset 2^64 - 32 (offset + size wraps around to 32)") {
    put64(f, a.offset, ~uint64_t{31});  // tensor.a has 64 bytes
    expect_bad(f, "tensor 'tensor.a': data [offset 18446744073709551584, 64 bytes] runs past");
  }
  SECTION("data running past the end by one row") {
    // tensor.q is last: 2 rows of 34 bytes at offset 96, padded to 192; 3 rows end at 198.
    put64(f, q.ne + 8, 3);
    expect_bad(f, "tensor 'tensor.q': data [offset 96, 102 bytes] runs past the end");
  }
  SECTION("misaligned offset") {
    put64(f, b.offset, 68);
    expect_bad(f, "tensor 'tensor.b': data offset 68 is not a multiple of the alignment 32");
  }
  SECTION("overlapping tensors (same offset)") {
    put64(f, b.offset, 0);
    expect_bad(f, "overlaps");
  }
  SECTION("overlapping tensors (partial)") {
    put64(f, b.offset, 32);  // tensor.a covers [0, 64)
    expect_bad(f, "tensor 'tensor.a' [offset 0, 64 bytes] overlaps tensor 'tensor.b' [offset 32");
  }
  SECTION("n_dims = 5") {
    put32(f, a.n_dims, 5);
    expect_bad(f, "tensor 'tensor.a': n_dims is 5, expected 1..4");
  }
  SECTION("n_dims = 0") {
    put32(f, a.n_dims, 0);
    expect_bad(f, "tensor 'tensor.a': n_dims is 0, expected 1..4");
  }
  SECTION("element count overflow (2^40 x 2^40)") {
    put64(f, a.ne, uint64_t{1} << 40);
    put64(f, a.ne + 8, uint64_t{1} << 40);
    expect_bad(f, "tensor 'tensor.a': element count overflows at ne[1]");
  }
  SECTION("a zero dimension") {
    put64(f, a.ne + 8, 0);
    expect_bad(f, "tensor 'tensor.a': ne[1] is 0, expected a positive size");
  }
  SECTION("a negative dimension") {
    put64(f, a.ne, ~uint64_t{0});
    expect_bad(f, "tensor 'tensor.a': ne[0] is -1, expected a positive size");
  }
  SECTION("a byte size that overflows although the element count does not") {
    put64(f, a.ne, uint64_t{1} << 61);  // 2^62 elements * 4 bytes
    expect_bad(f, "tensor 'tensor.a': data size overflows");
  }
  SECTION("unknown tensor type id") {
    put32(f, a.type, 77);
    expect_bad(f, "tensor 'tensor.a': unknown tensor type id 77");
  }
  SECTION("Q8_0 row length not a multiple of the block") {
    put64(f, q.ne, 33);
    expect_bad(f,
               "tensor 'tensor.q': row length ne[0] = 33 is not a multiple of the Q8_0 block "
               "size 32");
  }
  SECTION("duplicate tensor names") {
    f[after(f, "tensor.b") - 1] = 'a';
    expect_bad(f, "duplicate tensor name 'tensor.a'");
  }
  SECTION("an empty tensor name") {
    const size_t at = at_string(f, "tensor.b");
    put64(f, at, 0);
    f.erase(f.begin() + static_cast<std::ptrdiff_t>(at + 8),
            f.begin() + static_cast<std::ptrdiff_t>(at + 16));
    expect_bad(f, "tensor 1 (offset");
    expect_bad(f, "has an empty name");
  }
  SECTION("a tensor name longer than 64 KiB") {
    Writer w;
    const float x[4] = {};
    w.add_tensor(std::string(70000, 'n'), DType::F32, {4}, x, 16);
    const Bytes g = w.to_bytes();
    expect_bad(g, "has a name of 70000 bytes, more than the limit of 65536");
  }
  SECTION("a name length past the end of the file") {
    put64(f, at_string(f, "tensor.q"), uint64_t{1} << 40);
    expect_bad(f, "name of tensor 2 at offset");
  }
}
