// v4 info: what is inside a model file: metadata, tensors, totals; optionally the
// executor's plan (--plan) and a scan of every weight for NaN/Inf (--check).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>

#include "common.h"

namespace v4::cli {

namespace {

struct InfoOptions {
  std::string model;
  bool plan = false;
  bool check = false;
  bool devices = false;
  bool verbose = false;
  ContextOptions context;
};

// Metadata values can be long (chat templates) or multi-line: show them on one line.
std::string one_line(const std::string& s, size_t max_len = 160) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\r') {
      out += "\\r";
    } else {
      out += c;
    }
  }
  if (out.size() > max_len) {
    out.resize(max_len);
    out += "... (" + std::to_string(s.size()) + " bytes)";
  }
  return out;
}

bool meta_value(const v4_model* model, const char* key, std::string& out) {
  std::string buf(256, '\0');
  size_t needed = 0;
  v4_status st = v4_model_meta_value(model, key, buf.data(), buf.size(), &needed);
  if (st == V4_ERR_BUFFER_TOO_SMALL) {
    buf.assign(needed + 1, '\0');
    st = v4_model_meta_value(model, key, buf.data(), buf.size(), &needed);
  }
  if (st != V4_OK) return false;
  buf.resize(std::min(needed, buf.size()));
  // Tolerate a count that includes the terminating NUL.
  while (!buf.empty() && buf.back() == '\0') buf.pop_back();
  out = buf;
  return true;
}

std::string shape_of(const v4_tensor_info& t) {
  std::string s = "[";
  for (int32_t d = 0; d < t.n_dims && d < 4; ++d) {
    if (d) s += ", ";
    s += std::to_string(t.ne[d]);
  }
  return s + "]";
}

int print_devices() {
  std::string buf(16384, '\0');
  size_t n = 0;
  v4_status st = v4_devices_describe(buf.data(), buf.size(), &n);
  if (st == V4_ERR_BUFFER_TOO_SMALL) {
    buf.assign(n + 1, '\0');
    st = v4_devices_describe(buf.data(), buf.size(), &n);
  }
  if (st != V4_OK) return fail_status("cannot list devices", st);
  buf.resize(std::min(n, buf.size()));
  std::printf("devices:\n%s", buf.c_str());
  std::fflush(stdout);
  return kExitOk;
}

int info_main(InfoOptions& o) {
  setup_logging(o.verbose);
  if (o.devices) {
    if (int rc = print_devices(); rc != kExitOk || o.model.empty()) return rc;
  }
  if (o.model.empty()) return fail("info needs -m MODEL (or --devices)", kExitUsage);
  ModelPtr model = load_model(o.model, false);
  if (!model) return kExitError;
  const v4_model* m = model.get();

  std::printf("file:        %s\n", o.model.c_str());
  std::printf("arch:        %s\n", v4_model_arch(m));
  std::printf("name:        %s\n", v4_model_name(m));
  std::printf("n_vocab:     %d\n", v4_model_n_vocab(m));
  std::printf("n_ctx_train: %d\n", v4_model_n_ctx_train(m));
  std::printf("n_embd:      %d\n", v4_model_n_embd(m));
  std::printf("n_layer:     %d\n", v4_model_n_layer(m));
  std::printf("chat template: %s\n", v4_model_chat_template(m) ? "yes" : "none");

  const int32_t n_meta = v4_model_meta_count(m);
  std::printf("\nmetadata (%d keys):\n", n_meta);
  for (int32_t i = 0; i < n_meta; ++i) {
    const char* key = nullptr;
    if (v4_model_meta_key(m, i, &key) != V4_OK || !key) {
      return fail_status("cannot read metadata key " + std::to_string(i), V4_ERR_INTERNAL);
    }
    std::string value;
    if (!meta_value(m, key, value)) {
      return fail_status(std::string("cannot read metadata value '") + key + "'", V4_ERR_INTERNAL);
    }
    std::printf("  %-40s = %s\n", key, one_line(value).c_str());
  }

  const int32_t n_tensors = v4_model_n_tensors(m);
  std::printf("\ntensors (%d):\n", n_tensors);
  std::printf("  %5s  %-40s %-8s %-24s %12s\n", "#", "name", "type", "shape", "bytes");
  uint64_t sum_bytes = 0;
  for (int32_t i = 0; i < n_tensors; ++i) {
    v4_tensor_info t{};
    v4_status st = v4_model_tensor(m, i, &t);
    if (st != V4_OK) return fail_status("cannot read tensor " + std::to_string(i), st);
    sum_bytes += t.nbytes;
    std::printf("  %5d  %-40s %-8s %-24s %12" PRIu64 "\n", i, t.name ? t.name : "?",
                t.type ? t.type : "?", shape_of(t).c_str(), t.nbytes);
  }
  const uint64_t n_params = v4_model_n_params(m);
  const uint64_t size = v4_model_size_bytes(m);
  std::printf("\ntotal: %d tensors, %" PRIu64 " parameters, %" PRIu64 " bytes (%s)\n", n_tensors,
              n_params, size, human_bytes(size).c_str());
  std::printf("weights loaded by: %s\n", v4_load_mode_name(v4_model_load_mode(m)));
  if (sum_bytes != size) {
    std::printf("       (sum of the tensor sizes: %" PRIu64 " bytes)\n", sum_bytes);
  }
  std::fflush(stdout);

  if (o.plan) {
    ContextPtr ctx = create_context(model.get(), o.context);
    if (!ctx) return kExitError;
    std::string buf(16384, '\0');
    size_t n = 0;
    v4_status st = v4_context_describe_plan(ctx.get(), buf.data(), buf.size(), &n);
    if (st == V4_ERR_BUFFER_TOO_SMALL) {
      buf.assign(n + 1, '\0');
      st = v4_context_describe_plan(ctx.get(), buf.data(), buf.size(), &n);
    }
    if (st != V4_OK) return fail_status("cannot describe the plan", st);
    buf.resize(std::min(n, buf.size()));
    while (!buf.empty() && buf.back() == '\0') buf.pop_back();
    std::printf("\nplan:\n%s", buf.c_str());
    if (!buf.empty() && buf.back() != '\n') std::printf("\n");
    std::fflush(stdout);
  }

  if (o.check) {
    v4_status st = v4_model_check(m);
    if (st != V4_OK) return fail_status("check failed", st);
    std::printf("check: ok\n");
  }
  return kExitOk;
}

}  // namespace

void register_info(CLI::App& app, Action& action) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Show a model's metadata, tensors and plan");
  cmd->add_option("-m,--model", o->model, "Model file (optional with --devices)");
  // Alone: list the devices; with a list ("0,1"): the layer split --plan shows.
  CLI::Option* devices = cmd->add_option(
      "--devices", o->context.where.devices,
      "Alone: list the backends' devices and memory heaps; with a list (0,1): split the "
      "layers over those devices (see --plan)");
  devices->expected(0, 1);
  cmd->add_flag("--plan", o->plan, "Create a context and print the executor's plan");
  cmd->add_flag("--check", o->check, "Scan every weight for NaN/Inf");
  add_context_options(cmd, o->context, false);
  cmd->add_flag("-v,--verbose", o->verbose, "Show the library's log");
  cmd->callback([o, devices, &action] {
    o->devices = devices->count() > 0 && o->context.where.devices.empty();
    action = [o] { return info_main(*o); };
  });
}

}  // namespace v4::cli
