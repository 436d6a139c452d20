#include "lib/model/model_footprint.h"

#include <charconv>
#include <string_view>

#include "lib/core/error.h"

namespace v4 {
namespace {

// The layer of a "blk.N.rest" name, or -1 for any other name.
int64_t layer_of(std::string_view name) {
  constexpr std::string_view kPrefix = "blk.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return -1;
  name.remove_prefix(kPrefix.size());
  int64_t n = -1;
  const auto res = std::from_chars(name.data(), name.data() + name.size(), n);
  if (res.ec != std::errc() || res.ptr == name.data() + name.size() || *res.ptr != '.') return -1;
  return n;
}

size_t checked_layer(std::string_view name, int32_t n_layer) {
  const int64_t l = layer_of(name);
  if (l >= n_layer)
    fail(Status::bad_format, "tensor '{}' names layer {} but the model has {} layers", name, l,
         n_layer);
  return static_cast<size_t>(l);
}

}  // namespace

ModelFootprint model_footprint(const gguf::File& file, int32_t n_layer,
                               const std::vector<KvComponentSpec>& kv, uint32_t n_ctx) {
  ModelFootprint fp;
  fp.layer_bytes.assign(static_cast<size_t>(n_layer), 0);
  fp.kv_bytes.assign(static_cast<size_t>(n_layer), 0);
  const bool tied = file.find_tensor("output.weight") == nullptr;
  for (const gguf::TensorInfo& t : file.tensors()) {
    if (layer_of(t.name) >= 0) {
      fp.layer_bytes[checked_layer(t.name, n_layer)] += t.nbytes;
    } else if (t.name == "token_embd.weight") {
      fp.embedding_bytes += t.nbytes;
      if (tied) fp.output_bytes += t.nbytes;
    } else {
      fp.output_bytes += t.nbytes;
    }
  }
  for (const KvComponentSpec& c : kv)
    if (layer_of(c.name) >= 0) fp.kv_bytes[checked_layer(c.name, n_layer)] += c.row_bytes() * n_ctx;
  return fp;
}

}  // namespace v4
