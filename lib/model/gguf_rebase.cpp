#include "lib/model/gguf.h"

namespace v4::gguf {

void File::rebase_tensor_data(const uint8_t* data_section) {
  for (TensorInfo& t : tensors_) t.data = data_section + t.offset;
}

}  // namespace v4::gguf
