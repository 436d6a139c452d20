// What one render may cost. A chat template comes from a model file, so it is untrusted input:
// every loop iteration, evaluation step and byte of data it makes is counted, and exceeding
// any limit ends the render with an error instead of a hang or a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "lib/text/jinja/value.h"

namespace v4::jinja {

struct Limits {
  size_t max_output_bytes = size_t{16} << 20;   // rendered text, and any one string value
  uint64_t max_loop_iterations = 1'000'000;     // all loops of a render together
  int max_nesting = 64;                         // blocks, expressions, macro calls
  uint64_t max_steps = 20'000'000;              // evaluation steps of a render
  uint64_t max_bytes_made = uint64_t{1} << 30;  // bytes of all strings/lists built by a render
};

class Budget {
 public:
  explicit Budget(const Limits& limits) : limits_(limits) {}

  const Limits& limits() const { return limits_; }

  void step(uint64_t n = 1) {
    steps_ += n;
    if (steps_ > limits_.max_steps)
      throw TemplateError("the template exceeded its evaluation limit (" +
                          std::to_string(limits_.max_steps) + " steps)");
  }

  void iteration() {
    if (++iterations_ > limits_.max_loop_iterations)
      throw TemplateError("the template exceeded its loop limit (" +
                          std::to_string(limits_.max_loop_iterations) + " iterations)");
    step();
  }

  // Checks that a string of `size` bytes stays within the string limit.
  void check_size(size_t size) const {
    if (size > limits_.max_output_bytes)
      throw TemplateError("a string of " + std::to_string(size) + " bytes exceeds the limit of " +
                          std::to_string(limits_.max_output_bytes));
  }

  // Charges `n` bytes of data copied or built.
  void bytes(uint64_t n) {
    bytes_ += n;
    if (bytes_ > limits_.max_bytes_made)
      throw TemplateError("the template built more than " + std::to_string(limits_.max_bytes_made) +
                          " bytes of data");
  }

  // Checks and charges a new string of `size` bytes.
  void string(size_t size) {
    check_size(size);
    bytes(size);
  }

  // Checks and charges a new list of `n` elements.
  void list(size_t n) {
    if (n > limits_.max_loop_iterations)
      throw TemplateError("a list of " + std::to_string(n) + " elements exceeds the limit of " +
                          std::to_string(limits_.max_loop_iterations));
    bytes(n * sizeof(Value));
  }

 private:
  Limits limits_;
  uint64_t steps_ = 0;
  uint64_t iterations_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace v4::jinja
