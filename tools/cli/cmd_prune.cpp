// memwise prune: structured pruning of FFN channels and attention heads
// (whole KV groups) by activation importance. The work is mw_prune.
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <string>

#include "commands.h"
#include "common.h"

namespace cli {

static const char* const kCommand = "prune";

static void print_help() {
    printf("Usage: memwise prune IN.gguf OUT.gguf --ffn-keep F --heads-keep H --calib FILE [options]\n"
           "\n"
           "Removes the least important FFN channels (a row of ffn_gate and ffn_up with the\n"
           "matching column of ffn_down) and KV groups (a KV head with its query heads and\n"
           "their attn_output columns), ranked by their contribution to the residual stream\n"
           "on the calibration text, and writes a smaller valid GGUF with per-layer head\n"
           "counts and FFN widths.\n"
           "\n"
           "Options:\n"
           "  --ffn-keep F        fraction of FFN channels kept, in (0, 1] (default 1)\n"
           "  --heads-keep H      fraction of KV groups kept, in (0, 1] (default 1)\n"
           "  --calib FILE        calibration text (required unless --random)\n"
           "  --per-layer         layers keep different shares: for each layer and width,\n"
           "                      the KL that pruning only that layer causes is measured on\n"
           "                      the calibration text, and the widths with the smallest\n"
           "                      summed KL under the same total are kept\n"
           "  --sens-tokens N     tokens that measurement uses (default 512)\n"
           "  --round N           kept FFN widths are multiples of N (default 32; use 256\n"
           "                      when the result will be quantized to K-quants)\n"
           "  --random SEED       rank at random instead (the baseline to compare with)\n"
           "  --calib-tokens N    tokens of the calibration text used (default 4096, 0 = all)\n"
           "  --ctx N             calibration window (default min(256, training context))\n"
           "  --threads N         threads (default: all hardware threads)\n"
           "  -h, --help          show this help\n");
}

static void log_line(void*, const char* line) { fprintf(stderr, "memwise prune: %s\n", line); }

int cmd_prune(int argc, char** argv) {
    ArgReader a(kCommand, argc, argv);
    std::string in, out, calib;
    float ffn_keep = 1.0f, heads_keep = 1.0f;
    uint32_t round = 32, calib_tokens = 4096, ctx = 0, threads = 0, sens = 512;
    uint64_t seed = 0;
    bool per_layer = false, random = false;
    while (a.next()) {
        if (a.positional()) {
            if (in.empty()) in = a.arg();
            else if (out.empty()) out = a.arg();
            else a.fail(std::string("unexpected argument '") + a.arg() + "'");
        } else if (a.flag("--help", "-h")) {
            print_help();
            return kExitOk;
        } else if (a.f32("--ffn-keep", nullptr, &ffn_keep, 0.0f, 1.0f, true)) {
        } else if (a.f32("--heads-keep", nullptr, &heads_keep, 0.0f, 1.0f, true)) {
        } else if (a.text("--calib", nullptr, &calib)) {
        } else if (a.flag("--per-layer")) {
            per_layer = true;
        } else if (a.u32("--round", nullptr, &round, 1)) {
        } else if (a.u64("--random", nullptr, &seed)) {
            random = true;
        } else if (a.u32("--calib-tokens", nullptr, &calib_tokens, 0)) {
        } else if (a.u32("--sens-tokens", nullptr, &sens, 2)) {
        } else if (a.u32("--ctx", "-c", &ctx, 2)) {
        } else if (a.u32("--threads", "-t", &threads, 1)) {
        } else {
            a.unknown();
        }
    }
    if (!a.ok()) return usage_error(kCommand, a.error());
    if (in.empty() || out.empty()) return usage_error(kCommand, "need IN and OUT model files");
    if (calib.empty() && !random) return usage_error(kCommand, "missing --calib FILE (or --random SEED)");

    mw_prune_options o;
    mw_prune_options_init(&o);
    o.ffn_keep = ffn_keep;
    o.heads_keep = heads_keep;
    o.calib_path = calib.empty() ? nullptr : calib.c_str();
    o.per_layer = per_layer ? 1 : 0;
    o.round = round;
    o.random = random ? 1 : 0;
    o.seed = seed;
    o.calib_tokens = calib_tokens;
    o.sens_tokens = sens;
    o.n_ctx = ctx;
    o.n_threads = threads;
    o.log = log_line;
    mw_prune_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    const mw_status st = mw_prune(in.c_str(), out.c_str(), &o, &r);
    if (st != MW_OK) {
        print_api_error(kCommand, "pruning", st);
        return st == MW_ERR_INVALID_ARGUMENT ? kExitUsage : kExitError;
    }
    fprintf(stderr,
            "memwise prune: wrote %s: %" PRIu64 " bytes (input %" PRIu64 ", %.1f %%), parameters %" PRIu64 " -> %" PRIu64
            ", FFN channels %" PRIu64 " -> %" PRIu64 ", heads %" PRIu64 " -> %" PRIu64 "\n",
            out.c_str(), r.out_bytes, r.in_bytes, 100.0 * (double)r.out_bytes / (double)r.in_bytes, r.params_in,
            r.params_out, r.ffn_channels_in, r.ffn_channels_out, r.heads_in, r.heads_out);
    return kExitOk;
}

}  // namespace cli
