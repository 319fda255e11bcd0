/* mw_memprobe: one memwise process for the memory benchmarks (the bench/ Python scripts).
 *
 *   mw_memprobe MODEL [--ctx N] [--prompt-tokens N] [--gen-tokens N]
 *               [--threads N] [--populate] [--lock] [--access HINT] [--hold]
 *
 * Opens MODEL with the given loading options, creates an engine of one
 * sequence of --ctx tokens, decodes a prompt of --prompt-tokens pseudo-random
 * token ids and --gen-tokens greedy tokens (end-of-sequence ignored), and
 * prints one JSON object on stdout: times (open, engine, first token, decode),
 * the process's memory before the open, right after the open (peak RSS at
 * load) and at the end (/proc/self/smaps_rollup, VmHWM), and the engine's own
 * memory report. How much of the file was in the page cache before the open
 * is measured with mincore, so a "cold" run can show that it was cold.
 *
 * With --hold the engine and model stay alive after the JSON line is printed
 * until stdin reaches end of file (or a line is read): a driver can sample
 * several processes' memory from outside while all of them are alive.
 *
 * Public API only (memwise/memwise.h). A program, never a test. */
#include <memwise/memwise.h>

#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Memory figures of this process, bytes. */
typedef struct mem {
    uint64_t rss, pss, pss_anon, pss_file, shared_clean, shared_dirty, private_clean, private_dirty, anonymous,
        locked, hwm;
} mem;

static uint64_t field_kb(const char* line, const char* name) {
    unsigned long long kb = 0;
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0 || line[n] != ':') return UINT64_MAX;
    if (sscanf(line + n + 1, "%llu", &kb) != 1) return UINT64_MAX;
    return (uint64_t)kb * 1024;
}

static void read_mem(mem* m) {
    static const struct {
        const char* name;
        size_t off;
    } fields[] = {
        {"Rss", offsetof(mem, rss)},
        {"Pss", offsetof(mem, pss)},
        {"Pss_Anon", offsetof(mem, pss_anon)},
        {"Pss_File", offsetof(mem, pss_file)},
        {"Shared_Clean", offsetof(mem, shared_clean)},
        {"Shared_Dirty", offsetof(mem, shared_dirty)},
        {"Private_Clean", offsetof(mem, private_clean)},
        {"Private_Dirty", offsetof(mem, private_dirty)},
        {"Anonymous", offsetof(mem, anonymous)},
        {"Locked", offsetof(mem, locked)},
    };
    char line[256];
    FILE* f;
    size_t i;
    memset(m, 0, sizeof *m);
    f = fopen("/proc/self/smaps_rollup", "r");
    if (f) {
        while (fgets(line, sizeof line, f))
            for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
                uint64_t v = field_kb(line, fields[i].name);
                if (v != UINT64_MAX) *(uint64_t*)((char*)m + fields[i].off) = v;
            }
        fclose(f);
    }
    f = fopen("/proc/self/status", "r");
    if (f) {
        while (fgets(line, sizeof line, f)) {
            uint64_t v = field_kb(line, "VmHWM");
            if (v != UINT64_MAX) m->hwm = v;
        }
        fclose(f);
    }
}

static void print_mem(const char* key, const mem* m) {
    printf("\"%s\": {\"rss\": %" PRIu64 ", \"pss\": %" PRIu64 ", \"pss_anon\": %" PRIu64 ", \"pss_file\": %" PRIu64
           ", \"shared_clean\": %" PRIu64 ", \"shared_dirty\": %" PRIu64 ", \"private_clean\": %" PRIu64
           ", \"private_dirty\": %" PRIu64 ", \"anonymous\": %" PRIu64 ", \"locked\": %" PRIu64
           ", \"peak_rss\": %" PRIu64 "}",
           key, m->rss, m->pss, m->pss_anon, m->pss_file, m->shared_clean, m->shared_dirty, m->private_clean,
           m->private_dirty, m->anonymous, m->locked, m->hwm);
}

/* Bytes of the file at path in the page cache now (mincore over a mapping
 * that is never touched). UINT64_MAX when it cannot be measured. */
