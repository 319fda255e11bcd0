/* Generation through the C API on the real stories260K model: determinism,
 * seeds, callbacks, cancellation, stop strings, limits, concurrency, and the
 * no-copy promise of mw_model_open. */
#define _GNU_SOURCE /* dladdr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <memwise/memwise.h>

#include "test_util.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct fixture {
    mw_model* model;
    mw_engine* engine;
} fixture;

static int setup(void** state) {
    static fixture fx;
    const char* path = mw_test_find_model(MW_STORIES_MODEL);
    mw_engine_options eo;
    memset(&fx, 0, sizeof fx);
    *state = &fx;
    if (!path) return 0;
    if (mw_model_open(path, NULL, &fx.model) != MW_OK) return -1;
    mw_engine_options_init(&eo);
    eo.n_ctx = 256;
    eo.max_sequences = 4;
    eo.n_threads = 2;
    return mw_engine_create(fx.model, &eo, &fx.engine) == MW_OK ? 0 : -1;
}

static int teardown(void** state) {
    fixture* fx = (fixture*)*state;
    mw_engine_destroy(fx->engine);
    mw_model_close(fx->model);
    return 0;
}

#define REQUIRE_FIXTURE(fx)                                                          \
    fixture* fx = (fixture*)*state;                                                  \
    if (!fx->model) {                                                                \
        printf("SKIP: model %s not found; run scripts/setup.sh\n", MW_STORIES_MODEL); \
        skip();                                                                      \
    }

typedef struct result {
    int32_t tokens[512];
    size_t n_tokens;
    char text[8192];
    size_t text_len;
    int32_t finish_reason;
    int32_t status;
} result;

/* Submits and drains a request into *res. Returns the submit status. */
static mw_status run(mw_engine* e, const char* prompt, const mw_request_options* base, result* res) {
    mw_request_options o = *base;
    mw_request* r = NULL;
    mw_event ev;
    mw_status st;
    memset(res, 0, sizeof *res);
    o.prompt = prompt;
    o.prompt_len = strlen(prompt);
    st = mw_submit(e, &o, &r);
    if (st != MW_OK) return st;
    ev.struct_size = sizeof ev;
    for (;;) {
        st = mw_request_next(r, 30000, &ev);
        if (st != MW_OK) fail_msg("mw_request_next: %s", mw_status_string(st));
        if (ev.text_len) {
            memcpy(res->text + res->text_len, ev.text, ev.text_len);
            res->text_len += ev.text_len;
        }
        if (ev.kind == MW_EVENT_FINISHED) break;
        res->tokens[res->n_tokens++] = ev.token;
    }
    res->finish_reason = ev.finish_reason;
    res->status = ev.status;
    mw_request_release(r);
    return MW_OK;
}

static void greedy_opts(mw_request_options* o, uint32_t n) {
    mw_request_options_init(o);
    o->temperature = 0;
    o->max_tokens = n;
}

static void test_greedy_is_deterministic_and_coherent(void** state) {
    REQUIRE_FIXTURE(fx);
    static result a, b;
    mw_request_options o;
    greedy_opts(&o, 40);
    assert_int_equal(run(fx->engine, "Once upon a time", &o, &a), MW_OK);
    assert_int_equal(run(fx->engine, "Once upon a time", &o, &b), MW_OK);
    assert_int_equal(a.finish_reason, MW_FINISH_LENGTH);
    assert_int_equal(a.n_tokens, 40);
    assert_int_equal(a.n_tokens, b.n_tokens);
    assert_memory_equal(a.tokens, b.tokens, a.n_tokens * sizeof(int32_t));
    a.text[a.text_len] = 0;
    printf("greedy: Once upon a time%s\n", a.text);
    /* a trained TinyStories model continues with common story words */
    assert_true(strstr(a.text, " the ") || strstr(a.text, " a ") || strstr(a.text, "."));
}

