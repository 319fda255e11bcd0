// Soak under load: 64 client threads (by default) drive one engine with
// random requests for a fixed time: random prompt lengths (text and token
// ids), sampling settings, stop strings, priorities, cancellations at random
// points, handles released without draining, parallel sampling (mw_submit_n,
// when the library has it) and invalid inputs mixed in; greedy requests with
// known reference outputs run among them. At the end it checks:
//  - no request lost: every accepted request delivered a finish event;
//  - invalid inputs were refused with the expected status, nothing queued;
//  - greedy requests produced their reference outputs (computed alone first);
//  - nothing leaked: no KV block held, engine heap back to its warm level,
//    queue and running counts zero (mw_engine_stats, when present);
//  - RSS drift under load under --max-drift percent (default 5): the peak
//    RSS in the window after warm-up against the peak in the last window (KV
//    pool and step arena pages, reserved up front and touched as first used,
//    excluded).
// Prints a summary (requests by finish status) and exits 1 on a violation.
//   mw_soak [--model PATH] [--seconds 60] [--clients 64] [--max-sequences 16]
//           [--threads 1] [--warmup-fraction 0.25] [--max-drift 5]
//           [--kv-blocks N] [--spill-dir DIR]
// --kv-blocks gives the engine a memory budget of N KV blocks (16 tokens
// each) so that sequences are preempted (recompute, or spill into
// --spill-dir); greedy references must still match.
// Without --model it writes a small synthetic model (the project's writer).
#include "model/synthetic_model.h"

#include <memwise/memwise.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

// Newer entry points, used when the library has them (weak: NULL otherwise).
extern "C" {
__attribute__((weak)) mw_status mw_submit_n(mw_engine*, const mw_request_options*, uint32_t, mw_request**);
__attribute__((weak)) mw_status mw_engine_stats(const mw_engine*, mw_stats*);
}

