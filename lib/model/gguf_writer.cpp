// GGUF v3 writer. Metadata is encoded when set; tensors are copied in. The file is
// replaced atomically (lib/core/file_io.h).
#include <cstring>
#include <limits>

#include "lib/core/error.h"
#include "lib/core/file_io.h"
#include "lib/model/gguf.h"

namespace v4::gguf {

// Little-endian encoders for the writer (GGUF is little-endian, as are our hosts).
struct Writer::Entry {
  using Bytes = std::vector<uint8_t>;
  template <class T>
  static void put(Bytes& b, T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
  }
  static void put_str(Bytes& b, std::string_view s) {
    put<uint64_t>(b, s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  static void put_type(Bytes& b, ValueType t) { put<uint32_t>(b, static_cast<uint32_t>(t)); }
  static size_t align_up(size_t n, size_t a) { return (n + a - 1) / a * a; }
};

namespace {

using Bytes = std::vector<uint8_t>;

constexpr size_t kDefaultAlignment = 32;

void upsert(std::vector<std::pair<std::string, Bytes>>& kvs, const std::string& key, Bytes v) {
  if (key.empty()) fail(Status::invalid_arg, "GGUF writer: empty metadata key");
  if (key == "general.alignment")
    fail(Status::invalid_arg, "GGUF writer: general.alignment must be a u32 (set_alignment())");
  for (auto& [k, old] : kvs) {
    if (k == key) {
      old = std::move(v);
      return;
    }
  }
  kvs.emplace_back(key, std::move(v));
}

}  // namespace

void Writer::set_u32(const std::string& key, uint32_t v) {
  if (key == "general.alignment") {  // the writer owns this key
    set_alignment(v);
    return;
  }
  Bytes b;
  Entry::put_type(b, ValueType::u32);
  Entry::put<uint32_t>(b, v);
  upsert(kvs_, key, std::move(b));
}

void Writer::set_i32(const std::string& key, int32_t v) {
  Bytes b;
  Entry::put_type(b, ValueType::i32);
  Entry::put<int32_t>(b, v);
  upsert(kvs_, key, std::move(b));
}

void Writer::set_u64(const std::string& key, uint64_t v) {
  Bytes b;
  Entry::put_type(b, ValueType::u64);
  Entry::put<uint64_t>(b, v);
  upsert(kvs_, key, std::move(b));
}

void Writer::set_f32(const std::string& key, float v) {
  Bytes b;
  Entry::put_type(b, ValueType::f32);
  Entry::put<float>(b, v);
  upsert(kvs_, key, std::move(b));
}

void Writer::set_bool(const std::string& key, bool v) {
  Bytes b;
  Entry::put_type(b, ValueType::boolean);
  Entry::put<uint8_t>(b, v ? 1 : 0);
  upsert(kvs_, key, std::move(b));
}

void Writer::set_string(const std::string& key, const std::string& v) {
  Bytes b;
  Entry::put_type(b, ValueType::string);
  Entry::put_str(b, v);
  upsert(kvs_, key, std::move(b));
}

void Writer::set_array_strings(const std::string& key, const std::vector<std::string>& v) {
  Bytes b;
  Entry::put_type(b, ValueType::array);
  Entry::put_type(b, ValueType::string);
  Entry::put<uint64_t>(b, v.size());
  for (const std::string& s : v) Entry::put_str(b, s);
  upsert(kvs_, key, std::move(b));
}

void Writer::set_array_f32(const std::string& key, const std::vector<float>& v) {
  Bytes b;
  Entry::put_type(b, ValueType::array);
  Entry::put_type(b, ValueType::f32);
  Entry::put<uint64_t>(b, v.size());
  for (float x : v) Entry::put<float>(b, x);
  upsert(kvs_, key, std::move(b));
}

void Writer::set_array_i32(const std::string& key, const std::vector<int32_t>& v) {
  Bytes b;
  Entry::put_type(b, ValueType::array);
  Entry::put_type(b, ValueType::i32);
  Entry::put<uint64_t>(b, v.size());
  for (int32_t x : v) Entry::put<int32_t>(b, x);
  upsert(kvs_, key, std::move(b));
}

void Writer::copy_kv(const KeyValue& kv) {
  if (kv.key == "general.alignment" && kv.type == ValueType::u32) {
    set_alignment(static_cast<size_t>(kv.u));
    return;
  }
  Bytes b;
  Entry::put_type(b, kv.type);
  switch (kv.type) {
    case ValueType::u8:
      Entry::put<uint8_t>(b, static_cast<uint8_t>(kv.u));
      break;
    case ValueType::i8:
      Entry::put<int8_t>(b, static_cast<int8_t>(kv.i));
      break;
    case ValueType::u16:
      Entry::put<uint16_t>(b, static_cast<uint16_t>(kv.u));
      break;
    case ValueType::i16:
      Entry::put<int16_t>(b, static_cast<int16_t>(kv.i));
      break;
    case ValueType::u32:
      Entry::put<uint32_t>(b, static_cast<uint32_t>(kv.u));
      break;
    case ValueType::i32:
      Entry::put<int32_t>(b, static_cast<int32_t>(kv.i));
      break;
    case ValueType::u64:
      Entry::put<uint64_t>(b, kv.u);
      break;
    case ValueType::i64:
      Entry::put<int64_t>(b, kv.i);
      break;
    case ValueType::f32:
      Entry::put<float>(b, static_cast<float>(kv.f));
      break;
    case ValueType::f64:
      Entry::put<double>(b, kv.f);
      break;
    case ValueType::boolean:
      Entry::put<uint8_t>(b, kv.u != 0 ? 1 : 0);
      break;
    case ValueType::string:
      Entry::put_str(b, kv.str);
      break;
    case ValueType::array: {
      Entry::put_type(b, kv.elem_type);
      Entry::put<uint64_t>(b, kv.count);
      if (kv.elem_type == ValueType::string) {
        if (kv.strings.size() != kv.count)
          fail(Status::invalid_arg, "GGUF writer: key '{}': {} strings for a count of {}", kv.key,
               kv.strings.size(), kv.count);
        for (std::string_view s : kv.strings) Entry::put_str(b, s);
      } else {
        const size_t es = value_type_size(static_cast<uint32_t>(kv.elem_type));
        if (es == 0)
          fail(Status::invalid_arg, "GGUF writer: key '{}': unsupported array element type {}",
               kv.key, value_type_name(kv.elem_type));
        if (kv.count > 0 && kv.array_data == nullptr)
          fail(Status::invalid_arg, "GGUF writer: key '{}': array without data", kv.key);
        if (kv.count > 0) b.insert(b.end(), kv.array_data, kv.array_data + kv.count * es);
      }
      break;
    }
    default:
      fail(Status::invalid_arg, "GGUF writer: key '{}': unknown value type {}", kv.key,
           static_cast<uint32_t>(kv.type));
  }
  upsert(kvs_, kv.key, std::move(b));
}

void Writer::add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne,
                        const void* data, size_t nbytes) {
  if (name.empty()) fail(Status::invalid_arg, "GGUF writer: empty tensor name");
  for (const Tensor& t : tensors_)
    if (t.name == name) fail(Status::invalid_arg, "GGUF writer: duplicate tensor '{}'", name);
  if (ne.empty() || ne.size() > 4)
    fail(Status::invalid_arg, "GGUF writer: tensor '{}' has {} dimensions, expected 1..4", name,
         ne.size());
  const TypeTraits* tt = find_type(static_cast<uint32_t>(type));
  if (tt == nullptr)
    fail(Status::invalid_arg, "GGUF writer: tensor '{}' has unknown type id {}", name,
         static_cast<uint32_t>(type));
  uint64_t rows = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] < 1)
      fail(Status::invalid_arg, "GGUF writer: tensor '{}': ne[{}] = {}, expected >= 1", name, d,
           ne[d]);
    if (d > 0 && __builtin_mul_overflow(rows, static_cast<uint64_t>(ne[d]), &rows))
      fail(Status::invalid_arg, "GGUF writer: tensor '{}': size overflows", name);
  }
  if (ne[0] % tt->block_size != 0)
    fail(Status::invalid_arg,
         "GGUF writer: tensor '{}': ne[0] = {} is not a multiple of the {} block size {}", name,
         ne[0], tt->name, tt->block_size);
  uint64_t expected = 0;
  if (__builtin_mul_overflow(uint64_t{row_bytes(type, ne[0])}, rows, &expected))
    fail(Status::invalid_arg, "GGUF writer: tensor '{}': size overflows", name);
  if (expected != nbytes)
    fail(Status::invalid_arg, "GGUF writer: tensor '{}': {} bytes given, expected {}", name, nbytes,
         expected);
  if (nbytes > 0 && data == nullptr)
    fail(Status::invalid_arg, "GGUF writer: tensor '{}': null data", name);
  Tensor t;
  t.name = name;
  t.type = type;
  t.ne = ne;
  const auto* p = static_cast<const uint8_t*>(data);
  t.data.assign(p, p + nbytes);
  tensors_.push_back(std::move(t));
}

