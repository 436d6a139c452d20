// v4 quantize: converts a GGUF model to another weight type with the reference quantisers
// (lib/core/quant). 1-D tensors (norms, biases) stay F32; by default the output matrix (and
// the embedding) are kept at a higher precision, as llama.cpp does; a tensor whose rows are
// not whole blocks of the requested type falls back to the closest more precise type that
// fits. Per-tensor error statistics go to stderr as a table.
//
// A developer subcommand: it works on the file itself, not through the C API, with the
// library's GGUF reader/writer and type table (the tool links the static library).
#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common.h"
#include "lib/core/dtype.h"
#include "lib/model/gguf.h"
#include "progress.h"

namespace v4::cli {

namespace {

struct QuantizeOptions {
  std::string input;
  std::string output;
  std::string type;
  std::vector<std::string> keep_f32;
  std::string output_type;
  std::string embd_type;
  int32_t threads = 0;
};

// The types `v4 quantize` writes.
constexpr DType kTargets[] = {DType::F32,  DType::F16,  DType::BF16, DType::Q8_0,
                              DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                              DType::Q4_K, DType::Q5_K, DType::Q6_K, DType::FP8_B32};

// From least to most precise (NMSE of each reference quantiser on Gaussian data: Q4_0 7.4e-3,
// Q4_1 6.2e-3, Q4_K 5.1e-3, Q5_0 1.8e-3, Q5_1 1.5e-3, Q5_K 1.3e-3, Q6_K 3.2e-4, Q8_0 2.9e-5,
// F16 4e-8). A tensor whose row length is not a whole number of the wanted type's blocks gets
// the next type of this list whose block divides it. BF16 and FP8_B32 are never chosen as a
// fallback (F16 is more precise than BF16 for weights, and FP8_B32 is our own type); FP8_B32
// falls back as if it stood just below Q6_K (its NMSE is 5.8e-4).
constexpr DType kByPrecision[] = {DType::Q4_0, DType::Q4_1, DType::Q4_K, DType::Q5_0, DType::Q5_1,
                                  DType::Q5_K, DType::Q6_K, DType::Q8_0, DType::F16,  DType::F32};

constexpr float kF16Max = 65504.0f;

bool parse_target(const std::string& s, DType* out) {
  DType t;
  if (!parse_type_name(s, &t)) return false;
  if (std::find(std::begin(kTargets), std::end(kTargets), t) == std::end(kTargets)) return false;
  *out = t;
  return true;
}

std::string target_names() {
  std::string s;
  for (DType t : kTargets) s += (s.empty() ? "" : ", ") + std::string(type_name(t));
  return s;
}


// Default type of token_embd.weight: Q6_K for the types below 6 bits, otherwise the requested
// type.
DType default_embd_type(DType t) {
  switch (t) {
    case DType::Q4_0:
    case DType::Q4_1:
    case DType::Q5_0:
    case DType::Q5_1:
    case DType::Q4_K:
    case DType::Q5_K:
      return DType::Q6_K;
    default:
      return t;
  }
}

// Default type of output.weight, the matrix the logits come from and the most sensitive one:
// as the embedding (Q6_K below 6 bits, as llama.cpp does), except that a BF16 file keeps it in
// F16 (same size, 3 more mantissa bits; with a BF16 output matrix stories260K's greedy text
// departs from F32's after about 170 tokens, with F16 it does not).
DType default_output_type(DType t) { return t == DType::BF16 ? DType::F16 : default_embd_type(t); }

bool fits(DType t, int64_t row) { return row % traits(t).block_size == 0; }

// `want` if its block divides the row, else the next more precise type that fits.
DType fit_row(DType want, int64_t row) {
  if (fits(want, row)) return want;
  const DType from = want == DType::FP8_B32 ? DType::Q5_K : want;
  const DType* it = std::find(std::begin(kByPrecision), std::end(kByPrecision), from);
  if (it == std::end(kByPrecision)) return DType::F32;
  for (++it; it != std::end(kByPrecision); ++it)
    if (fits(*it, row)) return *it;
  return DType::F32;
}

std::string shape_of(const gguf::TensorInfo& t) {
  std::string s;
  for (int d = 0; d < t.n_dims; ++d) s += (d ? " x " : "") + std::to_string(t.ne[d]);
  return s;
}

bool is_block_type(DType t) { return traits(t).block_size > 1; }

struct Stats {
  double err2 = 0;    // sum of squared errors
  double energy = 0;  // sum of squared source values
  double max_abs = 0;
  int64_t n = 0;
};

struct Row {
  std::string name, shape, from, to, note;
  Stats stats;
  bool measured = false;
};

// Quantises rows [r0, r1) of x and measures the error of their round trip.
void quantize_rows(DType type, const float* x, int64_t row_len, int64_t r0, int64_t r1,
                   uint8_t* out, Stats* per_row) {
  const TypeTraits& tt = traits(type);
  const size_t rb = row_bytes(type, row_len);
  std::vector<float> y(static_cast<size_t>(row_len));
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * row_len;
    uint8_t* q = out + r * rb;
    tt.from_f32(xr, q, row_len);
    tt.to_f32(q, y.data(), row_len);
    Stats s;
    for (int64_t i = 0; i < row_len; ++i) {
      const double e = static_cast<double>(xr[i]) - y[i];
      s.err2 += e * e;
      s.energy += static_cast<double>(xr[i]) * xr[i];
      s.max_abs = std::max(s.max_abs, std::fabs(e));
    }
    s.n = row_len;
    per_row[r] = s;
  }
}

int quantize_main(QuantizeOptions& o) {
  DType target;
  if (!parse_target(o.type, &target))
    return fail("unknown type '" + o.type + "' (one of: " + target_names() + ")", kExitUsage);
  DType output_type = default_output_type(target), embd_type = default_embd_type(target);
  if (!o.output_type.empty() && !parse_target(o.output_type, &output_type))
    return fail(
        "--output-type: unknown type '" + o.output_type + "' (one of: " + target_names() + ")",
        kExitUsage);
  if (!o.embd_type.empty() && !parse_target(o.embd_type, &embd_type))
    return fail("--embd-type: unknown type '" + o.embd_type + "' (one of: " + target_names() + ")",
                kExitUsage);
  if (o.threads < 0) return fail("--threads must be >= 0", kExitUsage);

  // Never write over the input, whatever path names it (links included).
  struct stat in_st, out_st;
  if (::stat(o.input.c_str(), &in_st) != 0)
    return fail("cannot read '" + o.input + "': " + std::strerror(errno));
  if (::stat(o.output.c_str(), &out_st) == 0 && in_st.st_dev == out_st.st_dev &&
      in_st.st_ino == out_st.st_ino)
    return fail("output '" + o.output + "' is the input file; refusing to overwrite it");

  const auto src = gguf::File::open(o.input);
  const bool tied = src->find_tensor("output.weight") == nullptr;
  const unsigned n_threads = o.threads > 0
                                 ? static_cast<unsigned>(o.threads)
                                 : std::max(1u, std::min(16u, std::thread::hardware_concurrency()));

  gguf::Writer w;
  for (const gguf::KeyValue& kv : src->kvs()) {
    if (kv.key == "general.file_type" || kv.key == "general.quantization_version") continue;
    w.copy_kv(kv);
  }

  uint64_t total_elems = 0, done_elems = 0, bytes_in = 0, bytes_out = 0;
  for (const auto& t : src->tensors()) total_elems += static_cast<uint64_t>(t.n_elements());

  std::vector<Row> table;
  bool any_block = false, warned_requant = false;
  ProgressBar bar("quantizing");
  auto note = [&](const std::string& name, const std::string& what) {
    ProgressBar::clear_active();
    std::fprintf(stderr, "v4: note: %s: %s\n", name.c_str(), what.c_str());
  };

  for (const gguf::TensorInfo& t : src->tensors()) {
    const TypeTraits& st = traits(t.type);
    const int64_t n = t.n_elements(), row_len = t.ne[0], rows = n / row_len;
    Row row{t.name, shape_of(t), st.name, "", "", {}, false};

    // Which type this tensor gets.
    DType want;
    if (!st.to_f32) {
      want = t.type;
      row.note = "kept (no decoder)";
    } else if (rows == 1) {
      want = DType::F32;
      row.note = "1-D";
    } else if (std::any_of(o.keep_f32.begin(), o.keep_f32.end(), [&](const std::string& p) {
                 return ::fnmatch(p.c_str(), t.name.c_str(), 0) == 0;
               })) {
      want = DType::F32;
      row.note = "--keep-f32";
    } else if (t.name.size() >= 19 &&
               t.name.compare(t.name.size() - 19, 19, "ffn_gate_inp.weight") == 0) {
      want = DType::F32;  // MoE router: tiny and sensitive (llama.cpp never quantises it)
      row.note = "router";
    } else if (t.name == "output.weight") {
      want = output_type;
      row.note = "output";
    } else if (t.name == "token_embd.weight") {
      // A tied embedding is also the output matrix.
      want = tied && o.embd_type.empty() ? output_type : embd_type;
      row.note = tied ? "embedding (tied output)" : "embedding";
    } else {
      want = target;
    }
    DType type = st.to_f32 ? fit_row(want, row_len) : want;
    if (type != want) {
      note(t.name, "row length " + std::to_string(row_len) + " is not a multiple of " +
                       type_name(want) + "'s block of " + std::to_string(traits(want).block_size) +
                       "; using " + type_name(type));
      row.note = std::string("fallback from ") + type_name(want);
    }

    std::vector<uint8_t> out;
    if (type == t.type) {
      // Nothing to convert: the bytes are copied, so nothing is lost.
      w.add_tensor(t.name, t.type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), t.data, t.nbytes);
      if (row.note.empty()) row.note = "unchanged";
      row.measured = st.to_f32 != nullptr;
      row.stats.n = n;
      if (row.measured) {
        std::vector<float> x(static_cast<size_t>(n));
        st.to_f32(t.data, x.data(), n);
        for (float v : x) row.stats.energy += static_cast<double>(v) * v;
      }
    } else {
      std::vector<float> x(static_cast<size_t>(n));
      st.to_f32(t.data, x.data(), n);
      float amax = 0.0f;
      for (int64_t i = 0; i < n; ++i) {
        if (!std::isfinite(x[i]))  // thrown: the bar is erased before main prints it
          throw std::runtime_error("tensor '" + t.name + "' holds a NaN or infinity at element " +
                                   std::to_string(i) + "; refusing to quantise it");
        amax = std::max(amax, std::fabs(x[i]));
      }
      if (type == DType::F16 && amax > kF16Max) {
        note(t.name, "values beyond F16's range (max |x| " + std::to_string(amax) + "); using F32");
        type = DType::F32;
        row.note = "F16 overflow";
      }
      if (is_block_type(t.type) && is_block_type(type) && !warned_requant) {
        ProgressBar::clear_active();
        warn(std::string("requantising ") + st.name +
             " weights: the errors of both quantisations add up (quantise from F32, F16 or "
             "BF16 for the best result)");
        warned_requant = true;
      }
      out.resize(row_bytes(type, row_len) * static_cast<size_t>(rows));
      std::vector<Stats> per_row(static_cast<size_t>(rows));
      const unsigned nth = static_cast<unsigned>(std::min<int64_t>(n_threads, rows));
      std::vector<std::thread> pool;
      for (unsigned k = 1; k < nth; ++k)
        pool.emplace_back(quantize_rows, type, x.data(), row_len, rows * k / nth,
                          rows * (k + 1) / nth, out.data(), per_row.data());
      quantize_rows(type, x.data(), row_len, 0, rows / nth, out.data(), per_row.data());
      for (std::thread& th : pool) th.join();
      for (const Stats& s : per_row) {  // in row order: the same sums for any thread count
        row.stats.err2 += s.err2;
        row.stats.energy += s.energy;
        row.stats.max_abs = std::max(row.stats.max_abs, s.max_abs);
        row.stats.n += s.n;
      }
      row.measured = true;
      w.add_tensor(t.name, type, std::vector<int64_t>(t.ne, t.ne + t.n_dims), out.data(),
                   out.size());
    }
    any_block = any_block || is_block_type(type);
    row.to = type_name(type);
    bytes_in += t.nbytes;
    bytes_out += type == t.type ? t.nbytes : out.size();
    table.push_back(std::move(row));
    done_elems += static_cast<uint64_t>(n);
    bar.update(total_elems ? static_cast<float>(done_elems) / static_cast<float>(total_elems)
                           : 1.0f);
  }

