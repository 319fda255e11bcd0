// I/O faults on spill files (MW_PREEMPT_SPILL under a budget that forces
// preemption): files removed, truncated or corrupted underneath between the
// spill and the reload, and a full disk while writing them. Each must end in
// a recompute (counted in mw_stats.spill_failures) with exactly the outputs
// of an engine that never preempts, and no spill file left behind. (A spill
// directory that cannot be written is covered in tests/runtime/test_serving.cpp.)
#include "model/synthetic_model.h"

#include <memwise/memwise.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include "test_util.h"

namespace fs = std::filesystem;

namespace {

std::string g_model;

struct Output {
    std::vector<int32_t> tokens;
    int32_t reason = 0, status = 0;
    bool operator==(const Output& o) const { return tokens == o.tokens && reason == o.reason && status == o.status; }
};

mw_model* open_model() {
    mw_model* m = nullptr;
    assert_int_equal(mw_model_open(g_model.c_str(), nullptr, &m), MW_OK);
    return m;
}

mw_engine_options options(mw_model* m, bool tiny, const char* spill_dir) {
    mw_engine_options o;
    mw_engine_options_init(&o);
    o.n_threads = 1;
    o.n_ctx = 128;
    o.max_sequences = 8;
    if (tiny) {  // 12 blocks of 16 tokens for 8 sequences of up to 6: preemption
        mw_engine_plan p;
        p.struct_size = sizeof p;
        assert_int_equal(mw_engine_plan_memory(m, &o, &p), MW_OK);
        o.memory_budget_bytes = p.activation_bytes + 12 * p.kv_block_bytes;
        o.preempt_mode = MW_PREEMPT_SPILL;
        o.spill_dir = spill_dir;
    }
    return o;
}

// Eight sampled requests submitted together, drained in order.
std::vector<Output> serve(mw_engine* e) {
    std::mt19937 rng(3);
    std::vector<mw_request*> rs;
    for (int i = 0; i < 8; i++) {
        std::vector<int32_t> prompt(10 + (size_t)i * 4);
        for (auto& t : prompt) t = 3 + (int32_t)(rng() % 261);
        mw_request_options o;
        mw_request_options_init(&o);
        o.prompt_tokens = prompt.data();
        o.n_prompt_tokens = prompt.size();
        o.max_tokens = 60;
        o.temperature = 0.9f;
        o.seed = 100 + (uint64_t)i;
        o.ignore_eos = 1;
        mw_request* r = nullptr;
        assert_int_equal(mw_submit(e, &o, &r), MW_OK);
        rs.push_back(r);
    }
    std::vector<Output> out;
    for (mw_request* r : rs) {
        Output o;
        mw_event ev;
        ev.struct_size = sizeof ev;
        for (;;) {
            assert_int_equal(mw_request_next(r, 60000, &ev), MW_OK);
            if (ev.kind == MW_EVENT_FINISHED) break;
            o.tokens.push_back(ev.token);
        }
        o.reason = ev.finish_reason;
        o.status = ev.status;
        out.push_back(o);
        mw_request_release(r);
    }
    return out;
}

std::vector<Output> reference() {
    mw_model* m = open_model();
    mw_engine_options o = options(m, false, nullptr);
    mw_engine* e = nullptr;
    assert_int_equal(mw_engine_create(m, &o, &e), MW_OK);
    const auto out = serve(e);
    mw_engine_destroy(e);
    mw_model_close(m);
    return out;
}

struct Dir {
    fs::path path;
    Dir() {
        char t[] = "/tmp/mw_spillfault_XXXXXX";
        assert_non_null(mkdtemp(t));
        path = t;
    }
    ~Dir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    size_t files() const {
        size_t n = 0;
        for (const auto& e : fs::directory_iterator(path)) n += e.is_regular_file() ? 1 : 0;
        return n;
    }
};

// Serves with spilling into dir while `fault` acts on every spill file it sees.
template <class Fault>
mw_stats serve_with_fault(const Dir& dir, const std::vector<Output>& expect, Fault fault, const char* name) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> hits{0};
    std::thread janitor([&] {
        while (!stop.load()) {
            std::error_code ec;
            for (const auto& e : fs::directory_iterator(dir.path, ec))
                if (fault(e.path())) hits++;
            std::this_thread::sleep_for(std::chrono::microseconds(20));
        }
    });
    mw_model* m = open_model();
    const std::string d = dir.path.string();
    mw_engine_options o = options(m, true, d.c_str());
    mw_engine* e = nullptr;
    assert_int_equal(mw_engine_create(m, &o, &e), MW_OK);
    const auto out = serve(e);
    stop = true;
    janitor.join();
    mw_stats s;
    s.struct_size = sizeof s;
    assert_int_equal(mw_engine_stats(e, &s), MW_OK);
    printf("%s: %llu preemptions, %llu spill bytes, %llu spill failures, %llu files hit\n", name,
           (unsigned long long)s.preemptions, (unsigned long long)s.spill_bytes_written,
           (unsigned long long)s.spill_failures, (unsigned long long)hits.load());
    assert_true(out == expect);  // recompute gave exactly the same outputs
    assert_int_equal(s.kv_blocks_used, 0);
    mw_engine_destroy(e);
    mw_model_close(m);
    assert_int_equal(dir.files(), 0);  // nothing left behind
    assert_true(s.preemptions > 0);
    if (hits > 0) assert_true(s.spill_failures > 0);
    return s;
}

}  // namespace

