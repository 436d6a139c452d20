// GGUF v2/v3 reader. The whole file is validated when opened: every count, size,
// offset, alignment and type is checked before it is used, and an error names the
// file, the key or tensor, and what was expected. After open() succeeds, every
// accessor is safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/core/dtype.h"

namespace v4::gguf {

enum class ValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7,
  string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};
const char* value_type_name(ValueType t);
// Bytes of one value of a scalar type; 0 for string, array and unknown ids.
size_t value_type_size(uint32_t t);

// One metadata value. Scalars are decoded; arrays keep their element type and count,
// with strings decoded into views of the mapped file and numbers into `numbers`.
struct KeyValue {
  std::string key;
  ValueType type;
  ValueType elem_type = ValueType::u8;  // arrays only
  uint64_t count = 0;                   // arrays only
  // Scalars: integers in i (signed) / u (unsigned), floats in f, bools in u, strings in str.
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0.0;
  std::string_view str;
  // Arrays: the raw little-endian element bytes for numeric arrays, and one view per
  // element for string arrays. (Nested arrays are rejected when the file is opened.)
  const uint8_t* array_data = nullptr;
  std::vector<std::string_view> strings;
};

struct TensorInfo {
  std::string name;
  DType type;            // the type kernels compute with (see set_compute_type)
  DType file_type;       // the type stored in the file
  int n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the row length (GGUF/ggml order)
  uint64_t offset = 0;           // relative to the data section
  size_t nbytes = 0;
  const uint8_t* data = nullptr; // into the mapped file
  int64_t n_elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
};

class File {
 public:
  // Maps and validates a file. Throws v4::Error (io / bad_format) on any problem.
  static std::unique_ptr<File> open(const std::string& path);
  // Validates a GGUF image already in memory (tests, fuzzing). The bytes must outlive
  // the File. `name` is used in error messages.
  static std::unique_ptr<File> from_memory(const void* data, size_t size, std::string name);
  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t file_size() const { return size_; }
  size_t data_offset() const { return data_offset_; }  // start of the tensor data section
  const uint8_t* base() const { return base_; }

  const std::vector<KeyValue>& kvs() const { return kvs_; }
  const KeyValue* find(std::string_view key) const;

  // Typed getters. nullopt when the key is absent; a present key of the wrong type
  // (or an integer out of range for the requested type) throws bad_format naming it.
  // Integer getters accept any integer value type whose value fits.
  std::optional<uint64_t> get_uint(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;
  std::optional<uint32_t> get_u32(std::string_view key) const;
  std::optional<float> get_f32(std::string_view key) const;  // accepts f32 or f64
  std::optional<bool> get_bool(std::string_view key) const;
  std::optional<std::string_view> get_string(std::string_view key) const;
  // Array of the given element type (throws if the key is another type). For string
  // arrays use kv->strings. Numeric element access helpers:
  const KeyValue* get_array(std::string_view key, ValueType elem) const;
  static float array_f32(const KeyValue& kv, uint64_t i);
  static int64_t array_int(const KeyValue& kv, uint64_t i);

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;

  // Points every tensor's data at `data_section + offset` instead of the mapped file:
  // used when the data section was copied elsewhere (read into anonymous memory). The
  // caller keeps that memory alive as long as this File.
  void rebase_tensor_data(const uint8_t* data_section);
  // Records that tensor i's bytes were converted in place to another layout of the same
  // row size (e.g. Q4_0 -> Q4_0_R4 for the CPU's kernels).
  void set_compute_type(size_t i, DType type);

 private:
  File() = default;
  void parse();

  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<KeyValue> kvs_;
  std::vector<TensorInfo> tensors_;
  // Name -> index; the views point into the mapped file, which outlives them.
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

// GGUF v3 writer: metadata and tensors collected in memory, then written to a
// temporary file beside the destination and renamed into place, so a failed write
// never leaves a half file under the final name.
class Writer {
 public:
  void set_u32(const std::string& key, uint32_t v);
  void set_i32(const std::string& key, int32_t v);
  void set_u64(const std::string& key, uint64_t v);
  void set_f32(const std::string& key, float v);
  void set_bool(const std::string& key, bool v);
  void set_string(const std::string& key, const std::string& v);
  void set_array_strings(const std::string& key, const std::vector<std::string>& v);
  void set_array_f32(const std::string& key, const std::vector<float>& v);
  void set_array_i32(const std::string& key, const std::vector<int32_t>& v);
  // Copies a key (any type, arrays included) from a file being read.
  void copy_kv(const KeyValue& kv);
  // ne[0] is the row length. `data` holds nbytes = row_bytes(type, ne0) * rows and is
  // copied.
  void add_tensor(const std::string& name, DType type, const std::vector<int64_t>& ne,
                  const void* data, size_t nbytes);
  void set_alignment(size_t alignment);
  // Serialises to bytes (tests) or to a file (throws io on failure, e.g. a full disk).
  std::vector<uint8_t> to_bytes() const;
  void write_file(const std::string& path) const;

 private:
  struct Entry;  // defined in gguf_writer.cpp
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> ne;
    std::vector<uint8_t> data;
  };
  std::vector<std::pair<std::string, std::vector<uint8_t>>> kvs_;  // key, encoded type+value
  std::vector<Tensor> tensors_;
  size_t alignment_ = 32;
};

}  // namespace v4::gguf
