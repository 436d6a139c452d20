#include <cstdlib>

#include "lib/core/error.h"
#include "lib/kv/kv_tier.h"

namespace v4 {
namespace {

class HostTier final : public KvTier {
 public:
  HostTier(const std::vector<KvComponentSpec>& comps, int32_t page_rows, uint32_t n_pages)
      : n_pages_(n_pages) {
    for (const KvComponentSpec& c : comps) {
      const size_t bytes = c.row_bytes() * static_cast<size_t>(page_rows) * n_pages;
      void* p = nullptr;
      if (posix_memalign(&p, 64, bytes ? bytes : 64) != 0) {
        release();
        fail(Status::out_of_memory, "KV cache: cannot allocate {} bytes for {} ({} pages); "
             "use a smaller context (n_ctx)", bytes, c.name, n_pages);
      }
      bases_.push_back(static_cast<uint8_t*>(p));
      bytes_ += bytes;
    }
  }
  ~HostTier() override { release(); }

  const char* name() const override { return "host"; }
  uint32_t n_pages() const override { return n_pages_; }
  size_t bytes() const override { return bytes_; }
  uint8_t* component_base(size_t comp) override { return bases_[comp]; }

 private:
  void release() {
    for (uint8_t* p : bases_) std::free(p);
    bases_.clear();
  }
  uint32_t n_pages_;
  size_t bytes_ = 0;
  std::vector<uint8_t*> bases_;
};

}  // namespace

std::unique_ptr<KvTier> make_host_tier(const std::vector<KvComponentSpec>& comps,
                                       int32_t page_rows, uint32_t n_pages) {
  return std::make_unique<HostTier>(comps, page_rows, n_pages);
}

}  // namespace v4
