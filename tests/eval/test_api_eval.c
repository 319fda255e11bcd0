/* Evaluation and distillation export through the C API, in C: mw_eval with
 * and without a reference, mw_distill_export, the streaming reader, and
 * mw_eval_export against the export, plus bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <memwise/memwise.h>

#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char* read_all(const char* path, size_t* n) {
    FILE* f = fopen(path, "rb");
    char* buf;
    long size;
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    size = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = (char*)malloc((size_t)size + 1);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return buf;
}

static void test_eval_and_export(void** state) {
    mw_model* m = NULL;
    mw_eval_options eo;
    mw_eval_result r, rx;
    mw_distill_options dopts;
    mw_distill_info info, info2;
    mw_distill_reader* rd = NULL;
    mw_distill_record rec;
    char text_path[4096], out[256];
    size_t text_len = 0;
    char* text;
    int32_t has = 0;
    uint64_t n_records = 0;
    (void)state;
    MW_REQUIRE_MODEL(path, MW_STORIES_MODEL);
    snprintf(text_path, sizeof text_path, "%s/english.txt", mw_test_data_dir());
    text = read_all(text_path, &text_len);
    snprintf(out, sizeof out, "/tmp/mw-test-api-eval-%d.mwdx", (int)getpid());
    assert_int_equal(mw_model_open(path, NULL, &m), MW_OK);

    mw_eval_options_init(&eo);
    eo.n_ctx = 64;
    eo.n_threads = 2;
    memset(&r, 0, sizeof r);
    r.struct_size = sizeof r;
    assert_int_equal(mw_eval(m, NULL, text, text_len, &eo, &r), MW_OK);
    printf("perplexity %.4f over %llu positions (%llu windows)\n", r.perplexity, (unsigned long long)r.n_scored,
           (unsigned long long)r.n_windows);
    assert_true(r.perplexity > 1 && r.perplexity < 512);
    assert_int_equal(r.has_ref, 0);
    assert_int_equal(r.n_scored, r.n_windows * 31);

    assert_int_equal(mw_eval(m, m, text, text_len, &eo, &r), MW_OK);
    assert_int_equal(r.has_ref, 1);
    assert_true(r.kl_mean < 1e-9);
    assert_true(r.top1_agreement == 1.0);
    eo.ref_base = MW_EVAL_REF_LLAMA16;  /* llama-perplexity's 16-bit stored base */
    assert_int_equal(mw_eval(m, m, text, text_len, &eo, &r), MW_OK);
    assert_true(fabs(r.kl_mean) < 1e-4);
    eo.ref_base = MW_EVAL_REF_EXACT;

    mw_distill_options_init(&dopts);
    assert_int_equal(dopts.top_k, 32);
    dopts.n_ctx = 64;
    dopts.n_threads = 2;
    dopts.top_k = 16;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    assert_int_equal(mw_distill_export(m, text, text_len, out, &dopts, &info), MW_OK);
    assert_int_equal(info.top_k, 16);
    assert_int_equal(info.n_vocab, 512);
    assert_int_equal(info.version, 2);
    assert_int_equal(info.stride, 32);
    assert_int_equal(info.n_records, info.n_text_tokens - 1); /* every position of the text */
    assert_int_equal(info.first_scored, 0);
    assert_int_equal(info.n_scored, 0);
    assert_string_equal(info.tokenizer_model, "llama");

    assert_int_equal(mw_distill_reader_open(out, &rd), MW_OK);
    memset(&info2, 0, sizeof info2);
    info2.struct_size = sizeof info2;
    assert_int_equal(mw_distill_reader_info(rd, &info2), MW_OK);
    assert_int_equal(info2.n_windows, info.n_windows);
    assert_true(info2.vocab_hash == info.vocab_hash);
    memset(&rec, 0, sizeof rec);
    rec.struct_size = sizeof rec;
    for (;;) {
        assert_int_equal(mw_distill_reader_next(rd, &rec, &has), MW_OK);
        if (!has) break;
        assert_int_equal(rec.top_k, 16);
        assert_int_equal(rec.stream_position, n_records); /* 0, 1, 2, ... each once */
        assert_int_equal(rec.window_start + rec.position, rec.stream_position);
        assert_true(rec.window == 0 || rec.position >= 31); /* at least n_ctx/2 tokens of input */
        assert_true(rec.position < 63);
        assert_int_equal(rec.n_context, rec.position + 1);
        assert_true(rec.logprobs[0] >= rec.logprobs[15]);
        assert_true(rec.next_logprob <= 0);
        assert_true(rec.rest_mass >= 0 && rec.rest_mass <= 1);
        n_records++;
    }
    assert_int_equal(n_records, info.n_records);
    assert_int_equal(mw_distill_reader_next(rd, &rec, &has), MW_OK);  /* stays at the end */
    assert_int_equal(has, 0);
    mw_distill_reader_close(rd);
    mw_distill_reader_close(NULL);

    memset(&rx, 0, sizeof rx);
    rx.struct_size = sizeof rx;
    eo.n_ctx = 0;  /* the export's */
    assert_int_equal(mw_eval_export(m, out, &eo, &rx), MW_OK);
    assert_int_equal(rx.ref_is_export, 1);
    assert_true(rx.kl_mean < 1e-6);
    assert_true(rx.top1_agreement == 1.0);
    assert_int_equal(rx.n_scored, info.n_records); /* every exported position compared */
    assert_int_equal(rx.n_windows, info.n_windows);
    assert_true(fabs(rx.perplexity - rx.ref_perplexity) < 1e-5 * rx.perplexity);

    /* bad arguments */
    assert_int_equal(mw_eval(m, NULL, NULL, 0, &eo, &r), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_eval(m, NULL, "", 0, &eo, &r), MW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(mw_last_error(), "empty"));
    assert_int_equal(mw_eval(NULL, NULL, text, text_len, &eo, &r), MW_ERR_INVALID_ARGUMENT);
    assert_int_equal(mw_eval(m, NULL, text, text_len, &eo, NULL), MW_ERR_INVALID_ARGUMENT);
    dopts.top_k = 0;
    assert_int_equal(mw_distill_export(m, text, text_len, out, &dopts, NULL), MW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(mw_last_error(), "top-k"));
    assert_int_equal(mw_eval_export(m, "/nonexistent.mwdx", &eo, &rx), MW_ERR_IO);
    eo.ref_base = MW_EVAL_REF_LLAMA16;  /* a reference model only */
    assert_int_equal(mw_eval_export(m, out, &eo, &rx), MW_ERR_INVALID_ARGUMENT);
    eo.ref_base = 7;
    assert_int_equal(mw_eval(m, m, text, text_len, &eo, &r), MW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(mw_last_error(), "ref_base"));
    eo.ref_base = MW_EVAL_REF_EXACT;
    assert_int_equal(mw_distill_reader_open(text_path, &rd), MW_ERR_FORMAT);
    assert_null(rd);

    remove(out);
    free(text);
    mw_model_close(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eval_and_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
