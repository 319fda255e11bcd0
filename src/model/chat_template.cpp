// The chat-template families memwise formats natively. Each formatter writes
// what the family's reference Jinja template renders (Hugging Face settings:
// trim_blocks, lstrip_blocks), not llama.cpp's built-in approximations, which
// differ in places (e.g. llama.cpp's Llama-3 omits the BOS text):
//
//  ChatML   "<|im_start|>{role}\n{content}<|im_end|>\n" per message, then
//           "<|im_start|>assistant\n" for the generation prompt; a template's
//           default system message (SmolLM2, Qwen2) goes first when the first
//           message is not a system message.
//  Llama-3  {bos}"<|start_header_id|>{role}<|end_header_id|>\n\n{content|trim}<|eot_id|>"
//           per message, then "<|start_header_id|>assistant<|end_header_id|>\n\n".
//  Llama-2  Meta's template: {bos}"[INST] " + ("<<SYS>>\n{system}\n<</SYS>>\n\n"
//           on the first turn) + "{user|trim} [/INST]", then " {assistant|trim} "{eos}
//           for each reply; roles must alternate user/assistant after an
//           optional system message; no generation prompt.
//  Mistral  the Mistral-7B-Instruct v0.1/v0.2 template (no spaces around the
//           reply): {bos} then "[INST] {user} [/INST]" and "{assistant}"{eos},
//           roles alternating user/assistant. A leading system message, which
//           that template rejects, is put in front of the first user message
//           followed by "\n\n" (as Mistral's later templates do).
//
// bos/eos text is written where the template writes it; a caller whose
// tokenizer adds BOS itself passes an empty bos_text.
#include "model/chat_template.h"

#include "base/error.h"

#include <cctype>

namespace mw {

namespace {

bool contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

// Jinja's str.strip() / |trim: Python whitespace at both ends (ASCII here).
std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

std::string format_chatml(const std::vector<ChatMessage>& msgs, bool gen, std::string_view default_system) {
    std::string out;
    if (!msgs.empty() && msgs[0].role != "system" && !default_system.empty()) {
        out += "<|im_start|>system\n";
        out += default_system;
        out += "<|im_end|>\n";
    }
    for (const ChatMessage& m : msgs) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (gen) out += "<|im_start|>assistant\n";
    return out;
}

std::string format_llama3(const std::vector<ChatMessage>& msgs, bool gen, std::string_view bos) {
    std::string out;
    for (size_t i = 0; i < msgs.size(); ++i) {
        if (i == 0) out += bos;
        out += "<|start_header_id|>" + msgs[i].role + "<|end_header_id|>\n\n" + trim(msgs[i].content) + "<|eot_id|>";
    }
    if (gen) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
}

// Checks user/assistant alternation after an optional leading system message.
size_t check_alternation(const std::vector<ChatMessage>& msgs, const char* family) {
    const size_t first = !msgs.empty() && msgs[0].role == "system" ? 1 : 0;
    for (size_t i = first; i < msgs.size(); ++i) {
        const char* want = (i - first) % 2 == 0 ? "user" : "assistant";
        if (msgs[i].role != want)
            fail(MW_ERR_INVALID_ARGUMENT, std::string(family) + " chat template: message " + std::to_string(i) +
                                              " has role '" + msgs[i].role + "', expected '" + want +
                                              "' (roles must alternate user/assistant after an optional system message)");
    }
    return first;
}

std::string format_llama2(const std::vector<ChatMessage>& msgs, std::string_view bos, std::string_view eos) {
    const size_t first = check_alternation(msgs, "Llama-2");
    std::string out;
    for (size_t i = first; i < msgs.size(); ++i) {
        std::string content = msgs[i].content;
        if (i == first && first == 1) content = "<<SYS>>\n" + msgs[0].content + "\n<</SYS>>\n\n" + content;
        if (msgs[i].role == "user") {
            out += bos;
            out += "[INST] " + trim(content) + " [/INST]";
        } else {
            out += " " + trim(content) + " ";
            out += eos;
        }
    }
    return out;
}

std::string format_mistral(const std::vector<ChatMessage>& msgs, std::string_view bos, std::string_view eos) {
    const size_t first = check_alternation(msgs, "Mistral");
    std::string out(bos);
    for (size_t i = first; i < msgs.size(); ++i) {
        if (msgs[i].role == "user") {
            out += "[INST] ";
            if (i == first && first == 1) out += msgs[0].content + "\n\n";
            out += msgs[i].content + " [/INST]";
        } else {
            out += msgs[i].content;
            out += eos;
        }
    }
    return out;
}

// Unescapes a Jinja string literal body (\n, \t, \', \", \\).
std::string jinja_unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        const char c = s[++i];
        switch (c) {
            case 'n': out += '\n'; break;
            case 't': out += '\t'; break;
            case 'r': out += '\r'; break;
            default: out += c; break;  // \' \" \\ and anything else: the character itself
        }
    }
    return out;
}

}  // namespace