void Writer::set_alignment(size_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0 ||
      alignment > std::numeric_limits<uint32_t>::max())
    fail(Status::invalid_arg, "GGUF writer: alignment {} is not a power of two that fits in u32",
         alignment);
  alignment_ = alignment;
}

namespace {

// Everything before the tensor data: header, metadata, tensor infos, padding.
template <class KVs, class Tensors>
Bytes encode_header(const KVs& kvs, const Tensors& tensors, size_t alignment) {
  Bytes b;
  b.insert(b.end(), {'G', 'G', 'U', 'F'});
  auto put32 = [&](uint32_t v) {
    uint8_t t[4];
    std::memcpy(t, &v, 4);
    b.insert(b.end(), t, t + 4);
  };
  auto put64 = [&](uint64_t v) {
    uint8_t t[8];
    std::memcpy(t, &v, 8);
    b.insert(b.end(), t, t + 8);
  };
  auto put_str = [&](std::string_view s) {
    put64(s.size());
    b.insert(b.end(), s.begin(), s.end());
  };
  const bool write_alignment = alignment != kDefaultAlignment;
  put32(3);
  put64(tensors.size());
  put64(kvs.size() + (write_alignment ? 1 : 0));
  if (write_alignment) {
    put_str("general.alignment");
    put32(static_cast<uint32_t>(ValueType::u32));
    put32(static_cast<uint32_t>(alignment));
  }
  for (const auto& [key, value] : kvs) {
    put_str(key);
    b.insert(b.end(), value.begin(), value.end());
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    put_str(t.name);
    put32(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne) put64(static_cast<uint64_t>(n));
    put32(static_cast<uint32_t>(t.type));
    put64(offset);
    offset += (t.data.size() + alignment - 1) / alignment * alignment;
  }
  // The data section starts aligned. Without tensors there is no data section and no
  // padding (as in llama.cpp's vocab-only files), so a huge alignment costs nothing.
  if (!tensors.empty()) b.resize((b.size() + alignment - 1) / alignment * alignment, 0);
  return b;
}

}  // namespace

std::vector<uint8_t> Writer::to_bytes() const {
  Bytes out = encode_header(kvs_, tensors_, alignment_);
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(Entry::align_up(out.size(), alignment_), 0);
  }
  return out;
}

void Writer::write_file(const std::string& path) const {
  const Bytes header = encode_header(kvs_, tensors_, alignment_);

  write_file_atomic(path, [&](int fd) {
    static const uint8_t kZeros[256] = {};
    auto pad = [&](size_t n) {
      while (n > 0) {
        const size_t k = n < sizeof kZeros ? n : sizeof kZeros;
        if (const int e = write_all(fd, kZeros, k)) return e;
        n -= k;
      }
      return 0;
    };
    int err = write_all(fd, header.data(), header.size());
    for (size_t i = 0; err == 0 && i < tensors_.size(); ++i) {
      const Bytes& d = tensors_[i].data;
      err = write_all(fd, d.data(), d.size());
      if (err == 0) err = pad(Entry::align_up(d.size(), alignment_) - d.size());
    }
    return err;
  });
}

}  // namespace v4::gguf
