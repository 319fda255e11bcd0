/* Backend selection through the C API, in every build: CPU and AUTO always
 * work; CUDA without a device (or in a build without CUDA) is refused with
 * MW_ERR_UNSUPPORTED and a reason. With a device: one model serves a CPU and
 * a CUDA engine at once, greedy decoding runs on both, the memory report
 * gives device memory by component, release_host_weights drops the weights'
 * host pages, and a device budget too small for one sequence is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <memwise/memwise.h>

#include "test_util.h"

#include <stdio.h>
#include <string.h>

static int generate(mw_engine* e, const int32_t* prompt, size_t n_prompt, int32_t* out, size_t max_out) {
    mw_request_options o;
    mw_request* r = NULL;
    mw_event ev;
    size_t n = 0;
    mw_request_options_init(&o);
    o.prompt_tokens = prompt;
    o.n_prompt_tokens = n_prompt;
    o.temperature = 0;
    o.max_tokens = (uint32_t)max_out;
    o.ignore_eos = 1;
    assert_int_equal(mw_submit(e, &o, &r), MW_OK);
    ev.struct_size = sizeof ev;
    for (;;) {
        assert_int_equal(mw_request_next(r, 120000, &ev), MW_OK);
        if (ev.kind == MW_EVENT_FINISHED) break;
        if (ev.kind == MW_EVENT_TOKEN && n < max_out) out[n++] = ev.token;
    }
    assert_int_equal(ev.status, MW_OK);
    mw_request_release(r);
    return (int)n;
}

static void test_cpu_and_auto_always_work(void** state) {
    mw_model* m = NULL;
    mw_engine* e = NULL;
    mw_engine_options eo;
    mw_engine_plan plan;
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    (void)state;
    assert_int_equal(mw_backend_available(MW_BACKEND_CPU), 1);
    assert_int_equal(mw_backend_available(MW_BACKEND_AUTO), 1);
    assert_int_equal(mw_backend_available(99), 0);
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    mw_engine_options_init(&eo);
    assert_int_equal(eo.backend, MW_BACKEND_CPU);
    eo.backend = 7;
    assert_int_equal(mw_engine_create(m, &eo, &e), MW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(mw_last_error(), "backend"));
    eo.backend = MW_BACKEND_AUTO;
    eo.n_ctx = 256;
    plan.struct_size = sizeof plan;
    assert_int_equal(mw_engine_plan_memory(m, &eo, &plan), MW_OK);
    assert_int_equal(plan.backend, mw_backend_available(MW_BACKEND_CUDA) ? MW_BACKEND_CUDA : MW_BACKEND_CPU);
    assert_int_equal(mw_engine_create(m, &eo, &e), MW_OK);
    mw_engine_destroy(e);
    mw_model_close(m);
}

static void test_cuda_refused_without_device(void** state) {
    mw_model* m = NULL;
    mw_engine* e = NULL;
    mw_engine_options eo;
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    (void)state;
    if (mw_backend_available(MW_BACKEND_CUDA)) {
        printf("SKIP: a CUDA device is present; the refusal path is not reachable\n");
        skip();
    }
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    mw_engine_options_init(&eo);
    eo.backend = MW_BACKEND_CUDA;
    assert_int_equal(mw_engine_create(m, &eo, &e), MW_ERR_UNSUPPORTED);
    assert_null(e);
    printf("refused as expected: %s\n", mw_last_error());
    assert_non_null(strstr(mw_last_error(), "CUDA"));
    mw_model_close(m);
}

static void test_cuda_engine_beside_cpu_engine(void** state) {
    mw_model* m = NULL;
    mw_engine *cpu = NULL, *gpu = NULL;
    mw_engine_options eo;
    mw_memory_report rc, rg;
    int32_t prompt[64], a[24], b[24];
    size_t n_prompt = 0;
    int na, nb, i, same = 0;
    MW_REQUIRE_MODEL(path, MW_SMOLLM_MODEL);
    (void)state;
    if (!mw_backend_available(MW_BACKEND_CUDA)) {
        printf("SKIP: no CUDA device (or a build without CUDA): GPU engine checks not run\n");
        skip();
    }
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);
    assert_int_equal(mw_tokenize(m, "The capital of France is", 24, 1, 0, prompt, 64, &n_prompt), MW_OK);
    mw_engine_options_init(&eo);
    eo.n_ctx = 512;
    eo.n_threads = 2;
    assert_int_equal(mw_engine_create(m, &eo, &cpu), MW_OK);
    eo.backend = MW_BACKEND_CUDA;
    assert_int_equal(mw_engine_create(m, &eo, &gpu), MW_OK);
    na = generate(cpu, prompt, n_prompt, a, 24);
    nb = generate(gpu, prompt, n_prompt, b, 24);
    assert_int_equal(na, 24);
    assert_int_equal(nb, 24);
    while (same < 24 && a[same] == b[same]) same++;
    printf("CPU and CUDA greedy agree on the first %d of 24 tokens\n", same);
    assert_true(same >= 8); /* different arithmetic may part late, never at once */

    rc.struct_size = sizeof rc;
    rg.struct_size = sizeof rg;
    assert_int_equal(mw_engine_memory(cpu, &rc), MW_OK);
    assert_int_equal(mw_engine_memory(gpu, &rg), MW_OK);
    assert_int_equal(rc.device_total_bytes, 0);
    assert_true(rg.device_weights_bytes > 0 && rg.device_kv_bytes > 0 && rg.device_activations_bytes > 0);
    assert_int_equal(rg.device_total_bytes, rg.device_weights_bytes + rg.device_kv_bytes +
                                                rg.device_activations_bytes + rg.device_workspace_bytes);
    assert_int_equal(rg.device_kv_bytes, rg.kv_reserved_bytes);
    printf("device: weights %llu, KV %llu, activations %llu, workspace %llu bytes\n",
           (unsigned long long)rg.device_weights_bytes, (unsigned long long)rg.device_kv_bytes,
           (unsigned long long)rg.device_activations_bytes, (unsigned long long)rg.device_workspace_bytes);
    mw_engine_destroy(cpu);
    mw_engine_destroy(gpu);

    /* Dropping the host pages after the upload; the engine still works. */
    eo.release_host_weights = 1;
    assert_int_equal(mw_engine_create(m, &eo, &gpu), MW_OK);
    assert_int_equal(mw_engine_memory(gpu, &rg), MW_OK);
    /* rc was taken while every weight page was mapped in (both engines had
     * read them); now they are dropped from this process (the page cache may
     * keep them, so mincore's weights_resident_bytes need not fall). */
    printf("file-backed RSS: %llu bytes with the weights mapped in, %llu after release_host_weights\n",
           (unsigned long long)rc.process_file_bytes, (unsigned long long)rg.process_file_bytes);
    assert_true(rg.process_file_bytes + rg.weights_mapped_bytes / 2 < rc.process_file_bytes);
    nb = generate(gpu, prompt, n_prompt, b, 24);
    for (i = 0; i < same; i++) assert_int_equal(a[i], b[i]);
    mw_engine_destroy(gpu);

    /* A device budget below one sequence is refused with the smallest that works. */
    eo.release_host_weights = 0;
    eo.memory_budget_bytes = 4096;
    assert_int_equal(mw_engine_create(m, &eo, &gpu), MW_ERR_BUDGET);
    assert_non_null(strstr(mw_last_error(), "smallest budget"));
    mw_model_close(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_and_auto_always_work),
        cmocka_unit_test(test_cuda_refused_without_device),
        cmocka_unit_test(test_cuda_engine_beside_cpu_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
