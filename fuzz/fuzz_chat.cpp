// Fuzz target: chat formatting. The input is split into messages (role and
// content bytes of any value, including template markers and invalid UTF-8)
// and formatted with every template memwise recognises. The output must hold
// every user and assistant content, trimmed (templates wrap, never drop or cut
// text; a Llama-2 system message with no user turn after it has nowhere to go).
#include "base/error.h"
#include "fuzz_util.h"
#include "model/chat_template.h"

#include <cstdio>
#include <cstdlib>

namespace {
// Templates apply Jinja's |trim (ASCII whitespace) to contents.
std::string_view trimmed(std::string_view s) {
    const char* ws = " \t\n\r\f\v";
    const size_t b = s.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    return s.substr(b, s.find_last_not_of(ws) - b + 1);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    mw::fuzz::Bytes in(data, size);
    const uint8_t flags = in.take<uint8_t>();
    std::vector<mw::ChatMessage> msgs;
    const size_t n = flags & 7;
    for (size_t i = 0; i < n && in.left(); i++) {
        static const char* roles[] = {"system", "user", "assistant", nullptr};
        const uint8_t r = in.take<uint8_t>();
        std::string role = roles[r & 3] ? roles[r & 3] : std::string(in.slice(16));
        msgs.push_back({role, std::string(in.slice(200))});
    }
    const std::string_view sys = in.slice(64);
    for (mw::ChatTemplateKind k : {mw::ChatTemplateKind::ChatML, mw::ChatTemplateKind::Llama2,
                                   mw::ChatTemplateKind::Llama3, mw::ChatTemplateKind::Mistral}) {
        std::string out;
        try {
            out = mw::format_chat(k, msgs, (flags & 8) != 0, "<s>", "</s>", (flags & 16) ? sys : std::string_view());
        } catch (const mw::Error&) {
            continue;  // e.g. a role the template cannot express
        }
        for (const auto& m : msgs)
            if (m.role != "system" && out.find(trimmed(m.content)) == std::string::npos) {
                std::fprintf(stderr, "%s template dropped a message's content\n", mw::chat_template_name(k));
                std::abort();
            }
    }
    return 0;
}
