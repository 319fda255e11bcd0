/* Model loading options through the C API (mw_model_options: prefault, lock,
 * access_hint) on the real stories260K model: every option opens a model that
 * generates the same greedy tokens as a default open; populate and lock really
 * map (and lock) every page of the file (/proc/self/smaps, VmLck); an
 * unknown access hint is MW_ERR_INVALID_ARGUMENT; a lock the RLIMIT_MEMLOCK
 * limit forbids is MW_ERR_IO with the limit and the bytes needed in the message
 * (in a forked child that lowers the limit and drops CAP_IPC_LOCK). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <memwise/memwise.h>

#include "test_util.h"

#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define N_TOKENS 24

typedef struct generation {
    int32_t tokens[N_TOKENS];
    size_t n_tokens;
} generation;

/* Greedy N_TOKENS tokens of "Once upon a time" on a fresh engine. */
static void generate(mw_model* model, generation* out) {
    mw_engine_options eo;
    mw_request_options o;
    mw_engine* engine = NULL;
    mw_request* r = NULL;
    mw_event ev;
    memset(out, 0, sizeof *out);
    mw_engine_options_init(&eo);
    eo.n_ctx = 64;
    eo.n_threads = 1;
    assert_int_equal(mw_engine_create(model, &eo, &engine), MW_OK);
    mw_request_options_init(&o);
    o.prompt = "Once upon a time";
    o.prompt_len = strlen(o.prompt);
    o.temperature = 0;
    o.max_tokens = N_TOKENS;
    o.ignore_eos = 1;
    assert_int_equal(mw_submit(engine, &o, &r), MW_OK);
    ev.struct_size = sizeof ev;
    for (;;) {
        assert_int_equal(mw_request_next(r, 30000, &ev), MW_OK);
        if (ev.kind == MW_EVENT_FINISHED) break;
        assert_true(out->n_tokens < N_TOKENS);
        out->tokens[out->n_tokens++] = ev.token;
    }
    assert_int_equal(ev.status, MW_OK);
    assert_int_equal(ev.finish_reason, MW_FINISH_LENGTH);
    mw_request_release(r);
    mw_engine_destroy(engine);
}

/* Sums a field ("Rss:", "Locked:") over this process's mappings of the file
 * `real_path`, in bytes, from /proc/self/smaps. */
static uint64_t smaps_field(const char* real_path, const char* field) {
    FILE* f = fopen("/proc/self/smaps", "r");
    char line[PATH_MAX + 256];
    int in_file = 0;
    uint64_t total = 0;
    const size_t flen = strlen(field);
    assert_non_null(f);
    while (fgets(line, sizeof line, f)) {
        unsigned long long kb;
        char* nl = strchr(line, '\n');
        const char* sp = strchr(line, ' ');
        if (nl) *nl = 0;
        /* Field lines start "Name:"; mapping headers "start-end perms offset dev inode   path". */
        if (sp && sp > line && sp[-1] != ':') {
            const char* slash = strchr(line, '/');
            in_file = slash && strcmp(slash, real_path) == 0;
            continue;
        }
        if (in_file && strncmp(line, field, flen) == 0 && sscanf(line + flen, "%llu", &kb) == 1) total += kb * 1024;
    }
    fclose(f);
    return total;
}

/* VmLck of /proc/self/status in bytes: pages this process has locked. (The
 * smaps "Locked:" field is a proportional share, so another process mapping
 * the same file would halve it.) */
static uint64_t locked_bytes(void) {
    FILE* f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    int found = 0;
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmLck: %llu kB", &kb) == 1) found = 1;
    fclose(f);
    assert_true(found);
    return kb * 1024;
}

typedef struct paths {
    const char* model;       /* as found */
    char real[PATH_MAX];     /* as /proc/self/smaps names it */
    uint64_t file_bytes;
} paths;

static int find(paths* p) {
    struct stat st;
    p->model = mw_test_find_model(MW_STORIES_MODEL);
    if (!p->model) return 0;
    if (!realpath(p->model, p->real) || stat(p->real, &st) != 0) return 0;
    p->file_bytes = (uint64_t)st.st_size;
    return 1;
}

