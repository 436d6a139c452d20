// Chat templates: renders a conversation with the model's tokenizer.chat_template (a Jinja2
// template from GGUF metadata) through the interpreter in lib/text/jinja, the way Hugging Face
// transformers applies it, and names the template's family for display.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace v4 {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant", ...
  std::string content;
};

// Renders `messages` with template `tmpl`. The template sees `messages` (a list of dicts with
// "role" and "content"), `add_generation_prompt`, `bos_token` and `eos_token` (the vocabulary's
// texts, "" when absent); `tools`, `date_string` and the like stay undefined. Throws
// Error(Status::bad_format) with the line and column when the template does not parse, calls
// raise_exception(), fails at run time, or exceeds a limit (lib/text/jinja/limits.h).
std::string apply_chat_template(const std::string& tmpl, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt, const std::string& bos,
                                const std::string& eos);

// The family of a template, recognised by the turn markers in its text: "llama3", "chatml"
// (Qwen2/2.5 included), "deepseek3" (V3, R1, V4), "deepseek2" (DeepSeek-LLM, V2 chat),
// "mistral", "phi3", "llama2", "gemma", or "unknown". Informational only: rendering always
// runs the template itself.
const char* detect_template_family(std::string_view tmpl);

}  // namespace v4
