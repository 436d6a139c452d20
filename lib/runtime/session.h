// Sessions: one sequence's tokens and KV rows in a file, so a long prompt's prefill is
// paid once. The format (docs/FORMAT.md, "Session files") is versioned and checksummed,
// and names the model (a fingerprint) and KV layout it belongs to; files are written
// atomically (temporary file, fsync, rename).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace v4 {

class Context;
class Model;

// Identifies a model's weights and shapes: tensor names, types, shapes and the bytes of its
// small F32 tensors (norms), independent of the load mode.
uint64_t model_fingerprint(const Model& model);

void save_session(Context& ctx, int32_t seq, const std::string& path);
// Replaces `seq` with the session; returns its tokens. Throws (bad_format, io) on a file
// that does not belong to this context's model and KV layout or is damaged; the sequence is
// then empty.
std::vector<int32_t> load_session(Context& ctx, int32_t seq, const std::string& path);

}  // namespace v4
