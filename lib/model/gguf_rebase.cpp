#include "lib/model/gguf.h"

namespace v4::gguf {

void File::rebase_tensor_data(const uint8_t* data_section) {
  for (TensorInfo& t : tensors_) t.data = data_section + t.offset;
}

void File::set_compute_type(size_t i, DType type) { tensors_.at(i).type = type; }

}  // namespace v4::gguf
