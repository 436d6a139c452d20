// v4 mkmodel: writes a GGUF model with deterministic random weights for any Llama shape, for
// benchmarks and tests of shapes no bundled model has (TinyLlama-1.1B, Llama-3-8B).
//
// Weights: every matrix element is N(0, 1/sqrt(row length)), so each output of a matrix-vector
// product over a unit-RMS input has unit variance and activations stay finite through any
// depth; norms are 1. The normal values come from Box-Muller on xoshiro256** streams seeded
// per (seed, tensor name, row) with splitmix64, and the logarithm, sine and cosine are our own
// polynomials in double with only +, -, *, / and sqrt (all IEEE-exact), so the bytes of a file
// depend on the seed and the shape only: the same on every machine, compiler and thread count.
//
// The file is streamed: the header (metadata and every tensor's offset) is computed first,
// then each tensor is generated and quantised in chunks of rows on all threads and written,
// so memory stays at a few tens of MiB whatever the model's size. It is written under a
// temporary name beside the destination and renamed into place when complete.
//
// Keys and tensor names are llama.cpp's (docs/FORMAT.md), tokenizer metadata is copied from a
// vocabulary file, so other GGUF engines load these files too.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "lib/core/dtype.h"
#include "lib/core/file_io.h"
#include "lib/model/gguf.h"
#include "membw.h"
#include "model_path.h"
#include "progress.h"

