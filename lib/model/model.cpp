#include "lib/model/model.h"

#include <cmath>
#include <vector>

#include "backends/cpu/weight_layout.h"
#include "lib/core/error.h"

namespace v4 {

std::unique_ptr<Model> Model::load(const std::string& path, const ModelLoadOptions& opts) {
  std::unique_ptr<Model> m(new Model());
  m->log_ = opts.log;
  auto report = [&](float p) {
    if (opts.progress && !opts.progress(p, opts.progress_user))
      fail(Status::cancelled, "{}: loading cancelled by the progress callback", path);
  };
  report(0.0f);
  m->file_ = gguf::File::open(path);
  const gguf::File& f = *m->file_;

  m->vocab_ = Vocab::from_gguf(f, [&](const std::string& w) { m->log_(LogLevel::warn, "{}", w); });
  m->tokenizer_ = Tokenizer::create(m->vocab_);
  if (m->tokenizer_) {
    m->pieces_.resize(m->vocab_.n_tokens());
    for (int32_t i = 0; i < m->vocab_.n_tokens(); ++i) m->pieces_[i] = m->tokenizer_->piece(i);
  } else {
    m->pieces_ = m->vocab_.tokens;
  }
  m->name_ = std::string(f.get_string("general.name").value_or(""));
  if (m->name_.empty()) {
    const size_t slash = path.find_last_of('/');
    m->name_ = slash == std::string::npos ? path : path.substr(slash + 1);
  }
  m->chat_template_ = std::string(f.get_string("tokenizer.chat_template").value_or(""));
  report(0.2f);

  if (!opts.vocab_only) {
    if (f.tensors().empty())
      fail(Status::bad_format,
           "{}: the file has no tensors (a vocabulary-only file?); load it with vocab_only to "
           "tokenize",
           path);
    m->arch_ = make_architecture(f);
    const ArchInfo& info = m->arch_->info();
    if (m->vocab_.kind != VocabKind::none && m->vocab_.n_tokens() != info.n_vocab)
      fail(Status::bad_format,
           "{}: the vocabulary has {} tokens but token_embd.weight has {} rows", path,
           m->vocab_.n_tokens(), info.n_vocab);
    uint64_t total = 0;
    for (const gguf::TensorInfo& t : f.tensors()) {
      total += t.nbytes;
      m->n_params_ += static_cast<uint64_t>(t.n_elements());
    }
    m->load_mode_ = opts.load_mode == LoadMode::automatic ? LoadMode::read : opts.load_mode;
    if (m->load_mode_ == LoadMode::read) {
      m->weights_ = WeightMemory::read(*m->file_, [&](float p) {
        return !opts.progress || opts.progress(0.2f + 0.8f * p, opts.progress_user);
      });
      m->file_->rebase_tensor_data(m->weights_->data_section());
      m->use_cpu_weight_layouts();
      m->log_(LogLevel::info, "{}: read {} bytes of weights into {}memory{}", path,
              m->weights_->bytes(), m->weights_->huge_pages() ? "huge-page " : "",
              m->weights_->direct_io() ? " (O_DIRECT)" : "");
    } else {
      if (m->load_mode_ == LoadMode::mlock) lock_tensor_data(f);
      // Touch each tensor's pages once so loading reports real progress and the first
      // decode does not stall on page faults.
      uint64_t done = 0;
      volatile uint8_t sink = 0;
      for (const gguf::TensorInfo& t : f.tensors()) {
        for (size_t off = 0; off < t.nbytes; off += 4096) sink = sink + t.data[off];
        done += t.nbytes;
        report(0.2f + 0.8f * static_cast<float>(done) / static_cast<float>(total ? total : 1));
      }
    }
    m->weight_bytes_ = total;
  }
  report(1.0f);
  return m;
}

void Model::tokenize(std::string_view text, bool add_bos, bool parse_special,
                     std::vector<int32_t>& out) const {
  if (!tokenizer_)
    fail(Status::unsupported,
         "{}: the file has no tokenizer vocabulary (tokenizer.ggml.model '{}')", file_->path(),
         vocab_.model_name);
  tokenizer_->tokenize(text, add_bos, parse_special, out);
}

// The weights are ours to rewrite (read mode): give the CPU kernels their layouts.
void Model::use_cpu_weight_layouts() {
  size_t converted = 0;
  for (size_t i = 0; i < file_->tensors().size(); ++i) {
    const gguf::TensorInfo& t = file_->tensors()[i];
    const DType to = cpu::preferred_weight_layout(t.type, t.ne[0]);
    if (to == t.type) continue;
    cpu::convert_weight_layout(const_cast<uint8_t*>(t.data), t.type, to, t.ne[0], t.n_elements() / t.ne[0]);
    file_->set_compute_type(i, to);
    ++converted;
  }
  if (converted) log_(LogLevel::info, "{}: {} weight tensors regrouped for the CPU kernels", file_->path(), converted);
}

void Model::check_values() const {
  std::vector<float> row;
  for (const gguf::TensorInfo& t : file_->tensors()) {
    const TypeTraits& tt = traits(t.type);
    if (!tt.to_f32) continue;
    const int64_t n = t.ne[0];
    const size_t rb = row_bytes(t.type, n);
    row.resize(static_cast<size_t>(n));
    for (int64_t r = 0; r < t.n_elements() / n; ++r) {
      tt.to_f32(t.data + r * rb, row.data(), n);
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(row[i]))
          fail(Status::bad_format, "{}: tensor '{}' has a non-finite value ({}) at row {}, column {}",
               file_->path(), t.name, row[i], r, i);
    }
  }
}

}  // namespace v4