static void test_seeded_sampling(void** state) {
    REQUIRE_FIXTURE(fx);
    static result a, b, c;
    mw_request_options o;
    mw_request_options_init(&o);
    o.max_tokens = 48;
    o.temperature = 1.0f;
    o.top_k = 0;
    o.top_p = 1.0f;
    o.min_p = 0.0f;
    o.seed = 42;
    assert_int_equal(run(fx->engine, "Once upon a time", &o, &a), MW_OK);
    assert_int_equal(run(fx->engine, "Once upon a time", &o, &b), MW_OK);
    o.seed = 43;
    assert_int_equal(run(fx->engine, "Once upon a time", &o, &c), MW_OK);
    assert_int_equal(a.n_tokens, b.n_tokens);
    assert_memory_equal(a.tokens, b.tokens, a.n_tokens * sizeof(int32_t));
    assert_true(a.n_tokens != c.n_tokens || memcmp(a.tokens, c.tokens, a.n_tokens * sizeof(int32_t)) != 0);
}

static void test_stop_string(void** state) {
    REQUIRE_FIXTURE(fx);
    static result full, stopped;
    mw_request_options o;
    mw_text stop;
    char needle[16];
    const char* at;
    greedy_opts(&o, 40);
    assert_int_equal(run(fx->engine, "Once upon a time", &o, &full), MW_OK);
    full.text[full.text_len] = 0;
    /* stop at a word from the middle of the greedy output */
    assert_true(full.text_len > 40);
    memcpy(needle, full.text + 20, 6);
    needle[6] = 0;
    at = strstr(full.text, needle);
    stop.data = needle;
    stop.len = 6;
    o.stop = &stop;
    o.n_stop = 1;
    assert_int_equal(run(fx->engine, "Once upon a time", &o, &stopped), MW_OK);
    assert_int_equal(stopped.finish_reason, MW_FINISH_STOP_STRING);
    assert_int_equal(stopped.text_len, (size_t)(at - full.text));
    assert_memory_equal(stopped.text, full.text, stopped.text_len);
}

static void test_callback(void** state) {
    REQUIRE_FIXTURE(fx);
    /* counts events on the engine thread */
    typedef struct counter { int tokens, finished; } counter;
    static counter cnt;
    mw_request_options o;
    mw_request* r = NULL;
    mw_event ev;
    extern void count_events(void*, const mw_request*, const mw_event*);
    memset(&cnt, 0, sizeof cnt);
    greedy_opts(&o, 10);
    o.callback = count_events;
    o.user_data = &cnt;
    o.prompt = "Once upon a time";
    o.prompt_len = strlen(o.prompt);
    assert_int_equal(mw_submit(fx->engine, &o, &r), MW_OK);
    ev.struct_size = sizeof ev;
    assert_int_equal(mw_request_next(r, 30000, &ev), MW_OK); /* waits for the finish */
    assert_int_equal(ev.kind, MW_EVENT_FINISHED);
    assert_int_equal(ev.n_generated_tokens, 10);
    assert_int_equal(cnt.tokens, 10);
    assert_int_equal(cnt.finished, 1);
    /* again: the finish event repeats */
    assert_int_equal(mw_request_next(r, 0, &ev), MW_OK);
    assert_int_equal(ev.kind, MW_EVENT_FINISHED);
    mw_request_release(r);
}

