// How a model's tensor bytes reach memory: left in the file mapping (mmap), locked in
// it (mlock), or read into anonymous memory (read). Reading streams the data section in
// chunks (O_DIRECT where the file system allows, else buffered reads whose page cache is
// dropped behind them), so it never needs twice the model's size in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "lib/model/gguf.h"

namespace v4 {

enum class LoadMode { automatic = 0, mmap = 1, read = 2, mlock = 3 };
const char* load_mode_name(LoadMode m);

// Anonymous memory holding a copy of a file's tensor data section.
class WeightMemory {
 public:
  ~WeightMemory();
  const uint8_t* data_section() const { return data_; }
  size_t bytes() const { return size_; }
  bool huge_pages() const { return huge_; }
  bool direct_io() const { return direct_; }

  // progress(fraction) returns false to cancel (throws Status::cancelled).
  template <class F>
  static std::unique_ptr<WeightMemory> read(const gguf::File& f, F&& progress) {
    return read_impl(f, [](float p, void* u) { return (*static_cast<F*>(u))(p); }, &progress);
  }

 private:
  static std::unique_ptr<WeightMemory> read_impl(const gguf::File& f, bool (*progress)(float, void*),
                                                 void* user);
  uint8_t* map_ = nullptr;  // the anonymous mapping
  size_t map_size_ = 0;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool huge_ = false;
  bool direct_ = false;
};

// Locks a mapped file's data section in memory; throws with advice when the limit is low.
void lock_tensor_data(const gguf::File& f);

}  // namespace v4
