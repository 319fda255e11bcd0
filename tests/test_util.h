/* Helpers shared by the tests (C and C++). Include after the cmocka headers. */
#ifndef MW_TEST_UTIL_H
#define MW_TEST_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Finds a test model by file name. Looks in $MEMWISE_TEST_MODELS, then
 * ../shared/models next to the source tree, then the setup script's cache
 * ($MEMWISE_MODEL_CACHE or ~/.cache/memwise/models). Returns a static buffer,
 * or NULL when absent (the caller skips with a message saying where it looked). */
static inline const char* mw_test_find_model(const char* file_name) {
    static char path[4096];
    const char* dirs[4] = {getenv("MEMWISE_TEST_MODELS"), NULL, getenv("MEMWISE_MODEL_CACHE"), NULL};
    char shared_dir[2048], cache_dir[2048];
    const char* src = getenv("MEMWISE_SOURCE_DIR");
    const char* home = getenv("HOME");
    struct stat st;
    int i;
    if (src) { snprintf(shared_dir, sizeof shared_dir, "%s/../shared/models", src); dirs[1] = shared_dir; }
    if (home) { snprintf(cache_dir, sizeof cache_dir, "%s/.cache/memwise/models", home); dirs[3] = cache_dir; }
    for (i = 0; i < 4; i++) {
        if (!dirs[i] || !dirs[i][0]) continue;
        snprintf(path, sizeof path, "%s/%s", dirs[i], file_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return path;
    }
    return NULL;
}

#define MW_STORIES_MODEL "stories260K.gguf"
#define MW_SMOLLM_MODEL "SmolLM2-135M-Instruct.Q4_1.gguf"

/* Skip the current cmocka test (prints why) when a model is absent. */
#define MW_REQUIRE_MODEL(var, file_name)                                                         \
    const char* var = mw_test_find_model(file_name);                                             \
    if (!var) {                                                                                  \
        printf("SKIP: model %s not found ($MEMWISE_TEST_MODELS, ../shared/models, "              \
               "~/.cache/memwise/models); run scripts/setup.sh\n", file_name);                   \
        skip();                                                                                  \
    }

/* The mw_backend engine tests that honour it run on: MEMWISE_TEST_BACKEND=cuda
 * gives MW_BACKEND_CUDA (1; bench/gpu-check.sh runs the oracle tests so),
 * anything else the CPU (0). */
static inline int mw_test_backend(void) {
    const char* b = getenv("MEMWISE_TEST_BACKEND");
    return b && strcmp(b, "cuda") == 0 ? 1 : 0;
}

/* Directory of committed fixtures (tests/data). */
static inline const char* mw_test_data_dir(void) {
    const char* d = getenv("MEMWISE_TEST_DATA");
    return d ? d : "tests/data";
}

#endif
