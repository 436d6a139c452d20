// Finds an architecture's tensors in a GGUF file and checks each one's shape and type
// against what the hyper-parameters imply, with errors that name the tensor.
#pragma once

#include <initializer_list>
#include <string>

#include "lib/core/graph.h"
#include "lib/model/gguf.h"

namespace v4 {

class WeightSet {
 public:
  explicit WeightSet(const gguf::File& file) : file_(file) {}

  // The tensor, which must exist with exactly this shape (ne[0] first).
  const gguf::TensorInfo& require(const std::string& name, std::initializer_list<int64_t> shape) const;
  // nullptr when absent; checked like require() when present.
  const gguf::TensorInfo* optional(const std::string& name, std::initializer_list<int64_t> shape) const;

  const gguf::File& file() const { return file_; }

 private:
  void check(const gguf::TensorInfo& t, std::initializer_list<int64_t> shape) const;
  const gguf::File& file_;
};

// A graph leaf for a checked weight.
Tensor* weight_leaf(Graph& g, const gguf::TensorInfo& t);

}  // namespace v4
