// memwise bench: load time, prefill and decode speed and peak memory for one
// prompt of a fixed number of tokens.
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "bandwidth.h"
#include "commands.h"
#include "common.h"

namespace cli {

static const char* const kCommand = "bench";

static void print_help() {
    printf("Usage: memwise bench MODEL [options]\n"
           "\n"
           "Measures the GGUF model MODEL: load time (open + engine), prefill speed (a\n"
           "prompt of exactly --prompt-tokens token ids, submit to first token), decode\n"
           "speed (tokens after the first over the time from first to last token), and\n"
           "the process's peak RSS. Greedy, end-of-sequence ignored, so exactly\n"
           "--gen-tokens tokens are generated. The prompt is deterministic pseudo-random\n"
           "vocabulary ids; each repetition uses a different one so no prefix is reused.\n"
           "\n"
           "Options:\n"
           "  --prompt-tokens N      prompt length in tokens (default 512)\n"
           "  --gen-tokens N         tokens to generate (default 128)\n"
           "  --threads N            compute threads (default: number of physical cores)\n"
           "  --backend B            cpu (default), cuda, or auto (CUDA when a GPU is usable)\n"
           "  --repeat N             runs to average over (default 1)\n"
           "  --warmup N             unmeasured runs first (default 0): weights paged in\n"
           "  --bandwidth GB/S       memory read bandwidth, for the roofline line\n"
           "  --probe-bandwidth      measure it: after the runs, a child process reads a\n"
           "                         1 GiB buffer with the engine's thread count (about\n"
           "                         a second; not counted in peak RSS)\n"
           "  --json                 print one JSON object instead of text, with the memory\n"
           "                         report under \"memory\" (\"threads\": 0\n"
           "                         means the engine default)\n"
           "  -h, --help             show this help\n"
           "\n"
           "Roofline: a decode step reads every weight once, so decode tokens/s is at most\n"
           "bandwidth / (bytes of weights read per token). The line gives those bytes\n"
           "(all tensors, the token embedding as one row unless it is also the output),\n"
           "the bound for the given or probed bandwidth, and decode's fraction of it.\n"
           "\n%s",
           kLoadHelp);
}

// splitmix64: a small, fixed generator so the prompt is the same on every run.
static uint64_t next_random(uint64_t* state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// n token ids drawn from the vocabulary, skipping BOS/EOS/EOT and tokens that
// render as no text (control tokens), so the prompt looks like ordinary text.
static std::vector<int32_t> make_prompt(const mw_model* model, const mw_model_info& info, uint32_t n,
                                        uint64_t seed) {
    std::vector<int32_t> ids;
    uint64_t state = seed;
    uint64_t attempts = 0;
    while (ids.size() < n) {
        int32_t id = int32_t(next_random(&state) % info.n_vocab);
        attempts++;
        if (id == info.bos_token || id == info.eos_token || id == info.eot_token) continue;
        // After many misses accept any non-EOG id rather than loop forever.
        if (attempts < 100ull * n) {
            char buf[64];
            size_t len = 0;
            mw_status st = mw_detokenize(model, &id, 1, 0, buf, sizeof buf, &len);
            if ((st != MW_OK && st != MW_ERR_BUFFER_TOO_SMALL) || len == 0) continue;
        }
        ids.push_back(id);
    }
    return ids;
}

// Token times are taken on the engine thread, in the event callback, at the
// moment each token is produced: a consumer pulling events could fall behind a
// fast engine and would then measure its own pace instead.
struct TokenClock {
    std::atomic<uint32_t> n_tokens{0};
    std::atomic<double> first{0}, last{0};
};

static void on_event(void* user_data, const mw_request*, const mw_event* ev) {
    if (ev->kind != MW_EVENT_TOKEN) return;
    TokenClock* clock = static_cast<TokenClock*>(user_data);
    double t = now_seconds();
    if (clock->n_tokens.load(std::memory_order_relaxed) == 0) clock->first.store(t);
    clock->last.store(t);
    clock->n_tokens.fetch_add(1);
}

static std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            out += esc;
        } else {
            out += char(c);
        }
    }
    return out + "\"";
}

// JSON has no NaN or infinity.
static double finite_or_zero(double v) { return isfinite(v) ? v : 0.0; }

// Bytes of weights one decode token reads: every tensor once, except the token
// embedding, of which one row is read (all of it when it is also the output).
static uint64_t weight_bytes_per_token(const mw_model* model) {
    uint64_t total = 0, embd = 0, embd_row = 0;
    bool has_output = false;
    const size_t n = mw_model_tensor_count(model);
    for (size_t i = 0; i < n; i++) {
        mw_tensor_info ti;
        memset(&ti, 0, sizeof ti);
        ti.struct_size = sizeof ti;
        if (mw_model_tensor_info(model, i, &ti) != MW_OK) continue;
        total += ti.n_bytes;
        if (strcmp(ti.name, "output.weight") == 0) has_output = true;
        if (strcmp(ti.name, "token_embd.weight") == 0) {
            embd = ti.n_bytes;
            embd_row = ti.ne[1] ? ti.n_bytes / ti.ne[1] : ti.n_bytes;
        }
    }
    return has_output ? total - embd + embd_row : total;
}

