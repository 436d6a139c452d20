#include "lib/text/chat_template.h"

#include "lib/text/jinja/interpreter.h"

namespace v4 {

std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, const std::string& bos,
                                const std::string& eos) {
  const jinja::Template t(tmpl);
  std::vector<jinja::Value> list;
  list.reserve(messages.size());
  for (const ChatMessage& m : messages) {
    jinja::Dict d;
    d.set("role", jinja::Value::string(m.role));
    d.set("content", jinja::Value::string(m.content));
    list.push_back(jinja::Value::dict(std::move(d)));
  }
  jinja::Dict vars;
  vars.set("messages", jinja::Value::list(std::move(list)));
  vars.set("add_generation_prompt", jinja::Value::boolean(add_generation_prompt));
  vars.set("bos_token", jinja::Value::string(bos));
  vars.set("eos_token", jinja::Value::string(eos));
  return t.render(vars);
}

const char* detect_template_family(std::string_view tmpl) {
  auto has = [&](std::string_view s) { return tmpl.find(s) != std::string_view::npos; };
  if (has("<|start_header_id|>") && has("<|end_header_id|>")) return "llama3";
  if (has("<\xEF\xBD\x9CUser\xEF\xBD\x9C>") && has("<\xEF\xBD\x9C"
                                                   "Assistant\xEF\xBD\x9C>"))
    return "deepseek3";  // <｜User｜>, <｜Assistant｜> (fullwidth vertical bars)
  if (has("'Assistant: ' + message['content'] + eos_token")) return "deepseek2";
  if (has("<|im_start|>")) return "chatml";
  if (has("<|assistant|>") && has("<|end|>")) return "phi3";
  if (has("<start_of_turn>")) return "gemma";
  if (has("[INST]")) return has("<<SYS>>") ? "llama2" : "mistral";
  return "unknown";
}

}  // namespace v4
