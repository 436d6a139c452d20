// GGUF reader: maps a file (or takes bytes in memory) and validates all of it up front.
// Every read goes through Cursor, which checks the remaining bytes first; every count
// read from the file is compared with the bytes left before anything is reserved.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

#include "lib/core/error.h"
#include "lib/model/gguf.h"

namespace v4::gguf {
namespace {

constexpr uint64_t kMaxTensorName = 64 * 1024;  // llama.cpp uses 64 bytes; we are lenient
constexpr uint64_t kMaxKeyLength = 64 * 1024;
constexpr int kMaxDims = 4;
constexpr uint64_t kMaxElements = uint64_t{1} << 62;
constexpr size_t kDefaultAlignment = 32;
constexpr uint64_t kReserveCap = 4096;

// Smallest possible encodings, used to bound counts before reserving memory.
// kv: key length, a 1-byte key, value type, a u8 value.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
// tensor info: name length, a 1-byte name, n_dims, ne[0], type, offset.
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;


bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::f64); }

bool is_unsigned(ValueType t) {
  return t == ValueType::u8 || t == ValueType::u16 || t == ValueType::u32 || t == ValueType::u64;
}
bool is_signed(ValueType t) {
  return t == ValueType::i8 || t == ValueType::i16 || t == ValueType::i32 || t == ValueType::i64;
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);  // GGUF is little-endian, as are the hosts we build for
  return v;
}

// Every field read goes through a Cursor. `what` is a callable returning the field's
// description; it is only evaluated to build an error message.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size, const std::string& name)
      : base_(base), size_(size), name_(name) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  template <class What>
  const uint8_t* take(uint64_t n, const What& what) {
    if (n > remaining())
      fail(Status::bad_format,
           "{}: {} [{} bytes at offset {}] runs past the end of the file ({} bytes); the file is "
           "truncated or corrupt",
           name_, what(), n, pos_, size_);
    const uint8_t* p = base_ + pos_;
    pos_ += static_cast<size_t>(n);
    return p;
  }
  template <class What>
  uint32_t u32(const What& what) {
    return load<uint32_t>(take(4, what));
  }
  template <class What>
  uint64_t u64(const What& what) {
    return load<uint64_t>(take(8, what));
  }
  template <class What>
  std::string_view str(const What& what) {
    const size_t at = pos_;
    const uint64_t n = u64(what);
    if (n > remaining())
      fail(Status::bad_format,
           "{}: {} at offset {} has length {}, but only {} bytes remain in the file; the file is "
           "truncated or corrupt",
           name_, what(), at, n, remaining());
    return {reinterpret_cast<const char*>(take(n, what)), static_cast<size_t>(n)};
  }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& name_;
};

// A fixed description.
struct Named {
  const char* text;
  const char* operator()() const { return text; }
};

std::string printable(std::string_view s) {
  std::string out;
  const size_t n = std::min<size_t>(s.size(), 80);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\'')
      out += static_cast<char>(c);
    else
      out += fmt::format("\\x{:02x}", c);
  }
  if (s.size() > n) out += "...";
  return out;
}

// Reads one value of type `t` (not an array) into kv's scalar fields.
template <class What>
void read_scalar(Cursor& c, ValueType t, KeyValue& kv, const What& what) {
  switch (t) {
    case ValueType::u8:
      kv.u = load<uint8_t>(c.take(1, what));
      break;
    case ValueType::i8:
      kv.i = load<int8_t>(c.take(1, what));
      break;
    case ValueType::u16:
      kv.u = load<uint16_t>(c.take(2, what));
      break;
    case ValueType::i16:
      kv.i = load<int16_t>(c.take(2, what));
      break;
    case ValueType::u32:
      kv.u = load<uint32_t>(c.take(4, what));
      break;
    case ValueType::i32:
      kv.i = load<int32_t>(c.take(4, what));
      break;
    case ValueType::u64:
      kv.u = load<uint64_t>(c.take(8, what));
      break;
    case ValueType::i64:
      kv.i = load<int64_t>(c.take(8, what));
      break;
    case ValueType::f32:
      kv.f = load<float>(c.take(4, what));
      break;
    case ValueType::f64:
      kv.f = load<double>(c.take(8, what));
      break;
    case ValueType::boolean:
      kv.u = load<uint8_t>(c.take(1, what)) != 0 ? 1 : 0;
      break;
    case ValueType::string:
      kv.str = c.str(what);
      break;
    case ValueType::array:
      break;  // handled by the caller
  }
}

}  // namespace

