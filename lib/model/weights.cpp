#include "lib/model/weights.h"

#include <fmt/ranges.h>

#include <vector>

#include "lib/core/error.h"

namespace v4 {

void WeightSet::check(const gguf::TensorInfo& t, std::initializer_list<int64_t> shape) const {
  std::vector<int64_t> want(shape);
  std::vector<int64_t> have(t.ne, t.ne + t.n_dims);
  // Trailing 1s are the same shape ([64] == [64, 1]).
  while (want.size() > 1 && want.back() == 1) want.pop_back();
  while (have.size() > 1 && have.back() == 1) have.pop_back();
  if (want != have)
    fail(Status::bad_format,
         "{}: tensor '{}' has shape [{}], but the model's hyper-parameters imply [{}]; the file "
         "is inconsistent or was converted incorrectly",
         file_.path(), t.name, fmt::join(have, ", "), fmt::join(want, ", "));
  if (traits(t.type).to_f32 == nullptr)
    fail(Status::unsupported,
         "{}: tensor '{}' has type {}, which this build cannot compute yet (supported: F32, F16, "
         "BF16, Q8_0, Q4_0); re-quantize the model to one of those",
         file_.path(), t.name, type_name(t.type));
}

const gguf::TensorInfo& WeightSet::require(const std::string& name,
                                           std::initializer_list<int64_t> shape) const {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (!t)
    fail(Status::bad_format, "{}: required tensor '{}' is missing", file_.path(), name);
  check(*t, shape);
  return *t;
}

const gguf::TensorInfo* WeightSet::optional(const std::string& name,
                                            std::initializer_list<int64_t> shape) const {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (t) check(*t, shape);
  return t;
}

Tensor* weight_leaf(Graph& g, const gguf::TensorInfo& t) {
  return g.weight(t.type, t.ne, t.data, t.name);
}

}  // namespace v4
