// A loaded model: the mapped GGUF file, its vocabulary and tokenizer, and (unless only
// the vocabulary was asked for) its architecture with checked weights. Immutable after
// loading, so any number of contexts on any threads may share it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "lib/core/log.h"
#include "lib/model/arch/arch.h"
#include "lib/model/gguf.h"
#include "lib/model/weight_memory.h"
#include "lib/text/tokenizer.h"
#include "lib/text/vocab.h"

namespace v4 {

struct ModelLoadOptions {
  bool vocab_only = false;
  LoadMode load_mode = LoadMode::automatic;
  bool (*progress)(float, void*) = nullptr;  // false cancels
  void* progress_user = nullptr;
  Logger log;
};

class Model {
 public:
  static std::unique_ptr<Model> load(const std::string& path, const ModelLoadOptions& opts);

  const gguf::File& file() const { return *file_; }
  const Vocab& vocab() const { return vocab_; }
  // The tokenizer (SentencePiece or byte-level BPE), or nullptr when the file has no vocabulary.
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  // nullptr for a vocab-only load.
  const Architecture* arch() const { return arch_.get(); }
  const Logger& log() const { return log_; }
  const std::string& name() const { return name_; }
  const std::string& chat_template() const { return chat_template_; }

  // Each token's text (control tokens empty), precomputed so streaming needs no allocation.
  const std::string& piece(int32_t id) const { return pieces_[id]; }
  uint64_t n_params() const { return n_params_; }
  LoadMode load_mode() const { return load_mode_; }
  uint64_t weight_bytes() const { return weight_bytes_; }

  // Tokenizes (throws unsupported when no tokenizer exists for this vocabulary kind).
  void tokenize(std::string_view text, bool add_bos, bool parse_special,
                std::vector<int32_t>& out) const;
  // Scans every tensor for NaN/Inf; throws bad_format naming the first bad one.
  void check_values() const;

 private:
  Model() = default;
  void use_cpu_weight_layouts();
  std::unique_ptr<gguf::File> file_;
  std::unique_ptr<WeightMemory> weights_;  // read mode: the tensor data
  LoadMode load_mode_ = LoadMode::mmap;
  Vocab vocab_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Architecture> arch_;
  Logger log_;
  std::string name_;
  std::string chat_template_;
  std::vector<std::string> pieces_;
  uint64_t n_params_ = 0;
  uint64_t weight_bytes_ = 0;
};

}  // namespace v4