  w.set_u32("general.file_type", gguf_file_type_of(target));
  if (any_block) w.set_u32("general.quantization_version", 2);  // ggml's GGML_QNT_VERSION
  w.write_file(o.output);
  bar.finish();

  // The table: error of each tensor's round trip against the values it was converted from.
  size_t wname = 6, wshape = 5, wtype = 4;
  for (const Row& r : table) {
    wname = std::max(wname, r.name.size());
    wshape = std::max(wshape, r.shape.size());
    wtype = std::max(wtype, r.from.size() + 4 + r.to.size());
  }
  const int iw = static_cast<int>(wname), is = static_cast<int>(wshape),
            it = static_cast<int>(wtype);
  std::fprintf(stderr, "%-*s  %-*s  %-*s  %10s  %10s  %10s  %s\n", iw, "tensor", is, "shape", it,
               "type", "RMSE", "max|err|", "NMSE", "note");
  double err2 = 0, energy = 0;
  for (const Row& r : table) {
    const std::string types = r.from + " -> " + r.to;
    if (!r.measured) {
      std::fprintf(stderr, "%-*s  %-*s  %-*s  %10s  %10s  %10s  %s\n", iw, r.name.c_str(), is,
                   r.shape.c_str(), it, types.c_str(), "-", "-", "-", r.note.c_str());
      continue;
    }
    const Stats& s = r.stats;
    err2 += s.err2;
    energy += s.energy;
    const double rmse = s.n ? std::sqrt(s.err2 / static_cast<double>(s.n)) : 0.0;
    const double nmse = s.energy > 0 ? s.err2 / s.energy : 0.0;
    std::fprintf(stderr, "%-*s  %-*s  %-*s  %10.3e  %10.3e  %10.3e  %s\n", iw, r.name.c_str(), is,
                 r.shape.c_str(), it, types.c_str(), rmse, s.max_abs, nmse, r.note.c_str());
  }
  std::fprintf(
      stderr,
      "v4: wrote %s: %zu tensors, %.2f MiB -> %.2f MiB, %.2f bits per weight, "
      "general.file_type %" PRIu32 ", overall NMSE %.3e\n",
      o.output.c_str(), table.size(), static_cast<double>(bytes_in) / (1 << 20),
      static_cast<double>(bytes_out) / (1 << 20),
      total_elems ? 8.0 * static_cast<double>(bytes_out) / static_cast<double>(total_elems) : 0.0,
      gguf_file_type_of(target), energy > 0 ? err2 / energy : 0.0);
  return kExitOk;
}

}  // namespace

