/* Greedy agreement with llama.cpp (fixtures in tests/data, made by
 * make_fixtures.py): memwise tokenizes each prompt to llama.cpp's ids and
 * continues it with llama.cpp's greedy tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <memwise/memwise.h>

#include "fixture_reader.h"
#include "test_util.h"

#include <stdio.h>
#include <string.h>

/* Returns how many cases matched token for token; prints each. */
static int check_greedy(const char* model_file, const char* fixture_file, int* n_cases) {
    const char* path = mw_test_find_model(model_file);
    char fx_path[4096];
    fixture_case* cases = NULL;
    size_t n, i;
    int matched = 0;
    mw_model* m = NULL;
    mw_engine* e = NULL;
    mw_engine_options eo;
    *n_cases = 0;
    if (!path) {
        printf("SKIP: model %s not found; run scripts/setup.sh\n", model_file);
        return -1;
    }
    snprintf(fx_path, sizeof fx_path, "%s/%s", mw_test_data_dir(), fixture_file);
    n = fx_read(fx_path, 2, &cases);
    if (n == 0) fail_msg("fixture %s missing or empty", fx_path);
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    mw_engine_options_init(&eo);
    eo.backend = mw_test_backend();
    eo.n_ctx = 2048;
    eo.n_threads = 2;
    assert_int_equal(mw_engine_create(m, &eo, &e), MW_OK);
    for (i = 0; i < n; i++) {
        fixture_case* c = &cases[i];
        static int32_t ids[4096];
        size_t n_ids = 0, n_gen = 0, first_diff = (size_t)-1;
        size_t expect = c->n_ids[1];
        int ends_with_eog = 0;
        mw_request_options o;
        mw_request* r = NULL;
        mw_event ev;
        int32_t eog[3];
        mw_model_info info;
        info.struct_size = sizeof info;
        assert_int_equal(mw_model_info_get(m, &info), MW_OK);
        eog[0] = info.eos_token;
        eog[1] = info.eot_token;
        eog[2] = -2;
        /* tokenization of the prompt equals llama.cpp's */
        assert_int_equal(mw_tokenize(m, c->text, c->text_len, c->add_special, c->parse_special, ids, 4096, &n_ids), MW_OK);
        assert_int_equal(n_ids, c->n_ids[0]);
        assert_memory_equal(ids, c->ids[0], n_ids * sizeof(int32_t));
        if (expect && (c->ids[1][expect - 1] == eog[0] || c->ids[1][expect - 1] == eog[1])) {
            ends_with_eog = 1;
            expect--; /* the end-of-generation token finishes the request instead of being emitted */
        }
        mw_request_options_init(&o);
        o.prompt_tokens = c->ids[0];
        o.n_prompt_tokens = c->n_ids[0];
        o.temperature = 0;
        o.max_tokens = (uint32_t)(expect + 1); /* room for the end-of-generation token, or one token past the fixture */
        assert_int_equal(mw_submit(e, &o, &r), MW_OK);
        ev.struct_size = sizeof ev;
        for (;;) {
            assert_int_equal(mw_request_next(r, 60000, &ev), MW_OK);
            if (ev.kind == MW_EVENT_FINISHED) break;
            if (n_gen < expect && ev.token != c->ids[1][n_gen] && first_diff == (size_t)-1) first_diff = n_gen;
            if (n_gen == expect && ends_with_eog && first_diff == (size_t)-1) first_diff = n_gen; /* no EOG where llama.cpp ended */
            n_gen++;
        }
        if (n_gen < expect && first_diff == (size_t)-1) first_diff = n_gen;
        if (ends_with_eog && ev.finish_reason != MW_FINISH_EOS && first_diff == (size_t)-1) first_diff = expect;
        printf("%s case %zu: %s (%zu tokens%s)", fixture_file, i, first_diff == (size_t)-1 ? "identical" : "differs",
               c->n_ids[1], ends_with_eog ? ", ends with EOG" : "");
        if (first_diff != (size_t)-1) printf(" first difference at generated token %zu", first_diff);
        printf("\n");
        if (first_diff == (size_t)-1) matched++;
        mw_request_release(r);
    }
    *n_cases = (int)n;
    mw_engine_destroy(e);
    mw_model_close(m);
    fx_free(cases, n);
    return matched;
}