size_t value_type_size(uint32_t t) {
  switch (static_cast<ValueType>(t)) {
    case ValueType::u8:
    case ValueType::i8:
    case ValueType::boolean:
      return 1;
    case ValueType::u16:
    case ValueType::i16:
      return 2;
    case ValueType::u32:
    case ValueType::i32:
    case ValueType::f32:
      return 4;
    case ValueType::u64:
    case ValueType::i64:
    case ValueType::f64:
      return 8;
    case ValueType::string:
    case ValueType::array:
      return 0;
  }
  return 0;
}

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::u8:
      return "u8";
    case ValueType::i8:
      return "i8";
    case ValueType::u16:
      return "u16";
    case ValueType::i16:
      return "i16";
    case ValueType::u32:
      return "u32";
    case ValueType::i32:
      return "i32";
    case ValueType::f32:
      return "f32";
    case ValueType::boolean:
      return "bool";
    case ValueType::string:
      return "string";
    case ValueType::array:
      return "array";
    case ValueType::u64:
      return "u64";
    case ValueType::i64:
      return "i64";
    case ValueType::f64:
      return "f64";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Opening
// ---------------------------------------------------------------------------

std::unique_ptr<File> File::open(const std::string& path) {
  // O_NONBLOCK: a FIFO given by mistake must not block open(); fstat rejects it below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) fail(Status::io, "{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    fail(Status::io, "{}: cannot stat: {}", path, std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    fail(Status::io, "{}: is a directory, expected a GGUF file", path);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(Status::io, "{}: is not a regular file, expected a GGUF file", path);
  }
  if (st.st_size == 0) {
    ::close(fd);
    fail(Status::bad_format, "{}: file is empty (0 bytes), expected a GGUF file", path);
  }
  const auto size = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int e = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED)
    fail(Status::io, "{}: cannot map {} bytes: {}", path, size, std::strerror(e));

  std::unique_ptr<File> f(new File());
  f->path_ = path;
  f->base_ = static_cast<const uint8_t*>(p);
  f->size_ = size;
  f->mapped_ = true;  // from here the destructor unmaps, also when parse() throws
  f->parse();
  return f;
}

std::unique_ptr<File> File::from_memory(const void* data, size_t size, std::string name) {
  std::unique_ptr<File> f(new File());
  f->path_ = std::move(name);
  f->base_ = static_cast<const uint8_t*>(data);
  f->size_ = size;
  f->parse();
  return f;
}

File::~File() {
  if (mapped_ && base_ != nullptr) ::munmap(const_cast<uint8_t*>(base_), size_);
}

// ---------------------------------------------------------------------------
// Parsing and validation
// ---------------------------------------------------------------------------

