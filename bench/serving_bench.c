/* serving_bench: the serving benchmarks of docs/BENCHMARKS.md ("Serving").
 *
 *   serving_bench MODEL [--workload throughput|prefix|latency|all] [--threads N]
 *                 [--ctx N] [--concurrency 1,4,16,64] [--prompt-tokens N]
 *                 [--gen-tokens N] [--sequential-max N] [--prefix-tokens N]
 *                 [--tail-tokens N] [--prefix-requests N] [--long-prompt N]
 *                 [--background N] [--chunk N] [--kv-type f16|q8_0|f32] [--json]
 *
 * throughput: for each concurrency N, N requests (a distinct prompt of
 *   --prompt-tokens pseudo-random token ids each, --gen-tokens generated with
 *   end-of-sequence ignored) submitted at once to an engine of N sequences,
 *   and the same requests (at most --sequential-max of them) served one after
 *   another on an engine of one sequence. Figure: generated tokens / wall time.
 * prefix: --prefix-requests requests submitted at once, sharing a prompt prefix
 *   of --prefix-tokens, each adding --tail-tokens distinct tokens and
 *   generating --tail-tokens; again with the first request submitted ahead
 *   (the others arrive when it produced its first token, its prompt computed). The KV blocks held by sequences are sampled from
 *   mw_engine_stats every millisecond; the peak is set against the ideal (one
 *   prefix + each request's own tokens), with the prefix cache on and off.
 * latency: --background requests decode; then one request with a prompt of
 *   --long-prompt tokens arrives. Its time to first token and inter-token
 *   latencies, and the background streams' inter-token latencies while it is
 *   served, p50/p99, with chunked prefill (max_batch_tokens = --chunk) and
 *   without (max_batch_tokens above the long prompt plus the decodes).
 *
 * Every engine gets a fresh warm-up request first (its output discarded).
 * Token timestamps come from the request callback (an engine thread); the main
 * thread only waits. Public API only (memwise/memwise.h). A program, not a test.
 * --json prints one JSON object per measurement on stdout, for
 * bench/compare_llama_server.py; otherwise a readable table. */
#include <memwise/memwise.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(double ms) {
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000) * 1e6);
    nanosleep(&ts, NULL);
}

static void die(const char* what, mw_status st) {
    fprintf(stderr, "serving_bench: %s: %s: %s\n", what, mw_status_string(st), mw_last_error());
    exit(1);
}

/* ---- settings ----------------------------------------------------------- */

typedef struct settings {
    const char* model_path;
    const char* workload;
    unsigned threads, ctx, prompt_tokens, gen_tokens, sequential_max;
    unsigned concurrency[16];
    unsigned n_concurrency;
    unsigned prefix_tokens, tail_tokens, prefix_requests;
    unsigned long_prompt, background, chunk;
    int kv_type;
    int json;
} settings;

/* ---- prompts: deterministic pseudo-random ids, away from the special tokens */

static uint64_t mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* Token i of stream `stream`: distinct streams give distinct prompts. */
static int32_t token_at(uint32_t n_vocab, uint64_t stream, uint64_t i) {
    const uint32_t lo = n_vocab > 1000 ? 256 : 3;
    return (int32_t)(lo + mix(stream * 1000003ull + i) % (n_vocab - lo));
}

static int32_t* make_prompt(uint32_t n_vocab, uint64_t stream, unsigned n) {
    int32_t* p = malloc(n * sizeof *p);
    unsigned i;
    if (!p) exit(1);
    for (i = 0; i < n; i++) p[i] = token_at(n_vocab, stream, i);
    return p;
}

/* ---- one request's timeline, written by the engine thread ---------------- */

typedef struct timeline {
    double submit, first, finish;
    double* token_times; /* time of every token event */
    unsigned n_tokens, cap;
    int finished, status, finish_reason;
} timeline;

typedef struct run_state {
    pthread_mutex_t mu;
    unsigned finished;
    unsigned started; /* requests that produced their first token */
} run_state;

