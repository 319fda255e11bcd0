/* Quantization and pruning through the C API, in C: a quantized and a pruned
 * stories260K load and generate; bad input (unknown type, unsupported input,
 * empty or missing calibration text, keep fractions outside (0, 1], budgets
 * too small) gives a clear status and leaves no file under the output name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <memwise/memwise.h>

#include "test_util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char g_out[256], g_empty[256], g_calib[4096], g_text[256];

static int setup(void** state) {
    FILE* f;
    (void)state;
    snprintf(g_out, sizeof g_out, "/tmp/mw-test-api-compress-%d.gguf", (int)getpid());
    snprintf(g_empty, sizeof g_empty, "/tmp/mw-test-api-compress-%d.empty", (int)getpid());
    snprintf(g_text, sizeof g_text, "/tmp/mw-test-api-compress-%d.txt", (int)getpid());
    snprintf(g_calib, sizeof g_calib, "%s/english.txt", mw_test_data_dir());
    f = fopen(g_empty, "wb");
    if (!f) return -1;
    fclose(f);
    f = fopen(g_text, "wb");
    if (!f) return -1;
    fputs("not a model", f);
    fclose(f);
    return 0;
}

static int teardown(void** state) {
    (void)state;
    unlink(g_out);
    unlink(g_empty);
    unlink(g_text);
    return 0;
}

static int exists(const char* p) { return access(p, F_OK) == 0; }

/* Generates n greedy tokens from the model at path; returns how many came. */
static uint32_t generate(const char* path, uint32_t n) {
    mw_model* m = NULL;
    mw_engine* e = NULL;
    mw_engine_options eo;
    mw_request_options o;
    mw_request* r = NULL;
    mw_event ev;
    uint32_t got = 0;
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    mw_engine_options_init(&eo);
    eo.n_ctx = 128;
    eo.n_threads = 2;
    assert_int_equal(mw_engine_create(m, &eo, &e), MW_OK);
    mw_request_options_init(&o);
    o.prompt = "Once upon a time";
    o.prompt_len = strlen(o.prompt);
    o.temperature = 0;
    o.max_tokens = n;
    assert_int_equal(mw_submit(e, &o, &r), MW_OK);
    ev.struct_size = sizeof ev;
    for (;;) {
        assert_int_equal(mw_request_next(r, 30000, &ev), MW_OK);
        if (ev.kind == MW_EVENT_FINISHED) break;
        got++;
    }
    assert_int_equal(ev.status, MW_OK);
    mw_request_release(r);
    mw_engine_destroy(e);
    mw_model_close(m);
    return got;
}

static void count_lines(void* user, const char* line) {
    (void)line;
    (*(int*)user)++;
}

static void test_quantize_loads_and_generates(void** state) {
    mw_quantize_options o;
    mw_quantize_result r;
    int lines = 0;
    (void)state;
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    mw_quantize_options_init(&o);
    assert_int_equal(o.calib_tokens, 4096);
    o.type = "q4_0";
    o.calib_path = g_calib;
    o.n_threads = 2;
    o.log = count_lines;
    o.user_data = &lines;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    assert_int_equal(mw_quantize(path, g_out, &o, &r), MW_OK);
    assert_int_equal(r.n_quantized, 37);
    assert_int_equal(r.n_fallback, 5); /* the 172-wide ffn_down of 5 layers: F16 */
    assert_true(r.calib_tokens > 100);
    assert_true(r.out_bytes < r.in_bytes / 4);
    assert_true(lines >= 37 + 5);
    assert_int_equal(generate(g_out, 24), 24);
    unlink(g_out);
}

/* Mixed precision through the C API: the chosen plan's KL measured as a
 * whole comes back next to the predicted sum. */
static void test_quantize_mixed(void** state) {
    mw_quantize_options o;
    mw_quantize_result r;
    (void)state;
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    mw_quantize_options_init(&o);
    assert_int_equal(o.plan_candidates, 8);
    assert_int_equal(o.rtn_variants, 0);
    o.calib_path = g_calib;
    o.target_bpw = 8.0;
    o.sens_tokens = 32;
    o.plan_candidates = 3;
    o.n_threads = 2;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    assert_int_equal(mw_quantize(path, g_out, &o, &r), MW_OK);
    assert_int_equal(r.mixed, 1);
    assert_true(r.predicted_kl > 0);
    assert_true(r.measured_kl > 0);
    assert_int_equal(generate(g_out, 8), 8);
    unlink(g_out);
}

