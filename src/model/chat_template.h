// Chat templates: recognise a model's tokenizer.chat_template (a Jinja text)
// as one of the families memwise formats natively, and format messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mw {

enum class ChatTemplateKind { Unknown, ChatML, Llama2, Llama3, Mistral };

struct ChatMessage {
    std::string role;
    std::string content;
};

// Classifies by distinctive markers ("<|im_start|>", "<|start_header_id|>",
// "[INST]" with or without "<<SYS>>"...). An empty template is Unknown.
ChatTemplateKind detect_chat_template(std::string_view jinja);
const char* chat_template_name(ChatTemplateKind kind);

// Formats the way the model's own template renders them (including any
// default system prompt the template inserts, e.g. SmolLM2's ChatML one, which
// the caller passes as default_system when the template has one).
// bos_text/eos_text: the model's BOS/EOS token text, for templates that write
// them (pass "" for bos_text when encode() adds BOS itself). The exact form of
// each family is written in chat_template.cpp (Mistral: the v0.1/v0.2 one). Throws mw::Error(MW_ERR_UNSUPPORTED) for Unknown and
// MW_ERR_INVALID_ARGUMENT for a bad role sequence the template rejects.
std::string format_chat(ChatTemplateKind kind, const std::vector<ChatMessage>& messages,
                        bool add_generation_prompt, std::string_view bos_text, std::string_view eos_text,
                        std::string_view default_system = {});

// The default system message a ChatML template inserts when the conversation
// has none (SmolLM2 does), or "" if it inserts none.
std::string chat_template_default_system(std::string_view jinja);

}  // namespace mw
