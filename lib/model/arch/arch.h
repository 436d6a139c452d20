// An architecture reads its hyper-parameters from GGUF metadata, finds and checks its
// tensors, declares its KV cache layout and builds the forward graph for a batch.
// Prefill and decode share one builder; the graph's topology depends only on the
// number of tokens and of wanted outputs, never on positions or sequence contents.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "lib/core/graph.h"
#include "lib/kv/kv_tier.h"
#include "lib/model/gguf.h"

namespace v4 {

// Tensors of one forward graph that the runtime fills or reads.
struct ForwardGraph {
  Tensor* tokens = nullptr;     // I32 [n_tokens]
  Tensor* positions = nullptr;  // I32 [n_tokens]
  Tensor* out_ids = nullptr;    // I32 [n_outputs]; nullptr when every token is an output
  Tensor* logits = nullptr;     // F32 [n_vocab, n_outputs]
};

struct ArchInfo {
  std::string name;
  int32_t n_vocab = 0;
  int32_t n_embd = 0;
  int32_t n_layer = 0;
  int32_t n_ctx_train = 0;
};

class Architecture {
 public:
  virtual ~Architecture() = default;
  virtual const ArchInfo& info() const = 0;
  virtual std::vector<KvComponentSpec> kv_components(DType kv_type) const = 0;
  virtual ForwardGraph build(Graph& g, int32_t n_tokens, int32_t n_outputs, KvView* kv) const = 0;
  // Largest head size attention will see (sizes scratch buffers).
  virtual int32_t max_head_dim() const = 0;
  // Most query heads that share one KV head (attention keeps one score row per such head).
  virtual int32_t max_query_group() const = 0;
};

// Chooses the architecture named by general.architecture. Throws unsupported for an
// unknown name (listing the known ones) and bad_format for inconsistent files.
std::unique_ptr<Architecture> make_architecture(const gguf::File& file);

// Implementations (one file each under lib/model/arch/).
std::unique_ptr<Architecture> make_llama(const gguf::File& file);

}  // namespace v4