namespace v4::cli {

namespace {

// ---- Shapes ---------------------------------------------------------------------------------

struct Shape {
  int64_t embd = 0, layers = 0, heads = 0, kv_heads = 0, ff = 0;
  int64_t vocab = 0;  // 0: the vocabulary's size
  int64_t ctx = 2048;
  double rope_base = 10000.0;
};

struct Preset {
  const char* name;
  Shape shape;
};

const Preset kPresets[] = {
    {"tiny", {64, 2, 4, 2, 128, 0, 256, 10000.0}},
    {"tinyllama-1.1b", {2048, 22, 32, 4, 5632, 32000, 8192, 10000.0}},
    {"llama-8b", {4096, 32, 32, 8, 14336, 128256, 8192, 500000.0}},
};

const char* kShapeKeys = "embd, layers, heads, kv_heads, ff, vocab, ctx, rope_base";

std::string preset_names() {
  std::string s;
  for (const Preset& p : kPresets) s += (s.empty() ? "" : ", ") + std::string(p.name);
  return s;
}

bool parse_int(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 12) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  *out = std::stoll(s);
  return true;
}

// "PRESET[,key=value...]" or "key=value,...". Returns "" or the reason it is invalid.
std::string parse_shape(const std::string& text, Shape& shape, std::string& preset_name) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    parts.push_back(text.substr(start, comma == std::string::npos ? comma : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  size_t i = 0;
  bool have_preset = false;
  if (!parts.empty() && parts[0].find('=') == std::string::npos) {
    const Preset* p = nullptr;
    for (const Preset& q : kPresets)
      if (parts[0] == q.name) p = &q;
    if (!p)
      return "unknown shape preset '" + parts[0] + "' (presets: " + preset_names() +
             "; or key=value pairs of " + kShapeKeys + ")";
    shape = p->shape;
    preset_name = p->name;
    have_preset = true;
    i = 1;
  } else {
    shape = Shape{};
    preset_name = "custom";
  }
  bool set_kv = false;
  for (; i < parts.size(); ++i) {
    const std::string& kv = parts[i];
    const size_t eq = kv.find('=');
    if (eq == std::string::npos)
      return "expected key=value in --shape, got '" + kv + "' (keys: " + kShapeKeys + ")";
    const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
    if (key == "rope_base") {
      char* end = nullptr;
      const double v = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != '\0' || !(v > 1.0) || !std::isfinite(v))
        return "rope_base must be a number > 1, got '" + value + "'";
      shape.rope_base = v;
      continue;
    }
    int64_t v = 0;
    if (!parse_int(value, &v) || v < 1)
      return "--shape " + key + " must be a positive integer, got '" + value + "'";
    if (key == "embd") {
      shape.embd = v;
    } else if (key == "layers") {
      shape.layers = v;
    } else if (key == "heads") {
      shape.heads = v;
    } else if (key == "kv_heads") {
      shape.kv_heads = v;
      set_kv = true;
    } else if (key == "ff") {
      shape.ff = v;
    } else if (key == "vocab") {
      shape.vocab = v;
    } else if (key == "ctx") {
      shape.ctx = v;
    } else {
      return "unknown --shape key '" + key + "' (keys: " + kShapeKeys + ")";
    }
  }
  if (!have_preset) {
    if (!shape.embd || !shape.layers || !shape.heads || !shape.ff)
      return "--shape without a preset needs at least embd, layers, heads and ff (presets: " +
             preset_names() + ")";
    if (!set_kv) shape.kv_heads = shape.heads;
  }
  if (shape.embd % shape.heads != 0)
    return "heads (" + std::to_string(shape.heads) + ") must divide embd (" +
           std::to_string(shape.embd) + ")";
  if ((shape.embd / shape.heads) % 2 != 0)
    return "the head size embd/heads = " + std::to_string(shape.embd / shape.heads) +
           " must be even (RoPE rotates pairs)";
  if (shape.heads % shape.kv_heads != 0)
    return "kv_heads (" + std::to_string(shape.kv_heads) + ") must divide heads (" +
           std::to_string(shape.heads) + ")";
  if (shape.embd > (1 << 20) || shape.ff > (1 << 22) || shape.layers > 4096 ||
      shape.heads > 65536 || shape.ctx > (1 << 30) || shape.vocab > (1 << 24))
    return "--shape value out of range (embd <= 2^20, ff <= 2^22, layers <= 4096, vocab <= 2^24)";
  return {};
}

// ---- Deterministic normal numbers -----------------------------------------------------------

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

struct Xoshiro256 {
  uint64_t s[4];
  explicit Xoshiro256(uint64_t seed) {
    for (uint64_t& w : s) w = splitmix64(seed);
  }
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t next() {
    const uint64_t r = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
  }
};

// ln(x) for x in (0, 1]: x = m 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(s),
// s = (m-1)/(m+1), |s| <= 0.1716, series to s^15 (relative error < 1e-13).
double det_log(double x) {
  // frexp by hand (x is a positive normal number): exact, and inlined.
  const uint64_t bits = std::bit_cast<uint64_t>(x);
  int e = static_cast<int>((bits >> 52) & 0x7ff) - 1022;
  double m = std::bit_cast<double>((bits & 0x000FFFFFFFFFFFFFull) | (uint64_t{1022} << 52));
  if (m < 0.70710678118654752440) {
    m *= 2.0;
    e -= 1;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double p = 1.0 / 15.0;
  p = p * s2 + 1.0 / 13.0;
  p = p * s2 + 1.0 / 11.0;
  p = p * s2 + 1.0 / 9.0;
  p = p * s2 + 1.0 / 7.0;
  p = p * s2 + 1.0 / 5.0;
  p = p * s2 + 1.0 / 3.0;
  p = p * s2 + 1.0;
  return static_cast<double>(e) * 0.69314718055994530942 + 2.0 * s * p;
}

// cos and sin of 2 pi u for u in [0, 1): quadrant from 4u, Taylor series on [0, pi/2)
// (error < 1e-13).
void det_cos_sin_2pi(double u, double* c, double* s) {
  const double t = u * 4.0;
  const int q = static_cast<int>(t);
  const double a = (t - q) * 1.57079632679489661923;
  const double a2 = a * a;
  // Horner in a^2; the last terms are 1/17! and 1/18!.
  const double sin_a =
      a * (1.0 + a2 * (-1.0 / 6.0 +
                       a2 * (1.0 / 120.0 +
                             a2 * (-1.0 / 5040.0 +
                                   a2 * (1.0 / 362880.0 +
                                         a2 * (-1.0 / 39916800.0 +
                                               a2 * (1.0 / 6227020800.0 +
                                                     a2 * (-1.0 / 1307674368000.0 +
                                                           a2 * (1.0 / 355687428096000.0)))))))));
  const double cos_a =
      1.0 +
      a2 * (-1.0 / 2.0 +
            a2 * (1.0 / 24.0 +
                  a2 * (-1.0 / 720.0 +
                        a2 * (1.0 / 40320.0 +
                              a2 * (-1.0 / 3628800.0 +
                                    a2 * (1.0 / 479001600.0 +
                                          a2 * (-1.0 / 87178291200.0 +
                                                a2 * (1.0 / 20922789888000.0 +
                                                      a2 * (-1.0 / 6402373705728000.0)))))))));
  switch (q & 3) {
    case 0:
      *c = cos_a, *s = sin_a;
      break;
    case 1:
      *c = -sin_a, *s = cos_a;
      break;
    case 2:
      *c = -cos_a, *s = -sin_a;
      break;
    default:
      *c = sin_a, *s = -cos_a;
      break;
  }
}

// n values N(0, sigma) of row `row` of the tensor whose stream key is `key`.
void normal_row(uint64_t key, int64_t row, float sigma, float* out, int64_t n) {
  Xoshiro256 rng(key + static_cast<uint64_t>(row) * 0xD1B54A32D192ED03ull);
  constexpr double k53 = 1.0 / 9007199254740992.0;  // 2^-53
  for (int64_t i = 0; i < n; i += 2) {
    const double u1 = static_cast<double>((rng.next() >> 11) + 1) * k53;  // (0, 1]
    const double u2 = static_cast<double>(rng.next() >> 11) * k53;        // [0, 1)
    const double r = std::sqrt(-2.0 * det_log(u1));
    double c, s;
    det_cos_sin_2pi(u2, &c, &s);
    out[i] = static_cast<float>(r * c * sigma);
    if (i + 1 < n) out[i + 1] = static_cast<float>(r * s * sigma);
  }
}

// ---- GGUF encoding --------------------------------------------------------------------------

using Bytes = std::vector<uint8_t>;

template <class T>
void put(Bytes& b, T v) {
  uint8_t tmp[sizeof(T)];
  std::memcpy(tmp, &v, sizeof(T));
  b.insert(b.end(), tmp, tmp + sizeof(T));
}
void put_str(Bytes& b, std::string_view s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}

size_t scalar_size(gguf::ValueType t) {
  using VT = gguf::ValueType;
  switch (t) {
    case VT::u8:
    case VT::i8:
    case VT::boolean:
      return 1;
    case VT::u16:
    case VT::i16:
      return 2;
    case VT::u32:
    case VT::i32:
    case VT::f32:
      return 4;
    case VT::u64:
    case VT::i64:
    case VT::f64:
      return 8;
    default:
      return 0;
  }
}

// Metadata in insertion order, each value already encoded (type + value).
class Metadata {
 public:
  void u32(const std::string& k, uint32_t v) { add(k, gguf::ValueType::u32, &v, 4); }
  void f32(const std::string& k, float v) { add(k, gguf::ValueType::f32, &v, 4); }
  void str(const std::string& k, const std::string& v) {
    Bytes b;
    put<uint32_t>(b, static_cast<uint32_t>(gguf::ValueType::string));
    put_str(b, v);
    set(k, std::move(b));
  }
  void strings(const std::string& k, const std::vector<std::string>& v) {
    Bytes b;
    put<uint32_t>(b, static_cast<uint32_t>(gguf::ValueType::array));
    put<uint32_t>(b, static_cast<uint32_t>(gguf::ValueType::string));
    put<uint64_t>(b, v.size());
    for (const auto& s : v) put_str(b, s);
    set(k, std::move(b));
  }
  template <class T>
  void numbers(const std::string& k, gguf::ValueType elem, const std::vector<T>& v) {
    Bytes b;
    put<uint32_t>(b, static_cast<uint32_t>(gguf::ValueType::array));
    put<uint32_t>(b, static_cast<uint32_t>(elem));
    put<uint64_t>(b, v.size());
    for (T x : v) put<T>(b, x);
    set(k, std::move(b));
  }
  // A key read from another file, copied with its type.
  void copy(const gguf::KeyValue& kv) {
    using VT = gguf::ValueType;
    Bytes b;
    put<uint32_t>(b, static_cast<uint32_t>(kv.type));
    if (kv.type == VT::string) {
      put_str(b, kv.str);
    } else if (kv.type == VT::array) {
      put<uint32_t>(b, static_cast<uint32_t>(kv.elem_type));
      put<uint64_t>(b, kv.count);
      if (kv.elem_type == VT::string) {
        for (std::string_view s : kv.strings) put_str(b, s);
      } else {
        const size_t n = scalar_size(kv.elem_type) * kv.count;
        b.insert(b.end(), kv.array_data, kv.array_data + n);
      }
    } else {
      put_scalar(b, kv);
    }
    set(kv.key, std::move(b));
  }
  bool has(const std::string& k) const {
    return std::any_of(kvs_.begin(), kvs_.end(), [&](const auto& e) { return e.first == k; });
  }
  void erase(const std::string& k) {
    std::erase_if(kvs_, [&](const auto& e) { return e.first == k; });
  }
  void encode(Bytes& out) const {
    for (const auto& [k, v] : kvs_) {
      put_str(out, k);
      out.insert(out.end(), v.begin(), v.end());
    }
  }
  size_t size() const { return kvs_.size(); }

 private:
  static void put_scalar(Bytes& b, const gguf::KeyValue& kv) {
    using VT = gguf::ValueType;
    switch (kv.type) {
      case VT::u8:
      case VT::boolean:
        put<uint8_t>(b, static_cast<uint8_t>(kv.u));
        break;
      case VT::i8:
        put<int8_t>(b, static_cast<int8_t>(kv.i));
        break;
      case VT::u16:
        put<uint16_t>(b, static_cast<uint16_t>(kv.u));
        break;
      case VT::i16:
        put<int16_t>(b, static_cast<int16_t>(kv.i));
        break;
      case VT::u32:
        put<uint32_t>(b, static_cast<uint32_t>(kv.u));
        break;
      case VT::i32:
        put<int32_t>(b, static_cast<int32_t>(kv.i));
        break;
      case VT::u64:
        put<uint64_t>(b, kv.u);
        break;
      case VT::i64:
        put<int64_t>(b, kv.i);
        break;
      case VT::f32:
        put<float>(b, static_cast<float>(kv.f));
        break;
      case VT::f64:
        put<double>(b, kv.f);
        break;
      default:
        throw std::runtime_error("cannot copy metadata key '" + kv.key + "'");
    }
  }
  void add(const std::string& k, gguf::ValueType t, const void* v, size_t n) {
    Bytes b;
    put<uint32_t>(b, static_cast<uint32_t>(t));
    const auto* p = static_cast<const uint8_t*>(v);
    b.insert(b.end(), p, p + n);
    set(k, std::move(b));
  }
  void set(const std::string& k, Bytes v) {
    for (auto& e : kvs_)
      if (e.first == k) {
        e.second = std::move(v);
        return;
      }
    kvs_.emplace_back(k, std::move(v));
  }
  std::vector<std::pair<std::string, Bytes>> kvs_;
};

// ---- Types ----------------------------------------------------------------------------------


// From least to most precise: a matrix whose row length is not a whole number of blocks of
// the wanted type takes the next type here that fits.
constexpr DType kByPrecision[] = {DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q5_0, DType::Q5_1,
                                  DType::Q5_K, DType::Q6_K, DType::Q8_0, DType::F16,  DType::F32};

bool computable(DType t) {
  const TypeTraits* tt = find_type(static_cast<uint32_t>(t));
  return tt && tt->from_f32 && tt->to_f32;
}

DType fit_row(DType want, int64_t row) {
  if (row % traits(want).block_size == 0) return want;
  const DType* it = std::find(std::begin(kByPrecision), std::end(kByPrecision), want);
  if (it == std::end(kByPrecision)) it = std::begin(kByPrecision);
  for (; it != std::end(kByPrecision); ++it)
    if (computable(*it) && row % traits(*it).block_size == 0) return *it;
  return DType::F32;
}

// Types below 6 bits get a Q6_K output matrix, as llama.cpp's quantiser does.
bool low_bit(DType t) {
  return t == DType::Q4_0 || t == DType::Q4_1 || t == DType::Q5_0 || t == DType::Q5_1 ||
         t == DType::Q4_K || t == DType::Q5_K;
}

// ---- The model ------------------------------------------------------------------------------

struct TensorPlan {
  std::string name;
  DType type;
  std::vector<int64_t> ne;  // ne[0] = row length
  bool norm = false;        // all ones
  uint64_t offset = 0;
  size_t nbytes = 0;
  int64_t rows() const { return ne.size() > 1 ? ne[1] : 1; }
};

struct Vocab {
  Metadata kv;  // tokenizer.* keys
  int64_t size = 0;
  std::string source;
};

// Special-token ids outside the vocabulary (stories260K's file has 4294967295 for two of them,
// which loaders ignore with a warning) are left out of the files we write.
void drop_bad_special_ids(const gguf::File& f, Vocab& v) {
  for (const gguf::KeyValue& kv : f.kvs()) {
    const std::string& k = kv.key;
    if (k.rfind("tokenizer.ggml.", 0) != 0 || k.size() < 9 || k.substr(k.size() - 9) != "_token_id")
      continue;
    const bool is_int = kv.type != gguf::ValueType::string && kv.type != gguf::ValueType::array &&
                        kv.type != gguf::ValueType::f32 && kv.type != gguf::ValueType::f64 &&
                        kv.type != gguf::ValueType::boolean;
    if (!is_int) continue;
    const bool is_signed = kv.type == gguf::ValueType::i8 || kv.type == gguf::ValueType::i16 ||
                           kv.type == gguf::ValueType::i32 || kv.type == gguf::ValueType::i64;
    const int64_t id = is_signed ? kv.i : (kv.u > (1ull << 62) ? -1 : static_cast<int64_t>(kv.u));
    if (id < 0 || id >= v.size) v.kv.erase(k);
  }
}

// Tokenizer metadata of `path` (every tokenizer.* key). When resize_to > 0 and differs from the
// file's vocabulary, a SentencePiece vocabulary is padded with unused tokens or truncated.
std::string load_vocab(const std::string& path, int64_t resize_to, Vocab& v) {
  std::unique_ptr<gguf::File> f;
  try {
    f = gguf::File::open(path);
  } catch (const std::exception& e) {
    return std::string("cannot read the vocabulary: ") + e.what();
  }
  const gguf::KeyValue* tokens = f->find("tokenizer.ggml.tokens");
  if (!tokens || tokens->type != gguf::ValueType::array ||
      tokens->elem_type != gguf::ValueType::string)
    return "'" + path + "' has no tokenizer (tokenizer.ggml.tokens)";
  v.source = path;
  v.size = static_cast<int64_t>(tokens->count);
  for (const gguf::KeyValue& kv : f->kvs())
    if (kv.key.rfind("tokenizer.", 0) == 0) v.kv.copy(kv);
  if (resize_to <= 0 || resize_to == v.size) {
    drop_bad_special_ids(*f, v);
    return {};
  }

  const std::string model(f->get_string("tokenizer.ggml.model").value_or(""));
  if (model != "llama")
    return "the default vocabulary '" + path + "' (" + model + ", " + std::to_string(v.size) +
           " tokens) cannot be resized to vocab=" + std::to_string(resize_to) +
           "; pass --vocab-from with a vocabulary of that size";
  const size_t n = static_cast<size_t>(resize_to);
  std::vector<std::string> texts;
  texts.reserve(n);
  for (size_t i = 0; i < n; ++i)
    texts.push_back(i < tokens->strings.size() ? std::string(tokens->strings[i])
                                               : "<unused" + std::to_string(i) + ">");
  v.kv.strings("tokenizer.ggml.tokens", texts);
  if (const gguf::KeyValue* sc = f->find("tokenizer.ggml.scores");
      sc && sc->type == gguf::ValueType::array && sc->elem_type == gguf::ValueType::f32) {
    std::vector<float> scores(n, -1e9f);
    for (size_t i = 0; i < n && i < sc->count; ++i) scores[i] = gguf::File::array_f32(*sc, i);
    v.kv.numbers("tokenizer.ggml.scores", gguf::ValueType::f32, scores);
  }
  if (const gguf::KeyValue* ty = f->find("tokenizer.ggml.token_type");
      ty && ty->type == gguf::ValueType::array && ty->elem_type == gguf::ValueType::i32) {
    std::vector<int32_t> types(n, 5);  // 5 = unused
    for (size_t i = 0; i < n && i < ty->count; ++i)
      types[i] = static_cast<int32_t>(gguf::File::array_int(*ty, i));
    v.kv.numbers("tokenizer.ggml.token_type", gguf::ValueType::i32, types);
  }
  v.size = resize_to;
  drop_bad_special_ids(*f, v);
  return {};
}

// tests/data/ggml-vocab-llama-spm.gguf of the source tree the tool was built from, or "".
std::string llama_spm_vocab() {
#ifdef V4_DEFAULT_MODEL
  const auto p = std::filesystem::path(V4_DEFAULT_MODEL).parent_path().parent_path() / "tests" /
                 "data" / "ggml-vocab-llama-spm.gguf";
  std::error_code ec;
  if (std::filesystem::is_regular_file(p, ec)) return p.string();
#endif
  return {};
}

struct MkmodelOptions {
  std::string arch = "llama";
  std::string shape;
  std::string type = "f16";
  std::string output_type;
  std::string vocab_from;
  std::string output;
  std::string name;
  uint64_t seed = 0;
  int32_t threads = 0;
};

// Generates and quantises rows [r0, r1) of t into out (row r at (r - r0) * row bytes).
void fill_rows(const TensorPlan& t, uint64_t key, int64_t r0, int64_t r1, uint8_t* out) {
  const int64_t n = t.ne[0];
  const size_t rb = row_bytes(t.type, n);
  const TypeTraits& tt = traits(t.type);
  std::vector<float> row(static_cast<size_t>(n));
  const float sigma = static_cast<float>(1.0 / std::sqrt(static_cast<double>(n)));
  for (int64_t r = r0; r < r1; ++r) {
    if (t.norm) {
      std::fill(row.begin(), row.end(), 1.0f);
    } else {
      normal_row(key, r, sigma, row.data(), n);
    }
    tt.from_f32(row.data(), out + static_cast<size_t>(r - r0) * rb, n);
  }
}

class TempFile {
 public:
  explicit TempFile(std::string final_path)
      : final_(std::move(final_path)), tmp_(final_ + ".tmp." + std::to_string(::getpid())) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!done_) ::unlink(tmp_.c_str());
  }
  bool open() {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    return fd_ >= 0;
  }
  int fd() const { return fd_; }
  const std::string& tmp() const { return tmp_; }
  // Close and rename into place; errno value or 0. No fsync: the file is regenerated by
  // the same command, and waiting for the disk would double the time of a large model.
  int commit() {
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) return errno;
    if (::rename(tmp_.c_str(), final_.c_str()) != 0) return errno;
    done_ = true;
    return 0;
  }

 private:
  std::string final_, tmp_;
  int fd_ = -1;
  bool done_ = false;
};