static void test_prune_loads_and_generates(void** state) {
    mw_prune_options o;
    mw_prune_result r;
    (void)state;
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    mw_prune_options_init(&o);
    o.ffn_keep = 0.75f;
    o.calib_path = g_calib;
    o.n_threads = 2;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    assert_int_equal(mw_prune(path, g_out, &o, &r), MW_OK);
    assert_int_equal(r.ffn_channels_in, 5 * 172);
    assert_int_equal(r.ffn_channels_out, 5 * 128);
    assert_int_equal(r.heads_out, r.heads_in);
    assert_true(r.out_bytes < r.in_bytes && r.params_out < r.params_in);
    assert_int_equal(generate(g_out, 24), 24);
    unlink(g_out);
}

static void expect_error(mw_status got, mw_status want, const char* needle) {
    if (got != want) fail_msg("status %s, expected %s (%s)", mw_status_string(got), mw_status_string(want), mw_last_error());
    if (needle && !strstr(mw_last_error(), needle)) fail_msg("message '%s' lacks '%s'", mw_last_error(), needle);
    assert_false(exists(g_out));
}

static void test_bad_input(void** state) {
    mw_quantize_options q;
    mw_prune_options p;
    (void)state;
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    unlink(g_out);
    mw_quantize_options_init(&q);
    q.type = "Q3_K";
    expect_error(mw_quantize(path, g_out, &q, NULL), MW_ERR_INVALID_ARGUMENT, "unknown quantization type 'Q3_K'");
    q.type = NULL;
    expect_error(mw_quantize(path, g_out, &q, NULL), MW_ERR_INVALID_ARGUMENT, "no target type");
    q.type = "Q8_0";
    expect_error(mw_quantize(g_text, g_out, &q, NULL), MW_ERR_FORMAT, NULL);
    expect_error(mw_quantize("/nonexistent/model.gguf", g_out, &q, NULL), MW_ERR_IO, NULL);
    expect_error(mw_quantize(path, path, &q, NULL), MW_ERR_INVALID_ARGUMENT, "must not be the input");
    q.calib_path = g_empty;
    expect_error(mw_quantize(path, g_out, &q, NULL), MW_ERR_INVALID_ARGUMENT, "is empty");
    q.calib_path = "/nonexistent/calib.txt";
    expect_error(mw_quantize(path, g_out, &q, NULL), MW_ERR_IO, "calibration text");
    q.calib_path = NULL;
    q.target_bpw = 4.0;
    expect_error(mw_quantize(path, g_out, &q, NULL), MW_ERR_INVALID_ARGUMENT, "calibration");
    q.calib_path = g_calib;
    q.target_bpw = 1.0; /* below every candidate type */
    q.sens_tokens = 16;
    expect_error(mw_quantize(path, g_out, &q, NULL), MW_ERR_INVALID_ARGUMENT, "smallest possible");
    expect_error(mw_quantize(NULL, g_out, &q, NULL), MW_ERR_INVALID_ARGUMENT, "in_path");

    mw_prune_options_init(&p);
    p.calib_path = g_calib;
    p.ffn_keep = 0.0f;
    expect_error(mw_prune(path, g_out, &p, NULL), MW_ERR_INVALID_ARGUMENT, "outside (0, 1]");
    p.ffn_keep = 1.5f;
    expect_error(mw_prune(path, g_out, &p, NULL), MW_ERR_INVALID_ARGUMENT, "outside (0, 1]");
    p.ffn_keep = 0.5f;
    p.heads_keep = -0.25f;
    expect_error(mw_prune(path, g_out, &p, NULL), MW_ERR_INVALID_ARGUMENT, "outside (0, 1]");
    p.heads_keep = 1.0f;
    p.calib_path = NULL;
    expect_error(mw_prune(path, g_out, &p, NULL), MW_ERR_INVALID_ARGUMENT, "calibration");
    p.calib_path = g_empty;
    expect_error(mw_prune(path, g_out, &p, NULL), MW_ERR_INVALID_ARGUMENT, "is empty");
    p.calib_path = "/nonexistent/calib.txt";
    expect_error(mw_prune(path, g_out, &p, NULL), MW_ERR_IO, NULL);
    p.calib_path = g_calib;
    p.round = 0;
    expect_error(mw_prune(path, g_out, &p, NULL), MW_ERR_INVALID_ARGUMENT, "rounding");
    p.round = 32;
    expect_error(mw_prune(g_text, g_out, &p, NULL), MW_ERR_FORMAT, NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_loads_and_generates),
        cmocka_unit_test(test_quantize_mixed),
        cmocka_unit_test(test_prune_loads_and_generates),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