static int setup(void**) {
    mw::test::SyntheticSpec spec;
    spec.n_ctx = 128;
    char path[] = "/tmp/mw_spillfault_model_XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) return -1;
    const std::vector<uint8_t> bytes = mw::test::synthetic_model(spec);
    if (write(fd, bytes.data(), bytes.size()) != (ssize_t)bytes.size()) return -1;
    close(fd);
    g_model = path;
    return 0;
}

static int teardown(void**) {
    unlink(g_model.c_str());
    return 0;
}

static void test_spill_files_removed(void**) {
    const auto expect = reference();
    // A spill file may live too briefly for the janitor thread to catch it on
    // a busy machine; retry until one was hit (each run is checked in full).
    mw_stats s{};
    for (int attempt = 0; attempt < 8 && s.spill_failures == 0; attempt++) {
        Dir d;
        s = serve_with_fault(d, expect, [](const fs::path& p) { return fs::remove(p); }, "removed");
    }
    assert_true(s.spill_failures > 0);
}

static void test_spill_files_truncated(void**) {
    const auto expect = reference();
    Dir d;
    std::error_code ec;
    serve_with_fault(d, expect, [&](const fs::path& p) {
        const auto n = fs::file_size(p, ec);
        if (ec || n < 64) return false;
        fs::resize_file(p, n / 2, ec);
        return !ec;
    }, "truncated");
}

static void test_spill_files_corrupted(void**) {
    const auto expect = reference();
    mw_stats s{};
    // Retried as in test_spill_files_removed: a run may catch no file.
    for (int attempt = 0; attempt < 8 && s.spill_failures == 0; attempt++) {
    Dir d;
    std::set<std::string> seen;  // flip each file once (twice would restore it)
    s = serve_with_fault(d, expect, [&](const fs::path& p) {
        if (!seen.insert(p.string()).second) return false;
        FILE* f = std::fopen(p.c_str(), "r+b");
        if (!f) return false;
        bool done = false;
        if (std::fseek(f, 0, SEEK_END) == 0) {
            const long n = std::ftell(f);
            int c;
            if (n > 64 && std::fseek(f, n - 8, SEEK_SET) == 0 && (c = std::fgetc(f)) != EOF &&
                std::fseek(f, n - 8, SEEK_SET) == 0) {
                std::fputc(c ^ 0x5A, f);  // inside the frame's checksum or last block
                done = c != 0x100;
            }
        }
        std::fclose(f);
        return done;
    }, "corrupted");
    }
    assert_true(s.spill_failures > 0);
}

static void test_full_disk_while_spilling(void**) {
    const auto expect = reference();
    Dir d;
    fflush(stdout);
    const pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {  // spill files may not grow past 512 bytes: EFBIG on every spill
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {512, 512};
        setrlimit(RLIMIT_FSIZE, &rl);
        mw_model* m = open_model();
        const std::string dir = d.path.string();
        mw_engine_options o = options(m, true, dir.c_str());
        mw_engine* e = nullptr;
        if (mw_engine_create(m, &o, &e) != MW_OK) _exit(2);
        const bool same = serve(e) == expect;
        mw_stats s;
        s.struct_size = sizeof s;
        mw_engine_stats(e, &s);
        printf("full disk: %llu preemptions, %llu spill bytes, %llu spill failures\n",
               (unsigned long long)s.preemptions, (unsigned long long)s.spill_bytes_written,
               (unsigned long long)s.spill_failures);
        fflush(stdout);
        mw_engine_destroy(e);
        mw_model_close(m);
        _exit(same && s.preemptions > 0 && s.spill_failures > 0 && s.spill_bytes_written == 0 && d.files() == 0 ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spill_files_removed),
        cmocka_unit_test(test_spill_files_truncated),
        cmocka_unit_test(test_spill_files_corrupted),
        cmocka_unit_test(test_full_disk_while_spilling),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