std::string type_list() {
  std::string s;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0, DType::Q4_1,
                  DType::Q5_0, DType::Q5_1, DType::Q4_K, DType::Q5_K, DType::Q6_K})
    if (computable(t)) s += (s.empty() ? "" : ", ") + std::string(type_name(t));
  return s;
}

bool parse_weight_type(const std::string& s, DType* out) {
  DType t;
  if (!parse_type_name(s, &t)) return false;
  const TypeTraits* tt = find_type(static_cast<uint32_t>(t));
  if (!tt || t == DType::FP8_B32 || t == DType::F8_E4M3 || t == DType::F8_E5M2) return false;
  *out = t;
  return true;
}

std::string human(uint64_t b) {
  char buf[32];
  if (b >= (1ull << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  else
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  return buf;
}

int mkmodel_main(MkmodelOptions& o) {
  if (o.arch != "llama")
    return fail("unknown --arch '" + o.arch + "' (supported: llama)", kExitUsage);
  Shape shape;
  std::string preset;
  if (auto why = parse_shape(o.shape, shape, preset); !why.empty()) return fail(why, kExitUsage);

  DType type;
  if (!parse_weight_type(o.type, &type))
    return fail("unknown --type '" + o.type + "' (one of: " + type_list() + ")", kExitUsage);
  if (!computable(type))
    return fail("type " + std::string(type_name(type)) +
                    " has no quantiser in this build (available: " + type_list() + ")",
                kExitUsage);
  DType out_type = low_bit(type) ? DType::Q6_K : type;
  if (!o.output_type.empty()) {
    if (!parse_weight_type(o.output_type, &out_type))
      return fail("unknown --output-type '" + o.output_type + "' (one of: " + type_list() + ")",
                  kExitUsage);
  }
  if (!computable(out_type))
    return fail("output.weight type " + std::string(type_name(out_type)) +
                    " is not available in this build yet" +
                    (o.output_type.empty() ? std::string(" (the default for ") + type_name(type) +
                                                 "; pass --output-type, e.g. q8_0)"
                                           : std::string(" (available: ") + type_list() + ")"),
                kExitUsage);
  if (o.threads < 0) return fail("--threads must be >= 0", kExitUsage);
  const int n_threads = o.threads > 0 ? o.threads : available_cpus();

  // Vocabulary: the given file (its size must match the shape's vocab), else the bundled
  // model's, resized to the shape's vocab if that is set -- except that a 32000-token shape
  // (Llama 2, TinyLlama) takes the Llama 2 vocabulary of the source tree when it is there.
  Vocab vocab;
  const bool vocab_given = !o.vocab_from.empty();
  std::string vocab_path = vocab_given ? o.vocab_from : resolve_model_path("");
  if (!vocab_given && shape.vocab == 32000) {
    if (std::string spm = llama_spm_vocab(); !spm.empty()) vocab_path = spm;
  }
  if (vocab_path.empty())
    return fail("no vocabulary: pass --vocab-from VOCAB.gguf (any GGUF with tokenizer metadata)",
                kExitUsage);
  if (auto why = load_vocab(vocab_path, vocab_given ? 0 : shape.vocab, vocab); !why.empty())
    return fail(why);
  if (vocab_given && shape.vocab > 0 && shape.vocab != vocab.size)
    return fail("--vocab-from '" + vocab_path + "' has " + std::to_string(vocab.size) +
                    " tokens but the shape says vocab=" + std::to_string(shape.vocab) +
                    " (use a matching vocabulary, or set vocab=" + std::to_string(vocab.size) +
                    " in --shape)",
                kExitUsage);
  if (!vocab_given && shape.vocab > 0 && shape.vocab != vocab.size)
    return fail("internal: vocabulary resize failed");
  shape.vocab = vocab.size;

  // Tensors.
  const int64_t d = shape.embd, head_dim = shape.embd / shape.heads;
  const int64_t kv_dim = shape.kv_heads * head_dim, ff = shape.ff;
  std::vector<TensorPlan> tensors;
  std::vector<std::string> notes;
  auto matrix = [&](const std::string& name, DType want, int64_t cols, int64_t rows) {
    const DType t = fit_row(want, cols);
    if (t != want)
      notes.push_back(name + ": rows of " + std::to_string(cols) + " are not whole " +
                      type_name(want) + " blocks; using " + type_name(t));
    tensors.push_back({name, t, {cols, rows}});
  };
  auto norm = [&](const std::string& name) { tensors.push_back({name, DType::F32, {d}, true}); };
  matrix("token_embd.weight", type, d, shape.vocab);
  for (int64_t l = 0; l < shape.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight");
    matrix(p + "attn_q.weight", type, d, d);
    matrix(p + "attn_k.weight", type, d, kv_dim);
    matrix(p + "attn_v.weight", type, d, kv_dim);
    matrix(p + "attn_output.weight", type, d, d);
    norm(p + "ffn_norm.weight");
    matrix(p + "ffn_gate.weight", type, d, ff);
    matrix(p + "ffn_up.weight", type, d, ff);
    matrix(p + "ffn_down.weight", type, ff, d);
  }
  norm("output_norm.weight");
  matrix("output.weight", out_type, d, shape.vocab);
  // A note per distinct reason (the per-layer ones repeat).
  std::map<std::string, int> seen;
  for (const std::string& n : notes) {
    std::string generic = n;
    if (generic.rfind("blk.", 0) == 0)
      generic = "blk.*." + generic.substr(generic.find('.', 4) + 1);
    if (seen[generic]++ == 0) warn(generic);
  }

  constexpr size_t kAlign = 32;
  uint64_t offset = 0, n_params = 0;
  bool any_block = false;
  for (TensorPlan& t : tensors) {
    t.nbytes = row_bytes(t.type, t.ne[0]) * static_cast<size_t>(t.rows());
    t.offset = offset;
    offset += (t.nbytes + kAlign - 1) / kAlign * kAlign;
    n_params += static_cast<uint64_t>(t.ne[0] * t.rows());
    any_block = any_block || traits(t.type).block_size > 1;
  }
  const uint64_t data_bytes = offset;

  // Metadata.
  Metadata md;
  char shape_text[200];
  std::snprintf(shape_text, sizeof shape_text,
                "embd=%" PRId64 ",layers=%" PRId64 ",heads=%" PRId64 ",kv_heads=%" PRId64
                ",ff=%" PRId64 ",vocab=%" PRId64 ",ctx=%" PRId64 ",rope_base=%g",
                shape.embd, shape.layers, shape.heads, shape.kv_heads, shape.ff, shape.vocab,
                shape.ctx, shape.rope_base);
  md.str("general.architecture", "llama");
  md.str("general.name", !o.name.empty() ? o.name
                                         : "random " + preset + " " + type_name(type) + " seed " +
                                               std::to_string(o.seed));
  md.str("general.description", std::string("random weights from v4 mkmodel --shape ") +
                                    shape_text + " --seed " + std::to_string(o.seed));
  md.u32("general.file_type", gguf_file_type_of(type));
  if (any_block) md.u32("general.quantization_version", 2);
  md.u32("llama.vocab_size", static_cast<uint32_t>(shape.vocab));
  md.u32("llama.context_length", static_cast<uint32_t>(shape.ctx));
  md.u32("llama.embedding_length", static_cast<uint32_t>(shape.embd));
  md.u32("llama.block_count", static_cast<uint32_t>(shape.layers));
  md.u32("llama.feed_forward_length", static_cast<uint32_t>(shape.ff));
  md.u32("llama.attention.head_count", static_cast<uint32_t>(shape.heads));
  md.u32("llama.attention.head_count_kv", static_cast<uint32_t>(shape.kv_heads));
  md.u32("llama.rope.dimension_count", static_cast<uint32_t>(head_dim));
  md.f32("llama.rope.freq_base", static_cast<float>(shape.rope_base));
  md.f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);

  Bytes header;
  header.insert(header.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(header, 3);
  put<uint64_t>(header, tensors.size());
  Bytes kvs;
  md.encode(kvs);
  Bytes tok;
  vocab.kv.encode(tok);
  put<uint64_t>(header, md.size() + vocab.kv.size());
  header.insert(header.end(), kvs.begin(), kvs.end());
  header.insert(header.end(), tok.begin(), tok.end());
  for (const TensorPlan& t : tensors) {
    put_str(header, t.name);
    put<uint32_t>(header, static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) put<uint64_t>(header, static_cast<uint64_t>(n));
    put<uint32_t>(header, static_cast<uint32_t>(t.type));
    put<uint64_t>(header, t.offset);
  }
  header.resize((header.size() + kAlign - 1) / kAlign * kAlign, 0);

  std::fprintf(stderr,
               "mkmodel: llama %s (%s), %" PRIu64
               " parameters, %s (output %s), vocab from "
               "%s, seed %" PRIu64 ", %d thread(s) -> %s (%s)\n",
               preset.c_str(), shape_text, n_params, type_name(type),
               type_name(tensors.back().type), vocab.source.c_str(), o.seed, n_threads,
               o.output.c_str(), human(header.size() + data_bytes).c_str());

  TempFile file(o.output);
  if (!file.open()) return fail("cannot create '" + file.tmp() + "': " + std::strerror(errno));
  auto io_fail = [&](int err) {
    return fail("cannot write '" + file.tmp() + "': " + std::strerror(err));
  };
  if (int err = write_all(file.fd(), header.data(), header.size())) return io_fail(err);

  ProgressBar bar("generating");
  const auto t0 = Clock::now();
  uint64_t done = 0;
  constexpr int64_t kChunkElems = int64_t{1} << 22;  // ~16 MiB of f32 rows per chunk
  // Two buffers: one is written by a background thread while the next chunk is generated.
  Bytes buffers[2];
  int cur = 0;
  std::future<int> pending;
  auto wait_pending = [&]() { return pending.valid() ? pending.get() : 0; };
  for (const TensorPlan& t : tensors) {
    uint64_t ks = o.seed ^ fnv1a(t.name);
    const uint64_t key = splitmix64(ks);
    const size_t rb = row_bytes(t.type, t.ne[0]);
    const int64_t rows = t.rows();
    const int64_t chunk_rows = std::max<int64_t>(1, kChunkElems / t.ne[0]);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk_rows) {
      const int64_t r1 = std::min(rows, r0 + chunk_rows);
      Bytes& chunk = buffers[cur];
      chunk.resize(static_cast<size_t>(r1 - r0) * rb);
      const int64_t nt = std::min<int64_t>(n_threads, r1 - r0);
      const int64_t per = (r1 - r0 + nt - 1) / nt;
      std::vector<std::thread> workers;
      for (int64_t w = 1; w < nt; ++w) {
        const int64_t a = r0 + w * per, b = std::min(r1, a + per);
        if (a >= b) break;
        workers.emplace_back(fill_rows, std::cref(t), key, a, b,
                             chunk.data() + static_cast<size_t>(a - r0) * rb);
      }
      fill_rows(t, key, r0, std::min(r1, r0 + per), chunk.data());
      for (auto& w : workers) w.join();
      if (r1 == rows) chunk.resize(chunk.size() + (kAlign - t.nbytes % kAlign) % kAlign, 0);
      if (int err = wait_pending()) return io_fail(err);
      pending = std::async(std::launch::async, [fd = file.fd(), &chunk] {
        return write_all(fd, chunk.data(), chunk.size());
      });
      cur ^= 1;
      done += static_cast<uint64_t>(r1 - r0) * rb;
      bar.update(static_cast<float>(static_cast<double>(done) / std::max<uint64_t>(data_bytes, 1)));
    }
  }
  if (int err = wait_pending()) return io_fail(err);
  bar.finish();
  if (int err = file.commit())
    return fail("cannot finish '" + o.output + "': " + std::strerror(err));
  std::fprintf(stderr, "mkmodel: wrote %s in %.1f s\n", o.output.c_str(),
               seconds_between(t0, Clock::now()));
  return kExitOk;
}

}  // namespace

