/* Serving throughput of one backend through the public API: N requests of a
 * P-token prompt submitted at once, each generating G tokens greedily (EOS
 * ignored). Prints one JSON object with
 *   prefill_tokens_per_s  N * P over submit -> the last request's first token
 *                         (with N > 1 this includes decode steps of requests
 *                         admitted earlier: continuous batching overlaps them)
 *   decode_tokens_per_s   the sum over requests of (G - 1) / (its last token
 *                         time - its first token time): aggregate decode rate
 *   total_generated_tokens_per_s  N * G over submit -> the last token
 * and the memory report (device memory by component on CUDA).
 *
 *   gpu_bench MODEL BACKEND(cpu|cuda|auto) N_PARALLEL PROMPT_TOKENS GEN_TOKENS [THREADS]
 *
 * A warm-up request runs first (CUDA context, cuBLASLt heuristics). Used by
 * bench/gpu-check.sh; it runs on the CPU backend as well, for comparison. */
#include <memwise/memwise.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
    pthread_mutex_t mu;
    double first_token_time; /* when this request's first token arrived */
    double last_token_time;
    unsigned n_tokens;
} token_clock;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_event(void* user_data, const mw_request* r, const mw_event* ev) {
    token_clock* c = (token_clock*)user_data;
    double t;
    (void)r;
    if (ev->kind != MW_EVENT_TOKEN) return;
    t = now();
    pthread_mutex_lock(&c->mu);
    if (c->n_tokens == 0) c->first_token_time = t;
    c->last_token_time = t;
    c->n_tokens++;
    pthread_mutex_unlock(&c->mu);
}

static int run(mw_engine* e, int n, int32_t* const* prompts, size_t n_prompt, unsigned gen, token_clock* clocks) {
    mw_request** reqs = calloc((size_t)n, sizeof *reqs);
    int i, ok = 1;
    for (i = 0; i < n; i++) {
        mw_request_options o;
        mw_request_options_init(&o);
        o.prompt_tokens = prompts[i];
        o.n_prompt_tokens = n_prompt;
        o.max_tokens = gen;
        o.temperature = 0;
        o.ignore_eos = 1;
        o.callback = on_event;
        o.user_data = &clocks[i];
        clocks[i].n_tokens = 0;
        if (mw_submit(e, &o, &reqs[i]) != MW_OK) {
            fprintf(stderr, "gpu_bench: submit failed: %s\n", mw_last_error());
            ok = 0;
            n = i;
            break;
        }
    }
    for (i = 0; i < n; i++) {
        mw_event ev;
        ev.struct_size = sizeof ev;
        for (;;) {
            if (mw_request_next(reqs[i], 600000, &ev) != MW_OK) {
                ok = 0;
                break;
            }
            if (ev.kind == MW_EVENT_FINISHED) break;
        }
        if (ev.status != MW_OK || clocks[i].n_tokens != gen) {
            fprintf(stderr, "gpu_bench: request %d ended with %s after %u tokens\n", i, mw_status_string(ev.status),
                    clocks[i].n_tokens);
            ok = 0;
        }
        mw_request_release(reqs[i]);
    }
    free(reqs);
    return ok;
}