typedef struct req_ctx {
    run_state* run;
    timeline tl;
} req_ctx;

static void on_event(void* user, const mw_request* req, const mw_event* ev) {
    req_ctx* c = user;
    const double t = now_s();
    (void)req;
    pthread_mutex_lock(&c->run->mu);
    if (ev->kind == MW_EVENT_TOKEN) {
        if (c->tl.n_tokens == 0) {
            c->tl.first = t;
            c->run->started++;
        }
        if (c->tl.n_tokens < c->tl.cap) c->tl.token_times[c->tl.n_tokens] = t;
        c->tl.n_tokens++;
    } else if (ev->kind == MW_EVENT_FINISHED) {
        c->tl.finish = t;
        c->tl.finished = 1;
        c->tl.status = ev->status;
        c->tl.finish_reason = ev->finish_reason;
        c->run->finished++;
    }
    pthread_mutex_unlock(&c->run->mu);
}

static unsigned locked_read(run_state* r, const unsigned* v) {
    unsigned x;
    pthread_mutex_lock(&r->mu);
    x = *v;
    pthread_mutex_unlock(&r->mu);
    return x;
}

static mw_request* submit(mw_engine* e, const int32_t* prompt, unsigned n_prompt, unsigned gen, req_ctx* c,
                          run_state* run) {
    mw_request_options ro;
    mw_request* r = NULL;
    mw_status st;
    mw_request_options_init(&ro);
    ro.prompt_tokens = prompt;
    ro.n_prompt_tokens = n_prompt;
    ro.max_tokens = gen;
    ro.temperature = 0.0f;
    ro.ignore_eos = 1;
    ro.callback = on_event;
    ro.user_data = c;
    memset(&c->tl, 0, sizeof c->tl);
    c->run = run;
    c->tl.cap = gen + 1;
    c->tl.token_times = calloc(c->tl.cap, sizeof(double));
    if (!c->tl.token_times) exit(1);
    c->tl.submit = now_s();
    st = mw_submit(e, &ro, &r);
    if (st != MW_OK) die("mw_submit", st);
    return r;
}

static void wait_release(mw_request* r, req_ctx* c) {
    mw_event ev;
    mw_status st;
    memset(&ev, 0, sizeof ev);
    ev.struct_size = sizeof ev;
    st = mw_request_next(r, -1, &ev);
    if (st != MW_OK) die("mw_request_next", st);
    if (ev.status != MW_OK && ev.finish_reason != MW_FINISH_CANCELLED) {
        fprintf(stderr, "serving_bench: request failed: %s: %.*s\n", mw_status_string((mw_status)ev.status),
                (int)ev.text_len, ev.text ? ev.text : "");
        exit(1);
    }
    mw_request_release(r);
    (void)c;
}

static void free_ctx(req_ctx* c) { free(c->tl.token_times); }

static void run_init(run_state* r) {
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
}

/* ---- engines ------------------------------------------------------------ */

static mw_engine* make_engine(mw_model* m, const settings* s, unsigned max_seq, unsigned max_batch, int prefix_cache,
                              uint64_t* block_bytes, uint32_t* block_tokens) {
    mw_engine_options eo;
    mw_engine_plan plan;
    mw_engine* e = NULL;
    mw_status st;
    mw_engine_options_init(&eo);
    eo.n_threads = s->threads;
    eo.n_ctx = s->ctx;
    eo.max_sequences = max_seq;
    eo.kv_type = s->kv_type;
    if (max_batch) eo.max_batch_tokens = max_batch;
    eo.prefix_cache = prefix_cache;
    memset(&plan, 0, sizeof plan);
    plan.struct_size = sizeof plan;
    st = mw_engine_plan_memory(m, &eo, &plan);
    if (st != MW_OK) die("mw_engine_plan_memory", st);
    if (block_bytes) *block_bytes = plan.kv_block_bytes;
    if (block_tokens) *block_tokens = plan.kv_block_tokens;
    st = mw_engine_create(m, &eo, &e);
    if (st != MW_OK) die("mw_engine_create", st);
    return e;
}