#define REQUIRE_STORIES(p)                                                                                     \
    paths p;                                                                                                   \
    if (!find(&p)) {                                                                                           \
        printf("SKIP: model %s not found ($MEMWISE_TEST_MODELS, ../shared/models, ~/.cache/memwise/models)\n", \
               MW_STORIES_MODEL);                                                                              \
        skip();                                                                                                \
    }

/* Every option (alone and combined) opens a model that generates exactly what a
 * default open generates. */
static void test_each_option_opens_and_generates(void** state) {
    static const struct {
        const char* name;
        int prefault, lock, hint;
    } cases[] = {
        {"populate", 1, 0, MW_ACCESS_DEFAULT},       {"lock", 0, 1, MW_ACCESS_DEFAULT},
        {"random", 0, 0, MW_ACCESS_RANDOM},          {"sequential", 0, 0, MW_ACCESS_SEQUENTIAL},
        {"willneed", 0, 0, MW_ACCESS_WILLNEED},      {"populate+lock+willneed", 1, 1, MW_ACCESS_WILLNEED},
    };
    generation want, got;
    mw_model* model = NULL;
    size_t i;
    (void)state;
    REQUIRE_STORIES(p);
    assert_int_equal(mw_model_open(p.model, NULL, &model), MW_OK);
    generate(model, &want);
    mw_model_close(model);
    assert_int_equal(want.n_tokens, N_TOKENS);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mw_model_options o;
        mw_model_options_init(&o);
        o.prefault = cases[i].prefault;
        o.lock = cases[i].lock;
        o.access_hint = cases[i].hint;
        model = NULL;
        if (mw_model_open(p.model, &o, &model) != MW_OK)
            fail_msg("%s: mw_model_open: %s", cases[i].name, mw_last_error());
        generate(model, &got);
        mw_model_close(model);
        printf("%s: %zu tokens, same as default: %s\n", cases[i].name, got.n_tokens,
               memcmp(got.tokens, want.tokens, sizeof want.tokens) == 0 ? "yes" : "no");
        assert_int_equal(got.n_tokens, want.n_tokens);
        assert_memory_equal(got.tokens, want.tokens, sizeof want.tokens);
    }
}

/* populate maps every page at open; a default open maps only what parsing
 * touched; lock maps and locks every page, and closing releases the lock. */
static void test_populate_and_lock_map_every_page(void** state) {
    mw_model_options o;
    mw_model* model = NULL;
    uint64_t rss_default, rss_populate, locked_before, locked, locked_after;
    const long page = sysconf(_SC_PAGESIZE);
    uint64_t whole;
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    printf("SKIP: AddressSanitizer turns mlock into a no-op; the lock path runs in the plain build\n");
    skip();
#endif
    REQUIRE_STORIES(p);
    whole = p.file_bytes / (uint64_t)page * (uint64_t)page; /* full pages of the file */

    mw_model_options_init(&o);
    o.access_hint = MW_ACCESS_RANDOM; /* no fault-around read-ahead: RSS = pages touched */
    assert_int_equal(mw_model_open(p.model, &o, &model), MW_OK);
    rss_default = smaps_field(p.real, "Rss:");
    locked_before = locked_bytes();
    mw_model_close(model);

    mw_model_options_init(&o);
    o.prefault = 1;
    assert_int_equal(mw_model_open(p.model, &o, &model), MW_OK);
    rss_populate = smaps_field(p.real, "Rss:");
    mw_model_close(model);

    mw_model_options_init(&o);
    o.lock = 1;
    assert_int_equal(mw_model_open(p.model, &o, &model), MW_OK);
    locked = locked_bytes() - locked_before;
    mw_model_close(model);
    locked_after = locked_bytes();
    printf("file %llu bytes: mapped after open %llu (default, random), %llu (populate); locked %llu\n",
           (unsigned long long)p.file_bytes, (unsigned long long)rss_default, (unsigned long long)rss_populate,
           (unsigned long long)locked);
    assert_true(rss_default < p.file_bytes / 2);
    assert_true(rss_populate >= whole);
    assert_true(locked >= whole);
    assert_int_equal(locked_after, locked_before); /* closing unlocks */
    assert_int_equal(smaps_field(p.real, "Rss:"), 0); /* closed: unmapped */
}

