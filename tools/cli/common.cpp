#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>

#include <chrono>

namespace cli {

void print_api_error(const char* command, const std::string& what, mw_status status) {
    const char* detail = mw_last_error();
    if (detail && *detail)
        fprintf(stderr, "memwise %s: %s: %s: %s\n", command, what.c_str(), mw_status_string(status), detail);
    else
        fprintf(stderr, "memwise %s: %s: %s\n", command, what.c_str(), mw_status_string(status));
}

// ---- options -------------------------------------------------------------

const char* const kSamplingHelp =
    "Sampling:\n"
    "  -n, --max-tokens N     tokens to generate (default 256; 0 = until the context is full)\n"
    "  --temp T               temperature, 0 = greedy (default 0.8)\n"
    "  --top-k K              keep the K most likely tokens, 0 = off (default 40)\n"
    "  --top-p P              nucleus sampling in (0, 1], 1 = off (default 0.95)\n"
    "  --min-p P              drop tokens below P x the top probability, 0 = off (default 0.05)\n"
    "  --repeat-penalty R     penalty for recently seen tokens, 1 = off (default 1.0)\n"
    "  --repeat-last-n N      tokens the penalty looks back over (default 64)\n"
    "  --seed S               random seed (default: random)\n"
    "  --stop STR             stop when STR is generated (not printed); repeatable\n";

const char* const kEngineHelp =
    "Engine:\n"
    "  --threads N            compute threads (default: number of physical cores)\n"
    "  --ctx N                context length in tokens (default: min(training context, 4096))\n"
    "  --backend B            cpu (default), cuda, or auto (CUDA when a GPU is usable)\n";

SamplingArgs::SamplingArgs() {
    memset(&opts, 0, sizeof opts);
    opts.struct_size = sizeof opts;
    mw_request_options_init(&opts);
}

bool SamplingArgs::parse(ArgReader& a) {
    std::string stop;
    if (a.u32("--max-tokens", "-n", &opts.max_tokens)) return true;
    if (a.f32("--temp", nullptr, &opts.temperature, 0.0f, 1e6f)) return true;
    if (a.i32("--top-k", nullptr, &opts.top_k, 0, INT32_MAX)) return true;
    if (a.f32("--top-p", nullptr, &opts.top_p, 0.0f, 1.0f, true)) return true;
    if (a.f32("--min-p", nullptr, &opts.min_p, 0.0f, 1.0f)) return true;
    if (a.f32("--repeat-penalty", nullptr, &opts.repeat_penalty, 0.0f, 1e6f, true)) return true;
    if (a.i32("--repeat-last-n", nullptr, &opts.repeat_last_n, 0, INT32_MAX)) return true;
    if (a.u64("--seed", nullptr, &opts.seed)) return true;
    if (a.text("--stop", nullptr, &stop)) {
        if (a.ok() && stop.empty()) a.fail("--stop needs a non-empty string");
        stops.push_back(stop);
        return true;
    }
    return false;
}

void SamplingArgs::bind_stops(std::vector<mw_text>* storage) {
    storage->clear();
    for (const std::string& s : stops) storage->push_back(mw_text{s.data(), s.size()});
    opts.stop = storage->empty() ? nullptr : storage->data();
    opts.n_stop = storage->size();
}

EngineArgs::EngineArgs() {
    memset(&opts, 0, sizeof opts);
    opts.struct_size = sizeof opts;
    mw_engine_options_init(&opts);
}

bool EngineArgs::parse(ArgReader& a) {
    if (a.u32("--threads", "-t", &opts.n_threads, 1)) return true;
    if (a.u32("--ctx", "-c", &opts.n_ctx, 1)) return true;
    if (parse_backend(a, &opts.backend)) return true;
    return false;
}

bool parse_backend(ArgReader& a, int32_t* backend) {
    std::string b;
    if (!a.text("--backend", nullptr, &b)) return false;
    if (!a.ok()) return true;
    if (b == "cpu") *backend = MW_BACKEND_CPU;
    else if (b == "cuda") *backend = MW_BACKEND_CUDA;
    else if (b == "auto") *backend = MW_BACKEND_AUTO;
    else a.fail("--backend must be cpu, cuda or auto (got '" + b + "')");
    return true;
}

const char* const kLoadHelp =
    "Loading:\n"
    "  --populate             read every weight page at open (MAP_POPULATE)\n"
    "  --lock                 lock the weights in RAM (mlock; needs RLIMIT_MEMLOCK >= the file)\n"
    "  --access HINT          paging hint for the weights: random, sequential or willneed\n";

LoadArgs::LoadArgs() {
    memset(&opts, 0, sizeof opts);
    opts.struct_size = sizeof opts;
    mw_model_options_init(&opts);
}

bool LoadArgs::parse(ArgReader& a) {
    if (a.flag("--populate")) {
        opts.prefault = 1;
        return true;
    }
    if (a.flag("--lock")) {
        opts.lock = 1;
        return true;
    }
    std::string hint;
    if (a.text("--access", nullptr, &hint)) {
        if (!a.ok()) return true;
        if (hint == "random")
            opts.access_hint = MW_ACCESS_RANDOM;
        else if (hint == "sequential")
            opts.access_hint = MW_ACCESS_SEQUENTIAL;
        else if (hint == "willneed")
            opts.access_hint = MW_ACCESS_WILLNEED;
        else if (hint == "default")
            opts.access_hint = MW_ACCESS_DEFAULT;
        else
            a.fail("--access must be random, sequential, willneed or default, not '" + hint + "'");
        return true;
    }
    return false;
}

// ---- model and text --------------------------------------------------------

mw_model* open_model(const char* command, const std::string& path, const mw_model_options* opts) {
    mw_model* model = nullptr;
    mw_status st = mw_model_open(path.c_str(), opts, &model);
    if (st != MW_OK) {
        print_api_error(command, "cannot open model '" + path + "'", st);
        return nullptr;
    }
    return model;
}

mw_status chat_format(const mw_model* model, const std::vector<mw_chat_message>& messages,
                      int add_generation_prompt, std::string* out) {
    size_t need = 0;
    out->resize(4096);
    for (;;) {
        mw_status st = mw_chat_format(model, messages.data(), messages.size(), add_generation_prompt, &(*out)[0],
                                      out->size(), &need);
        if (st == MW_ERR_BUFFER_TOO_SMALL && need > out->size()) {
            out->resize(need);
            continue;
        }
        out->resize(st == MW_OK ? need : 0);
        return st;
    }
}

int needs_add_special(const mw_model* model, const std::string& text) {
    mw_model_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    if (mw_model_info_get(model, &info) != MW_OK || !info.add_bos || info.bos_token < 0) return 1;
    char bos[256];
    size_t len = 0;
    if (mw_detokenize(model, &info.bos_token, 1, 1, bos, sizeof bos, &len) != MW_OK || len == 0) return 1;
    return text.compare(0, len, bos, len) == 0 ? 0 : 1;
}

// ---- streaming ---------------------------------------------------------------

static volatile sig_atomic_t g_interrupted = 0;

static void on_sigint(int) { g_interrupted = 1; }

// Ctrl-C cancels the running request instead of killing the process; the
// previous disposition comes back when the request is done.
class SigintGuard {
public:
    SigintGuard() {
        g_interrupted = 0;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        installed_ = sigaction(SIGINT, &sa, &old_) == 0;
    }
    ~SigintGuard() {
        if (installed_) sigaction(SIGINT, &old_, nullptr);
    }

private:
    struct sigaction old_;
    bool installed_ = false;
};

double now_seconds() {
    using namespace std::chrono;
    return duration<double>(steady_clock::now().time_since_epoch()).count();
}

void stream_request(mw_engine* engine, const mw_request_options& opts, FILE* out, std::string* collect,
                    StreamResult* result) {
    *result = StreamResult();
    SigintGuard guard;
    mw_request* req = nullptr;
    double t_submit = now_seconds();
    mw_status st = mw_submit(engine, &opts, &req);
    if (st != MW_OK) {
        result->status = st;
        return;
    }
    result->submitted = true;
    double t_first = 0, t_last = 0;
    bool cancelled = false;
    for (;;) {
        mw_event ev;
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        // A short timeout so Ctrl-C is noticed while the engine computes.
        st = mw_request_next(req, 100, &ev);
        if (st == MW_TIMEOUT) {
            if (g_interrupted && !cancelled) {
                mw_request_cancel(req);
                cancelled = true;
            }
            continue;
        }
        if (st != MW_OK) {
            result->status = st;
            result->error = mw_last_error();
            break;
        }
        if (ev.kind == MW_EVENT_TOKEN) {
            double t = now_seconds();
            if (result->n_token_events == 0) t_first = t;
            t_last = t;
            result->n_token_events++;
            if (ev.text_len > 0) {
                if (out) {
                    fwrite(ev.text, 1, ev.text_len, out);
                    fflush(out);
                }
                if (collect) collect->append(ev.text, ev.text_len);
            }
            if (g_interrupted && !cancelled) {
                mw_request_cancel(req);
                cancelled = true;
            }
            continue;
        }
        if (ev.kind == MW_EVENT_FINISHED) {
            // The finish event may still carry released text (held-back bytes).
            if (ev.finish_reason != MW_FINISH_ERROR && ev.text_len > 0) {
                if (out) {
                    fwrite(ev.text, 1, ev.text_len, out);
                    fflush(out);
                }
                if (collect) collect->append(ev.text, ev.text_len);
            }
            result->finish_reason = ev.finish_reason;
            result->status = mw_status(ev.status);
            result->n_prompt_tokens = ev.n_prompt_tokens;
            result->n_generated_tokens = ev.n_generated_tokens;
            if (ev.finish_reason == MW_FINISH_ERROR) {
                result->error.assign(ev.text ? ev.text : "", ev.text ? ev.text_len : 0);
                if (result->status == MW_OK) result->status = MW_ERR_INTERNAL;
            }
            break;
        }
    }
    result->interrupted = cancelled;
    if (result->n_token_events > 0) {
        result->submit_to_first_s = t_first - t_submit;
        result->first_to_last_s = t_last - t_first;
    }
    mw_request_release(req);
}

const char* finish_reason_name(int32_t reason) {
    switch (reason) {
        case MW_FINISH_NONE: return "none";
        case MW_FINISH_EOS: return "eos";
        case MW_FINISH_LENGTH: return "length";
        case MW_FINISH_STOP_STRING: return "stop string";
        case MW_FINISH_CONTEXT: return "context full";
        case MW_FINISH_CANCELLED: return "cancelled";
        case MW_FINISH_ERROR: return "error";
        default: return "unknown";
    }
}

bool read_file(const std::string& path, std::string* out) {
    FILE* f = path == "-" ? stdin : fopen(path.c_str(), "rb");
    if (!f) return false;
    out->clear();
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
    bool ok = !ferror(f);
    int saved = errno;
    if (f != stdin) fclose(f);
    errno = saved;
    return ok;
}

mw_engine* create_engine(const char* command, mw_model* model, const mw_engine_options* opts) {
    mw_engine* engine = nullptr;
    const mw_status st = mw_engine_create(model, opts, &engine);
    if (st != MW_OK) {
        print_api_error(command, "cannot create the engine", st);
        mw_model_close(model);
        return nullptr;
    }
    return engine;
}

static double mib(uint64_t b) { return double(b) / (1024.0 * 1024.0); }

void print_memory_report(FILE* f, const mw_memory_report& r) {
    fprintf(f, "memory (MiB):\n");
    fprintf(f, "  weights      mapped %.1f, resident %.1f (file-backed, shared)\n", mib(r.weights_mapped_bytes),
            mib(r.weights_resident_bytes));
    fprintf(f, "  KV cache     reserved %.1f, resident %.1f, used %.1f, cached %.1f, free %.1f\n",
            mib(r.kv_reserved_bytes), mib(r.kv_resident_bytes), mib(r.kv_used_bytes), mib(r.kv_cached_bytes),
            mib(r.kv_free_bytes));
    fprintf(f, "  activations  reserved %.1f, high-water %.1f\n", mib(r.activations_reserved_bytes),
            mib(r.activations_high_water_bytes));
    fprintf(f, "  scratch      %.1f (sampling, requests, tokenizer tables)\n", mib(r.scratch_bytes));
    fprintf(f, "  heap         committed %.1f, overhead %.1f, %" PRIu64 " allocations\n", mib(r.heap_committed_bytes),
            mib(r.heap_overhead_bytes), r.heap_allocations);
    fprintf(f, "  engine total %.1f\n", mib(r.engine_total_bytes));
    if (r.adapters_mapped_bytes || r.adapters_anonymous_bytes)
        fprintf(f, "  adapters     mapped %.1f (file-backed), dequantized %.1f\n", mib(r.adapters_mapped_bytes),
                mib(r.adapters_anonymous_bytes));
    fprintf(f, "  process      RSS %.1f, PSS %.1f, anonymous %.1f, file-backed %.1f\n", mib(r.process_rss_bytes),
            mib(r.process_pss_bytes), mib(r.process_anonymous_bytes), mib(r.process_file_bytes));
}

std::string memory_report_json(const mw_memory_report& r) {
    char buf[1536];
    snprintf(buf, sizeof buf,
             "{\"weights_mapped_bytes\": %" PRIu64 ", \"weights_resident_bytes\": %" PRIu64
             ", \"kv_reserved_bytes\": %" PRIu64 ", \"kv_resident_bytes\": %" PRIu64 ", \"kv_used_bytes\": %" PRIu64
             ", \"kv_cached_bytes\": %" PRIu64 ", \"kv_free_bytes\": %" PRIu64
             ", \"activations_reserved_bytes\": %" PRIu64 ", \"activations_high_water_bytes\": %" PRIu64
             ", \"scratch_bytes\": %" PRIu64 ", \"heap_committed_bytes\": %" PRIu64
             ", \"heap_overhead_bytes\": %" PRIu64 ", \"heap_allocations\": %" PRIu64
             ", \"engine_total_bytes\": %" PRIu64 ", \"process_rss_bytes\": %" PRIu64
             ", \"process_pss_bytes\": %" PRIu64 ", \"process_anonymous_bytes\": %" PRIu64
             ", \"process_file_bytes\": %" PRIu64 "}",
             r.weights_mapped_bytes, r.weights_resident_bytes, r.kv_reserved_bytes, r.kv_resident_bytes,
             r.kv_used_bytes, r.kv_cached_bytes, r.kv_free_bytes, r.activations_reserved_bytes,
             r.activations_high_water_bytes, r.scratch_bytes, r.heap_committed_bytes, r.heap_overhead_bytes,
             r.heap_allocations, r.engine_total_bytes, r.process_rss_bytes, r.process_pss_bytes,
             r.process_anonymous_bytes, r.process_file_bytes);
    return buf;
}

bool read_memory_report(const char* command, const mw_engine* engine, mw_memory_report* r) {
    memset(r, 0, sizeof *r);
    r->struct_size = sizeof *r;
    const mw_status st = mw_engine_memory(engine, r);
    if (st != MW_OK) {
        print_api_error(command, "cannot read the memory report", st);
        return false;
    }
    return true;
}

}  // namespace cli
