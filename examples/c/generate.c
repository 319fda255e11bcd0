/*
 * generate.c - stream a completion with the memwise C API.
 *
 *   generate MODEL.gguf "Once upon a time" [MAX_TOKENS]
 *
 * Opens the model, creates an engine, submits one greedy request and prints
 * each piece of text as the engine produces it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memwise/memwise.h>

/* Prints what failed, the status name and the thread's error detail. */
static int fail(const char* what, mw_status status) {
    fprintf(stderr, "%s: %s: %s\n", what, mw_status_string(status), mw_last_error());
    return 1;
}

int main(int argc, char** argv) {
    mw_model* model = NULL;
    mw_engine* engine = NULL;
    mw_request* request = NULL;
    mw_engine_options engine_opts;
    mw_request_options req_opts;
    mw_event event;
    mw_status status;
    int rc = 0;

    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.gguf PROMPT [MAX_TOKENS]\n", argv[0]);
        return 2;
    }

    /* 1. Open the model: the file is memory-mapped, nothing is copied. */
    status = mw_model_open(argv[1], NULL, &model);
    if (status != MW_OK) return fail("mw_model_open", status);

    /* 2. Create an engine. It keeps the model alive, so the caller's
     *    reference may be closed whenever it is no longer needed. */
    mw_engine_options_init(&engine_opts);
    status = mw_engine_create(model, &engine_opts, &engine);
    mw_model_close(model);
    if (status != MW_OK) return fail("mw_engine_create", status);

    /* 3. Submit the prompt. Options start from the library's defaults. */
    mw_request_options_init(&req_opts);
    req_opts.prompt = argv[2];
    req_opts.prompt_len = strlen(argv[2]);
    req_opts.max_tokens = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 64;
    req_opts.temperature = 0.0f; /* greedy: the same output every time */
    status = mw_submit(engine, &req_opts, &request);
    if (status != MW_OK) {
        mw_engine_destroy(engine);
        return fail("mw_submit", status);
    }

    /* 4. Pull events until the request finishes. Text is bytes + length and
     *    is only valid until the next call, so write it out right away. */
    for (;;) {
        event.struct_size = sizeof event;
        status = mw_request_next(request, -1, &event);
        if (status != MW_OK) {
            rc = fail("mw_request_next", status);
            break;
        }
        if (event.kind == MW_EVENT_TOKEN) {
            fwrite(event.text, 1, event.text_len, stdout);
            fflush(stdout);
            continue;
        }
        /* MW_EVENT_FINISHED */
        if (event.finish_reason == MW_FINISH_ERROR) {
            fprintf(stderr, "\ngeneration failed: %s: %.*s\n", mw_status_string((mw_status)event.status),
                    (int)event.text_len, event.text);
            rc = 1;
        } else {
            fwrite(event.text, 1, event.text_len, stdout);
            fprintf(stdout, "\n");
            fprintf(stderr, "[%u prompt tokens, %u generated]\n", event.n_prompt_tokens,
                    event.n_generated_tokens);
        }
        break;
    }

    /* 5. Release in any order; destroy functions accept NULL. */
    mw_request_release(request);
    mw_engine_destroy(engine);
    return rc;
}
