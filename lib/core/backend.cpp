#include "lib/core/backend.h"

#include <cstdlib>

#include "lib/core/error.h"
#include "lib/kv/kv_tier.h"

namespace v4 {

void* Backend::alloc(size_t bytes, size_t align) {
  void* p = nullptr;
  if (align < sizeof(void*)) align = sizeof(void*);
  if (posix_memalign(&p, align, bytes == 0 ? align : bytes) != 0)
    fail(Status::out_of_memory, "{}: cannot allocate {} bytes of host memory", name(), bytes);
  return p;
}

void Backend::free(void* ptr) { std::free(ptr); }

std::unique_ptr<KvTier> Backend::make_kv_tier(DType, int64_t, uint32_t, size_t) {
  return nullptr;
}

}  // namespace v4
