// memwise eval: perplexity of a model over a text and, against a reference
// (a teacher model or a distillation export), KL divergence, top-1 agreement
// and the change in next-token probability. The work is mw_eval / mw_eval_export.
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "commands.h"
#include "common.h"

namespace cli {

static const char* const kCommand = "eval";

static void print_help() {
    printf("Usage: memwise eval MODEL --text FILE [--ref TEACHER | --ref-export FILE] [options]\n"
           "\n"
           "Measures MODEL on a text: perplexity and, with a reference, how far its\n"
           "next-token distributions are from the reference's.\n"
           "\n"
           "Windows (as llama.cpp's llama-perplexity): the text, tokenized with BOS, is cut\n"
           "into windows of --ctx tokens, each run from an empty cache with BOS first; only\n"
           "the second half of each window is scored (every prediction sees at least\n"
           "ctx/2 tokens). A tail shorter than a window is not used. With --ref-export\n"
           "the export's own windows are replayed instead: every position it holds\n"
           "(every position of the text for a complete export) is compared once, with\n"
           "the context the teacher had.\n"
           "\n"
           "Options:\n"
           "  --text FILE            the evaluation text ('-' = stdin); required unless\n"
           "                         --ref-export is given (the export holds its tokens)\n"
           "  --ref TEACHER          reference model (same vocabulary): KL(TEACHER || MODEL)\n"
           "                         over the full vocabulary, mean and 99th percentile,\n"
           "                         top-1 agreement (llama.cpp's \"Same top p\"), Δp RMS,\n"
           "                         ln(PPL(MODEL)/PPL(TEACHER))\n"
           "  --ref-export FILE      reference from 'memwise distill-export': the same\n"
           "                         measures without the teacher; KL from the teacher's\n"
           "                         top K plus one bucket for the rest (a lower bound)\n"
           "  --ctx N                window length (default 512, or the training context\n"
           "                         when smaller; with --ref-export: the export's)\n"
           "  --kl-base-rounding M   exact (default): the reference's exact log-probs;\n"
           "                         llama: as llama-perplexity stores its KL base (16-bit\n"
           "                         steps over the top 16 nats, tokens below -16 nats left\n"
           "                         out of KL), to compare with its figures (--ref only)\n"
           "  --chunks N             evaluate the first N windows only (of the export's,\n"
           "                         with --ref-export)\n"
           "  --threads N            compute threads (default: number of physical cores)\n"
           "  --json                 print one JSON object instead of text\n"
           "  -h, --help             show this help\n");
}

static void progress(void* user, uint64_t done, uint64_t total) {
    (void)user;
    fprintf(stderr, "\rmemwise eval: window %" PRIu64 "/%" PRIu64, done, total);
    if (done == total) fprintf(stderr, "\n");
}

// JSON has no NaN or infinity.
static double finite(double v) { return isfinite(v) ? v : 0.0; }

static void print_text(const mw_eval_result& r) {
    printf("windows:        %" PRIu64 " %s %u tokens (%" PRIu64 " tokens in the text)\n", r.n_windows,
           r.ref_is_export ? "of up to" : "x", r.n_ctx, r.n_tokens);
    if (r.ref_is_export)
        printf("compared:       %" PRIu64 " positions of the export (its windows, not eval's)\n", r.n_scored);
    else
        printf("scored:         %" PRIu64 " predictions\n", r.n_scored);
    printf("perplexity:     %.6f\n", r.perplexity);
    if (r.has_ref) {
        printf("ref perplexity: %.6f%s\n", r.ref_perplexity, r.ref_is_export ? " (from the export)" : "");
        printf("ln(PPL ratio):  %.6f\n", r.ln_ppl_ratio);
        printf("KL mean:        %.6f nats%s\n", r.kl_mean, r.ref_is_export ? " (top-K + remainder, a lower bound)" : "");
        printf("KL p99:         %.6f\n", r.kl_p99);
        printf("KL max:         %.6f\n", r.kl_max);
        printf("same top:       %.3f %%\n", 100.0 * r.top1_agreement);
        printf("Δp RMS:         %.3f %%\n", 100.0 * r.delta_p_rms);
        if (r.ref_is_export) printf("min top-K mass: %.4f\n", r.ref_min_topk_mass);
    }
    printf("time:           %.2f s\n", r.seconds);
}

static void print_json(const mw_eval_result& r) {
    printf("{\"n_ctx\": %u, \"n_tokens\": %" PRIu64 ", \"n_windows\": %" PRIu64 ", \"n_scored\": %" PRIu64
           ", \"perplexity\": %.9g, \"nll_mean\": %.9g",
           r.n_ctx, r.n_tokens, r.n_windows, r.n_scored, finite(r.perplexity), finite(r.nll_mean));
    if (r.has_ref)
        printf(", \"ref\": {\"from_export\": %s, \"perplexity\": %.9g, \"ln_ppl_ratio\": %.9g, \"kl_mean\": %.9g, "
               "\"kl_p99\": %.9g, \"kl_max\": %.9g, \"top1_agreement\": %.9g, \"delta_p_rms\": %.9g, "
               "\"min_topk_mass\": %.9g}",
               r.ref_is_export ? "true" : "false", finite(r.ref_perplexity), finite(r.ln_ppl_ratio),
               finite(r.kl_mean), finite(r.kl_p99), finite(r.kl_max), r.top1_agreement, finite(r.delta_p_rms),
               r.ref_is_export ? r.ref_min_topk_mass : 1.0);
    printf(", \"seconds\": %.3f}\n", r.seconds);
}

int cmd_eval(int argc, char** argv) {
    ArgReader a(kCommand, argc, argv);
    std::string model_path, text_path, ref_path, export_path;
    uint32_t ctx = 0, threads = 0, chunks = 0;
    bool json = false;
    std::string rounding = "exact";
    while (a.next()) {
        if (a.positional()) {
            if (!model_path.empty()) a.fail(std::string("unexpected argument '") + a.arg() + "' (one MODEL only)");
            model_path = a.arg();
        } else if (a.flag("--help", "-h")) {
            print_help();
            return kExitOk;
        } else if (a.text("--text", "-f", &text_path)) {
        } else if (a.text("--ref", nullptr, &ref_path)) {
        } else if (a.text("--ref-export", nullptr, &export_path)) {
        } else if (a.u32("--ctx", "-c", &ctx, 4)) {
        } else if (a.text("--kl-base-rounding", nullptr, &rounding)) {
        } else if (a.u32("--chunks", nullptr, &chunks, 1)) {
        } else if (a.u32("--threads", "-t", &threads, 1)) {
        } else if (a.flag("--json")) {
            json = true;
        } else {
            a.unknown();
        }
    }
    if (!a.ok()) return usage_error(kCommand, a.error());
    if (model_path.empty()) return usage_error(kCommand, "missing MODEL (a .gguf file)");
    if (!ref_path.empty() && !export_path.empty()) return usage_error(kCommand, "give --ref or --ref-export, not both");
    if (rounding != "exact" && rounding != "llama")
        return usage_error(kCommand, "--kl-base-rounding takes exact or llama, not '" + rounding + "'");
    if (rounding == "llama" && ref_path.empty())
        return usage_error(kCommand, "--kl-base-rounding llama needs --ref TEACHER");
    if (export_path.empty() && text_path.empty()) return usage_error(kCommand, "missing --text FILE");
    if (!export_path.empty() && !text_path.empty())
        return usage_error(kCommand, "--ref-export replays the export's own tokens; leave out --text");

    std::string text;
    if (!text_path.empty()) {
        if (!read_file(text_path, &text)) {
            fprintf(stderr, "memwise %s: cannot read %s: %s\n", kCommand, text_path.c_str(), strerror(errno));
            return kExitError;
        }
        if (text.empty()) {
            fprintf(stderr, "memwise %s: %s is empty\n", kCommand, text_path.c_str());
            return kExitError;
        }
    }
    mw_model* model = open_model(kCommand, model_path);
    if (!model) return kExitError;
    mw_model* ref = nullptr;
    if (!ref_path.empty() && !(ref = open_model(kCommand, ref_path))) {
        mw_model_close(model);
        return kExitError;
    }

    mw_eval_options o;
    mw_eval_options_init(&o);
    o.n_ctx = ctx;
    o.n_threads = threads;
    o.max_windows = chunks;
    o.ref_base = rounding == "llama" ? MW_EVAL_REF_LLAMA16 : MW_EVAL_REF_EXACT;
    if (isatty(fileno(stderr))) o.progress = progress;  // a \r line only on a terminal
    mw_eval_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    const mw_status st = export_path.empty() ? mw_eval(model, ref, text.data(), text.size(), &o, &r)
                                             : mw_eval_export(model, export_path.c_str(), &o, &r);
    if (st != MW_OK) print_api_error(kCommand, "evaluation", st);
    mw_model_close(ref);
    mw_model_close(model);
    if (st != MW_OK) return kExitError;
    if (json) print_json(r);
    else print_text(r);
    return kExitOk;
}

}  // namespace cli
