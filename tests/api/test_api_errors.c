/* Bad input through the C API: every case returns the right status with a
 * message naming the problem, and nothing crashes, hangs or leaks. */
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

static void assert_error_mentions(const char* needle) {
    const char* msg = mw_last_error();
    if (!strstr(msg, needle)) fail_msg("mw_last_error() = \"%s\" does not mention \"%s\"", msg, needle);
}

static void write_file(const char* path, const void* data, size_t n) {
    FILE* f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void test_status_strings(void** state) {
    (void)state;
    assert_string_equal(mw_status_string(MW_OK), "MW_OK");
    assert_string_equal(mw_status_string(MW_ERR_FORMAT), "MW_ERR_FORMAT");
    assert_string_equal(mw_status_string(MW_ERR_BUDGET), "MW_ERR_BUDGET");
    assert_string_equal(mw_status_string((mw_status)-999), "MW_ERR_UNKNOWN");
    assert_int_equal(mw_version(), MW_VERSION_NUMBER);
    assert_string_equal(mw_version_string(), MW_VERSION_STRING);
}

static void test_open_bad_paths(void** state) {
    mw_model* m = (mw_model*)1;
    char path[] = "/tmp/mw_test_XXXXXX";
    int fd;
    (void)state;
    assert_int_equal(mw_model_open(NULL, NULL, &m), MW_ERR_INVALID_ARGUMENT);
    assert_null(m);
    assert_int_equal(mw_model_open("x.gguf", NULL, NULL), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_model_open("/nonexistent/model.gguf", NULL, &m), MW_ERR_IO);
    assert_error_mentions("/nonexistent/model.gguf");
    assert_int_equal(mw_model_open("/tmp", NULL, &m), MW_ERR_IO);
    assert_error_mentions("directory");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(mw_model_open(path, NULL, &m), MW_ERR_FORMAT); /* empty file */
    write_file(path, "GGUX\3\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 24);
    assert_int_equal(mw_model_open(path, NULL, &m), MW_ERR_FORMAT);
    assert_error_mentions("magic");
    assert_null(m);
    unlink(path);
}

static void test_truncated_real_model(void** state) {
    MW_REQUIRE_MODEL(src, MW_STORIES_MODEL);
    FILE* f = fopen(src, "rb");
    static char buf[1 << 21];
    size_t n, cut;
    char path[] = "/tmp/mw_trunc_XXXXXX";
    int fd = mkstemp(path);
    mw_model* m = NULL;
    (void)state;
    assert_non_null(f);
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    close(fd);
    /* cut inside the header, the metadata, the tensor infos and the data */
    for (cut = 0; cut < n; cut += (cut < 4096 ? 97 : 65521)) {
        write_file(path, buf, cut);
        assert_int_equal(mw_model_open(path, NULL, &m), MW_ERR_FORMAT);
        assert_null(m);
    }
    write_file(path, buf, n - 1); /* one byte of tensor data missing */
    assert_int_equal(mw_model_open(path, NULL, &m), MW_ERR_FORMAT);
    unlink(path);
}

static void test_null_handles(void** state) {
    mw_engine* e = (mw_engine*)1;
    mw_request* r = (mw_request*)1;
    mw_event ev;
    size_t n = 0;
    int32_t tok = 1;
    mw_model_info info;
    (void)state;
    assert_int_equal(mw_engine_create(NULL, NULL, &e), MW_ERR_INVALID_ARGUMENT);
    assert_null(e);
    assert_int_equal(mw_submit(NULL, NULL, &r), MW_ERR_INVALID_ARGUMENT);
    assert_null(r);
    ev.struct_size = sizeof ev;
    assert_int_equal(mw_request_next(NULL, 0, &ev), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_request_cancel(NULL), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_tokenize(NULL, "a", 1, 0, 0, &tok, 1, &n), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_detokenize(NULL, &tok, 1, 0, NULL, 0, &n), MW_ERR_INVALID_ARGUMENT);
    info.struct_size = sizeof info;
    assert_int_equal(mw_model_info_get(NULL, &info), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_model_tensor_count(NULL), 0);
    /* a pointer that is not a handle */
    assert_int_equal(mw_request_next((mw_request*)&n, 0, &ev), MW_ERR_INVALID_ARGUMENT);
    assert_error_mentions("not a live handle");
    /* destroy functions accept NULL */
    mw_request_release(NULL);
    mw_engine_destroy(NULL);
    mw_model_close(NULL);
}

typedef struct fixture {
    mw_model* model;
    mw_engine* engine;
} fixture;

static int open_stories(void** state) {
    static fixture fx;
    const char* path = mw_test_find_model(MW_STORIES_MODEL);
    mw_engine_options eo;
    memset(&fx, 0, sizeof fx);
    *state = &fx;
    if (!path) return 0;
    if (mw_model_open(path, NULL, &fx.model) != MW_OK) return -1;
    mw_engine_options_init(&eo);
    eo.n_ctx = 64;
    eo.n_threads = 2;
    return mw_engine_create(fx.model, &eo, &fx.engine) == MW_OK ? 0 : -1;
}

static int close_stories(void** state) {
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

static mw_status submit_text(fixture* fx, const char* text, mw_request_options* o, mw_request** r) {
    o->prompt = text;
    o->prompt_len = strlen(text);
    return mw_submit(fx->engine, o, r);
}

static void test_bad_requests(void** state) {
    REQUIRE_FIXTURE(fx);
    mw_request_options o;
    mw_request* r = (mw_request*)1;
    int32_t ids[100];
    size_t i;
    mw_text stop;

    mw_request_options_init(&o);
    o.prompt = "";
    o.prompt_len = 0;
    assert_int_equal(mw_submit(fx->engine, &o, &r), MW_ERR_INVALID_ARGUMENT); /* empty prompt */
    assert_error_mentions("empty prompt");
    assert_null(r);

    mw_request_options_init(&o);
    o.temperature = -1.0f;
    assert_int_equal(submit_text(fx, "Once", &o, &r), MW_ERR_INVALID_ARGUMENT);
    assert_error_mentions("temperature");
    mw_request_options_init(&o);
    o.top_p = 1.5f;
    assert_int_equal(submit_text(fx, "Once", &o, &r), MW_ERR_INVALID_ARGUMENT);
    assert_error_mentions("top_p");
    mw_request_options_init(&o);
    o.repeat_penalty = 0.0f;
    assert_int_equal(submit_text(fx, "Once", &o, &r), MW_ERR_INVALID_ARGUMENT);

    /* token ids out of range */
    mw_request_options_init(&o);
    ids[0] = 1;
    ids[1] = 512;
    o.prompt_tokens = ids;
    o.n_prompt_tokens = 2;
    assert_int_equal(mw_submit(fx->engine, &o, &r), MW_ERR_INVALID_ARGUMENT);
    assert_error_mentions("512");
    ids[1] = -3;
    assert_int_equal(mw_submit(fx->engine, &o, &r), MW_ERR_INVALID_ARGUMENT);

    /* both text and tokens */
    o.prompt = "x";
    o.prompt_len = 1;
    ids[1] = 5;
    assert_int_equal(mw_submit(fx->engine, &o, &r), MW_ERR_INVALID_ARGUMENT);

    /* prompt longer than the context (64) */
    mw_request_options_init(&o);
    for (i = 0; i < 100; i++) ids[i] = 300;
    o.prompt_tokens = ids;
    o.n_prompt_tokens = 100;
    assert_int_equal(mw_submit(fx->engine, &o, &r), MW_ERR_CONTEXT_OVERFLOW);
    assert_error_mentions("context");
    /* prompt that fits, but not with max_tokens */
    o.n_prompt_tokens = 40;
    o.max_tokens = 40;
    assert_int_equal(mw_submit(fx->engine, &o, &r), MW_ERR_CONTEXT_OVERFLOW);

    /* empty stop string */
    mw_request_options_init(&o);
    stop.data = "";
    stop.len = 0;
    o.stop = &stop;
    o.n_stop = 1;
    assert_int_equal(submit_text(fx, "Once", &o, &r), MW_ERR_INVALID_ARGUMENT);

    /* bad struct_size */
    mw_request_options_init(&o);
    o.struct_size = 0;
    assert_int_equal(submit_text(fx, "Once", &o, &r), MW_ERR_INVALID_ARGUMENT);
    assert_null(r);
}

static void test_released_request(void** state) {
    REQUIRE_FIXTURE(fx);
    mw_request_options o;
    mw_request* r = NULL;
    mw_event ev;
    mw_request_options_init(&o);
    o.max_tokens = 4;
    o.temperature = 0;
    assert_int_equal(submit_text(fx, "Once upon", &o, &r), MW_OK);
    mw_request_release(r);
    ev.struct_size = sizeof ev;
    assert_int_equal(mw_request_next(r, 0, &ev), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_request_cancel(r), MW_ERR_INVALID_ARGUMENT);
    mw_request_release(r); /* twice: harmless */
}

static void test_bad_token_detokenize_and_buffers(void** state) {
    REQUIRE_FIXTURE(fx);
    int32_t ids[2] = {1, 100000};
    int32_t out[2];
    char text[4];
    size_t n = 0;
    assert_int_equal(mw_detokenize(fx->model, ids, 2, 0, text, sizeof text, &n), MW_ERR_INVALID_ARGUMENT);
    assert_error_mentions("100000");
    assert_int_equal(mw_tokenize(fx->model, "Once upon a time there was", 26, 1, 0, out, 2, &n),
                     MW_ERR_BUFFER_TOO_SMALL);
    assert_true(n > 2);
    ids[1] = 403;
    assert_int_equal(mw_detokenize(fx->model, ids, 2, 0, text, 0, &n), MW_ERR_BUFFER_TOO_SMALL);
    assert_true(n > 0);
}

static void test_budget_too_small(void** state) {
    REQUIRE_FIXTURE(fx);
    mw_engine_options eo;
    mw_engine* e = (mw_engine*)1;
    mw_engine_plan plan;
    mw_engine_options_init(&eo);
    eo.memory_budget_bytes = 1000;
    assert_int_equal(mw_engine_create(fx->model, &eo, &e), MW_ERR_BUDGET);
    assert_error_mentions("smallest budget");
    assert_null(e);
    plan.struct_size = sizeof plan;
    assert_int_equal(mw_engine_plan_memory(fx->model, &eo, &plan), MW_ERR_BUDGET);
    /* the plan without a budget: whole contexts for every sequence */
    mw_engine_options_init(&eo);
    eo.n_ctx = 100;
    eo.max_sequences = 3;
    assert_int_equal(mw_engine_plan_memory(fx->model, &eo, &plan), MW_OK);
    assert_int_equal(plan.n_ctx, 100);
    assert_int_equal(plan.n_kv_blocks, 3 * 7); /* ceil(100 / 16) blocks each */
    assert_int_equal(plan.kv_block_bytes, 16 * 640);
    assert_int_equal(plan.kv_bytes, plan.n_kv_blocks * plan.kv_block_bytes);
    assert_true(plan.activation_bytes > 0);
    assert_int_equal(mw_engine_plan_memory(NULL, &eo, &plan), MW_ERR_INVALID_ARGUMENT);
    mw_engine_options_init(&eo);
    eo.kv_type = 7;
    assert_int_equal(mw_engine_create(fx->model, &eo, &e), MW_ERR_INVALID_ARGUMENT);
}

static void test_no_chat_template(void** state) {
    REQUIRE_FIXTURE(fx);
    mw_chat_message msg;
    size_t n;
    msg.role = "user";
    msg.role_len = 4;
    msg.content = "hi";
    msg.content_len = 2;
    assert_int_equal(mw_chat_format(fx->model, &msg, 1, 1, NULL, 0, &n), MW_ERR_UNSUPPORTED);
    assert_error_mentions("template");
}

int main(void) {
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_open_bad_paths),
        cmocka_unit_test(test_truncated_real_model),
        cmocka_unit_test(test_null_handles),
    };
    const struct CMUnitTest with_model[] = {
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_released_request),
        cmocka_unit_test(test_bad_token_detokenize_and_buffers),
        cmocka_unit_test(test_budget_too_small),
        cmocka_unit_test(test_no_chat_template),
    };
    int failed = cmocka_run_group_tests_name("api_errors", plain, NULL, NULL);
    failed += cmocka_run_group_tests_name("api_errors_with_model", with_model, open_stories, close_stories);
    return failed;
}