static uint64_t file_cached_bytes(const char* path) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    void* p;
    unsigned char* vec;
    size_t page = (size_t)sysconf(_SC_PAGESIZE), pages, i;
    uint64_t n = 0;
    if (fd < 0) return UINT64_MAX;
    if (fstat(fd, &st) != 0 || st.st_size == 0) {
        close(fd);
        return UINT64_MAX;
    }
    p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return UINT64_MAX;
    pages = ((size_t)st.st_size + page - 1) / page;
    vec = (unsigned char*)malloc(pages);
    if (vec && mincore(p, (size_t)st.st_size, vec) == 0)
        for (i = 0; i < pages; i++) n += (vec[i] & 1) ? page : 0;
    else
        n = UINT64_MAX;
    free(vec);
    munmap(p, (size_t)st.st_size);
    return n;
}

/* splitmix64: the same prompt on every run. */
static uint64_t next_random(uint64_t* s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int usage(const char* msg) {
    fprintf(stderr,
            "mw_memprobe: %s\nusage: mw_memprobe MODEL [--ctx N] [--prompt-tokens N] [--gen-tokens N] "
            "[--threads N] [--populate] [--lock] [--access random|sequential|willneed] [--hold]\n",
            msg);
    return 2;
}

static int fail_api(const char* what, mw_status st) {
    fprintf(stderr, "mw_memprobe: %s: %s: %s\n", what, mw_status_string(st), mw_last_error());
    return 1;
}

int main(int argc, char** argv) {
    const char* path = NULL;
    unsigned long ctx = 2048, n_prompt = 64, n_gen = 64, threads = 0;
    int hold = 0, i;
    mw_model_options mo;
    mw_engine_options eo;
    mw_model* model = NULL;
    mw_engine* engine = NULL;
    mw_model_info info;
    mw_request_options ro;
    mw_request* req = NULL;
    mw_event ev;
    mw_memory_report rep;
    mem m_start, m_open, m_end;
    int32_t* prompt;
    uint64_t seed = 0x6d656d70726f6265ull, cached_before;
    double t0, t_open, t_engine, t_first = 0, t_last = 0;
    unsigned long n_tokens = 0;
    mw_status st;

    mw_model_options_init(&mo);
    for (i = 1; i < argc; i++) {
        const char* a = argv[i];
        const char* v = i + 1 < argc ? argv[i + 1] : NULL;
        if (a[0] != '-') {
            if (path) return usage("one MODEL only");
            path = a;
        } else if (!strcmp(a, "--populate")) {
            mo.prefault = 1;
        } else if (!strcmp(a, "--lock")) {
            mo.lock = 1;
        } else if (!strcmp(a, "--hold")) {
            hold = 1;
        } else if (!v) {
            return usage("an option needs a value");
        } else if (!strcmp(a, "--access")) {
            i++;
            if (!strcmp(v, "random")) mo.access_hint = MW_ACCESS_RANDOM;
            else if (!strcmp(v, "sequential")) mo.access_hint = MW_ACCESS_SEQUENTIAL;
            else if (!strcmp(v, "willneed")) mo.access_hint = MW_ACCESS_WILLNEED;
            else if (!strcmp(v, "default")) mo.access_hint = MW_ACCESS_DEFAULT;
            else return usage("--access: random, sequential, willneed or default");
        } else {
            unsigned long* dst = !strcmp(a, "--ctx")             ? &ctx
                                 : !strcmp(a, "--prompt-tokens") ? &n_prompt
                                 : !strcmp(a, "--gen-tokens")    ? &n_gen
                                 : !strcmp(a, "--threads")       ? &threads
                                                                 : NULL;
            char* end = NULL;
            if (!dst) return usage("unknown option");
            *dst = strtoul(v, &end, 10);
            if (!end || *end) return usage("not a number");
            i++;
        }
    }
    if (!path) return usage("missing MODEL");
    if (n_prompt < 1 || n_gen < 1 || n_prompt + n_gen > ctx) return usage("need 1 <= prompt + gen <= ctx");

    cached_before = file_cached_bytes(path);
    read_mem(&m_start);
    t0 = now_s();
    st = mw_model_open(path, &mo, &model);
    if (st != MW_OK) return fail_api("mw_model_open", st);
    t_open = now_s();
    read_mem(&m_open);

    mw_engine_options_init(&eo);
    eo.n_ctx = (uint32_t)ctx;
    eo.max_sequences = 1;
    eo.n_threads = (uint32_t)threads;
    st = mw_engine_create(model, &eo, &engine);
    if (st != MW_OK) return fail_api("mw_engine_create", st);
    t_engine = now_s();

    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    st = mw_model_info_get(model, &info);
    if (st != MW_OK) return fail_api("mw_model_info_get", st);
    prompt = (int32_t*)malloc(n_prompt * sizeof *prompt);
    if (!prompt) return 1;
    for (i = 0; i < (int)n_prompt;) {
        int32_t id = (int32_t)(next_random(&seed) % info.n_vocab);
        if (id == info.bos_token || id == info.eos_token || id == info.eot_token) continue;
        prompt[i++] = id;
    }

    mw_request_options_init(&ro);
    ro.prompt_tokens = prompt;
    ro.n_prompt_tokens = n_prompt;
    ro.max_tokens = (uint32_t)n_gen;
    ro.temperature = 0;
    ro.ignore_eos = 1;
    st = mw_submit(engine, &ro, &req);
    if (st != MW_OK) return fail_api("mw_submit", st);
    ev.struct_size = sizeof ev;
    for (;;) {
        st = mw_request_next(req, 600000, &ev);
        if (st != MW_OK) return fail_api("mw_request_next", st);
        if (ev.kind == MW_EVENT_FINISHED) break;
        t_last = now_s();
        if (n_tokens++ == 0) t_first = t_last;
    }
    if (ev.status != MW_OK || n_tokens != n_gen) {
        fprintf(stderr, "mw_memprobe: request ended with %s after %lu of %lu tokens\n", mw_status_string(ev.status),
                n_tokens, n_gen);
        return 1;
    }
    mw_request_release(req);
    read_mem(&m_end);
    memset(&rep, 0, sizeof rep);
    rep.struct_size = sizeof rep;
    st = mw_engine_memory(engine, &rep);
    if (st != MW_OK) return fail_api("mw_engine_memory", st);

    printf("{\"engine\": \"memwise\", \"model\": \"%s\", \"pid\": %ld, \"ctx\": %lu, \"prompt_tokens\": %lu, "
           "\"gen_tokens\": %lu, \"threads\": %lu, \"populate\": %d, \"lock\": %d, \"access_hint\": %d, ",
           path, (long)getpid(), ctx, n_prompt, n_gen, threads, mo.prefault, mo.lock, mo.access_hint);
    printf("\"file_cached_before_bytes\": %" PRIu64 ", \"file_bytes\": %" PRIu64 ", ",
           cached_before == UINT64_MAX ? 0 : cached_before, info.file_bytes);
    printf("\"open_seconds\": %.6f, \"engine_seconds\": %.6f, \"first_token_seconds\": %.6f, "
           "\"decode_tokens_per_s\": %.3f, ",
           t_open - t0, t_engine - t_open, t_first - t0,
           n_gen > 1 && t_last > t_first ? (double)(n_gen - 1) / (t_last - t_first) : 0.0);
    print_mem("before_open", &m_start);
    printf(", ");
    print_mem("after_open", &m_open);
    printf(", ");
    print_mem("end", &m_end);
    printf(", \"report\": {\"weights_mapped\": %" PRIu64 ", \"weights_resident\": %" PRIu64
           ", \"kv_reserved\": %" PRIu64 ", \"kv_resident\": %" PRIu64 ", \"activations_reserved\": %" PRIu64
           ", \"activations_high_water\": %" PRIu64 ", \"scratch\": %" PRIu64 ", \"heap_committed\": %" PRIu64
           ", \"engine_total\": %" PRIu64 "}}\n",
           rep.weights_mapped_bytes, rep.weights_resident_bytes, rep.kv_reserved_bytes, rep.kv_resident_bytes,
           rep.activations_reserved_bytes, rep.activations_high_water_bytes, rep.scratch_bytes,
           rep.heap_committed_bytes, rep.engine_total_bytes);
    fflush(stdout);

    if (hold) { /* stay alive, engine and model open, until the driver says go */
        char line[16];
        if (!fgets(line, sizeof line, stdin)) { /* EOF also releases */
        }
    }
    free(prompt);
    mw_engine_destroy(engine);
    mw_model_close(model);
    return 0;
}