ChatTemplateKind detect_chat_template(std::string_view jinja) {
    if (contains(jinja, "<|im_start|>")) return ChatTemplateKind::ChatML;
    if (contains(jinja, "<|start_header_id|>")) return ChatTemplateKind::Llama3;
    if (contains(jinja, "[INST]"))
        return contains(jinja, "<<SYS>>") ? ChatTemplateKind::Llama2 : ChatTemplateKind::Mistral;
    return ChatTemplateKind::Unknown;
}

const char* chat_template_name(ChatTemplateKind kind) {
    switch (kind) {
        case ChatTemplateKind::ChatML: return "chatml";
        case ChatTemplateKind::Llama2: return "llama2";
        case ChatTemplateKind::Llama3: return "llama3";
        case ChatTemplateKind::Mistral: return "mistral";
        case ChatTemplateKind::Unknown: break;
    }
    return "unknown";
}

std::string format_chat(ChatTemplateKind kind, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                        std::string_view bos_text, std::string_view eos_text, std::string_view default_system) {
    switch (kind) {
        case ChatTemplateKind::ChatML: return format_chatml(messages, add_generation_prompt, default_system);
        case ChatTemplateKind::Llama3: return format_llama3(messages, add_generation_prompt, bos_text);
        case ChatTemplateKind::Llama2: return format_llama2(messages, bos_text, eos_text);
        case ChatTemplateKind::Mistral: return format_mistral(messages, bos_text, eos_text);
        case ChatTemplateKind::Unknown: break;
    }
    fail(MW_ERR_UNSUPPORTED, "chat template not recognised (memwise formats ChatML, Llama-2, Llama-3 and Mistral)");
}

std::string chat_template_default_system(std::string_view jinja) {
    // A literal "<|im_start|>system\n...<|im_end|>" inside one Jinja string
    // literal is a system message the template writes by itself. The newline
    // may be a real one or the escape "\n".
    static const std::string_view kOpen = "<|im_start|>system";
    static const std::string_view kClose = "<|im_end|>";
    for (size_t at = jinja.find(kOpen); at != std::string_view::npos; at = jinja.find(kOpen, at + 1)) {
        // The quote that opens the enclosing literal: the nearest ' or " before.
        const size_t q = jinja.find_last_of("'\"", at);
        if (q == std::string_view::npos) continue;
        const char quote = jinja[q];
        size_t body = at + kOpen.size();
        if (jinja.compare(body, 1, "\n") == 0) body += 1;
        else if (jinja.compare(body, 2, "\\n") == 0) body += 2;
        else continue;
        // The literal must run on, unbroken, to <|im_end|>.
        size_t i = body;
        bool closed = false;
        for (; i < jinja.size(); ++i) {
            if (jinja[i] == '\\') {
                ++i;
                continue;
            }
            if (jinja[i] == quote) {
                closed = true;
                break;
            }
            if (jinja.compare(i, kClose.size(), kClose) == 0) break;
        }
        if (closed || i >= jinja.size()) continue;
        return jinja_unescape(jinja.substr(body, i - body));
    }
    return std::string();
}

}  // namespace mw
