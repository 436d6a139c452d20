// libFuzzer target for the GGUF reader. Any input must either be rejected with a
// v4::Error or open into a File whose every key, array element and tensor byte can be
// read; anything else (a crash, a sanitizer report, another exception, a huge
// allocation, a broken invariant) is a bug. Accepted files are also copied through the
// Writer and read back, which must succeed and give the same contents.
//
// Built with -fsanitize=fuzzer when V4_FUZZ=ON; otherwise, with V4_FUZZ_REPLAY_MAIN, a
// main() replays the files or directories given on the command line (the ctest
// fuzz_gguf_corpus runs the seed corpus this way).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "lib/core/error.h"
#include "lib/model/gguf.h"

namespace {

using v4::gguf::File;
using v4::gguf::KeyValue;
using v4::gguf::TensorInfo;
using v4::gguf::ValueType;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "fuzz_gguf: invariant broken: %s\n", what);
  std::abort();
}
#define CHECK_INVARIANT(cond)   \
  do {                          \
    if (!(cond)) broken(#cond); \
  } while (0)

volatile uint64_t g_sink;
const char* g_last_error = nullptr;  // for the replay main: why the last input was rejected
std::string g_last_error_text;

// Calls a getter; a v4::Error (wrong type, out of range) is an allowed outcome.
template <class F>
void try_get(F&& f) {
  try {
    f();
  } catch (const v4::Error&) {
  }
}

uint64_t touch_kv(const File& f, const KeyValue& kv) {
  uint64_t h = kv.key.size() + static_cast<uint64_t>(kv.type);
  CHECK_INVARIANT(!kv.key.empty());
  CHECK_INVARIANT(f.find(kv.key) == &kv);
  try_get([&] { h += f.get_uint(kv.key).value_or(0); });
  try_get([&] { h += static_cast<uint64_t>(f.get_int(kv.key).value_or(0)); });
  try_get([&] { h += f.get_u32(kv.key).value_or(0); });
  try_get([&] { h += static_cast<uint64_t>(f.get_f32(kv.key).value_or(0.0f) != 0.0f); });
  try_get([&] { h += f.get_bool(kv.key).value_or(false) ? 1 : 0; });
  try_get([&] { h += f.get_string(kv.key).value_or("").size(); });
  if (kv.type == ValueType::string) {
    for (char c : kv.str) h = h * 31 + static_cast<unsigned char>(c);
  }
  if (kv.type != ValueType::array) return h;

  CHECK_INVARIANT(f.get_array(kv.key, kv.elem_type) == &kv);
  if (kv.elem_type == ValueType::string) {
    CHECK_INVARIANT(kv.strings.size() == kv.count);
    for (std::string_view s : kv.strings)
      for (char c : s) h = h * 31 + static_cast<unsigned char>(c);
    return h;
  }
  CHECK_INVARIANT(kv.count == 0 || kv.array_data != nullptr);
  // The matching accessor on every element (u64 values past INT64_MAX throw); the other
  // accessor once, for its error path.
  const bool is_float = kv.elem_type == ValueType::f32 || kv.elem_type == ValueType::f64;
  for (uint64_t i = 0; i < kv.count; ++i) {
    if (is_float)
      h += static_cast<uint64_t>(File::array_f32(kv, i) != 0.0f);
    else
      try_get([&] { h += static_cast<uint64_t>(File::array_int(kv, i)); });
  }
  try_get([&] { h += static_cast<uint64_t>(File::array_int(kv, 0)); });
  try_get([&] { h += static_cast<uint64_t>(File::array_f32(kv, 0) != 0.0f); });
  try_get([&] { h += static_cast<uint64_t>(File::array_int(kv, kv.count)); });  // out of range
  return h;
}

uint64_t touch_tensor(const File& f, const TensorInfo& t) {
  CHECK_INVARIANT(!t.name.empty());
  CHECK_INVARIANT(f.find_tensor(t.name) == &t);
  CHECK_INVARIANT(t.n_dims >= 1 && t.n_dims <= 4);
  for (int d = 0; d < 4; ++d) CHECK_INVARIANT(t.ne[d] >= 1);
  const v4::TypeTraits* tt = v4::find_type(static_cast<uint32_t>(t.type));
  CHECK_INVARIANT(tt != nullptr);
  CHECK_INVARIANT(t.ne[0] % tt->block_size == 0);
  CHECK_INVARIANT(t.nbytes == v4::row_bytes(t.type, t.ne[0]) * static_cast<size_t>(t.ne[1]) *
                                  static_cast<size_t>(t.ne[2]) * static_cast<size_t>(t.ne[3]));
  CHECK_INVARIANT(t.offset % f.alignment() == 0);
  CHECK_INVARIANT(t.data == f.base() + f.data_offset() + t.offset);
  CHECK_INVARIANT(t.data >= f.base() && t.nbytes <= f.file_size() &&
                  static_cast<size_t>(t.data - f.base()) <= f.file_size() - t.nbytes);
  uint64_t h = t.offset;
  for (size_t i = 0; i < t.nbytes; ++i) h = h * 131 + t.data[i];
  return h;
}

size_t elem_size(ValueType t) {
  const size_t n = v4::gguf::value_type_size(static_cast<uint32_t>(t));
  if (n == 0) broken("elem_size of a non-scalar type");
  return n;
}

// Copy through the writer; the result must open and hold the same contents.
void round_trip(const File& f) {
  v4::gguf::Writer w;
  for (const KeyValue& kv : f.kvs()) w.copy_kv(kv);
  for (const TensorInfo& t : f.tensors())
    w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes);
  const std::vector<uint8_t> bytes = w.to_bytes();
  std::unique_ptr<File> g;
  try {
    g = File::from_memory(bytes.data(), bytes.size(), "round-trip.gguf");
  } catch (const v4::Error& e) {
    std::fprintf(stderr, "fuzz_gguf: the writer's copy does not open: %s\n", e.what());
    std::abort();
  }
  // The writer owns general.alignment and leaves it out when it is the default 32.
  const bool default_alignment_key = f.find("general.alignment") != nullptr && f.alignment() == 32;
  CHECK_INVARIANT(g->kvs().size() == f.kvs().size() - (default_alignment_key ? 1 : 0));
  CHECK_INVARIANT(g->tensors().size() == f.tensors().size());
  CHECK_INVARIANT(g->alignment() == f.alignment());
  for (const KeyValue& a : f.kvs()) {
    if (a.key == "general.alignment") continue;
    const KeyValue* b = g->find(a.key);
    CHECK_INVARIANT(b != nullptr);
    CHECK_INVARIANT(a.type == b->type && a.u == b->u && a.i == b->i && a.str == b->str);
    CHECK_INVARIANT(a.type != ValueType::array ||
                    (a.elem_type == b->elem_type && a.count == b->count));
    CHECK_INVARIANT(a.strings == b->strings);
    if (a.type == ValueType::array && a.elem_type != ValueType::string && a.count > 0)
      CHECK_INVARIANT(std::memcmp(a.array_data, b->array_data, a.count * elem_size(a.elem_type)) ==
                      0);
  }
  for (const TensorInfo& a : f.tensors()) {
    const TensorInfo* b = g->find_tensor(a.name);
    CHECK_INVARIANT(b != nullptr);
    CHECK_INVARIANT(a.type == b->type && a.nbytes == b->nbytes && a.n_dims == b->n_dims);
    CHECK_INVARIANT(std::memcmp(a.data, b->data, a.nbytes) == 0);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  g_last_error = nullptr;
  std::unique_ptr<File> f;
  try {
    f = File::from_memory(data, size, "fuzz.gguf");
  } catch (const v4::Error& e) {
    // Rejections must say something and come from validation, not from other failures.
    CHECK_INVARIANT(e.status() == v4::Status::bad_format);
    CHECK_INVARIANT(std::strncmp(e.what(), "fuzz.gguf: ", 11) == 0);
    g_last_error_text = e.what();
    g_last_error = g_last_error_text.c_str();
    return 0;
  }
  CHECK_INVARIANT(f->version() == 2 || f->version() == 3);
  CHECK_INVARIANT(f->alignment() != 0 && (f->alignment() & (f->alignment() - 1)) == 0);
  CHECK_INVARIANT(f->data_offset() <= f->file_size());
  uint64_t h = 0;
  for (const KeyValue& kv : f->kvs()) h += touch_kv(*f, kv);
  for (const TensorInfo& t : f->tensors()) h += touch_tensor(*f, t);
  g_sink = h;
  round_trip(*f);
  return 0;
}

#ifdef V4_FUZZ_REPLAY_MAIN
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>

// Replays files and directories of inputs; exits non-zero when there was nothing to run.
// With --expect-valid, every input must also open (the seed corpus is all valid files).
int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> inputs;
  bool expect_valid = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--expect-valid") == 0) {
      expect_valid = true;
      continue;
    }
    const fs::path p(argv[i]);
    if (fs::is_directory(p)) {
      for (const auto& e : fs::directory_iterator(p))
        if (e.is_regular_file()) inputs.push_back(e.path());
    } else if (fs::is_regular_file(p)) {
      inputs.push_back(p);
    } else {
      std::fprintf(stderr, "fuzz_gguf_replay: %s: no such file or directory\n", argv[i]);
      return 2;
    }
  }
  std::sort(inputs.begin(), inputs.end());
  if (inputs.empty()) {
    std::fprintf(stderr, "usage: fuzz_gguf_replay FILE|DIR...; no inputs found\n");
    return 2;
  }
  for (const fs::path& p : inputs) {
    std::ifstream in(p, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    std::printf("%s (%zu bytes)\n", p.c_str(), bytes.size());
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
    if (g_last_error != nullptr) {
      std::printf("  rejected: %s\n", g_last_error);
      if (expect_valid) return 1;
    }
  }
  std::printf("replayed %zu inputs, no crash\n", inputs.size());
  return 0;
}
#endif