void File::parse() {
  const std::string& name = path_;
  if (base_ == nullptr && size_ != 0)
    fail(Status::invalid_arg, "{}: null data pointer with size {}", name, size_);
  Cursor c(base_, size_, name);

  // Header.
  if (size_ < 4 || std::memcmp(base_, "GGUF", 4) != 0) {
    std::string_view got(reinterpret_cast<const char*>(base_), std::min<size_t>(size_, 4));
    fail(Status::bad_format, "{}: bad magic '{}' ({} bytes), expected 'GGUF'; not a GGUF file",
         name, printable(got), size_);
  }
  c.take(4, Named{"magic"});
  version_ = c.u32(Named{"version"});
  if (version_ != 2 && version_ != 3) {
    const uint32_t swapped = __builtin_bswap32(version_);
    fail(Status::bad_format, "{}: unsupported GGUF version {}, expected 2 or 3{}", name, version_,
         swapped == 2 || swapped == 3 ? " (this looks like a big-endian GGUF file)"
         : version_ == 1              ? " (version 1 files are obsolete; re-convert the model)"
                                      : "");
  }
  const uint64_t n_tensors = c.u64(Named{"tensor count"});
  const uint64_t n_kv = c.u64(Named{"metadata key/value count"});
  if (n_kv > c.remaining() / kMinKvBytes)
    fail(
        Status::bad_format,
        "{}: metadata key/value count {} cannot fit in the {} remaining bytes (each entry takes at "
        "least {} bytes); the file is corrupt",
        name, n_kv, c.remaining(), kMinKvBytes);
  // The kvs come first; a tensor count too big for everything left is rejected here already.
  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    fail(Status::bad_format,
         "{}: tensor count {} cannot fit in the {} remaining bytes (each tensor entry takes at "
         "least {} bytes); the file is corrupt",
         name, n_tensors, c.remaining(), kMinTensorInfoBytes);

  // Metadata.
  kvs_.clear();
  // Reserve at most a bounded amount up front: the count is bounded by the file size, but
  // a KeyValue is ten times bigger than the smallest encoded entry.
  kvs_.reserve(static_cast<size_t>(std::min<uint64_t>(n_kv, kReserveCap)));
  kv_index_.clear();
  kv_index_.reserve(static_cast<size_t>(std::min<uint64_t>(n_kv, kReserveCap)));
  bool have_alignment = false;
  for (uint64_t k = 0; k < n_kv; ++k) {
    const size_t key_at = c.pos();
    const std::string_view key = c.str([&] { return fmt::format("key of metadata entry {}", k); });
    if (key.empty())
      fail(Status::bad_format, "{}: metadata entry {} (offset {}) has an empty key", name, k,
           key_at);
    if (key.size() > kMaxKeyLength)
      fail(Status::bad_format,
           "{}: metadata entry {} (offset {}) has a key of {} bytes, more than the limit of {}",
           name, k, key_at, key.size(), kMaxKeyLength);
    if (!kv_index_.emplace(key, kvs_.size()).second)
      fail(Status::bad_format, "{}: duplicate metadata key '{}' (entry {}, offset {})", name,
           printable(key), k, key_at);

    KeyValue kv;
    kv.key = std::string(key);
    const auto what = [&] { return fmt::format("value of key '{}'", printable(key)); };
    const uint32_t type = c.u32(what);
    if (!known_value_type(type))
      fail(Status::bad_format, "{}: key '{}' has unknown value type {}, expected 0..12", name,
           printable(key), type);
    kv.type = static_cast<ValueType>(type);
    if (kv.type != ValueType::array) {
      read_scalar(c, kv.type, kv, what);
    } else {
      const uint32_t elem = c.u32(what);
      if (!known_value_type(elem))
        fail(Status::bad_format, "{}: array '{}' has unknown element type {}, expected 0..12", name,
             printable(key), elem);
      if (static_cast<ValueType>(elem) == ValueType::array)
        fail(Status::bad_format,
             "{}: key '{}' is an array of arrays; nested arrays are not supported", name,
             printable(key));
      kv.elem_type = static_cast<ValueType>(elem);
      kv.count = c.u64(what);
      const size_t esize = value_type_size(elem);
      const uint64_t min_elem = esize != 0 ? esize : 8;  // a string is at least its length
      if (kv.count > c.remaining() / min_elem)
        fail(Status::bad_format,
             "{}: array '{}' has {} elements of type {}, which cannot fit in the {} remaining "
             "bytes; the file is truncated or corrupt",
             name, printable(key), kv.count, value_type_name(kv.elem_type), c.remaining());
      if (kv.elem_type == ValueType::string) {
        kv.strings.reserve(static_cast<size_t>(kv.count));
        for (uint64_t i = 0; i < kv.count; ++i)
          kv.strings.push_back(
              c.str([&] { return fmt::format("element {} of array '{}'", i, printable(key)); }));
      } else {
        kv.array_data = c.take(kv.count * esize, what);
      }
    }

    if (key == "general.alignment") {
      if (kv.type != ValueType::u32)
        fail(Status::bad_format, "{}: key 'general.alignment' has type {}, expected u32", name,
             value_type_name(kv.type));
      if (kv.u == 0 || (kv.u & (kv.u - 1)) != 0)
        fail(Status::bad_format,
             "{}: key 'general.alignment' is {}, expected a non-zero power of two", name, kv.u);
      alignment_ = static_cast<size_t>(kv.u);
      have_alignment = true;
    }
    kvs_.push_back(std::move(kv));
  }
  if (!have_alignment) alignment_ = kDefaultAlignment;

  // Tensor infos.
  if (n_tensors > c.remaining() / kMinTensorInfoBytes)
    fail(Status::bad_format,
         "{}: tensor count {} cannot fit in the {} bytes left after the metadata (each tensor "
         "entry takes at least {} bytes); the file is corrupt",
         name, n_tensors, c.remaining(), kMinTensorInfoBytes);
  tensors_.clear();
  tensors_.reserve(static_cast<size_t>(std::min<uint64_t>(n_tensors, kReserveCap)));
  tensor_index_.clear();
  tensor_index_.reserve(static_cast<size_t>(std::min<uint64_t>(n_tensors, kReserveCap)));
  for (uint64_t t = 0; t < n_tensors; ++t) {
    const size_t at = c.pos();
    const std::string_view tname = c.str([&] { return fmt::format("name of tensor {}", t); });
    if (tname.empty())
      fail(Status::bad_format, "{}: tensor {} (offset {}) has an empty name", name, t, at);
    if (tname.size() > kMaxTensorName)
      fail(Status::bad_format,
           "{}: tensor {} (offset {}) has a name of {} bytes, more than the limit of {}", name, t,
           at, tname.size(), kMaxTensorName);
    if (!tensor_index_.emplace(tname, tensors_.size()).second)
      fail(Status::bad_format, "{}: duplicate tensor name '{}' (tensor {}, offset {})", name,
           printable(tname), t, at);
    const std::string pn = printable(tname);
    const auto what = [&] { return fmt::format("info of tensor '{}'", pn); };

    TensorInfo ti;
    ti.name = std::string(tname);
    const uint32_t n_dims = c.u32(what);
    if (n_dims < 1 || n_dims > kMaxDims)
      fail(Status::bad_format, "{}: tensor '{}': n_dims is {}, expected 1..{}", name, pn, n_dims,
           kMaxDims);
    ti.n_dims = static_cast<int>(n_dims);
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.u64(what);
      if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(Status::bad_format, "{}: tensor '{}': ne[{}] is {}, expected a positive size", name,
             pn, d, static_cast<int64_t>(ne));
      if (ne > kMaxElements / n_elements)
        fail(Status::bad_format,
             "{}: tensor '{}': element count overflows at ne[{}] = {} (more than 2^62 elements)",
             name, pn, d, ne);
      n_elements *= ne;
      ti.ne[d] = static_cast<int64_t>(ne);
    }
    const uint32_t type_id = c.u32(what);
    const TypeTraits* tt = find_type(type_id);
    if (tt == nullptr || tt->internal)
      fail(Status::bad_format, "{}: tensor '{}': unknown tensor type id {}", name, pn, type_id);
    ti.type = tt->type;
    ti.file_type = tt->type;
    if (ti.ne[0] % tt->block_size != 0)
      fail(Status::bad_format,
           "{}: tensor '{}': row length ne[0] = {} is not a multiple of the {} block size {}", name,
           pn, ti.ne[0], tt->name, tt->block_size);
    uint64_t nbytes = static_cast<uint64_t>(ti.ne[0] / tt->block_size);
    bool overflow = __builtin_mul_overflow(nbytes, uint64_t{tt->block_bytes}, &nbytes);
    for (int d = 1; d < kMaxDims; ++d)
      overflow =
          overflow || __builtin_mul_overflow(nbytes, static_cast<uint64_t>(ti.ne[d]), &nbytes);
    if (overflow || nbytes > std::numeric_limits<size_t>::max())
      fail(Status::bad_format, "{}: tensor '{}': data size overflows ({} elements of {})", name, pn,
           n_elements, tt->name);
    ti.nbytes = static_cast<size_t>(nbytes);
    ti.offset = c.u64(what);
    if (ti.offset % alignment_ != 0)
      fail(Status::bad_format,
           "{}: tensor '{}': data offset {} is not a multiple of the alignment {}", name, pn,
           ti.offset, alignment_);
    tensors_.push_back(std::move(ti));
  }

  // Data section: starts at the next multiple of the alignment.
  const size_t header_end = c.pos();
  const size_t pad = (alignment_ - header_end % alignment_) % alignment_;
  if (pad > size_ - header_end) {
    // Files without tensors (vocab-only files) may end right after the metadata.
    if (!tensors_.empty())
      fail(Status::bad_format,
           "{}: the tensor data section (at offset {} after padding to {}) starts past the end of "
           "the file ({} bytes); the file is truncated or corrupt",
           name, static_cast<uint64_t>(header_end) + pad, alignment_, size_);
    data_offset_ = size_;
  } else {
    data_offset_ = header_end + pad;
  }

  const uint64_t data_size = size_ - data_offset_;
  for (TensorInfo& ti : tensors_) {
    if (ti.offset > data_size || ti.nbytes > data_size - ti.offset)
      fail(Status::bad_format,
           "{}: tensor '{}': data [offset {}, {} bytes] runs past the end of the file ({} bytes); "
           "the file is truncated or corrupt",
           name, printable(ti.name), ti.offset, ti.nbytes, size_);
    ti.data = base_ + data_offset_ + ti.offset;
  }

  // Overlaps: sort the tensors by offset and compare neighbours.
  std::vector<const TensorInfo*> order;
  order.reserve(tensors_.size());
  for (const TensorInfo& ti : tensors_) order.push_back(&ti);
  std::sort(order.begin(), order.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < order.size(); ++i) {
    const TensorInfo& a = *order[i - 1];
    const TensorInfo& b = *order[i];
    if (a.offset + a.nbytes > b.offset)
      fail(Status::bad_format,
           "{}: tensor '{}' [offset {}, {} bytes] overlaps tensor '{}' [offset {}, {} bytes]; the "
           "file is corrupt",
           name, printable(a.name), a.offset, a.nbytes, printable(b.name), b.offset, b.nbytes);
  }
}

