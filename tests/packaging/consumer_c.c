/* Packaging test: a C99 program built against the installed library with
 * `cc $(pkg-config --cflags --libs memwise)`. Opens the model named by argv[1],
 * generates 16 greedy tokens and prints one line per token ("id<TAB>piece")
 * and a final line with the finish reason. consumer_cpp.cpp prints the same
 * lines; tests/packaging/run.sh compares the two outputs. */
#include <memwise/memwise.h>

#include <stdio.h>
#include <string.h>

#define N_TOKENS 16

static int fail(const char* what, mw_status st) {
    fprintf(stderr, "consumer_c: %s: %s: %s\n", what, mw_status_string(st), mw_last_error());
    return 1;
}

int main(int argc, char** argv) {
    mw_model* model = NULL;
    mw_engine* engine = NULL;
    mw_request* request = NULL;
    mw_engine_options eopts;
    mw_request_options ropts;
    mw_event ev;
    mw_status st;
    const char* prompt = "Once upon a time";
    int rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.gguf\n", argv[0]);
        return 2;
    }
    if (mw_version() != MW_VERSION_NUMBER) {
        fprintf(stderr, "consumer_c: header %s but library %s\n", MW_VERSION_STRING, mw_version_string());
        return 1;
    }
    st = mw_model_open(argv[1], NULL, &model);
    if (st != MW_OK) return fail("mw_model_open", st);

    mw_engine_options_init(&eopts);
    eopts.n_threads = 1;
    eopts.n_ctx = 64;
    st = mw_engine_create(model, &eopts, &engine);
    if (st != MW_OK) {
        rc = fail("mw_engine_create", st);
        goto done;
    }

    mw_request_options_init(&ropts);
    ropts.prompt = prompt;
    ropts.prompt_len = strlen(prompt);
    ropts.max_tokens = N_TOKENS;
    ropts.temperature = 0.0f; /* greedy */
    ropts.ignore_eos = 1;     /* always exactly N_TOKENS tokens */
    ropts.seed = 1;
    st = mw_submit(engine, &ropts, &request);
    if (st != MW_OK) {
        rc = fail("mw_submit", st);
        goto done;
    }

    for (;;) {
        memset(&ev, 0, sizeof ev);
        ev.struct_size = sizeof ev;
        st = mw_request_next(request, 60000, &ev);
        if (st != MW_OK) {
            rc = fail("mw_request_next", st);
            goto done;
        }
        if (ev.kind == MW_EVENT_TOKEN) {
            printf("%d\t", (int)ev.token);
            if (ev.text_len > 0) fwrite(ev.text, 1, ev.text_len, stdout);
            printf("\n");
        } else if (ev.kind == MW_EVENT_FINISHED) {
            printf("finish=%d status=%d generated=%u\n", (int)ev.finish_reason, (int)ev.status,
                   (unsigned)ev.n_generated_tokens);
            rc = (ev.status == MW_OK && ev.finish_reason == MW_FINISH_LENGTH &&
                  ev.n_generated_tokens == N_TOKENS)
                     ? 0
                     : 1;
            if (rc != 0) fprintf(stderr, "consumer_c: unexpected finish: %.*s\n", (int)ev.text_len, ev.text);
            break;
        }
    }

done:
    mw_request_release(request);
    mw_engine_destroy(engine);
    mw_model_close(model);
    return rc;
}
