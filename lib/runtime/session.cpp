#include "lib/runtime/session.h"

#include <cstring>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "lib/core/error.h"
#include "lib/core/file_io.h"
#include "lib/runtime/context.h"

namespace v4 {
namespace {

constexpr char kMagic[8] = {'V', '4', 'S', 'E', 'S', 'S', '\n', '\0'};
constexpr uint32_t kVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t n_components;
  uint64_t model_fingerprint;
  uint32_t n_tokens;
  uint32_t n_window;  // exact f32 copies of the last rows (FP8 pages' recent-row window)
};
static_assert(sizeof(Header) == 32);

struct ComponentHeader {
  uint32_t type;       // DType id of the rows
  uint32_t row_bytes;
};

// The whole file is built in memory and hashed; sessions are small next to the model
// (4K tokens of a 1B model in f16: ~90 MiB).
void append(std::vector<uint8_t>& out, const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  out.insert(out.end(), b, b + n);
}

}  // namespace

uint64_t model_fingerprint(const Model& model) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  for (const gguf::TensorInfo& t : model.file().tensors()) {
    XXH3_64bits_update(st, t.name.data(), t.name.size());
    const uint32_t type = static_cast<uint32_t>(t.file_type);
    XXH3_64bits_update(st, &type, sizeof type);
    XXH3_64bits_update(st, t.ne, sizeof t.ne);
    if (t.type == DType::F32 && t.n_elements() <= (1 << 20) && t.data)
      XXH3_64bits_update(st, t.data, t.nbytes);
  }
  const uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return h;
}

void save_session(Context& ctx, int32_t seq, const std::string& path) {
  KvCache& kv = ctx.kv();
  if (seq < 0 || seq >= static_cast<int32_t>(kv.n_seq_max()))
    fail(Status::invalid_arg, "sequence id {} is outside 0..{}", seq, kv.n_seq_max() - 1);
  const std::vector<int32_t>& tokens = ctx.seq_tokens(seq);
  const int32_t n = kv.seq_length(seq);
  if (static_cast<int32_t>(tokens.size()) != n)
    fail(Status::internal, "sequence {} holds {} positions but {} tokens are recorded", seq, n,
         tokens.size());
  const auto& comps = kv.components();

  std::vector<uint8_t> out;
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.version = kVersion;
  h.n_components = static_cast<uint32_t>(comps.size());
  h.model_fingerprint = model_fingerprint(ctx.model());
  h.n_tokens = static_cast<uint32_t>(n);
  const int32_t first = kv.window() > 0 ? kv.window_first(seq) : n;
  h.n_window = static_cast<uint32_t>(n - first);
  append(out, &h, sizeof h);
  for (const KvComponentSpec& c : comps) {
    const ComponentHeader ch{static_cast<uint32_t>(c.type), static_cast<uint32_t>(c.row_bytes())};
    append(out, &ch, sizeof ch);
  }
  append(out, tokens.data(), tokens.size() * sizeof(int32_t));
  for (size_t c = 0; c < comps.size(); ++c) {
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(n) * comps[c].row_bytes());
    kv.read_rows(seq, c, n, out.data() + at);
  }
  std::vector<float> window;
  for (size_t c = 0; c < comps.size(); ++c) {
    if (!traits(comps[c].type).quantized) continue;
    window.resize(static_cast<size_t>(n - first) * comps[c].row_elems);
    kv.read_window(seq, c, first, n - first, window.data());  // host or device ring
    append(out, window.data(), window.size() * sizeof(float));
  }
  const uint64_t sum = XXH3_64bits(out.data(), out.size());
  append(out, &sum, sizeof sum);

  // Atomic replace: a crash leaves either the old file or the new one, never half of one.
  write_file_atomic(path, [&](int fd) { return write_all(fd, out.data(), out.size()); });
}

std::vector<int32_t> load_session(Context& ctx, int32_t seq, const std::string& path) {
  const std::vector<uint8_t> data = read_file_bytes(path);
  auto bad = [&](const char* what) {
    fail(Status::bad_format, "session file {} {}; delete it and save the session again", path,
         what);
  };
  if (data.size() < sizeof(Header) + 8) bad("is truncated (shorter than its header)");
  Header h;
  std::memcpy(&h, data.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, sizeof kMagic) != 0) bad("is not a v4engine session");
  if (h.version != kVersion) bad("has an unsupported format version");
  uint64_t sum;
  std::memcpy(&sum, data.data() + data.size() - 8, 8);
  if (XXH3_64bits(data.data(), data.size() - 8) != sum)
    bad("is damaged (checksum mismatch: truncated or modified)");
  if (h.model_fingerprint != model_fingerprint(ctx.model()))
    fail(Status::bad_format, "session file {} was made with a different model; use the model it "
         "was saved with, or delete it", path);
  const auto& comps = ctx.kv().components();
  if (h.n_components != comps.size()) bad("has a different KV layout than this context");
  size_t at = sizeof h;
  for (const KvComponentSpec& c : comps) {
    ComponentHeader ch;
    std::memcpy(&ch, data.data() + at, sizeof ch);
    at += sizeof ch;
    if (ch.type != static_cast<uint32_t>(c.type) || ch.row_bytes != c.row_bytes())
      fail(Status::bad_format,
           "session file {} stores {} KV rows but this context uses {}; load it with the same "
           "--kv-type it was saved with",
           path, find_type(ch.type) ? find_type(ch.type)->name : "unknown", type_name(c.type));
  }
  const int32_t n = static_cast<int32_t>(h.n_tokens);
  if (h.n_window > h.n_tokens || static_cast<int32_t>(h.n_window) > ctx.kv().window())
    bad("has more exact recent rows than this context keeps");
  size_t need = at + size_t{h.n_tokens} * sizeof(int32_t) + 8;
  for (const KvComponentSpec& c : comps) {
    need += size_t{h.n_tokens} * c.row_bytes();
    if (traits(c.type).quantized) need += size_t{h.n_window} * c.row_elems * sizeof(float);
  }
  if (need != data.size()) bad("has an inconsistent size");
  std::vector<int32_t> tokens(n);
  std::memcpy(tokens.data(), data.data() + at, tokens.size() * sizeof(int32_t));
  at += tokens.size() * sizeof(int32_t);
  std::vector<const uint8_t*> rows;
  for (const KvComponentSpec& c : comps) {
    rows.push_back(data.data() + at);
    at += size_t{h.n_tokens} * c.row_bytes();
  }
  std::vector<const float*> window_rows(comps.size(), nullptr);
  std::vector<std::vector<float>> window_copy(comps.size());  // aligned copies of the file's
  for (size_t c = 0; c < comps.size(); ++c) {
    if (!traits(comps[c].type).quantized) continue;
    const size_t floats = size_t{h.n_window} * comps[c].row_elems;
    window_copy[c].resize(floats);
    std::memcpy(window_copy[c].data(), data.data() + at, floats * sizeof(float));
    window_rows[c] = window_copy[c].data();
    at += floats * sizeof(float);
  }
  ctx.seq_restore(seq, tokens.data(), n, rows, static_cast<int32_t>(h.n_window), window_rows);
  return tokens;
}

}  // namespace v4