// ---------------------------------------------------------------------------
// Getters
// ---------------------------------------------------------------------------

const KeyValue* File::find(std::string_view key) const {
  const auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second];
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  const auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

[[noreturn]] void wrong_type(const std::string& path, const KeyValue& kv, const char* expected) {
  if (kv.type == ValueType::array)
    fail(Status::bad_format, "{}: key '{}' has type array of {}, expected {}", path, kv.key,
         value_type_name(kv.elem_type), expected);
  fail(Status::bad_format, "{}: key '{}' has type {}, expected {}", path, kv.key,
       value_type_name(kv.type), expected);
}

}  // namespace

std::optional<uint64_t> File::get_uint(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (is_unsigned(kv->type)) return kv->u;
  if (is_signed(kv->type)) {
    if (kv->i < 0)
      fail(Status::bad_format, "{}: key '{}' is {}, expected a non-negative integer", path_,
           kv->key, kv->i);
    return static_cast<uint64_t>(kv->i);
  }
  wrong_type(path_, *kv, "an unsigned integer");
}

std::optional<int64_t> File::get_int(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (is_signed(kv->type)) return kv->i;
  if (is_unsigned(kv->type)) {
    if (kv->u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(Status::bad_format, "{}: key '{}' is {}, out of range for a signed 64-bit integer",
           path_, kv->key, kv->u);
    return static_cast<int64_t>(kv->u);
  }
  wrong_type(path_, *kv, "an integer");
}

std::optional<uint32_t> File::get_u32(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (!is_unsigned(kv->type) && !is_signed(kv->type)) wrong_type(path_, *kv, "an unsigned integer");
  const uint64_t v = *get_uint(key);
  if (v > std::numeric_limits<uint32_t>::max())
    fail(Status::bad_format, "{}: key '{}' is {}, out of range for u32", path_, kv->key, v);
  return static_cast<uint32_t>(v);
}

std::optional<float> File::get_f32(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (kv->type == ValueType::f32 || kv->type == ValueType::f64) return static_cast<float>(kv->f);
  wrong_type(path_, *kv, "a float (f32 or f64)");
}

std::optional<bool> File::get_bool(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (kv->type == ValueType::boolean) return kv->u != 0;
  wrong_type(path_, *kv, "bool");
}

std::optional<std::string_view> File::get_string(std::string_view key) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return std::nullopt;
  if (kv->type == ValueType::string) return kv->str;
  wrong_type(path_, *kv, "string");
}

