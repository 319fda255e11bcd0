// Pieces the generating subcommands (run, chat, bench) share: sampling and
// engine options read from the command line, API error reporting, chat
// formatting and streaming one request's events to a FILE.
#pragma once

#include <stdint.h>
#include <stdio.h>

#include <string>
#include <vector>

#include "args.h"
#include "memwise/memwise.h"

namespace cli {

// Exit statuses.
enum { kExitOk = 0, kExitError = 1, kExitUsage = 2, kExitInterrupted = 130 };

// Prints "memwise CMD: WHAT: MW_ERR_X: <mw_last_error()>" on stderr. Call it
// right after the failing call (mw_last_error is per thread, per call).
void print_api_error(const char* command, const std::string& what, mw_status status);

// Sampling options of run/chat: -n, --temp, --top-k, --top-p, --min-p,
// --repeat-penalty, --repeat-last-n, --seed, --stop.
struct SamplingArgs {
    mw_request_options opts;        // library defaults, then what the user gave
    std::vector<std::string> stops; // --stop, in order

    SamplingArgs();
    // True when the current argument was one of these options (consumed).
    bool parse(ArgReader& args);
    // Points opts.stop at `storage` built from stops; call before mw_submit.
    void bind_stops(std::vector<mw_text>* storage);
};

// Engine options: --threads, --ctx.
struct EngineArgs {
    mw_engine_options opts;
    EngineArgs();
    bool parse(ArgReader& args);
};

// --backend cpu|cuda|auto into *backend (an mw_backend); true when the argument was it.
bool parse_backend(ArgReader& a, int32_t* backend);

// Model loading options: --populate, --lock, --access random|sequential|willneed.
struct LoadArgs {
    mw_model_options opts;
    LoadArgs();
    bool parse(ArgReader& args);
};

extern const char* const kSamplingHelp;
extern const char* const kEngineHelp;
extern const char* const kLoadHelp;

// mw_model_open with error reporting (opts may be null for defaults). Returns
// nullptr after printing the error.
mw_model* open_model(const char* command, const std::string& path, const mw_model_options* opts = nullptr);
// Creates an engine on model; on failure prints the error, closes the model
// and returns nullptr.
mw_engine* create_engine(const char* command, mw_model* model, const mw_engine_options* opts);

// Formats messages with mw_chat_format into *out (growing the buffer as needed).
mw_status chat_format(const mw_model* model, const std::vector<mw_chat_message>& messages,
                      int add_generation_prompt, std::string* out);

// Whether a text prompt needs the tokenizer's BOS: 1 unless the text already
// starts with the model's BOS token text (a chat template that writes it).
int needs_add_special(const mw_model* model, const std::string& text);

// What streaming one request produced.
struct StreamResult {
    bool submitted = false;         // mw_submit succeeded
    mw_status status = MW_OK;       // of mw_submit (when !submitted) or of the request
    int32_t finish_reason = MW_FINISH_NONE;
    uint32_t n_prompt_tokens = 0;
    uint32_t n_generated_tokens = 0;
    bool interrupted = false;       // Ctrl-C cancelled it
    std::string error;              // message of a failed request
    double submit_to_first_s = 0;   // submit -> first token event
    double first_to_last_s = 0;     // first -> last token event
    uint32_t n_token_events = 0;
};

// Submits opts and pulls events until the request finishes. Token text goes to
// `out` (written and flushed per event) when out is non-null, and is appended
// to *collect when collect is non-null. Ctrl-C cancels the request (the
// result says so). On a submit failure, result.status is the error and
// mw_last_error() still holds its detail.
void stream_request(mw_engine* engine, const mw_request_options& opts, FILE* out, std::string* collect,
                    StreamResult* result);

const char* finish_reason_name(int32_t reason);

// Reads a whole file ("-" = stdin) into *out. False with errno set on failure.
bool read_file(const std::string& path, std::string* out);

// Seconds on a monotonic clock.
double now_seconds();

// The engine's memory report, as text lines (to f) or as a JSON object.
void print_memory_report(FILE* f, const mw_memory_report& r);
std::string memory_report_json(const mw_memory_report& r);
// Fills *r from the engine; false (and a message on stderr) on failure.
bool read_memory_report(const char* command, const mw_engine* engine, mw_memory_report* r);

}  // namespace cli
