// memwise chat: an interactive conversation. Each turn formats the whole
// history with the model's chat template and streams the assistant's reply.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "commands.h"
#include "common.h"

namespace cli {

static const char* const kCommand = "chat";

static void print_help() {
    printf("Usage: memwise chat MODEL [options]\n"
           "\n"
           "Chats with the GGUF model MODEL. Reads one user message per line from stdin\n"
           "(a \"> \" prompt is shown on stderr when stdin is a terminal), keeps the\n"
           "conversation, formats it with the model's chat template each turn and streams\n"
           "the reply to stdout. Ends at end of input or \"/exit\"; \"/reset\" forgets the\n"
           "conversation. Ctrl-C stops the current reply. When the conversation no longer\n"
           "fits the context, the oldest turns are dropped.\n"
           "The model needs a chat template memwise recognises (ChatML, Llama-2, Llama-3,\n"
           "Mistral); otherwise the command exits with status 2.\n"
           "\n"
           "Conversation:\n"
           "  --system TEXT          system message at the start of the conversation\n"
           "\n"
           "%s\n%s\n"
           "Other:\n"
           "  -h, --help             show this help\n",
           kSamplingHelp, kEngineHelp);
}

struct Turn {
    std::string role;
    std::string content;
};

static std::vector<mw_chat_message> as_messages(const std::vector<Turn>& turns) {
    std::vector<mw_chat_message> msgs;
    for (const Turn& t : turns) msgs.push_back({t.role.data(), t.role.size(), t.content.data(), t.content.size()});
    return msgs;
}

// Reads one line without its newline. False at end of input.
static bool read_line(std::string* line) {
    line->clear();
    int c;
    bool any = false;
    while ((c = fgetc(stdin)) != EOF) {
        any = true;
        if (c == '\n') break;
        line->push_back(char(c));
    }
    if (!line->empty() && line->back() == '\r') line->pop_back();
    return any;
}

int cmd_chat(int argc, char** argv) {
    ArgReader a(kCommand, argc, argv);
    SamplingArgs sampling;
    EngineArgs engine_args;
    std::string model_path, system_text;
    bool have_system = false;
    while (a.next()) {
        if (a.positional()) {
            if (!model_path.empty()) a.fail(std::string("unexpected argument '") + a.arg() + "' (one MODEL only)");
            model_path = a.arg();
        } else if (a.flag("--help", "-h")) {
            print_help();
            return kExitOk;
        } else if (a.text("--system", "-s", &system_text)) {
            have_system = true;
        } else if (!sampling.parse(a) && !engine_args.parse(a)) {
            a.unknown();
        }
    }
    if (!a.ok()) return usage_error(kCommand, a.error());
    if (model_path.empty()) return usage_error(kCommand, "missing MODEL (a .gguf file)");

    mw_model* model = open_model(kCommand, model_path);
    if (!model) return kExitError;

    std::vector<Turn> history;
    if (have_system) history.push_back({"system", system_text});

    // Find out before the first turn whether the model's template is usable.
    {
        std::vector<Turn> probe = history;
        probe.push_back({"user", "Hello"});
        std::string text;
        mw_status st = chat_format(model, as_messages(probe), 1, &text);
        if (st != MW_OK) {
            print_api_error(kCommand, "cannot chat with this model", st);
            mw_model_close(model);
            return st == MW_ERR_UNSUPPORTED ? kExitUsage : kExitError;
        }
    }

    mw_engine* engine = create_engine(kCommand, model, &engine_args.opts);
    if (!engine) return kExitError;

    std::vector<mw_text> stop_storage;
    sampling.bind_stops(&stop_storage);
    const bool tty = isatty(STDIN_FILENO);
    const size_t n_fixed = have_system ? 1 : 0;  // turns /reset and trimming keep
    int rc = kExitOk;
    std::string line;
    for (;;) {
        if (tty) {
            fputs("> ", stderr);
            fflush(stderr);
        }
        if (!read_line(&line)) {
            if (tty) fputc('\n', stderr);
            break;
        }
        if (line == "/exit" || line == "/quit") break;
        if (line == "/reset") {
            history.resize(n_fixed);
            fprintf(stderr, "(conversation cleared)\n");
            continue;
        }
        if (line.empty()) continue;
        history.push_back({"user", line});

        // Format and submit; drop the oldest exchange while it does not fit.
        std::string prompt, reply;
        StreamResult r;
        mw_status st = MW_OK;
        for (;;) {
            st = chat_format(model, as_messages(history), 1, &prompt);
            if (st != MW_OK) {
                print_api_error(kCommand, "cannot format the conversation", st);
                break;
            }
            mw_request_options opts = sampling.opts;
            opts.prompt = prompt.data();
            opts.prompt_len = prompt.size();
            opts.add_special = needs_add_special(model, prompt);
            opts.parse_special = 1;
            reply.clear();
            stream_request(engine, opts, stdout, &reply, &r);
            if (r.submitted || r.status != MW_ERR_CONTEXT_OVERFLOW || history.size() <= n_fixed + 1) break;
            // Remove the oldest turns up to the next user message.
            size_t end = n_fixed + 1;
            while (end < history.size() - 1 && history[end].role != "user") end++;
            history.erase(history.begin() + long(n_fixed), history.begin() + long(end));
            fprintf(stderr, "(dropped the oldest turn to fit the context)\n");
        }
        if (st != MW_OK) {
            history.pop_back();
            continue;
        }
        if (!r.submitted) {
            print_api_error(kCommand, "cannot submit the message", r.status);
            history.pop_back();
            if (r.status == MW_ERR_CONTEXT_OVERFLOW) continue;  // too long on its own
            rc = kExitError;
            break;
        }
        fputc('\n', stdout);
        fflush(stdout);
        if (r.finish_reason == MW_FINISH_ERROR || (r.status != MW_OK && !r.interrupted)) {
            fprintf(stderr, "memwise %s: generation failed: %s: %s\n", kCommand, mw_status_string(r.status),
                    r.error.c_str());
            rc = kExitError;
            break;
        }
        // An interrupted reply is kept as far as it got.
        history.push_back({"assistant", reply});
    }
    mw_engine_destroy(engine);
    mw_model_close(model);
    return rc;
}

}  // namespace cli
