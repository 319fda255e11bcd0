// memwise quantize: post-training quantization of a GGUF model (plain
// round-to-nearest, importance-weighted with calibration text, or mixed
// precision under a size budget). The work is mw_quantize.
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <string>

#include "commands.h"
#include "common.h"

namespace cli {

static const char* const kCommand = "quantize";

static void print_help() {
    printf("Usage: memwise quantize IN.gguf OUT.gguf --type TYPE [--calib FILE] [options]\n"
           "       memwise quantize IN.gguf OUT.gguf --calib FILE --target-size BYTES | --target-bpw X\n"
           "\n"
           "Quantizes every 2-D weight of IN (F32, F16, BF16, or an already quantized model,\n"
           "which is dequantized first, with a warning) and writes OUT via a temporary file.\n"
           "Rows whose width is not a multiple of TYPE's block get the closest type that fits\n"
           "(Q4_K -> Q4_1 -> F16, Q5_K -> Q5_1 -> F16, Q6_K -> Q8_0 -> F16,\n"
           "Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 -> F16), reported per tensor.\n"
           "\n"
           "Options:\n"
           "  --type TYPE          Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, F16, BF16\n"
           "                       or F32\n"
           "  --calib FILE         calibration text: block scales minimise the error weighted\n"
           "                       by each input column's mean squared activation on it\n"
           "                       (without it: plain round-to-nearest)\n"
           "  --calib-tokens N     tokens of the calibration text used (default 4096, 0 = all)\n"
           "  --ctx N              calibration window (default min(256, training context))\n"
           "  --target-size BYTES  mixed precision: a type per tensor so that OUT fits BYTES\n"
           "                       (suffixes K, M, G = 1024^n); needs --calib\n"
           "  --target-bpw X       mixed precision: X bits per weight over the 2-D tensors\n"
           "  --sens-tokens N      tokens each tensor's sensitivity (KL) is measured on\n"
           "                       (default 512)\n"
           "  --plan-candidates N  candidate plans whose KL is measured as a whole, the\n"
           "                       lowest kept (default 8; 1 = best predicted only)\n"
           "  --rtn-variants       mixed precision: per tensor and type, also measure the\n"
           "                       round-to-nearest encoder and keep the better one\n"
           "  --threads N          threads (default: all hardware threads)\n"
           "  -q, --quiet          no per-tensor lines\n"
           "  -h, --help           show this help\n"
           "\n"
           "Mixed precision measures, for every tensor and candidate type, the KL divergence\n"
           "that quantizing that tensor alone causes on the calibration text; plans within the\n"
           "budget (greedy on KL per byte, and trades: one tensor up paid by others down, or\n"
           "the reverse) are ranked by the summed KL, the best N are measured as a whole on\n"
           "the calibration tokens that follow, and the lowest measured KL wins.\n");
}

static bool parse_size(const std::string& s, uint64_t* out) {
    char* end = nullptr;
    const double v = strtod(s.c_str(), &end);
    if (end == s.c_str() || !(v > 0)) return false;
    double mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024.0, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024.0 * 1024 * 1024, end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return false;
    *out = (uint64_t)(v * mul);
    return *out > 0;
}

struct Ctx {
    bool quiet;
};

static void log_line(void* user, const char* line) {
    const Ctx* c = (const Ctx*)user;
    const bool per_tensor = line[0] == '[';
    if (!c->quiet || !per_tensor) fprintf(stderr, "memwise quantize: %s\n", line);
}

int cmd_quantize(int argc, char** argv) {
    ArgReader a(kCommand, argc, argv);
    std::string in, out, type, calib, size_text;
    uint32_t calib_tokens = 4096, ctx = 0, threads = 0, sens = 512, plan_candidates = 8;
    float bpw = 0;
    bool quiet = false, calib_tokens_set = false, rtn_variants = false;
    while (a.next()) {
        if (a.positional()) {
            if (in.empty()) in = a.arg();
            else if (out.empty()) out = a.arg();
            else a.fail(std::string("unexpected argument '") + a.arg() + "'");
        } else if (a.flag("--help", "-h")) {
            print_help();
            return kExitOk;
        } else if (a.text("--type", nullptr, &type)) {
        } else if (a.text("--calib", nullptr, &calib)) {
        } else if (a.u32("--calib-tokens", nullptr, &calib_tokens, 0)) {
            calib_tokens_set = true;
        } else if (a.u32("--ctx", "-c", &ctx, 2)) {
        } else if (a.text("--target-size", nullptr, &size_text)) {
        } else if (a.f32("--target-bpw", nullptr, &bpw, 0.0f, 32.0f, true)) {
        } else if (a.u32("--sens-tokens", nullptr, &sens, 2)) {
        } else if (a.u32("--plan-candidates", nullptr, &plan_candidates, 1)) {
        } else if (a.u32("--threads", "-t", &threads, 1)) {
        } else if (a.flag("--rtn-variants", nullptr)) {
            rtn_variants = true;
        } else if (a.flag("--quiet", "-q")) {
            quiet = true;
        } else {
            a.unknown();
        }
    }
    (void)calib_tokens_set;
    if (!a.ok()) return usage_error(kCommand, a.error());
    if (in.empty() || out.empty()) return usage_error(kCommand, "need IN and OUT model files");
    uint64_t target_size = 0;
    if (!size_text.empty() && !parse_size(size_text, &target_size))
        return usage_error(kCommand, "--target-size '" + size_text + "' is not a size (e.g. 180000, 200K, 1.5M)");
    if (type.empty() && !target_size && bpw == 0) return usage_error(kCommand, "missing --type TYPE (or --target-size / --target-bpw)");

    Ctx c{quiet};
    mw_quantize_options o;
    mw_quantize_options_init(&o);
    o.type = type.empty() ? nullptr : type.c_str();
    o.calib_path = calib.empty() ? nullptr : calib.c_str();
    o.calib_tokens = calib_tokens;
    o.n_ctx = ctx;
    o.target_size = target_size;
    o.target_bpw = bpw;
    o.sens_tokens = sens;
    o.plan_candidates = plan_candidates;
    o.rtn_variants = rtn_variants ? 1 : 0;
    o.n_threads = threads;
    o.log = log_line;
    o.user_data = &c;
    mw_quantize_result r;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    const double t0 = now_seconds();
    const mw_status st = mw_quantize(in.c_str(), out.c_str(), &o, &r);
    if (st != MW_OK) {
        print_api_error(kCommand, "quantization", st);
        return st == MW_ERR_INVALID_ARGUMENT ? kExitUsage : kExitError;
    }
    fprintf(stderr,
            "memwise quantize: wrote %s: %" PRIu64 " bytes (input %" PRIu64 " bytes, %.1f %%), %u tensors converted, "
            "%u with a fallback type%s, %.1f s\n",
            out.c_str(), r.out_bytes, r.in_bytes, 100.0 * (double)r.out_bytes / (double)r.in_bytes, r.n_quantized,
            r.n_fallback, r.calib_tokens ? ", importance-weighted" : ", round-to-nearest", now_seconds() - t0);
    if (r.mixed)
        fprintf(stderr, "memwise quantize: mixed precision, predicted KL %.6f, measured KL %.6f (calibration text)\n",
                r.predicted_kl, r.measured_kl);
    return kExitOk;
}

}  // namespace cli
