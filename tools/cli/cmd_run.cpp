// memwise run: one completion of a prompt, streamed to stdout.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmath>

#include <string>
#include <vector>

#include "commands.h"
#include "common.h"

namespace cli {

static const char* const kCommand = "run";

// "FILE" or "FILE:SCALE" (a path may itself hold ':', so only a numeric tail is a scale).
static bool parse_lora_arg(const std::string& arg, std::string* path, float* scale) {
    const size_t colon = arg.rfind(':');
    *path = arg;
    *scale = 1.0f;
    if (colon == std::string::npos) return true;
    const std::string tail = arg.substr(colon + 1);
    char* end = nullptr;
    errno = 0;
    const float v = strtof(tail.c_str(), &end);
    if (tail.empty() || *end != 0 || errno != 0) {
        // Not a number: a path with ':' in it, unless it looks like a scale attempt.
        return tail.find_first_not_of("0123456789.+-eE") != std::string::npos;
    }
    if (!std::isfinite(v) || colon == 0) return false;
    *path = arg.substr(0, colon);
    *scale = v;
    return true;
}

static void print_help() {
    printf("Usage: memwise run MODEL (-p PROMPT | -f FILE) [options]\n"
           "\n"
           "Generates a completion of PROMPT with the GGUF model MODEL and streams it to\n"
           "stdout as it is generated. Ctrl-C stops generation.\n"
           "\n"
           "Prompt:\n"
           "  -p, --prompt TEXT      the prompt\n"
           "  -f, --file FILE        read the prompt from FILE ('-' = stdin)\n"
           "  --chat                 format the prompt as one user message with the model's\n"
           "                         chat template (and generate the assistant's reply)\n"
           "  --no-special           treat special-token text in the prompt (\"<|im_start|>\")\n"
           "                         as plain text\n"
           "  --lora FILE[:SCALE]    run with the LoRA adapter FILE (GGUF, as llama.cpp's\n"
           "                         convert_lora_to_gguf.py writes it) at SCALE (default 1)\n"
           "\n"
           "%s\n%s\n%s\n"
           "Other:\n"
           "  --verbose              print token counts and speeds to stderr at the end\n"
           "  --memory-report        print where the memory went (weights, KV, activations,\n"
           "                         scratch, heap, process) to stderr at the end\n"
           "  -h, --help             show this help\n",
           kSamplingHelp, kEngineHelp, kLoadHelp);
}

int cmd_run(int argc, char** argv) {
    ArgReader a(kCommand, argc, argv);
    SamplingArgs sampling;
    EngineArgs engine_args;
    LoadArgs load_args;
    std::string model_path, prompt, prompt_file, lora_arg;
    bool have_prompt = false, have_file = false, chat = false, no_special = false, verbose = false;
    bool memory_report = false;
    while (a.next()) {
        if (a.positional()) {
            if (!model_path.empty()) a.fail(std::string("unexpected argument '") + a.arg() + "' (one MODEL only)");
            model_path = a.arg();
        } else if (a.flag("--help", "-h")) {
            print_help();
            return kExitOk;
        } else if (a.text("--prompt", "-p", &prompt)) {
            have_prompt = true;
        } else if (a.text("--file", "-f", &prompt_file)) {
            have_file = true;
        } else if (a.text("--lora", nullptr, &lora_arg)) {
        } else if (a.flag("--chat")) {
            chat = true;
        } else if (a.flag("--no-special")) {
            no_special = true;
        } else if (a.flag("--verbose", "-v")) {
            verbose = true;
        } else if (a.flag("--memory-report")) {
            memory_report = true;
        } else if (!sampling.parse(a) && !engine_args.parse(a) && !load_args.parse(a)) {
            a.unknown();
        }
    }
    if (!a.ok()) return usage_error(kCommand, a.error());
    if (model_path.empty()) return usage_error(kCommand, "missing MODEL (a .gguf file)");
    if (have_prompt == have_file)
        return usage_error(kCommand, have_prompt ? "give either -p or -f, not both"
                                                 : "a prompt is required (-p TEXT or -f FILE)");
    if (chat && no_special)
        return usage_error(kCommand, "--no-special cannot be used with --chat (the template's markers are special tokens)");
    if (have_file && !read_file(prompt_file, &prompt)) {
        fprintf(stderr, "memwise %s: cannot read prompt file '%s': %s\n", kCommand, prompt_file.c_str(),
                strerror(errno));
        return kExitError;
    }
    if (prompt.empty()) return usage_error(kCommand, "the prompt is empty");
    std::string lora_path = lora_arg;
    float lora_scale = 1.0f;
    if (!lora_arg.empty() && !parse_lora_arg(lora_arg, &lora_path, &lora_scale))
        return usage_error(kCommand, "--lora: '" + lora_arg + "' is not FILE or FILE:SCALE (SCALE a finite number)");

    double t_load = now_seconds();
    mw_model* model = open_model(kCommand, model_path, &load_args.opts);
    if (!model) return kExitError;

    std::string text = prompt;
    if (chat) {
        mw_chat_message msg = {"user", 4, prompt.data(), prompt.size()};
        mw_status st = chat_format(model, std::vector<mw_chat_message>{msg}, 1, &text);
        if (st != MW_OK) {
            print_api_error(kCommand, "cannot format the prompt with the chat template", st);
            mw_model_close(model);
            return st == MW_ERR_UNSUPPORTED ? kExitUsage : kExitError;
        }
    }

    mw_adapter* adapter = nullptr;
    if (!lora_path.empty()) {
        const mw_status st = mw_adapter_open(model, lora_path.c_str(), &adapter);
        if (st != MW_OK) {
            print_api_error(kCommand, "cannot open the LoRA adapter '" + lora_path + "'", st);
            mw_model_close(model);
            return kExitError;
        }
    }

    mw_engine* engine = create_engine(kCommand, model, &engine_args.opts);
    if (!engine) {
        mw_adapter_close(adapter);
        return kExitError;
    }
    t_load = now_seconds() - t_load;

    std::vector<mw_text> stop_storage;
    sampling.bind_stops(&stop_storage);
    mw_request_options& opts = sampling.opts;
    opts.prompt = text.data();
    opts.prompt_len = text.size();
    opts.parse_special = no_special ? 0 : 1;
    opts.add_special = chat ? needs_add_special(model, text) : 1;
    opts.adapter = adapter;
    opts.adapter_scale = lora_scale;

    StreamResult r;
    stream_request(engine, opts, stdout, nullptr, &r);
    int rc = kExitOk;
    if (r.submitted) {
        fputc('\n', stdout);
        fflush(stdout);
    }
    if (!r.submitted) {
        // mw_submit refused the request (mw_last_error is still this thread's).
        print_api_error(kCommand, "cannot submit the prompt", r.status);
        rc = kExitError;
    } else if (r.finish_reason == MW_FINISH_ERROR || (r.status != MW_OK && !r.interrupted)) {
        fprintf(stderr, "memwise %s: generation failed: %s: %s\n", kCommand, mw_status_string(r.status),
                r.error.c_str());
        rc = kExitError;
    } else if (r.interrupted) {
        fprintf(stderr, "memwise %s: interrupted\n", kCommand);
        rc = kExitInterrupted;
    }
    if (verbose && rc != kExitError) {
        double prefill = r.submit_to_first_s > 0 ? r.n_prompt_tokens / r.submit_to_first_s : 0;
        double decode = r.first_to_last_s > 0 ? (r.n_token_events - 1) / r.first_to_last_s : 0;
        fprintf(stderr,
                "memwise: load %.3f s | prompt %u tokens, prefill %.1f tok/s (%.3f s) | "
                "generated %u tokens, decode %.1f tok/s | finish: %s\n",
                t_load, r.n_prompt_tokens, prefill, r.submit_to_first_s, r.n_generated_tokens, decode,
                finish_reason_name(r.finish_reason));
    }
    if (memory_report && rc != kExitError) {
        mw_memory_report mem;
        if (read_memory_report(kCommand, engine, &mem)) print_memory_report(stderr, mem);
    }
    mw_engine_destroy(engine);
    mw_adapter_close(adapter);
    mw_model_close(model);
    return rc;
}

}  // namespace cli