static void test_greedy_stories(void** state) {
    int n = 0;
    const int matched = check_greedy(MW_STORIES_MODEL, "greedy_stories260K.txt", &n);
    (void)state;
    if (matched < 0) skip();
    printf("stories260K: %d of %d greedy continuations identical to llama.cpp\n", matched, n);
    assert_int_equal(matched, n); /* F32 weights: every case must agree */
}

static void test_greedy_smollm2(void** state) {
    int n = 0;
    const int matched = check_greedy(MW_SMOLLM_MODEL, "greedy_smollm2.txt", &n);
    (void)state;
    if (matched < 0) skip();
    printf("SmolLM2-135M Q4_1: %d of %d greedy continuations identical to llama.cpp\n", matched, n);
    assert_true(n >= 5);
    assert_true(matched >= n - 1 && matched >= 4);
}

/* All fixture prompts at once on one engine: served in shared batches (decode
 * tokens of some sequences next to prompt chunks of others), each request must
 * still produce exactly llama.cpp's (= its own solo) greedy tokens. */
static void check_concurrent(const char* model_file, const char* fixture_file) {
    const char* path = mw_test_find_model(model_file);
    char fx_path[4096];
    fixture_case* cases = NULL;
    mw_request* reqs[64];
    size_t n, i, identical = 0;
    mw_model* m = NULL;
    mw_engine* e = NULL;
    mw_engine_options eo;
    mw_model_info info;
    if (!path) {
        printf("SKIP: model %s not found; run scripts/setup.sh\n", model_file);
        skip();
    }
    snprintf(fx_path, sizeof fx_path, "%s/%s", mw_test_data_dir(), fixture_file);
    n = fx_read(fx_path, 2, &cases);
    assert_true(n > 0 && n <= 64);
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    info.struct_size = sizeof info;
    assert_int_equal(mw_model_info_get(m, &info), MW_OK);
    mw_engine_options_init(&eo);
    eo.backend = mw_test_backend();
    eo.n_ctx = 2048;
    eo.n_threads = 2;
    eo.max_sequences = (uint32_t)n;
    eo.max_batch_tokens = 7; /* prompts split into small chunks (some of one token) that share steps with decodes */
    assert_int_equal(mw_engine_create(m, &eo, &e), MW_OK);
    for (i = 0; i < n; i++) {
        mw_request_options o;
        mw_request_options_init(&o);
        o.prompt_tokens = cases[i].ids[0];
        o.n_prompt_tokens = cases[i].n_ids[0];
        o.temperature = 0;
        o.max_tokens = (uint32_t)cases[i].n_ids[1];
        o.ignore_eos = 1;
        assert_int_equal(mw_submit(e, &o, &reqs[i]), MW_OK);
    }
    for (i = 0; i < n; i++) {
        mw_event ev;
        size_t k = 0, expect = cases[i].n_ids[1];
        int same = 1;
        /* llama.cpp's list may end with the end-of-generation token; compare up to it */
        if (expect && (cases[i].ids[1][expect - 1] == info.eos_token || cases[i].ids[1][expect - 1] == info.eot_token))
            expect--;
        ev.struct_size = sizeof ev;
        for (;;) {
            assert_int_equal(mw_request_next(reqs[i], 60000, &ev), MW_OK);
            if (ev.kind == MW_EVENT_FINISHED) break;
            if (k < expect && ev.token != cases[i].ids[1][k]) same = 0;
            k++;
        }
        if (k < expect) same = 0;
        printf("%s concurrent case %zu: %s\n", fixture_file, i, same ? "identical" : "differs");
        identical += (size_t)same;
        mw_request_release(reqs[i]);
    }
    printf("%s: %zu of %zu identical when served together\n", model_file, identical, n);
    assert_int_equal(identical, n);
    mw_engine_destroy(e);
    mw_model_close(m);
    fx_free(cases, n);
}

static void test_concurrent_stories(void** state) {
    (void)state;
    check_concurrent(MW_STORIES_MODEL, "greedy_stories260K.txt");
}

static void test_concurrent_smollm2(void** state) {
    (void)state;
    check_concurrent(MW_SMOLLM_MODEL, "greedy_smollm2.txt");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_stories),
        cmocka_unit_test(test_greedy_smollm2),
        cmocka_unit_test(test_concurrent_stories),
        cmocka_unit_test(test_concurrent_smollm2),
    };
    return cmocka_run_group_tests_name("api_oracle", tests, NULL, NULL);
}
