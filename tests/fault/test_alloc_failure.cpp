// Allocation-failure injection over the C API, in the style of SQLite's
// malloc tests. A scenario (open a model; create an engine; submit a greedy
// request and a sampled one with a stop string; cancel the second; generate;
// release; destroy; close) runs once to learn its output, then again for
// N = 1, 2, ... with the N-th allocation failing (every heap allocation and
// every operator new, on any thread), until a run reaches no N-th allocation.
// Each run must end in MW_OK or MW_ERR_OUT_OF_MEMORY at the call that failed
// (or a request finishing with MW_ERR_OUT_OF_MEMORY), never a crash or a
// hang; an engine that survived must serve the greedy request again with the
// reference output. The ASan build's LeakSanitizer checks that no failure
// path leaks. A second pass makes every allocation from the N-th on fail
// (persistent), which also starves the clean-up paths.
#include "memory/alloc_fault.h"
#include "model/synthetic_model.h"

#include <memwise/memwise.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
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

#include "alloc_hooks.h"

namespace {

std::string g_path;
std::string g_spill_dir;  // set: a 4-block KV budget, 3 sequences, preemption by spill, mw_submit_n

struct Counts {
    uint64_t runs = 0, injected_runs = 0, oom_status = 0, oom_finish = 0, recovered = 0, preemptions = 0;
};

bool ok_or_oom(mw_status st) { return st == MW_OK || st == MW_ERR_OUT_OF_MEMORY; }

mw_request_options greedy_options() {
    mw_request_options o;
    mw_request_options_init(&o);
    o.prompt = " the cat sat";
    o.prompt_len = 12;
    o.max_tokens = 8;
    o.temperature = 0;
    o.ignore_eos = 1;
    return o;
}

// Drains a request; returns its finish event, the text in *text.
mw_event drain(mw_request* r, std::string* text) {
    mw_event ev;
    ev.struct_size = sizeof ev;
    for (;;) {
        const mw_status st = mw_request_next(r, 30000, &ev);
        if (st != MW_OK) fail_msg("mw_request_next: %s (a hang?)", mw_status_string(st));
        if (ev.kind == MW_EVENT_FINISHED) return ev;
        if (text) text->append(ev.text, ev.text_len);
    }
}

// The greedy request on an engine; MW_OK and its text, or the failure.
mw_status greedy(mw_engine* e, std::string* text, Counts* c) {
    const mw_request_options o = greedy_options();
    mw_request* r = nullptr;
    const mw_status st = mw_submit(e, &o, &r);
    if (st != MW_OK) {
        assert_int_equal(st, MW_ERR_OUT_OF_MEMORY);
        assert_null(r);
        c->oom_status++;
        return st;
    }
    const mw_event ev = drain(r, text);
    mw_request_release(r);
    if (ev.status != MW_OK) {
        assert_int_equal(ev.status, MW_ERR_OUT_OF_MEMORY);
        assert_int_equal(ev.finish_reason, MW_FINISH_ERROR);
        c->oom_finish++;
    } else {
        assert_int_equal(ev.finish_reason, MW_FINISH_LENGTH);
    }
    return (mw_status)ev.status;
}

// One run of the scenario with failure N armed. Returns the greedy output
// when it completed, "" otherwise.
std::string scenario(uint64_t n, bool persistent, Counts* c, const std::string& reference) {
    mw::memory::alloc_fault_arm(n, persistent);
    std::string out;
    mw_model* model = nullptr;
    mw_status st = mw_model_open(g_path.c_str(), nullptr, &model);
    if (st != MW_OK) {
        mw::memory::alloc_fault_disarm();
        if (st != MW_ERR_OUT_OF_MEMORY) fail_msg("N=%llu: mw_model_open gave %s: %s", (unsigned long long)n, mw_status_string(st), mw_last_error());
        assert_null(model);
        c->oom_status++;
        return out;
    }
    // Tokenizer round trip and the model's description.
    {
        int32_t ids[64];
        size_t n_ids = 0, n_text = 0;
        char text[256];
        st = mw_tokenize(model, " the cat sat", 12, 1, 1, ids, 64, &n_ids);
        if (!ok_or_oom(st)) fail_msg("N=%llu: mw_tokenize gave %s", (unsigned long long)n, mw_status_string(st));
        if (st == MW_OK) {
            st = mw_detokenize(model, ids, n_ids, 0, text, sizeof text, &n_text);
            if (!ok_or_oom(st)) fail_msg("N=%llu: mw_detokenize gave %s", (unsigned long long)n, mw_status_string(st));
            if (st == MW_OK) assert_memory_equal(text, " the cat sat", 12);
        }
        if (st != MW_OK) c->oom_status++;
        mw_model_info info;
        info.struct_size = sizeof info;
        assert_true(ok_or_oom(mw_model_info_get(model, &info)));
    }
    mw_engine_options eo;
    mw_engine_options_init(&eo);
    eo.n_threads = 1;
    eo.n_ctx = 64;
    eo.max_sequences = 2;
    if (!g_spill_dir.empty()) {
        eo.max_sequences = 3;
        mw_engine_plan p;
        p.struct_size = sizeof p;
        st = mw_engine_plan_memory(model, &eo, &p);
        if (st == MW_OK) {
            eo.memory_budget_bytes = p.activation_bytes + 4 * p.kv_block_bytes;
            eo.preempt_mode = MW_PREEMPT_SPILL;
            eo.spill_dir = g_spill_dir.c_str();
        } else if (st != MW_ERR_OUT_OF_MEMORY) {
            fail_msg("N=%llu: mw_engine_plan_memory gave %s", (unsigned long long)n, mw_status_string(st));
        }
    }
    mw_engine* engine = nullptr;
    st = st == MW_OK ? mw_engine_create(model, &eo, &engine) : st;
    if (st != MW_OK) {
        mw::memory::alloc_fault_disarm();
        if (st != MW_ERR_OUT_OF_MEMORY) fail_msg("N=%llu: mw_engine_create gave %s: %s", (unsigned long long)n, mw_status_string(st), mw_last_error());
        assert_null(engine);
        c->oom_status++;
        mw_model_close(model);
        return out;
    }
    // A sampled request with a stop string, cancelled while the greedy one runs.
    mw_request_options so;
    mw_request_options_init(&so);
    so.prompt = " a cat";
    so.prompt_len = 6;
    so.max_tokens = 40;
    so.seed = 7;
    so.ignore_eos = 1;
    const mw_text stop = {"sat the", 7};
    so.stop = &stop;
    so.n_stop = 1;
    if (!g_spill_dir.empty()) {  // both completions grow to the full context: 8 blocks wanted, 4 there
        so.max_tokens = 0;
        so.n_stop = 0;
    }
    mw_request* sampled[2] = {nullptr, nullptr};
    // With preemption: two completions of it (mw_submit_n) that share the prompt.
    st = g_spill_dir.empty() ? mw_submit(engine, &so, &sampled[0]) : mw_submit_n(engine, &so, 2, sampled);
    if (!ok_or_oom(st)) fail_msg("N=%llu: mw_submit gave %s", (unsigned long long)n, mw_status_string(st));
    if (st != MW_OK) {
        assert_null(sampled[0]);
        assert_null(sampled[1]);
        c->oom_status++;
    }

    const mw_status gs = greedy(engine, &out, c);
    mw_memory_report mem;
    mem.struct_size = sizeof mem;
    assert_true(ok_or_oom(mw_engine_memory(engine, &mem)));
    for (mw_request* r : {sampled[1], sampled[0]}) {
        if (!r) continue;
        if (r == sampled[0]) mw_request_cancel(r);  // after the second one ran to its end
        const mw_event ev = drain(r, nullptr);
        if (ev.status != MW_OK && ev.status != MW_ERR_CANCELLED && ev.status != MW_ERR_OUT_OF_MEMORY)
            fail_msg("N=%llu: sampled request finished with %s", (unsigned long long)n, mw_status_string((mw_status)ev.status));
        mw_request_release(r);
    }
    const bool injected = mw::memory::alloc_fault_injected() > 0;
    mw::memory::alloc_fault_disarm();
    if (gs == MW_OK && !injected && !reference.empty()) assert_string_equal(out.c_str(), reference.c_str());
    if (injected && !reference.empty()) {
        // The engine claims to be usable after a failure: it must serve the
        // greedy request again, exactly.
        std::string again;
        assert_int_equal(greedy(engine, &again, c), MW_OK);
        assert_string_equal(again.c_str(), reference.c_str());
        c->recovered++;
    }
    mw_stats stats;
    stats.struct_size = sizeof stats;
    assert_int_equal(mw_engine_stats(engine, &stats), MW_OK);
    c->preemptions += stats.preemptions;
    mw_engine_destroy(engine);
    mw_model_close(model);
    if (!g_spill_dir.empty()) {  // no spill file outlives its engine, whatever failed
        std::error_code ec;
        assert_true(std::filesystem::is_empty(g_spill_dir, ec));
    }
    return gs == MW_OK ? out : std::string();
}

void write_model() {
    mw::test::SyntheticSpec spec;
    spec.n_embd = 32;
    spec.n_layer = 1;
    spec.n_head = 2;
    spec.n_head_kv = 1;
    spec.n_ff = 64;
    spec.n_ctx = 64;
    char path[] = "/tmp/mw_allocfail_XXXXXX";
    const int fd = mkstemp(path);
    assert_true(fd >= 0);
    const std::vector<uint8_t> bytes = mw::test::synthetic_model(spec);
    assert_int_equal(write(fd, bytes.data(), bytes.size()), (ssize_t)bytes.size());
    close(fd);
    g_path = path;
}

// Every allocation of the scenario fails once, in turn. MEMWISE_FAULT_STRIDE
// visits every k-th point instead (a quicker local run).
void run_all(bool persistent) {
    write_model();
    Counts c;
    const std::string reference = scenario(UINT64_MAX, false, &c, "");  // counts, never fails
    assert_false(reference.empty());
    const uint64_t total = mw::memory::alloc_fault_seen();
    const char* s = std::getenv("MEMWISE_FAULT_STRIDE");
    const uint64_t stride = s && std::atoi(s) > 0 ? (uint64_t)std::atoi(s) : 1;
    uint64_t n = 1;
    // Allocation counts vary a little from run to run (the engine thread's
    // steps depend on timing): go on until N is past the most any run made.
    uint64_t most = total;
    for (;; n += stride) {
        scenario(n, persistent, &c, reference);
        c.runs++;
        if (!persistent) most = std::max(most, mw::memory::alloc_fault_seen());
        if (mw::memory::alloc_fault_injected() == 0) {
            if (n > most) break;  // no run reaches N any more
            continue;
        }
        c.injected_runs++;
        if (n > 50 * total + 1000) fail_msg("the scenario keeps reaching new allocations (N=%llu)", (unsigned long long)n);
    }
    std::printf("%s%s: %llu allocations in a clean run; %llu failure points injected (stride %llu), "
                "%llu calls returned MW_ERR_OUT_OF_MEMORY, %llu requests finished with it, "
                "%llu engines served the reference again after a failure, %llu preemptions\n",
                persistent ? "persistent" : "single", g_spill_dir.empty() ? "" : " (preemption by spill)",
                (unsigned long long)total, (unsigned long long)c.injected_runs, (unsigned long long)stride,
                (unsigned long long)c.oom_status, (unsigned long long)c.oom_finish, (unsigned long long)c.recovered,
                (unsigned long long)c.preemptions);
    assert_true(c.injected_runs > 0);
    unlink(g_path.c_str());
}

}  // namespace

static void test_each_allocation_fails_once(void**) { run_all(false); }
static void test_every_allocation_from_n_fails(void**) { run_all(true); }

// Under a KV budget that forces preemption by spill, with mw_submit_n.
static void test_each_allocation_fails_with_preemption(void**) {
    char dir[] = "/tmp/mw_allocfail_spill_XXXXXX";
    assert_non_null(mkdtemp(dir));
    g_spill_dir = dir;
    run_all(false);
    run_all(true);
    g_spill_dir.clear();
    std::filesystem::remove_all(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_allocation_fails_once),
        cmocka_unit_test(test_every_allocation_from_n_fails),
        cmocka_unit_test(test_each_allocation_fails_with_preemption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