/* A short request with its own prompt, so the weights are in the page cache
 * and the threads have run once before anything is timed. */
static void warm_up(mw_engine* e, uint32_t n_vocab) {
    run_state run;
    req_ctx c;
    int32_t* p = make_prompt(n_vocab, 999999, 32);
    mw_request* r;
    run_init(&run);
    r = submit(e, p, 32, 8, &c, &run);
    wait_release(r, &c);
    free_ctx(&c);
    free(p);
}

static void get_stats(mw_engine* e, mw_stats* st) {
    mw_status rc;
    memset(st, 0, sizeof *st);
    st->struct_size = sizeof *st;
    rc = mw_engine_stats(e, st);
    if (rc != MW_OK) die("mw_engine_stats", rc);
}

static void get_memory(mw_engine* e, mw_memory_report* m) {
    mw_status rc;
    memset(m, 0, sizeof *m);
    m->struct_size = sizeof *m;
    rc = mw_engine_memory(e, m);
    if (rc != MW_OK) die("mw_engine_memory", rc);
}

/* ---- statistics --------------------------------------------------------- */

static int cmp_double(const void* a, const void* b) {
    const double x = *(const double*)a, y = *(const double*)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of v[0..n), sorted in place. */
static double percentile(double* v, unsigned n, double p) {
    unsigned k;
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp_double);
    k = (unsigned)(p / 100.0 * n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

/* ---- throughput --------------------------------------------------------- */

typedef struct tp_result {
    double seconds, tokens_per_s, ttft_p50, ttft_p99;
    unsigned requests, tokens;
} tp_result;

/* Serves requests [0, n) of the throughput set: all at once, or one by one. */
static tp_result serve(mw_engine* e, uint32_t n_vocab, const settings* s, unsigned n, int sequential) {
    tp_result res;
    run_state run;
    req_ctx* ctx = calloc(n, sizeof *ctx);
    mw_request** reqs = calloc(n, sizeof *reqs);
    int32_t** prompts = calloc(n, sizeof *prompts);
    double* ttft = calloc(n, sizeof *ttft);
    double t0, t1;
    unsigned i;
    if (!ctx || !reqs || !prompts || !ttft) exit(1);
    for (i = 0; i < n; i++) prompts[i] = make_prompt(n_vocab, 1000 + i, s->prompt_tokens);
    run_init(&run);
    t0 = now_s();
    if (sequential) {
        for (i = 0; i < n; i++) {
            reqs[i] = submit(e, prompts[i], s->prompt_tokens, s->gen_tokens, &ctx[i], &run);
            wait_release(reqs[i], &ctx[i]);
        }
    } else {
        for (i = 0; i < n; i++) reqs[i] = submit(e, prompts[i], s->prompt_tokens, s->gen_tokens, &ctx[i], &run);
        for (i = 0; i < n; i++) wait_release(reqs[i], &ctx[i]);
    }
    t1 = now_s();
    memset(&res, 0, sizeof res);
    res.requests = n;
    res.seconds = t1 - t0;
    for (i = 0; i < n; i++) {
        res.tokens += ctx[i].tl.n_tokens;
        ttft[i] = ctx[i].tl.first - ctx[i].tl.submit;
        free_ctx(&ctx[i]);
        free(prompts[i]);
    }
    res.tokens_per_s = res.tokens / res.seconds;
    res.ttft_p50 = percentile(ttft, n, 50);
    res.ttft_p99 = percentile(ttft, n, 99);
    free(ctx);
    free(reqs);
    free(prompts);
    free(ttft);
    return res;
}

static void workload_throughput(mw_model* m, uint32_t n_vocab, const settings* s) {
    unsigned k;
    if (!s->json) {
        printf("throughput: prompt %u, generate %u, %u threads, context %u per sequence\n", s->prompt_tokens,
               s->gen_tokens, s->threads, s->ctx);
        printf("%11s %9s %12s %12s %12s %10s\n", "concurrent", "requests", "tokens/s", "sequential", "ratio",
               "ttft p50");
    }
    for (k = 0; k < s->n_concurrency; k++) {
        const unsigned n = s->concurrency[k];
        const unsigned n_seq = n < s->sequential_max ? n : s->sequential_max;
        tp_result conc, seq;
        mw_engine* e = make_engine(m, s, n, 0, 1, NULL, NULL);
        warm_up(e, n_vocab);
        conc = serve(e, n_vocab, s, n, 0);
        mw_engine_destroy(e);
        /* a fresh engine: the prefix cache must not serve the same prompts again */
        e = make_engine(m, s, 1, 0, 1, NULL, NULL);
        warm_up(e, n_vocab);
        seq = serve(e, n_vocab, s, n_seq, 1);
        mw_engine_destroy(e);
        if (s->json) {
            printf("{\"engine\":\"memwise\",\"workload\":\"throughput\",\"concurrency\":%u,\"requests\":%u,"
                   "\"prompt_tokens\":%u,\"gen_tokens\":%u,\"threads\":%u,\"tokens\":%u,\"seconds\":%.4f,"
                   "\"tokens_per_s\":%.3f,\"ttft_p50_s\":%.4f,\"ttft_p99_s\":%.4f,"
                   "\"sequential_requests\":%u,\"sequential_tokens_per_s\":%.3f}\n",
                   n, n, s->prompt_tokens, s->gen_tokens, s->threads, conc.tokens, conc.seconds, conc.tokens_per_s,
                   conc.ttft_p50, conc.ttft_p99, seq.requests, seq.tokens_per_s);
        } else {
            printf("%11u %9u %12.1f %12.1f %11.2fx %9.3fs\n", n, n, conc.tokens_per_s, seq.tokens_per_s,
                   conc.tokens_per_s / seq.tokens_per_s, conc.ttft_p50);
        }
        fflush(stdout);
    }
}

/* ---- shared prefix memory ------------------------------------------------ */

/* stagger: the first request runs alone until its first token (its prompt's
 * blocks are computed), then the others arrive; otherwise all arrive at once. */
static void prefix_run(mw_model* m, uint32_t n_vocab, const settings* s, int prefix_cache, int stagger) {
    const unsigned n = s->prefix_requests;
    const unsigned n_prompt = s->prefix_tokens + s->tail_tokens;
    uint64_t block_bytes = 0;
    uint32_t block_tokens = 0;
    mw_engine* e = make_engine(m, s, n, 0, prefix_cache, &block_bytes, &block_tokens);
    run_state run;
    req_ctx* ctx = calloc(n, sizeof *ctx);
    mw_request** reqs = calloc(n, sizeof *reqs);
    int32_t** prompts = calloc(n, sizeof *prompts);
    mw_stats st0, st, end;
    mw_memory_report mem, mem0;
    uint32_t peak_blocks = 0;
    uint64_t peak_anon = 0, peak_kv_resident = 0;
    unsigned i, j, polls = 0;
    double t0, t1, bytes_per_token, ideal, peak;
    if (!ctx || !reqs || !prompts) exit(1);
    warm_up(e, n_vocab);
    for (i = 0; i < n; i++) {
        prompts[i] = malloc(n_prompt * sizeof(int32_t));
        if (!prompts[i]) exit(1);
        for (j = 0; j < s->prefix_tokens; j++) prompts[i][j] = token_at(n_vocab, 7, j);
        for (j = 0; j < s->tail_tokens; j++) prompts[i][s->prefix_tokens + j] = token_at(n_vocab, 5000 + i, j);
    }
    get_stats(e, &st0);
    get_memory(e, &mem0);
    run_init(&run);
    t0 = now_s();
    for (i = 0; i < n; i++) {
        reqs[i] = submit(e, prompts[i], n_prompt, s->tail_tokens, &ctx[i], &run);
        while (stagger && i == 0 && locked_read(&run, &run.started) == 0) {
            get_stats(e, &st);
            if (st.kv_blocks_used > peak_blocks) peak_blocks = st.kv_blocks_used;
            sleep_ms(1);
        }
    }
    /* Sample while they run: blocks every millisecond (cheap), the memory
     * report (mincore, /proc) every 250th time. */
    while (locked_read(&run, &run.finished) < n) {
        get_stats(e, &st);
        if (st.kv_blocks_used > peak_blocks) peak_blocks = st.kv_blocks_used;
        if (polls++ % 250 == 0) {
            get_memory(e, &mem);
            if (mem.process_anonymous_bytes > peak_anon) peak_anon = mem.process_anonymous_bytes;
            if (mem.kv_resident_bytes > peak_kv_resident) peak_kv_resident = mem.kv_resident_bytes;
        }
        sleep_ms(1);
    }
    t1 = now_s();
    get_memory(e, &mem);
    if (mem.process_anonymous_bytes > peak_anon) peak_anon = mem.process_anonymous_bytes;
    if (mem.kv_resident_bytes > peak_kv_resident) peak_kv_resident = mem.kv_resident_bytes;
    for (i = 0; i < n; i++) wait_release(reqs[i], &ctx[i]);
    get_stats(e, &end);
    bytes_per_token = (double)block_bytes / block_tokens;
    ideal = bytes_per_token * (s->prefix_tokens + (double)n * (s->tail_tokens + s->tail_tokens));
    peak = (double)peak_blocks * (double)block_bytes;
    if (s->json) {
        printf("{\"engine\":\"memwise\",\"workload\":\"prefix\",\"prefix_cache\":%d,\"stagger\":%d,\"requests\":%u,"
               "\"prefix_tokens\":%u,\"tail_tokens\":%u,\"gen_tokens\":%u,\"threads\":%u,\"seconds\":%.4f,"
               "\"kv_bytes_per_token\":%.1f,\"kv_in_use_peak_bytes\":%.0f,\"kv_ideal_bytes\":%.0f,"
               "\"kv_in_use_over_ideal\":%.4f,\"kv_reserved_bytes\":%llu,\"kv_resident_peak_bytes\":%llu,"
               "\"process_anon_before_bytes\":%llu,\"process_anon_peak_bytes\":%llu,"
               "\"prefix_cache_hits\":%llu,\"prefix_cache_misses\":%llu,\"prompt_tokens_computed\":%llu}\n",
               prefix_cache, stagger, n, s->prefix_tokens, s->tail_tokens, s->tail_tokens, s->threads, t1 - t0,
               bytes_per_token, peak, ideal, peak / ideal, (unsigned long long)mem.kv_reserved_bytes,
               (unsigned long long)peak_kv_resident, (unsigned long long)mem0.process_anonymous_bytes,
               (unsigned long long)peak_anon,
               (unsigned long long)(end.prefix_cache_hits - st0.prefix_cache_hits),
               (unsigned long long)(end.prefix_cache_misses - st0.prefix_cache_misses),
               (unsigned long long)(end.prompt_tokens_computed - st0.prompt_tokens_computed));
    } else {
        printf("shared prefix (prefix_cache=%d, %s): %u requests, prefix %u + %u own + %u generated, %.2f s\n",
               prefix_cache, stagger ? "the first one ahead" : "all at once", n, s->prefix_tokens, s->tail_tokens, s->tail_tokens, t1 - t0);
        printf("  KV in use, peak  %8.1f MiB  (%u blocks of %u tokens)\n", peak / 1048576.0, peak_blocks,
               block_tokens);
        printf("  ideal            %8.1f MiB  (one prefix + %u tails)  ratio %.2fx\n", ideal / 1048576.0, n,
               peak / ideal);
        printf("  KV resident peak %8.1f MiB of %.1f MiB reserved\n", peak_kv_resident / 1048576.0,
               mem.kv_reserved_bytes / 1048576.0);
        printf("  process anonymous %7.1f MiB before, %.1f MiB peak\n", mem0.process_anonymous_bytes / 1048576.0,
               peak_anon / 1048576.0);
        printf("  prefix cache hits %llu, misses %llu; prompt tokens computed %llu\n",
               (unsigned long long)(end.prefix_cache_hits - st0.prefix_cache_hits),
               (unsigned long long)(end.prefix_cache_misses - st0.prefix_cache_misses),
               (unsigned long long)(end.prompt_tokens_computed - st0.prompt_tokens_computed));
    }
    fflush(stdout);
    for (i = 0; i < n; i++) {
        free_ctx(&ctx[i]);
        free(prompts[i]);
    }
    free(ctx);
    free(reqs);
    free(prompts);
    mw_engine_destroy(e);
}

/* ---- latency under load -------------------------------------------------- */

static void latency_run(mw_model* m, uint32_t n_vocab, const settings* s, unsigned max_batch) {
    const unsigned nb = s->background;
    const unsigned probe_gen = 64;
    /* the background streams outlive the probe: cancelled once it finishes */
    const unsigned bg_gen = s->ctx > s->prompt_tokens + 8 ? s->ctx - s->prompt_tokens - 1 : 8;
    mw_engine* e = make_engine(m, s, nb + 1, max_batch, 1, NULL, NULL);
    run_state run;
    req_ctx* ctx = calloc(nb + 1, sizeof *ctx);
    mw_request** reqs = calloc(nb + 1, sizeof *reqs);
    int32_t* bg_prompt;
    int32_t* probe_prompt = make_prompt(n_vocab, 77, s->long_prompt);
    double *itl, *bg_itl, t_probe, t_probe_end, ttft, itl50, itl99, bg50, bg99, bgmax = 0;
    unsigned i, j, n_itl = 0, n_bg = 0, bg_cap;
    if (!ctx || !reqs) exit(1);
    warm_up(e, n_vocab);
    run_init(&run);
    for (i = 0; i < nb; i++) {
        bg_prompt = make_prompt(n_vocab, 3000 + i, s->prompt_tokens);
        reqs[i] = submit(e, bg_prompt, s->prompt_tokens, bg_gen, &ctx[i], &run);
        free(bg_prompt);
    }
    /* wait until every background stream decodes, and a few steps more */
    while (locked_read(&run, &run.started) < nb) sleep_ms(1);
    sleep_ms(200);
    reqs[nb] = submit(e, probe_prompt, s->long_prompt, probe_gen, &ctx[nb], &run);
    t_probe = ctx[nb].tl.submit;
    wait_release(reqs[nb], &ctx[nb]);
    t_probe_end = ctx[nb].tl.finish;
    for (i = 0; i < nb; i++) mw_request_cancel(reqs[i]);
    for (i = 0; i < nb; i++) wait_release(reqs[i], &ctx[i]);
    if (locked_read(&run, &run.finished) != nb + 1) {
        fprintf(stderr, "serving_bench: latency: not every request finished\n");
        exit(1);
    }
    /* probe */
    ttft = ctx[nb].tl.first - t_probe;
    itl = calloc(probe_gen + 1, sizeof *itl);
    for (j = 1; j < ctx[nb].tl.n_tokens && j < ctx[nb].tl.cap; j++)
        itl[n_itl++] = ctx[nb].tl.token_times[j] - ctx[nb].tl.token_times[j - 1];
    itl50 = percentile(itl, n_itl, 50);
    itl99 = percentile(itl, n_itl, 99);
    /* background gaps that end while the probe is served */
    bg_cap = nb * (bg_gen + 1);
    bg_itl = calloc(bg_cap, sizeof *bg_itl);
    for (i = 0; i < nb; i++) {
        const timeline* tl = &ctx[i].tl;
        for (j = 1; j < tl->n_tokens && j < tl->cap; j++) {
            const double a = tl->token_times[j - 1], b = tl->token_times[j];
            if (b > t_probe && b <= t_probe_end && n_bg < bg_cap) {
                bg_itl[n_bg++] = b - a;
                if (b - a > bgmax) bgmax = b - a;
            }
        }
    }
    bg50 = percentile(bg_itl, n_bg, 50);
    bg99 = percentile(bg_itl, n_bg, 99);
    if (s->json) {
        printf("{\"engine\":\"memwise\",\"workload\":\"latency\",\"max_batch_tokens\":%u,\"background\":%u,"
               "\"long_prompt\":%u,\"probe_gen\":%u,\"threads\":%u,\"ttft_s\":%.4f,\"itl_p50_s\":%.4f,"
               "\"itl_p99_s\":%.4f,\"background_itl_p50_s\":%.4f,\"background_itl_p99_s\":%.4f,"
               "\"background_itl_max_s\":%.4f}\n",
               max_batch, nb, s->long_prompt, probe_gen, s->threads, ttft, itl50, itl99, bg50, bg99, bgmax);
    } else {
        printf("%16u %9.3f %9.4f %9.4f %11.4f %11.4f %11.4f\n", max_batch, ttft, itl50, itl99, bg50, bg99, bgmax);
    }
    fflush(stdout);
    for (i = 0; i <= nb; i++) free_ctx(&ctx[i]);
    free(ctx);
    free(reqs);
    free(probe_prompt);
    free(itl);
    free(bg_itl);
    mw_engine_destroy(e);
}

static void workload_latency(mw_model* m, uint32_t n_vocab, const settings* s) {
    /* without chunking: the whole long prompt plus every decode token in one step */
    const unsigned whole = s->long_prompt + s->background + 1;
    if (!s->json) {
        printf("latency: one request with a %u-token prompt (64 generated) arriving while %u others decode\n",
               s->long_prompt, s->background);
        printf("%16s %9s %9s %9s %11s %11s %11s\n", "max_batch_tokens", "ttft(s)", "itl p50", "itl p99",
               "others p50", "others p99", "others max");
    }
    latency_run(m, n_vocab, s, s->chunk);
    latency_run(m, n_vocab, s, whole);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: serving_bench MODEL [--workload throughput|prefix|latency|all] [--threads N] [--ctx N]\n"
            "       [--concurrency 1,4,16,64] [--prompt-tokens 128] [--gen-tokens 128] [--sequential-max 16]\n"
            "       [--prefix-tokens 1000] [--tail-tokens 100] [--prefix-requests 16]\n"
            "       [--long-prompt 512] [--background 16] [--chunk 64] [--kv-type f16|q8_0|f32] [--json]\n");
    exit(2);
}

static unsigned parse_uint(const char* v) {
    char* end = NULL;
    unsigned long x;
    if (!v) usage();
    x = strtoul(v, &end, 10);
    if (!end || *end || x > 10000000ul) usage();
    return (unsigned)x;
}

int main(int argc, char** argv) {
    settings s;
    mw_model* m = NULL;
    mw_model_info info;
    mw_status st;
    int i;
    memset(&s, 0, sizeof s);
    s.workload = "all";
    s.threads = 2;
    s.ctx = 1300;
    s.prompt_tokens = 128;
    s.gen_tokens = 128;
    s.sequential_max = 16;
    s.concurrency[0] = 1;
    s.concurrency[1] = 4;
    s.concurrency[2] = 16;
    s.concurrency[3] = 64;
    s.n_concurrency = 4;
    s.prefix_tokens = 1000;
    s.tail_tokens = 100;
    s.prefix_requests = 16;
    s.long_prompt = 512;
    s.background = 16;
    s.chunk = 64;
    s.kv_type = MW_KV_F16;
    for (i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            if (s.model_path) usage();
            s.model_path = a;
            continue;
        }
        if (!strcmp(a, "--json")) {
            s.json = 1;
            continue;
        }
        if (!v) usage();
        i++;
        if (!strcmp(a, "--workload")) s.workload = v;
        else if (!strcmp(a, "--threads")) s.threads = parse_uint(v);
        else if (!strcmp(a, "--ctx")) s.ctx = parse_uint(v);
        else if (!strcmp(a, "--prompt-tokens")) s.prompt_tokens = parse_uint(v);
        else if (!strcmp(a, "--gen-tokens")) s.gen_tokens = parse_uint(v);
        else if (!strcmp(a, "--sequential-max")) s.sequential_max = parse_uint(v);
        else if (!strcmp(a, "--prefix-tokens")) s.prefix_tokens = parse_uint(v);
        else if (!strcmp(a, "--tail-tokens")) s.tail_tokens = parse_uint(v);
        else if (!strcmp(a, "--prefix-requests")) s.prefix_requests = parse_uint(v);
        else if (!strcmp(a, "--long-prompt")) s.long_prompt = parse_uint(v);
        else if (!strcmp(a, "--background")) s.background = parse_uint(v);
        else if (!strcmp(a, "--chunk")) s.chunk = parse_uint(v);
        else if (!strcmp(a, "--kv-type")) {
            if (!strcmp(v, "f16")) s.kv_type = MW_KV_F16;
            else if (!strcmp(v, "q8_0")) s.kv_type = MW_KV_Q8_0;
            else if (!strcmp(v, "f32")) s.kv_type = MW_KV_F32;
            else usage();
        } else if (!strcmp(a, "--concurrency")) {
            char buf[256];
            char* tok;
            strncpy(buf, v, sizeof buf - 1);
            buf[sizeof buf - 1] = 0;
            s.n_concurrency = 0;
            for (tok = strtok(buf, ","); tok && s.n_concurrency < 16; tok = strtok(NULL, ","))
                s.concurrency[s.n_concurrency++] = parse_uint(tok);
        } else usage();
    }
    if (!s.model_path || s.n_concurrency == 0 || s.prompt_tokens == 0 || s.gen_tokens == 0 || s.sequential_max == 0 ||
        s.prefix_requests == 0 || s.tail_tokens == 0 || s.long_prompt == 0 || s.background == 0 || s.chunk == 0)
        usage();
    for (i = 0; i < (int)s.n_concurrency; i++)
        if (s.concurrency[i] == 0) usage();
    if (strcmp(s.workload, "throughput") && strcmp(s.workload, "prefix") && strcmp(s.workload, "latency") &&
        strcmp(s.workload, "all"))
        usage();
    st = mw_model_open(s.model_path, NULL, &m);
    if (st != MW_OK) die("mw_model_open", st);
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    st = mw_model_info_get(m, &info);
    if (st != MW_OK) die("mw_model_info_get", st);
    if (s.json)
        printf("{\"engine\":\"memwise\",\"workload\":\"info\",\"version\":\"%s\",\"n_vocab\":%u,"
               "\"n_layer\":%u,\"kv_bytes_per_token_f16\":%u}\n",
               mw_version_string(), info.n_vocab, info.n_layer, info.kv_bytes_per_token);
    if (!strcmp(s.workload, "throughput") || !strcmp(s.workload, "all")) workload_throughput(m, info.n_vocab, &s);
    if (!strcmp(s.workload, "prefix") || !strcmp(s.workload, "all")) {
        prefix_run(m, info.n_vocab, &s, 1, 0);
        prefix_run(m, info.n_vocab, &s, 1, 1);
        prefix_run(m, info.n_vocab, &s, 0, 0);
    }
    if (!strcmp(s.workload, "latency") || !strcmp(s.workload, "all")) workload_latency(m, info.n_vocab, &s);
    mw_model_close(m);
    return 0;
}
