// The C API of chat templates: v4_chat_apply_template and v4_chat_template_family. Uses the
// model only through the public API (its template and special-token texts).
#include <cstring>
#include <string>
#include <vector>

#include "lib/api/api_error.h"
#include "lib/text/chat_template.h"
#include "v4engine.h"

namespace {

using v4::api::set_error;

// Text of a special token (BOS/EOS) as the template should print it; "" when absent.
std::string special_text(const v4_model* model, v4_token t) {
  if (!model || t < 0 || t >= v4_model_n_vocab(model)) return "";
  std::string buf(32, '\0');
  size_t n = 0;
  v4_status s = v4_token_to_piece(model, t, true, buf.data(), buf.size(), &n);
  if (s == V4_ERR_BUFFER_TOO_SMALL) {
    buf.resize(n);
    s = v4_token_to_piece(model, t, true, buf.data(), buf.size(), &n);
  }
  if (s != V4_OK) return "";
  buf.resize(n);
  return buf;
}

}  // namespace

extern "C" {

v4_status v4_chat_apply_template(const v4_model* model, const char* tmpl,
                                 const v4_chat_message* messages, size_t n_messages,
                                 bool add_generation_prompt, char* buf, size_t cap,
                                 size_t* n_bytes) {
  if (n_bytes) *n_bytes = 0;
  if (!tmpl) {
    if (!model)
      return set_error(V4_ERR_INVALID_ARG,
                       "v4_chat_apply_template: no template given and no model to take one from");
    tmpl = v4_model_chat_template(model);
    if (!tmpl)
      return set_error(V4_ERR_INVALID_ARG,
                       "v4_chat_apply_template: the model has no chat template "
                       "(tokenizer.chat_template); pass one explicitly");
  }
  if (!messages && n_messages > 0)
    return set_error(V4_ERR_INVALID_ARG, "v4_chat_apply_template: messages is NULL");
  if (!buf && cap > 0)
    return set_error(V4_ERR_INVALID_ARG, "v4_chat_apply_template: buf is NULL but cap > 0");
  std::string out;
  const v4_status st = v4::api::guarded([&] {
    std::vector<v4::ChatMessage> msgs;
    msgs.reserve(n_messages);
    for (size_t i = 0; i < n_messages; ++i) {
      if (!messages[i].role || !messages[i].content)
        v4::fail(v4::Status::invalid_arg, "v4_chat_apply_template: message {} has a NULL {}", i,
                 messages[i].role ? "content" : "role");
      msgs.push_back({messages[i].role, messages[i].content});
    }
    out = v4::apply_chat_template(tmpl, msgs, add_generation_prompt,
                                  special_text(model, v4_token_bos(model)),
                                  special_text(model, v4_token_eos(model)));
  });
  if (st != V4_OK) return st;
  if (n_bytes) *n_bytes = out.size();
  if (!buf || cap < out.size() + 1)
    return set_error(V4_ERR_BUFFER_TOO_SMALL, "v4_chat_apply_template: buffer of " +
                                                  std::to_string(cap) + " bytes is too small; " +
                                                  std::to_string(out.size() + 1) + " needed");
  std::memcpy(buf, out.data(), out.size());
  buf[out.size()] = '\0';
  return V4_OK;
}

const char* v4_chat_template_family(const char* tmpl) {
  return tmpl ? v4::detect_template_family(tmpl) : "unknown";
}

}  // extern "C"