namespace {

using Clock = std::chrono::steady_clock;

uint64_t rss_bytes() {
    std::ifstream f("/proc/self/statm");
    uint64_t size = 0, resident = 0;
    f >> size >> resident;
    return resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

struct Config {
    std::string model;
    double seconds = 60;
    int clients = 64, max_sequences = 16, threads = 1;
    double warmup_fraction = 0.25;
    double max_drift = 5.0;  // percent
    uint32_t kv_blocks = 0;  // 0: room for every sequence; else a budget of this many KV blocks (preemption)
    std::string spill_dir;   // with kv_blocks: preempt by spilling here (default: recompute)
};

const char* kWords[] = {"the", "cat", "sat", "on", "a", "mat", "once", "upon", "time", "little", "dog", "ran",
                        "happy", "sun", "tree", "and", "she", "he", "said", "big"};
const char* kGreedyPrompts[] = {"Once upon a time", "The cat sat on the mat", "A little dog", "the sun"};

struct Shared {
    mw_engine* engine = nullptr;
    int32_t n_vocab = 0;
    uint32_t n_ctx = 0;
    std::vector<std::string> reference;  // per greedy prompt
    std::atomic<bool> stop{false};
    std::mutex mutex;
    std::map<std::string, uint64_t> by_status;  // "finish:<reason>/<status>" or "refused:<status>"
    std::atomic<uint64_t> accepted{0}, finished{0}, lost{0}, greedy_ok{0}, greedy_bad{0}, wrong_refusal{0},
        tokens{0}, submit_n_used{0};
    void count(const std::string& k) {
        std::lock_guard<std::mutex> lock(mutex);
        by_status[k]++;
    }
};

const char* reason_name(int32_t r) {
    static const char* names[] = {"none", "eos", "length", "stop_string", "context", "cancelled", "error"};
    return r >= 0 && r <= 6 ? names[r] : "?";
}

mw_request_options greedy_options(const char* prompt) {
    mw_request_options o;
    mw_request_options_init(&o);
    o.prompt = prompt;
    o.prompt_len = std::strlen(prompt);
    o.temperature = 0;
    o.max_tokens = 16;
    o.ignore_eos = 1;
    return o;
}

// Drains r (cancelling after cancel_after tokens when >= 0); returns false on a hang.
bool drain(Shared& sh, mw_request* r, int cancel_after, std::string* text, mw_event* fin) {
    mw_event ev;
    ev.struct_size = sizeof ev;
    int n = 0;
    for (;;) {
        if (mw_request_next(r, 120000, &ev) != MW_OK) return false;
        if (ev.kind == MW_EVENT_FINISHED) break;
        if (text) text->append(ev.text, ev.text_len);
        sh.tokens++;
        if (cancel_after >= 0 && ++n == cancel_after) mw_request_cancel(r);
    }
    if (text && ev.text_len) text->append(ev.text, ev.text_len);
    *fin = ev;
    return true;
}

void finish_one(Shared& sh, mw_request* r, int cancel_after, std::string* text = nullptr) {
    mw_event fin;
    if (!drain(sh, r, cancel_after, text, &fin)) {
        sh.lost++;
        sh.count("lost (no finish within 120 s)");
    } else {
        sh.finished++;
        sh.count(std::string("finish:") + reason_name(fin.finish_reason) + "/" +
                 mw_status_string((mw_status)fin.status));
    }
    mw_request_release(r);
}

// One invalid request of a random kind; it must be refused with `want`.
void invalid(Shared& sh, std::mt19937_64& rng) {
    mw_request_options o = greedy_options("the cat");
    std::vector<int32_t> ids = {1, 2, 3};
    mw_text stop_null = {nullptr, 3};
    mw_status want = MW_ERR_INVALID_ARGUMENT;
    switch (rng() % 8) {
        case 0: o.prompt = nullptr; o.prompt_len = 0; break;  // empty prompt
        case 1: o.prompt = nullptr; ids[1] = sh.n_vocab + 5; o.prompt_tokens = ids.data(); o.n_prompt_tokens = 3; o.prompt_len = 0; break;
        case 2: o.temperature = -1; break;
        case 3: o.top_p = std::nanf(""); break;
        case 4: o.stop = &stop_null; o.n_stop = 1; break;
        case 5: o.prompt_tokens = ids.data(); o.n_prompt_tokens = 3; break;  // text and tokens
        case 6: o.max_tokens = sh.n_ctx + 10; want = MW_ERR_CONTEXT_OVERFLOW; break;
        case 7: o.struct_size = 2; break;
    }
    mw_request* r = nullptr;
    const mw_status st = mw_submit(sh.engine, &o, &r);
    sh.count(std::string("refused:") + mw_status_string(st));
    if (st == MW_OK) {
        sh.wrong_refusal++;
        finish_one(sh, r, -1);
    } else if (st != want || r != nullptr) {
        sh.wrong_refusal++;
    }
}

void random_request(Shared& sh, std::mt19937_64& rng) {
    mw_request_options o;
    mw_request_options_init(&o);
    std::string text;
    std::vector<int32_t> ids;
    const uint32_t len = 1 + (uint32_t)(rng() % 96);
    if (rng() % 2) {
        for (uint32_t i = 0; i < len / 3 + 1; i++) text += std::string(i ? " " : "") + kWords[rng() % 20];
        o.prompt = text.data();
        o.prompt_len = text.size();
    } else {
        for (uint32_t i = 0; i < len; i++) ids.push_back((int32_t)(rng() % (uint64_t)sh.n_vocab));
        o.prompt_tokens = ids.data();
        o.n_prompt_tokens = ids.size();
    }
    o.max_tokens = 1 + (uint32_t)(rng() % 64);
    o.temperature = (float)(rng() % 150) / 100.0f;
    o.top_k = (int32_t)(rng() % 60);
    o.top_p = 0.05f + (float)(rng() % 96) / 100.0f;
    o.min_p = (float)(rng() % 20) / 100.0f;
    o.repeat_penalty = 1.0f + (float)(rng() % 30) / 100.0f;
    o.seed = rng();
    o.priority = (int32_t)(rng() % 3);
    o.ignore_eos = (int32_t)(rng() % 2);
    mw_text stops[2] = {{kWords[rng() % 20], 0}, {"e d", 3}};
    stops[0].len = std::strlen(stops[0].data);
    if (rng() % 3 == 0) {
        o.stop = stops;
        o.n_stop = 1 + rng() % 2;
    }
    const int cancel_after = rng() % 6 == 0 ? (int)(rng() % 8) : -1;  // 0: cancel before the first token
    const uint32_t n = mw_submit_n && rng() % 8 == 0 ? 2 + (uint32_t)(rng() % 3) : 1;
    mw_request* rs[4] = {};
    mw_status st;
    if (n > 1) {
        st = mw_submit_n(sh.engine, &o, n, rs);
        if (st == MW_OK) sh.submit_n_used++;
    } else {
        st = mw_submit(sh.engine, &o, &rs[0]);
    }
    if (st != MW_OK) {  // e.g. a prompt too long for the context: a valid refusal
        sh.count(std::string("refused:") + mw_status_string(st));
        return;
    }
    sh.accepted += n;
    for (uint32_t i = 0; i < n; i++) {
        if (cancel_after == 0) mw_request_cancel(rs[i]);
        if (rng() % 20 == 0) {  // released without draining: the engine must clean up alone
            mw_request_release(rs[i]);
            sh.finished++;
            sh.count("released undrained");
            continue;
        }
        finish_one(sh, rs[i], cancel_after);
    }
}

void greedy(Shared& sh, std::mt19937_64& rng) {
    const size_t k = rng() % 4;
    const mw_request_options o = greedy_options(kGreedyPrompts[k]);
    mw_request* r = nullptr;
    const mw_status st = mw_submit(sh.engine, &o, &r);
    if (st != MW_OK) {
        sh.count(std::string("refused:") + mw_status_string(st));
        sh.greedy_bad++;
        return;
    }
    sh.accepted++;
    std::string text;
    finish_one(sh, r, -1, &text);
    if (text == sh.reference[k]) sh.greedy_ok++;
    else sh.greedy_bad++;
}

void client(Shared& sh, uint64_t seed) {
    std::mt19937_64 rng(seed);
    while (!sh.stop.load()) {
        const uint64_t dice = rng() % 100;
        if (dice < 10) invalid(sh, rng);
        else if (dice < 20) greedy(sh, rng);
        else random_request(sh, rng);
    }
}

bool parse(int argc, char** argv, Config* c) {
    for (int i = 1; i < argc; i++) {
        const std::string a = argv[i];
        auto val = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
        if (a == "--model") c->model = val();
        else if (a == "--seconds") c->seconds = std::atof(val());
        else if (a == "--clients") c->clients = std::atoi(val());
        else if (a == "--max-sequences") c->max_sequences = std::atoi(val());
        else if (a == "--threads") c->threads = std::atoi(val());
        else if (a == "--warmup-fraction") c->warmup_fraction = std::atof(val());
        else if (a == "--max-drift") c->max_drift = std::atof(val());
        else if (a == "--kv-blocks") c->kv_blocks = (uint32_t)std::atoi(val());
        else if (a == "--spill-dir") c->spill_dir = val();
        else {
            std::fprintf(stderr, "usage: mw_soak [--model PATH] [--seconds 60] [--clients 64] [--max-sequences 16] "
                                 "[--threads 1] [--warmup-fraction 0.25] [--max-drift 5] [--kv-blocks N] [--spill-dir DIR]\n");
            return false;
        }
    }
    return c->seconds > 0 && c->clients > 0 && c->max_sequences > 0;
}

}  // namespace

int main(int argc, char** argv) {
    Config cfg;
    if (!parse(argc, argv, &cfg)) return 2;
    std::string path = cfg.model, tmp;
    if (path.empty()) {
        mw::test::SyntheticSpec spec;
        spec.n_ctx = 256;
        char t[] = "/tmp/mw_soak_model_XXXXXX";
        const int fd = mkstemp(t);
        const std::vector<uint8_t> bytes = mw::test::synthetic_model(spec);
        if (fd < 0 || write(fd, bytes.data(), bytes.size()) != (ssize_t)bytes.size()) return 2;
        close(fd);
        path = tmp = t;
    }
    mw_model* model = nullptr;
    if (mw_model_open(path.c_str(), nullptr, &model) != MW_OK) {
        std::fprintf(stderr, "cannot open %s: %s\n", path.c_str(), mw_last_error());
        return 2;
    }
    if (!tmp.empty()) unlink(tmp.c_str());
    mw_model_info info;
    info.struct_size = sizeof info;
    mw_model_info_get(model, &info);
    mw_engine_options eo;
    mw_engine_options_init(&eo);
    eo.n_threads = (uint32_t)cfg.threads;
    eo.n_ctx = 256;
    eo.max_sequences = (uint32_t)cfg.max_sequences;
    if (cfg.kv_blocks) {
        mw_engine_plan p;
        p.struct_size = sizeof p;
        if (mw_engine_plan_memory(model, &eo, &p) != MW_OK) return 2;
        eo.memory_budget_bytes = p.activation_bytes + (uint64_t)cfg.kv_blocks * p.kv_block_bytes;
        if (!cfg.spill_dir.empty()) {
            eo.preempt_mode = MW_PREEMPT_SPILL;
            eo.spill_dir = cfg.spill_dir.c_str();
        }
    }
    Shared sh;
    if (mw_engine_create(model, &eo, &sh.engine) != MW_OK) {
        std::fprintf(stderr, "engine: %s\n", mw_last_error());
        return 2;
    }
    mw_model_close(model);
    sh.n_vocab = (int32_t)info.n_vocab;
    sh.n_ctx = 256;
    for (const char* p : kGreedyPrompts) {  // references: each alone on the idle engine
        const mw_request_options o = greedy_options(p);
        mw_request* r = nullptr;
        if (mw_submit(sh.engine, &o, &r) != MW_OK) return 2;
        std::string text;
        mw_event fin;
        if (!drain(sh, r, -1, &text, &fin)) return 2;
        mw_request_release(r);
        sh.reference.push_back(text);
    }
    sh.tokens = 0;

    auto memory = [&] {
        mw_memory_report m;
        m.struct_size = sizeof m;
        mw_engine_memory(sh.engine, &m);
        return m;
    };
    const auto t0 = Clock::now();
    std::vector<std::thread> threads;
    for (int i = 0; i < cfg.clients; i++) threads.emplace_back(client, std::ref(sh), 1000003ull * (uint64_t)(i + 1));
    // RSS under load, KV pool and arena pages excluded, sampled every 50 ms:
    // the peak in the window right after warm-up against the peak in the
    // last window of the same length (peaks are steadier than single samples
    // while 64 clients come and go).
    const double total = cfg.seconds, warm_end = total * cfg.warmup_fraction;
    const double window = std::min(warm_end, (total - warm_end) / 2);
    double base_warm = 0, base_late = 0, pools_warm = 0, pools_late = 0;
    uint64_t rss_warm = 0, rss_late = 0;
    mw_memory_report m_warm{};
    bool have_warm = false;
    for (;;) {
        const double t = std::chrono::duration<double>(Clock::now() - t0).count();
        if (t >= total) break;
        if (t >= warm_end) {
            const uint64_t rss = rss_bytes();
            const mw_memory_report m = memory();
            const double pools = (double)(m.kv_resident_bytes + m.activations_high_water_bytes);
            const double base = (double)rss - pools;
            if (!have_warm) {
                m_warm = m;
                have_warm = true;
            }
            if (t < warm_end + window && base > base_warm) {
                base_warm = base;
                rss_warm = rss;
                pools_warm = pools;
            }
            if (t >= total - window && base > base_late) {
                base_late = base;
                rss_late = rss;
                pools_late = pools;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    sh.stop = true;
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    const uint64_t rss_end = rss_bytes();
    const mw_memory_report m_end = memory();

    bool ok = true;
    auto check = [&](bool cond, const char* what) {
        std::printf("  %-58s %s\n", what, cond ? "ok" : "FAILED");
        ok = ok && cond;
    };
    std::printf("soak: %.1f s, %d clients, max_sequences %d, %d compute threads, model %s (vocab %d), KV %s%s\n",
                elapsed, cfg.clients, cfg.max_sequences, cfg.threads,
                cfg.model.empty() ? "synthetic" : cfg.model.c_str(), sh.n_vocab,
                cfg.kv_blocks ? (std::to_string(cfg.kv_blocks) + " blocks").c_str() : "for every sequence",
                cfg.kv_blocks ? (cfg.spill_dir.empty() ? ", preempt by recompute" : ", preempt by spill") : "");
    std::printf("  accepted %" PRIu64 " requests (%" PRIu64 " mw_submit_n groups), finished %" PRIu64 ", lost %" PRIu64
                ", %" PRIu64 " tokens streamed\n",
                sh.accepted.load(), sh.submit_n_used.load(), sh.finished.load(), sh.lost.load(), sh.tokens.load());
    for (const auto& [k, v] : sh.by_status) std::printf("    %-44s %" PRIu64 "\n", k.c_str(), v);
    std::printf("  greedy references: %" PRIu64 " matched, %" PRIu64 " differed\n", sh.greedy_ok.load(),
                sh.greedy_bad.load());
    const double drift = 100.0 * (base_late - base_warm) / base_warm;
    std::printf("  RSS under load (window peaks): after warm-up %.2f MiB, at the end %.2f MiB (KV pool + arena pages %.2f -> "
                "%.2f MiB); without them %.2f -> %.2f MiB (%+.2f%%); idle at the end %.2f MiB\n",
                rss_warm / 1048576.0, rss_late / 1048576.0, pools_warm / 1048576.0, pools_late / 1048576.0,
                base_warm / 1048576.0, base_late / 1048576.0, drift, rss_end / 1048576.0);
    std::printf("  engine heap live: %.1f KiB after warm-up, %.1f KiB at the end; KV used at the end %" PRIu64 " bytes\n",
                m_warm.scratch_bytes / 1024.0, m_end.scratch_bytes / 1024.0, (uint64_t)m_end.kv_used_bytes);
    check(sh.lost == 0 && sh.finished == sh.accepted, "every accepted request finished with a status");
    check(sh.wrong_refusal == 0, "every invalid input refused with its status, nothing queued");
    check(sh.greedy_bad == 0 && sh.greedy_ok > 0, "greedy requests under load match their references");
    check(m_end.kv_used_bytes == 0, "no KV block held after the last request");
    check(m_end.scratch_bytes <= m_warm.scratch_bytes + (64u << 10), "engine heap back to its warm-up level");
    char drift_what[64];
    std::snprintf(drift_what, sizeof drift_what, "RSS drift under load below %.0f%%", cfg.max_drift);
#if defined(__SANITIZE_ADDRESS__)
    std::printf("  %-58s not judged (RSS under AddressSanitizer)\n", drift_what);
#else
    check(drift < cfg.max_drift, drift_what);
#endif
    if (mw_engine_stats) {
        // The gauges are published at the end of a step, just after the last
        // finish event went out: allow the engine a moment to get there.
        mw_stats s;
        s.struct_size = sizeof s;
        bool got = false;
        for (int i = 0; i < 200; i++) {
            got = mw_engine_stats(sh.engine, &s) == MW_OK;
            if (!got || (s.running == 0 && s.queued == 0 && s.requests_submitted == s.requests_finished)) break;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        std::printf("  stats: submitted %" PRIu64 ", finished %" PRIu64 ", running %u, queued %u, preemptions %" PRIu64
                    " (spill bytes %" PRIu64 ", spill failures %" PRIu64 "), prefix cache hit rate %.2f\n",
                    s.requests_submitted, s.requests_finished, s.running, s.queued, s.preemptions,
                    s.spill_bytes_written, s.spill_failures, s.prefix_cache_hit_rate);
        check(got && s.running == 0 && s.queued == 0 && s.requests_submitted == s.requests_finished &&
                  s.kv_blocks_used == 0,
              "engine stats: nothing running or queued, all finished");
    }
    mw_engine_destroy(sh.engine);
    if (!cfg.spill_dir.empty()) {  // every spill file read back (or dropped) and removed
        size_t left = 0;
        std::error_code ec;
        for (const auto& e : std::filesystem::directory_iterator(cfg.spill_dir, ec))
            left += e.path().filename().string().rfind("memwise-spill-", 0) == 0 ? 1 : 0;
        check(left == 0, "no spill file left behind");
    }
    std::printf("soak: %s\n", ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
