/* Memory accounting and the no-allocation-per-token promise, through the C API.
 *
 * This binary interposes malloc and friends (the executable's definitions win
 * over the C library's for every shared library, libmemwise and libstdc++
 * included) so it can count every heap allocation made while decoding; the
 * engine's own heap (mimalloc) is counted by the engine and read from the
 * memory report. Under AddressSanitizer the interposers are left out (ASan
 * owns malloc) and the tests that need them skip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <memwise/memwise.h>

#include "test_util.h"

#include <stdio.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#define MW_INTERPOSE_MALLOC 0
#else
#define MW_INTERPOSE_MALLOC 1
#endif

static volatile int g_counting = 0;
static volatile long g_mallocs = 0;

#if MW_INTERPOSE_MALLOC
extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

static void count(void) {
    if (g_counting) __atomic_fetch_add(&g_mallocs, 1, __ATOMIC_RELAXED);
}
void* malloc(size_t n) { count(); return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { count(); return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { count(); return __libc_realloc(p, n); }
void free(void* p) { __libc_free(p); }
void* memalign(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
void* aligned_alloc(size_t a, size_t n) { count(); return __libc_memalign(a, n); }
int posix_memalign(void** out, size_t a, size_t n) {
    void* p;
    count();
    p = __libc_memalign(a, n);
    if (!p) return 12; /* ENOMEM */
    *out = p;
    return 0;
}
#endif

static long long anon_bytes(void) {
    FILE* f = fopen("/proc/self/smaps_rollup", "r");
    char line[256];
    long long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "Anonymous: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb * 1024;
}

static void print_report(const mw_memory_report* r) {
    printf("  weights mapped %llu, resident %llu\n", (unsigned long long)r->weights_mapped_bytes,
           (unsigned long long)r->weights_resident_bytes);
    printf("  kv reserved %llu, resident %llu, used %llu, free %llu\n", (unsigned long long)r->kv_reserved_bytes,
           (unsigned long long)r->kv_resident_bytes, (unsigned long long)r->kv_used_bytes,
           (unsigned long long)r->kv_free_bytes);
    printf("  activations reserved %llu, high-water %llu\n", (unsigned long long)r->activations_reserved_bytes,
           (unsigned long long)r->activations_high_water_bytes);
    printf("  scratch %llu, heap committed %llu, overhead %llu\n", (unsigned long long)r->scratch_bytes,
           (unsigned long long)r->heap_committed_bytes, (unsigned long long)r->heap_overhead_bytes);
    printf("  engine total %llu; process rss %llu, pss %llu, anonymous %llu, file %llu\n",
           (unsigned long long)r->engine_total_bytes, (unsigned long long)r->process_rss_bytes,
           (unsigned long long)r->process_pss_bytes, (unsigned long long)r->process_anonymous_bytes,
           (unsigned long long)r->process_file_bytes);
}

static void submit_n(mw_engine* e, mw_request** reqs, int n, uint32_t max_tokens) {
    const char* prompts[4] = {"Once upon a time", "The little dog", "Tom and Lily went to the park", "One day"};
    int i;
    for (i = 0; i < n; i++) {
        mw_request_options o;
        mw_request_options_init(&o);
        o.prompt = prompts[i % 4];
        o.prompt_len = strlen(o.prompt);
        o.temperature = 0.8f;
        o.seed = (uint64_t)(i + 1);
        o.max_tokens = max_tokens;
        o.ignore_eos = 1;
        assert_int_equal(mw_submit(e, &o, &reqs[i]), MW_OK);
    }
}

static void drain(mw_request* r) {
    mw_event ev;
    ev.struct_size = sizeof ev;
    do {
        assert_int_equal(mw_request_next(r, 60000, &ev), MW_OK);
    } while (ev.kind != MW_EVENT_FINISHED);
}