// Runs the bandwidth probe in a child process so its buffer never counts in
// this process's peak RSS. Returns GB/s, or 0 when it failed.
static double probe_in_child(int n_threads) {
    int fds[2];
    if (pipe(fds) != 0) return 0;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        close(fds[0]);
        BandwidthResult r = probe_bandwidth(size_t(1) << 30, n_threads, 3, false, nullptr);
        ssize_t w = write(fds[1], &r.read_gbps, sizeof r.read_gbps);
        _exit(w == (ssize_t)sizeof r.read_gbps ? 0 : 1);
    }
    close(fds[1]);
    double gbps = 0;
    if (read(fds[0], &gbps, sizeof gbps) != (ssize_t)sizeof gbps) gbps = 0;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return gbps;
}

int cmd_bench(int argc, char** argv) {
    ArgReader a(kCommand, argc, argv);
    std::string model_path;
    uint32_t prompt_tokens = 512, gen_tokens = 128, threads = 0, repeat = 1, warmup = 0;
    int32_t backend = MW_BACKEND_CPU;
    float bandwidth = 0;
    bool json = false, probe = false;
    LoadArgs load_args;
    while (a.next()) {
        if (a.positional()) {
            if (!model_path.empty()) a.fail(std::string("unexpected argument '") + a.arg() + "' (one MODEL only)");
            model_path = a.arg();
        } else if (a.flag("--help", "-h")) {
            print_help();
            return kExitOk;
        } else if (a.u32("--prompt-tokens", "-p", &prompt_tokens, 1)) {
        } else if (a.u32("--gen-tokens", "-n", &gen_tokens, 1)) {
        } else if (a.u32("--threads", "-t", &threads, 1)) {
        } else if (a.u32("--repeat", "-r", &repeat, 1)) {
        } else if (parse_backend(a, &backend)) {
        } else if (a.u32("--warmup", nullptr, &warmup, 0)) {
        } else if (a.f32("--bandwidth", nullptr, &bandwidth, 0.0f, 1e6f, true)) {
        } else if (a.flag("--probe-bandwidth")) {
            probe = true;
        } else if (a.flag("--json")) {
            json = true;
        } else if (load_args.parse(a)) {
        } else {
            a.unknown();
        }
    }
    if (!a.ok()) return usage_error(kCommand, a.error());
    if (model_path.empty()) return usage_error(kCommand, "missing MODEL (a .gguf file)");
    if (uint64_t(prompt_tokens) + gen_tokens > UINT32_MAX)
        return usage_error(kCommand, "--prompt-tokens plus --gen-tokens is too large");

    double t0 = now_seconds();
    mw_model* model = open_model(kCommand, model_path, &load_args.opts);
    if (!model) return kExitError;
    mw_engine_options eopts;
    memset(&eopts, 0, sizeof eopts);
    eopts.struct_size = sizeof eopts;
    mw_engine_options_init(&eopts);
    eopts.n_threads = threads;
    eopts.n_ctx = prompt_tokens + gen_tokens;
    eopts.max_sequences = 1;
    eopts.backend = backend;
    mw_engine* engine = create_engine(kCommand, model, &eopts);
    if (!engine) return kExitError;
    double load_s = now_seconds() - t0;

    mw_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    mw_status st = mw_model_info_get(model, &info);
    if (st != MW_OK || info.n_vocab == 0) {
        print_api_error(kCommand, "cannot describe the model", st != MW_OK ? st : MW_ERR_FORMAT);
        mw_engine_destroy(engine);
        mw_model_close(model);
        return kExitError;
    }

    mw_engine_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.struct_size = sizeof plan;
    uint32_t n_threads = threads;
    if (mw_engine_plan_memory(model, &eopts, &plan) == MW_OK) n_threads = plan.n_threads;
    const uint64_t bytes_per_token = weight_bytes_per_token(model);

    double prefill_s = 0, decode_s = 0;
    int rc = kExitOk;
    for (uint32_t i = 0; i < warmup + repeat && rc == kExitOk; i++) {
        const bool measured = i >= warmup;
        const uint32_t run = measured ? i - warmup : i;
        std::vector<int32_t> prompt =
            make_prompt(model, info, prompt_tokens, measured ? 0x6d656d77697365ull + run : 0x7761726d7570ull + run);
        mw_request_options opts;
        memset(&opts, 0, sizeof opts);
        opts.struct_size = sizeof opts;
        mw_request_options_init(&opts);
        opts.prompt_tokens = prompt.data();
        opts.n_prompt_tokens = prompt.size();
        opts.max_tokens = gen_tokens;
        opts.temperature = 0.0f;
        opts.ignore_eos = 1;
        opts.seed = 0;
        TokenClock clock;
        opts.callback = on_event;
        opts.user_data = &clock;
        double t_submit = now_seconds();
        StreamResult r;
        stream_request(engine, opts, nullptr, nullptr, &r);
        r.n_token_events = clock.n_tokens.load();
        if (!r.submitted) {
            print_api_error(kCommand, "cannot submit the prompt", r.status);
            rc = kExitError;
        } else if (r.interrupted) {
            fprintf(stderr, "memwise %s: interrupted\n", kCommand);
            rc = kExitInterrupted;
        } else if (r.status != MW_OK || r.finish_reason != MW_FINISH_LENGTH || r.n_token_events != gen_tokens) {
            fprintf(stderr, "memwise %s: run %u ended early (%s after %u of %u tokens): %s %s\n", kCommand, i + 1,
                    finish_reason_name(r.finish_reason), r.n_token_events, gen_tokens, mw_status_string(r.status),
                    r.error.c_str());
            rc = kExitError;
        }
        if (!measured) continue;
        prefill_s += clock.first.load() - t_submit;
        decode_s += clock.last.load() - clock.first.load();
    }
    mw_memory_report mem;
    if (rc == kExitOk && !read_memory_report(kCommand, engine, &mem)) rc = kExitError;
    mw_engine_destroy(engine);
    mw_model_close(model);
    if (rc != kExitOk) return rc;

    double prefill_tps = finite_or_zero(double(prompt_tokens) * repeat / prefill_s);
    double decode_tps = gen_tokens > 1 ? finite_or_zero(double(gen_tokens - 1) * repeat / decode_s) : 0.0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    getrusage(RUSAGE_SELF, &ru);
    uint64_t peak_rss = uint64_t(ru.ru_maxrss) * 1024;  // Linux reports KiB
    // After the engine is gone: the child starts from a process with no engine threads.
    if (probe) {
        bandwidth = float(probe_in_child(n_threads ? int(n_threads) : 1));
        if (bandwidth <= 0) fprintf(stderr, "memwise %s: the bandwidth probe failed; no roofline\n", kCommand);
    }
    const double bound_tps = bandwidth > 0 ? double(bandwidth) * 1e9 / double(bytes_per_token) : 0.0;
    const double fraction = bound_tps > 0 ? decode_tps / bound_tps : 0.0;

    if (json) {
        printf("{\"model\": %s, \"threads\": %u, \"prompt_tokens\": %u, \"gen_tokens\": %u, \"repeat\": %u, "
               "\"load_seconds\": %.6f, \"prefill_tokens_per_s\": %.3f, \"decode_tokens_per_s\": %.3f, "
               "\"peak_rss_bytes\": %" PRIu64 ", \"weight_bytes_per_token\": %" PRIu64 ", "
               "\"bandwidth_gbps\": %.3f, \"decode_bound_tokens_per_s\": %.3f, \"decode_fraction_of_bound\": %.4f, "
               "\"memwise_version\": %s, \"memory\": %s}\n",
               json_string(model_path).c_str(), threads, prompt_tokens, gen_tokens, repeat, load_s, prefill_tps,
               decode_tps, peak_rss, bytes_per_token, double(bandwidth), bound_tps, fraction,
               json_string(mw_version_string()).c_str(), memory_report_json(mem).c_str());
    } else {
        printf("model:      %s\n", model_path.c_str());
        if (threads)
            printf("threads:    %u\n", threads);
        else
            printf("threads:    default (physical cores)\n");
        printf("load:       %.3f s\n", load_s);
        printf("prefill:    %u tokens, %.1f tokens/s\n", prompt_tokens, prefill_tps);
        printf("decode:     %u tokens, %.1f tokens/s\n", gen_tokens, decode_tps);
        printf("peak RSS:   %.1f MiB\n", peak_rss / (1024.0 * 1024.0));
        if (bound_tps > 0)
            printf("roofline:   %.1f MiB of weights per token, %.1f GB/s read -> decode bound %.1f tokens/s, "
                   "memwise at %.0f%%\n",
                   bytes_per_token / (1024.0 * 1024.0), double(bandwidth), bound_tps, 100.0 * fraction);
        else
            printf("roofline:   %.1f MiB of weights per token (--bandwidth or --probe-bandwidth for the bound)\n",
                   bytes_per_token / (1024.0 * 1024.0));
        if (repeat > 1) printf("(averaged over %u runs)\n", repeat);
        printf("memwise:    %s\n", mw_version_string());
        print_memory_report(stdout, mem);
    }
    return kExitOk;
}

}  // namespace cli