void count_events(void* user, const mw_request* r, const mw_event* ev) {
    int* c = (int*)user;
    (void)r;
    if (ev->kind == MW_EVENT_TOKEN) c[0]++;
    else c[1]++;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_cancel_is_prompt(void** state) {
    REQUIRE_FIXTURE(fx);
    mw_request_options o;
    mw_request* r = NULL;
    mw_event ev;
    int n = 0;
    double t0;
    greedy_opts(&o, 0); /* until the context is full */
    o.ignore_eos = 1;
    o.prompt = "Once upon a time";
    o.prompt_len = strlen(o.prompt);
    assert_int_equal(mw_submit(fx->engine, &o, &r), MW_OK);
    ev.struct_size = sizeof ev;
    while (n < 3) {
        assert_int_equal(mw_request_next(r, 30000, &ev), MW_OK);
        assert_int_equal(ev.kind, MW_EVENT_TOKEN);
        n++;
    }
    t0 = now_s();
    assert_int_equal(mw_request_cancel(r), MW_OK);
    do {
        assert_int_equal(mw_request_next(r, 30000, &ev), MW_OK);
    } while (ev.kind != MW_EVENT_FINISHED);
    assert_int_equal(ev.finish_reason, MW_FINISH_CANCELLED);
    assert_int_equal(ev.status, MW_ERR_CANCELLED);
    assert_true(now_s() - t0 < 2.0);
    assert_int_equal(mw_request_cancel(r), MW_OK); /* harmless when finished */
    mw_request_release(r);
}

static void test_timeout_poll(void** state) {
    REQUIRE_FIXTURE(fx);
    mw_request_options o;
    mw_request* r = NULL;
    mw_event ev;
    mw_status st;
    int finished = 0;
    greedy_opts(&o, 20);
    o.prompt = "Once";
    o.prompt_len = 4;
    assert_int_equal(mw_submit(fx->engine, &o, &r), MW_OK);
    ev.struct_size = sizeof ev;
    while (!finished) {
        st = mw_request_next(r, 0, &ev); /* poll */
        assert_true(st == MW_OK || st == MW_TIMEOUT);
        if (st == MW_OK && ev.kind == MW_EVENT_FINISHED) finished = 1;
    }
    mw_request_release(r);
}

typedef struct worker_arg {
    mw_engine* engine;
    const char* prompt;
    result res;
} worker_arg;

static void* worker(void* p) {
    worker_arg* w = (worker_arg*)p;
    mw_request_options o;
    greedy_opts(&o, 24);
    run(w->engine, w->prompt, &o, &w->res);
    return NULL;
}

static void test_concurrent_requests(void** state) {
    REQUIRE_FIXTURE(fx);
    static worker_arg args[8];
    static result alone[2];
    const char* prompts[2] = {"Once upon a time", "Tom and Lily went to the park"};
    pthread_t th[8];
    mw_request_options o;
    int i;
    greedy_opts(&o, 24);
    for (i = 0; i < 2; i++) assert_int_equal(run(fx->engine, prompts[i], &o, &alone[i]), MW_OK);
    for (i = 0; i < 8; i++) {
        args[i].engine = fx->engine;
        args[i].prompt = prompts[i % 2];
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (i = 0; i < 8; i++) pthread_join(th[i], NULL);
    /* batched with other sequences, each request still gets its own greedy output */
    for (i = 0; i < 8; i++) {
        const result* ref = &alone[i % 2];
        assert_int_equal(args[i].res.n_tokens, ref->n_tokens);
        assert_memory_equal(args[i].res.tokens, ref->tokens, ref->n_tokens * sizeof(int32_t));
    }
}

static void test_tokenize_roundtrip_and_info(void** state) {
    REQUIRE_FIXTURE(fx);
    const char* text = "Once upon a time, there was a little girl.";
    int32_t ids[64];
    size_t n = 0, len = 0;
    char out[256];
    mw_model_info info;
    assert_int_equal(mw_tokenize(fx->model, text, strlen(text), 1, 0, ids, 64, &n), MW_OK);
    assert_true(n > 5);
    assert_int_equal(ids[0], 1); /* BOS */
    assert_int_equal(mw_detokenize(fx->model, ids, n, 0, out, sizeof out, &len), MW_OK);
    out[len] = 0;
    assert_string_equal(out, text);
    info.struct_size = sizeof info;
    assert_int_equal(mw_model_info_get(fx->model, &info), MW_OK);
    assert_string_equal(info.architecture, "llama");
    assert_int_equal(info.n_vocab, 512);
    assert_int_equal(info.n_layer, 5);
    assert_int_equal(info.n_embd, 64);
    assert_int_equal(info.n_head, 8);
    assert_int_equal(info.n_head_kv, 4);
    assert_int_equal(info.bos_token, 1);
    assert_int_equal(info.eos_token, 2);
    assert_string_equal(info.tokenizer_model, "llama");
    assert_int_equal(info.kv_bytes_per_token, 5 * 2 * 32 * 2);
    assert_int_equal(mw_model_tensor_count(fx->model), 48);
}

static void test_engine_outlives_closed_model(void** state) {
    REQUIRE_FIXTURE(fx);
    const char* path = mw_test_find_model(MW_STORIES_MODEL);
    mw_model* m = NULL;
    mw_engine* e = NULL;
    static result res;
    mw_request_options o;
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    assert_int_equal(mw_engine_create(m, NULL, &e), MW_OK);
    mw_model_close(m); /* deferred: the engine keeps the model */
    greedy_opts(&o, 8);
    assert_int_equal(run(e, "Once upon a time", &o, &res), MW_OK);
    assert_int_equal(res.n_tokens, 8);
    mw_engine_destroy(e);
}

static void test_destroy_with_open_request(void** state) {
    REQUIRE_FIXTURE(fx);
    const char* path = mw_test_find_model(MW_STORIES_MODEL);
    mw_model* m = NULL;
    mw_engine* e = NULL;
    mw_request* r = NULL;
    mw_request_options o;
    mw_event ev;
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    assert_int_equal(mw_engine_create(m, NULL, &e), MW_OK);
    greedy_opts(&o, 0);
    o.ignore_eos = 1;
    o.prompt = "Once";
    o.prompt_len = 4;
    assert_int_equal(mw_submit(e, &o, &r), MW_OK);
    mw_engine_destroy(e);
    ev.struct_size = sizeof ev;
    do {
        assert_int_equal(mw_request_next(r, 30000, &ev), MW_OK);
    } while (ev.kind != MW_EVENT_FINISHED);
    assert_int_equal(ev.finish_reason, MW_FINISH_CANCELLED);
    mw_request_release(r);
    mw_model_close(m);
}

/* Anonymous (private) memory of the process, from /proc/self/smaps_rollup. */
static long long anon_kb(void) {
    FILE* f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long long v = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Anonymous: %lld kB", &v) == 1) break;
    fclose(f);
    return v;
}

static void test_open_copies_no_weights(void** state) {
    const char* path = mw_test_find_model(MW_SMOLLM_MODEL);
    mw_model* m = NULL;
    mw_model_info info;
    long long before, after;
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    printf("SKIP: memory figures are not meaningful under AddressSanitizer\n");
    skip();
#endif
    if (!path) {
        printf("SKIP: model %s not found; run scripts/setup.sh\n", MW_SMOLLM_MODEL);
        skip();
    }
    before = anon_kb();
    assert_true(before >= 0);
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    after = anon_kb();
    info.struct_size = sizeof info;
    assert_int_equal(mw_model_info_get(m, &info), MW_OK);
    printf("anonymous memory grew by %lld KiB on open of a %llu KiB file (%.2f%%)\n", after - before,
           (unsigned long long)(info.file_bytes / 1024), 100.0 * (after - before) * 1024.0 / info.file_bytes);
    assert_true((after - before) * 1024.0 < 0.05 * info.file_bytes);
    mw_model_close(m);
}

/* libmemwise uses mimalloc explicitly for its own heap; loading it must not
 * replace the host's malloc (Debian's libmimalloc.so exports malloc too). */
static void test_host_malloc_is_untouched(void** state) {
    Dl_info info;
    union { void* (*fn)(size_t); void* obj; } addr; /* a function's address as dladdr takes it */
    mw_model* m = NULL;
    const char* path = mw_test_find_model(MW_STORIES_MODEL);
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    printf("SKIP: AddressSanitizer provides malloc in this build\n");
    skip();
#endif
    if (path) assert_int_equal(mw_model_open(path, NULL, &m), MW_OK); /* the library is in use */
    addr.fn = malloc;
    assert_true(dladdr(addr.obj, &info) != 0);
    printf("malloc comes from %s\n", info.dli_fname);
    assert_non_null(strstr(info.dli_fname, "libc.so"));
    mw_model_close(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_malloc_is_untouched),
        cmocka_unit_test(test_open_copies_no_weights),
        cmocka_unit_test(test_greedy_is_deterministic_and_coherent),
        cmocka_unit_test(test_seeded_sampling),
        cmocka_unit_test(test_stop_string),
        cmocka_unit_test(test_callback),
        cmocka_unit_test(test_cancel_is_prompt),
        cmocka_unit_test(test_timeout_poll),
        cmocka_unit_test(test_concurrent_requests),
        cmocka_unit_test(test_tokenize_roundtrip_and_info),
        cmocka_unit_test(test_engine_outlives_closed_model),
        cmocka_unit_test(test_destroy_with_open_request),
    };
    return cmocka_run_group_tests_name("api_generate", tests, setup, teardown);
}