/* The engine's components add up to the process's anonymous memory growth. */
static void test_accounting_adds_up(void** state) {
    const char* path = mw_test_find_model(MW_SMOLLM_MODEL);
    const long long margin = 4ll << 20; /* thread stacks, C library arenas, the test's own memory */
    mw_model* m = NULL;
    mw_engine* e = NULL;
    mw_engine_options eo;
    mw_request* reqs[4];
    mw_memory_report r;
    long long before, grew, total;
    int i;
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    printf("SKIP: memory figures are not meaningful under AddressSanitizer\n");
    skip();
#endif
    if (!path) {
        printf("SKIP: model %s not found; run scripts/setup.sh\n", MW_SMOLLM_MODEL);
        skip();
    }
    before = anon_bytes();
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    mw_engine_options_init(&eo);
    eo.n_ctx = 1024;
    eo.max_sequences = 4;
    eo.n_threads = 2;
    assert_int_equal(mw_engine_create(m, &eo, &e), MW_OK);
    submit_n(e, reqs, 4, 200);
    for (i = 0; i < 4; i++) drain(reqs[i]);
    r.struct_size = sizeof r;
    assert_int_equal(mw_engine_memory(e, &r), MW_OK);
    assert_int_equal(r.version, MW_MEMORY_REPORT_VERSION);
    print_report(&r);
    grew = (long long)r.process_anonymous_bytes - before;
    total = (long long)r.engine_total_bytes;
    printf("anonymous memory grew by %lld bytes; the engine accounts for %lld (difference %.1f%% + margin %lld)\n",
           grew, total, 100.0 * (double)(grew - total) / (double)total, margin);
    assert_true(r.kv_used_bytes == 0); /* every sequence finished: its blocks are back */
    assert_true(r.kv_resident_bytes > 0 && r.kv_resident_bytes <= r.kv_reserved_bytes);
    assert_true(r.activations_high_water_bytes > 0 &&
                r.activations_high_water_bytes <= r.activations_reserved_bytes);
    assert_true(r.weights_mapped_bytes > 90ull << 20);
    assert_true(grew <= total + total / 10 + margin);
    assert_true(grew >= total - total / 10 - margin);
    for (i = 0; i < 4; i++) mw_request_release(reqs[i]);
    mw_engine_destroy(e);
    mw_model_close(m);
}

/* After warm-up, decoding allocates nothing from any heap. */
static void test_no_allocation_per_token(void** state) {
    const char* path = mw_test_find_model(MW_STORIES_MODEL);
    mw_model* m = NULL;
    mw_engine* e = NULL;
    mw_engine_options eo;
    mw_request* reqs[4];
    mw_memory_report r0, r1;
    mw_event ev;
    int i, got[4] = {0, 0, 0, 0}, decoded = 0;
    long heap_allocs;
    (void)state;
#if !MW_INTERPOSE_MALLOC
    printf("SKIP: malloc interposition is off under AddressSanitizer\n");
    skip();
#endif
    if (!path) {
        printf("SKIP: model %s not found; run scripts/setup.sh\n", MW_STORIES_MODEL);
        skip();
    }
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    mw_engine_options_init(&eo);
    eo.n_ctx = 512;
    eo.max_sequences = 4;
    eo.n_threads = 2;
    assert_int_equal(mw_engine_create(m, &eo, &e), MW_OK);
    submit_n(e, reqs, 4, 400);
    ev.struct_size = sizeof ev;
    /* warm-up: every request decodes a while */
    for (i = 0; i < 4; i++)
        while (got[i] < 40) {
            assert_int_equal(mw_request_next(reqs[i], 60000, &ev), MW_OK);
            assert_int_equal(ev.kind, MW_EVENT_TOKEN);
            got[i]++;
        }
    r0.struct_size = sizeof r0;
    assert_int_equal(mw_engine_memory(e, &r0), MW_OK);
    g_mallocs = 0;
    g_counting = 1;
    /* 200 tokens decoded by four concurrent requests, pulled round robin */
    while (decoded < 200) {
        for (i = 0; i < 4 && decoded < 200; i++) {
            if (mw_request_next(reqs[i], 60000, &ev) != MW_OK || ev.kind != MW_EVENT_TOKEN) break;
            decoded++;
        }
        if (i < 4 && decoded < 200) break;
    }
    g_counting = 0;
    r1.struct_size = sizeof r1;
    assert_int_equal(mw_engine_memory(e, &r1), MW_OK);
    heap_allocs = (long)(r1.heap_allocations - r0.heap_allocations);
    printf("decoded %d tokens in 4 concurrent requests: %ld malloc calls, %ld engine heap allocations\n", decoded,
           (long)g_mallocs, heap_allocs);
    assert_int_equal(decoded, 200);
    assert_int_equal(g_mallocs, 0);
    assert_int_equal(heap_allocs, 0);
    for (i = 0; i < 4; i++) mw_request_release(reqs[i]);
    mw_engine_destroy(e);
    mw_model_close(m);
}

static void test_memory_report_errors(void** state) {
    mw_memory_report r;
    (void)state;
    r.struct_size = sizeof r;
    assert_int_equal(mw_engine_memory(NULL, &r), MW_ERR_INVALID_ARGUMENT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_report_errors),
        cmocka_unit_test(test_accounting_adds_up),
        cmocka_unit_test(test_no_allocation_per_token),
    };
    return cmocka_run_group_tests_name("api_memory", tests, NULL, NULL);
}