static void test_unknown_access_hint(void** state) {
    static const int32_t bad[] = {4, -1, 1000};
    size_t i;
    (void)state;
    REQUIRE_STORIES(p);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mw_model_options o;
        mw_model* model = (mw_model*)&o; /* must be reset to NULL on failure */
        mw_model_options_init(&o);
        o.access_hint = bad[i];
        assert_int_equal(mw_model_open(p.model, &o, &model), MW_ERR_INVALID_ARGUMENT);
        assert_null(model);
        assert_non_null(strstr(mw_last_error(), "access_hint"));
    }
}

/* Removes CAP_IPC_LOCK (which lets root lock past the limit) from this
 * process's effective and permitted sets. */
static int drop_ipc_lock(void) {
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    memset(&hdr, 0, sizeof hdr);
    memset(data, 0, sizeof data);
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    hdr.pid = 0;
    if (syscall(SYS_capget, &hdr, data) != 0) return -1;
    data[0].effective &= ~(1u << CAP_IPC_LOCK);
    data[0].permitted &= ~(1u << CAP_IPC_LOCK);
    data[0].inheritable &= ~(1u << CAP_IPC_LOCK);
    return (int)syscall(SYS_capset, &hdr, data);
}

/* Child side of the lock failure test. Exit codes: 0 = as expected, others
 * name the failed step (printed by the child). */
static int lock_failure_child(const paths* p) {
    const rlim_t limit = 16384;
    struct rlimit rl;
    mw_model_options o;
    mw_model* model = NULL;
    mw_status st;
    const char* msg;
    char want_limit[64], want_need[64];
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    if (drop_ipc_lock() != 0) {
        perror("capset");
        return 10;
    }
    rl.rlim_cur = rl.rlim_max = limit;
    if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) {
        perror("setrlimit");
        return 11;
    }
    /* Without lock the model opens: the failure below is the lock's. */
    if (mw_model_open(p->model, NULL, &model) != MW_OK) {
        printf("child: default open failed: %s\n", mw_last_error());
        return 12;
    }
    mw_model_close(model);
    model = NULL;
    mw_model_options_init(&o);
    o.lock = 1;
    st = mw_model_open(p->model, &o, &model);
    msg = mw_last_error();
    printf("child: lock with RLIMIT_MEMLOCK=%llu: %s: %s\n", (unsigned long long)limit, mw_status_string(st), msg);
    if (st != MW_ERR_IO || model) return 13;
    snprintf(want_limit, sizeof want_limit, "%llu bytes", (unsigned long long)limit);
    snprintf(want_need, sizeof want_need, "%llu bytes",
             (unsigned long long)((p->file_bytes + page - 1) / page * page));
    if (!strstr(msg, "RLIMIT_MEMLOCK") || !strstr(msg, want_limit)) return 14;
    if (!strstr(msg, want_need)) return 15;
    return 0;
}

static void test_lock_fails_under_memlock_limit(void** state) {
    pid_t pid;
    int status = 0;
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    printf("SKIP: AddressSanitizer turns mlock into a no-op; the lock path runs in the plain build\n");
    skip();
#endif
    REQUIRE_STORIES(p);
    fflush(stdout);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int rc = lock_failure_child(&p);
        fflush(stdout);
        _exit(rc);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0) fail_msg("lock failure child exited %d", WEXITSTATUS(status));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_option_opens_and_generates),
        cmocka_unit_test(test_populate_and_lock_map_every_page),
        cmocka_unit_test(test_unknown_access_hint),
        cmocka_unit_test(test_lock_fails_under_memlock_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