void register_mkmodel(CLI::App& app, Action& action) {
  auto o = std::make_shared<MkmodelOptions>();
  CLI::App* cmd = app.add_subcommand(
      "mkmodel", "Write a GGUF model with deterministic random weights (for benchmarks and tests)");
  cmd->add_option("--arch", o->arch, "Architecture (llama)")->capture_default_str();
  cmd->add_option("--shape", o->shape,
                  "PRESET[,key=value...] or key=value,...; presets: " + preset_names() +
                      "; keys: " + kShapeKeys)
      ->required();
  cmd->add_option("--type", o->type,
                  "Weight type of the matrices (f32, f16, bf16, q8_0, q4_0, ...)")
      ->capture_default_str();
  cmd->add_option("--output-type", o->output_type,
                  "Type of output.weight (default: Q6_K for types below 6 bits, else --type)");
  cmd->add_option("--vocab-from", o->vocab_from,
                  "GGUF file to copy the tokenizer from (default: the bundled model's, padded "
                  "or cut to the shape's vocab; for vocab=32000 the source tree's "
                  "tests/data/ggml-vocab-llama-spm.gguf when present)");
  cmd->add_option("--seed", o->seed, "Seed of the weights")->capture_default_str();
  cmd->add_option("--name", o->name, "general.name (default: from the shape, type and seed)");
  cmd->add_option("--threads", o->threads, "Threads (default: all cores)");
  cmd->add_option("-o,--output", o->output, "Output GGUF file")->required();
  cmd->callback([o, &action] { action = [o] { return mkmodel_main(*o); }; });
}

}  // namespace v4::cli
