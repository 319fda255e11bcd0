// memwise distill-export: writes a teacher's top-K next-token distribution at
// every position of a text to a zstd-compressed export file
// (docs/COMPRESSION.md). The work is mw_distill_export.
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "commands.h"
#include "common.h"

namespace cli {

static const char* const kCommand = "distill-export";

static void print_help() {
    printf("Usage: memwise distill-export TEACHER --text FILE --top-k K OUT [options]\n"
           "\n"
           "Runs TEACHER over the text and writes, for every position of its tokens (each\n"
           "prediction of the next token), its K most probable next tokens with their\n"
           "log-probabilities and the remaining mass, to OUT: a zstd-compressed,\n"
           "streamable file (format 2) for a student trainer and for\n"
           "'memwise eval STUDENT --ref-export OUT'. Format: docs/COMPRESSION.md.\n"
           "\n"
           "Windows: the text, tokenized with BOS where the model adds one, is run in\n"
           "windows of --ctx tokens, each from an empty cache with BOS first. Window 0\n"
           "(tokens 0 .. ctx-1) exports all its predictions; each later window starts\n"
           "ctx/2 tokens after the previous one (the last one ends at the last token) and\n"
           "exports only the positions not exported before, each with at least ctx/2\n"
           "tokens of context. Every position 0 .. n_tokens-2 is exported exactly once.\n"
           "OUT is written under a temporary name and renamed.\n"
           "\n"
           "Options:\n"
           "  --text FILE            the corpus ('-' = stdin); required\n"
           "  --top-k K              tokens kept per position, 1 .. min(vocabulary, 4096);\n"
           "                         required\n"
           "  --ctx N                window length (default 512, or the training context\n"
           "                         when smaller)\n"
           "  --chunks N             export the first N windows only (a prefix of the text)\n"
           "  --level L              zstd compression level 1 .. 19 (default 3)\n"
           "  --threads N            compute threads (default: number of physical cores)\n"
           "  -h, --help             show this help\n");
}

static void progress(void* user, uint64_t done, uint64_t total) {
    (void)user;
    fprintf(stderr, "\rmemwise distill-export: window %" PRIu64 "/%" PRIu64, done, total);
    if (done == total) fprintf(stderr, "\n");
}

int cmd_distill_export(int argc, char** argv) {
    ArgReader a(kCommand, argc, argv);
    std::string model_path, out_path, text_path;
    uint32_t ctx = 0, threads = 0, chunks = 0, top_k = 0;
    int32_t level = 3;
    bool have_k = false;
    while (a.next()) {
        if (a.positional()) {
            if (model_path.empty()) model_path = a.arg();
            else if (out_path.empty()) out_path = a.arg();
            else a.fail(std::string("unexpected argument '") + a.arg() + "' (TEACHER and OUT only)");
        } else if (a.flag("--help", "-h")) {
            print_help();
            return kExitOk;
        } else if (a.text("--text", "-f", &text_path)) {
        } else if (a.u32("--top-k", "-k", &top_k, 1)) {
            have_k = true;
        } else if (a.u32("--ctx", "-c", &ctx, 4)) {
        } else if (a.u32("--chunks", nullptr, &chunks, 1)) {
        } else if (a.i32("--level", nullptr, &level, 1, 19)) {
        } else if (a.u32("--threads", "-t", &threads, 1)) {
        } else {
            a.unknown();
        }
    }
    if (!a.ok()) return usage_error(kCommand, a.error());
    if (model_path.empty()) return usage_error(kCommand, "missing TEACHER (a .gguf file)");
    if (out_path.empty()) return usage_error(kCommand, "missing OUT (the export file to write)");
    if (text_path.empty()) return usage_error(kCommand, "missing --text FILE");
    if (!have_k) return usage_error(kCommand, "missing --top-k K");

    std::string text;
    if (!read_file(text_path, &text)) {
        fprintf(stderr, "memwise %s: cannot read %s: %s\n", kCommand, text_path.c_str(), strerror(errno));
        return kExitError;
    }
    if (text.empty()) {
        fprintf(stderr, "memwise %s: %s is empty\n", kCommand, text_path.c_str());
        return kExitError;
    }
    mw_model* model = open_model(kCommand, model_path);
    if (!model) return kExitError;
    mw_distill_options o;
    mw_distill_options_init(&o);
    o.n_ctx = ctx;
    o.n_threads = threads;
    o.max_windows = chunks;
    o.top_k = top_k;
    o.compression_level = level;
    if (isatty(fileno(stderr))) o.progress = progress;  // a \r line only on a terminal
    mw_distill_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    const mw_status st = mw_distill_export(model, text.data(), text.size(), out_path.c_str(), &o, &info);
    if (st != MW_OK) print_api_error(kCommand, "export", st);
    mw_model_close(model);
    if (st != MW_OK) return kExitError;
    printf("wrote %s: %" PRIu64 " positions of %" PRIu64 " tokens in %" PRIu64 " windows of up to %u, top-%u of %u "
           "tokens, %" PRIu64 " bytes (%.1f per position)\n",
           out_path.c_str(), info.n_records, info.n_text_tokens, info.n_windows, info.n_ctx, info.top_k, info.n_vocab,
           info.file_bytes, info.n_records ? (double)info.file_bytes / (double)info.n_records : 0.0);
    return kExitOk;
}

}  // namespace cli
