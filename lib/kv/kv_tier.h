// Where KV pages live. A tier holds a fixed number of page slots; every component
// (e.g. layer 3's K rows) has the same page slots with its own row size. The foundation
// has one tier, host memory; device (VRAM) and disk (io_uring) tiers implement the
// same interface. Moving a page between tiers never changes its bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/dtype.h"

namespace v4 {

struct KvComponentSpec {
  std::string name;    // "blk.3.k"
  DType type;          // row storage type
  int64_t row_elems;   // elements per row (one token's K for all KV heads, ...)
  size_t row_bytes() const { return v4::row_bytes(type, row_elems); }
};

class KvTier {
 public:
  virtual ~KvTier() = default;
  virtual const char* name() const = 0;
  virtual uint32_t n_pages() const = 0;
  virtual size_t bytes() const = 0;
  // Directly addressable storage of a component (slot after slot), or nullptr for a
  // tier that is not byte-addressable from the host (disk).
  virtual uint8_t* component_base(size_t comp) = 0;
};

std::unique_ptr<KvTier> make_host_tier(const std::vector<KvComponentSpec>& comps,
                                       int32_t page_rows, uint32_t n_pages);

}  // namespace v4