void register_quantize(CLI::App& app, Action& action) {
  auto o = std::make_shared<QuantizeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "quantize",
      "Convert a GGUF model to another weight type (1-D tensors stay F32; by default "
      "output.weight and token_embd.weight become Q6_K for the types below 6 bits)");
  cmd->footer(
      "Rows that are not whole blocks of a type fall back to the next more precise type that "
      "fits\n(Q4_0 < Q4_1 < Q4_K < Q5_0 < Q5_1 < Q5_K < Q6_K < Q8_0 < F16 < F32), with a note.\n"
      "A tied embedding (no output.weight) gets the output type. Errors of each tensor's round "
      "trip\nare printed on stderr: RMSE, max |error| and NMSE (squared error / squared values).");
  cmd->add_option("IN", o->input, "Input GGUF file")->required();
  cmd->add_option("OUT", o->output, "Output GGUF file (written atomically; never the input)")
      ->required();
  cmd->add_option("TYPE", o->type, "Weight type: " + target_names())->required();
  cmd->add_option("--keep-f32", o->keep_f32,
                  "Keep tensors whose name matches this glob in F32 (repeatable), e.g. "
                  "'blk.*.attn_v.weight'");
  cmd->add_option("--output-type", o->output_type,
                  "Type of output.weight (default: Q6_K for Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K; "
                  "F16 for BF16; else TYPE)");
  cmd->add_option("--embd-type", o->embd_type,
                  "Type of token_embd.weight (default: Q6_K for the types below 6 bits, else "
                  "TYPE)");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: all cores, at most 16)");
  cmd->callback([o, &action] { action = [o] { return quantize_main(*o); }; });
}

}  // namespace v4::cli