int main(int argc, char** argv) {
    mw_model* m = NULL;
    mw_engine* e = NULL;
    mw_engine_options eo;
    mw_model_info info;
    mw_memory_report rep;
    int32_t** prompts;
    token_clock* clocks;
    int n, i, backend;
    unsigned p, g, threads = 0;
    double t0, t_first = 0, t_end = 0, load_s, decode_rate = 0;
    uint64_t state = 0x6d656d77697365ull;
    struct rusage ru;
    if (argc < 6) {
        fprintf(stderr, "usage: gpu_bench MODEL cpu|cuda|auto N_PARALLEL PROMPT_TOKENS GEN_TOKENS [THREADS]\n");
        return 2;
    }
    backend = strcmp(argv[2], "cuda") == 0 ? MW_BACKEND_CUDA : strcmp(argv[2], "auto") == 0 ? MW_BACKEND_AUTO
                                                                                               : MW_BACKEND_CPU;
    n = atoi(argv[3]);
    p = (unsigned)atoi(argv[4]);
    g = (unsigned)atoi(argv[5]);
    if (argc > 6) threads = (unsigned)atoi(argv[6]);
    if (n < 1 || p < 1 || g < 2) {
        fprintf(stderr, "gpu_bench: N_PARALLEL, PROMPT_TOKENS >= 1 and GEN_TOKENS >= 2\n");
        return 2;
    }
    t0 = now();
    if (mw_model_open(argv[1], NULL, &m) != MW_OK) {
        fprintf(stderr, "gpu_bench: %s\n", mw_last_error());
        return 1;
    }
    mw_engine_options_init(&eo);
    eo.backend = backend;
    eo.max_sequences = (uint32_t)n;
    eo.n_ctx = (p + g + 255) / 256 * 256;
    eo.n_threads = threads;
    {
        const mw_status st = mw_engine_create(m, &eo, &e);
        if (st != MW_OK) {
            fprintf(stderr, "gpu_bench: engine: %s: %s\n", mw_status_string(st), mw_last_error());
            return 1;
        }
    }
    load_s = now() - t0;
    info.struct_size = sizeof info;
    mw_model_info_get(m, &info);
    prompts = calloc((size_t)n, sizeof *prompts);
    clocks = calloc((size_t)n, sizeof *clocks);
    for (i = 0; i < n; i++) pthread_mutex_init(&clocks[i].mu, NULL);
    for (i = 0; i < n; i++) {
        unsigned k;
        prompts[i] = malloc(p * sizeof(int32_t));
        for (k = 0; k < p; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            prompts[i][k] = (int32_t)(100 + (state >> 33) % (uint64_t)(info.n_vocab - 200));
        }
    }
    /* warm-up: one short request */
    if (!run(e, 1, prompts, p < 16 ? p : 16, 4, clocks)) return 1;

    t0 = now();
    if (!run(e, n, prompts, p, g, clocks)) return 1;
    for (i = 0; i < n; i++) {
        if (clocks[i].first_token_time > t_first) t_first = clocks[i].first_token_time;
        if (clocks[i].last_token_time > t_end) t_end = clocks[i].last_token_time;
        if (clocks[i].last_token_time > clocks[i].first_token_time)
            decode_rate += (g - 1) / (clocks[i].last_token_time - clocks[i].first_token_time);
    }
    rep.struct_size = sizeof rep;
    mw_engine_memory(e, &rep);
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"backend\": \"%s\", \"n_parallel\": %d, \"prompt_tokens\": %u, \"gen_tokens\": %u, "
           "\"load_seconds\": %.3f, "
           "\"prefill_tokens_per_s\": %.1f, \"decode_tokens_per_s\": %.1f, \"total_generated_tokens_per_s\": %.1f, "
           "\"device_weights_bytes\": %llu, \"device_kv_bytes\": %llu, \"device_activations_bytes\": %llu, "
           "\"device_workspace_bytes\": %llu, \"device_total_bytes\": %llu, \"kv_reserved_bytes\": %llu, "
           "\"peak_rss_bytes\": %llu}\n",
           argv[2], n, p, g, load_s, (double)n * p / (t_first - t0), decode_rate, (double)n * g / (t_end - t0),
           (unsigned long long)rep.device_weights_bytes, (unsigned long long)rep.device_kv_bytes,
           (unsigned long long)rep.device_activations_bytes, (unsigned long long)rep.device_workspace_bytes,
           (unsigned long long)rep.device_total_bytes, (unsigned long long)rep.kv_reserved_bytes,
           (unsigned long long)ru.ru_maxrss * 1024ull);
    mw_engine_destroy(e);
    mw_model_close(m);
    return 0;
}