const KeyValue* File::get_array(std::string_view key, ValueType elem) const {
  const KeyValue* kv = find(key);
  if (kv == nullptr) return nullptr;
  if (kv->type != ValueType::array || kv->elem_type != elem) {
    const std::string expected = fmt::format("array of {}", value_type_name(elem));
    wrong_type(path_, *kv, expected.c_str());
  }
  return kv;
}

float File::array_f32(const KeyValue& kv, uint64_t i) {
  if (kv.type != ValueType::array) fail(Status::invalid_arg, "key '{}' is not an array", kv.key);
  if (i >= kv.count)
    fail(Status::invalid_arg, "index {} out of range for array '{}' of {} elements", i, kv.key,
         kv.count);
  switch (kv.elem_type) {
    case ValueType::f32:
      return load<float>(kv.array_data + 4 * i);
    case ValueType::f64:
      return static_cast<float>(load<double>(kv.array_data + 8 * i));
    default:
      break;
  }
  fail(Status::bad_format, "key '{}' is an array of {}, expected an array of f32 or f64", kv.key,
       value_type_name(kv.elem_type));
}

int64_t File::array_int(const KeyValue& kv, uint64_t i) {
  if (kv.type != ValueType::array) fail(Status::invalid_arg, "key '{}' is not an array", kv.key);
  if (i >= kv.count)
    fail(Status::invalid_arg, "index {} out of range for array '{}' of {} elements", i, kv.key,
         kv.count);
  const uint8_t* p = kv.array_data;
  switch (kv.elem_type) {
    case ValueType::u8:
      return load<uint8_t>(p + i);
    case ValueType::i8:
      return load<int8_t>(p + i);
    case ValueType::boolean:
      return load<uint8_t>(p + i) != 0 ? 1 : 0;
    case ValueType::u16:
      return load<uint16_t>(p + 2 * i);
    case ValueType::i16:
      return load<int16_t>(p + 2 * i);
    case ValueType::u32:
      return load<uint32_t>(p + 4 * i);
    case ValueType::i32:
      return load<int32_t>(p + 4 * i);
    case ValueType::i64:
      return load<int64_t>(p + 8 * i);
    case ValueType::u64: {
      const uint64_t v = load<uint64_t>(p + 8 * i);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail(Status::bad_format, "array '{}' element {} is {}, out of range for int64", kv.key, i,
             v);
      return static_cast<int64_t>(v);
    }
    default:
      break;
  }
  fail(Status::bad_format, "key '{}' is an array of {}, expected an array of integers", kv.key,
       value_type_name(kv.elem_type));
}

}  // namespace v4::gguf
