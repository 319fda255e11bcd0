// Sampler tests: greedy, seeding, the distribution of draws against softmax,
// each truncation stage (top-k, top-p, min-p), the repetition penalty, odd
// logits (-inf, NaN, all equal), validation, and no allocation per sample.
// Engine headers come first: cmocka defines a fail() macro that would clash
// with mw::fail. cmocka.h has no extern "C" of its own.
#include "base/error.h"
#include "runtime/sampler.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

#include "test_util.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <numeric>
#include <string>
#include <vector>

// Counts every operator new in the process, to prove sample() allocates nothing.
// noinline: inlined into callers, GCC would warn that free() meets new'd memory.
static std::atomic<long> g_allocs{0};
__attribute__((noinline)) void* operator new(size_t n) {
    g_allocs++;
    void* p = std::malloc(n ? n : 1);
    if (!p) throw std::bad_alloc();
    return p;
}
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, size_t) noexcept { std::free(p); }

using mw::Sampler;
using mw::SamplingParams;

static SamplingParams plain(float temperature, uint64_t seed = 42) {
    SamplingParams p;
    p.temperature = temperature;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = seed;
    return p;
}

// Deterministic pseudo-random logits for tests (independent of the sampler's RNG).
static std::vector<float> make_logits(size_t n, uint32_t seed, float scale = 4.0f) {
    std::vector<float> v(n);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v[i] = scale * ((float)(x % 100000) / 100000.0f - 0.5f);
    }
    return v;
}

// Draws n times from fresh copies of logits; returns counts per token.
static std::vector<long> draw_counts(Sampler& s, const std::vector<float>& logits, long n) {
    std::vector<long> counts(logits.size(), 0);
    std::vector<float> work(logits.size());
    for (long i = 0; i < n; i++) {
        work = logits;
        int32_t t = s.sample(work.data(), nullptr, 0);
        assert_true(t >= 0 && (size_t)t < logits.size());
        counts[(size_t)t]++;
    }
    return counts;
}

static std::vector<double> softmax(const std::vector<float>& logits, double temp) {
    double mx = *std::max_element(logits.begin(), logits.end());
    std::vector<double> p(logits.size());
    double sum = 0;
    for (size_t i = 0; i < p.size(); i++) sum += (p[i] = std::exp((logits[i] - mx) / temp));
    for (double& x : p) x /= sum;
    return p;
}

// Pearson chi-square of counts against expected probabilities.
static double chi_square(const std::vector<long>& counts, const std::vector<double>& p, long n) {
    double chi = 0;
    for (size_t i = 0; i < p.size(); i++) {
        double e = p[i] * (double)n;
        if (e == 0) {
            assert_int_equal(counts[i], 0);
            continue;
        }
        chi += (counts[i] - e) * (counts[i] - e) / e;
    }
    return chi;
}

static void test_greedy_picks_argmax(void** state) {
    (void)state;
    for (uint32_t trial = 0; trial < 20; trial++) {
        std::vector<float> logits = make_logits(1000, trial);
        int32_t want = (int32_t)(std::max_element(logits.begin(), logits.end()) - logits.begin());
        Sampler s(plain(0.0f), 1000);
        assert_int_equal(s.sample(logits.data(), nullptr, 0), want);
    }
    // Ties go to the lowest id.
    std::vector<float> tie = {0.0f, 3.0f, 1.0f, 3.0f, 3.0f};
    Sampler s(plain(0.0f), 5);
    assert_int_equal(s.sample(tie.data(), nullptr, 0), 1);
    std::vector<float> equal(7, 0.25f);
    assert_int_equal(s.sample(equal.data(), nullptr, 0), 0);
}

static void test_seed_reproducible(void** state) {
    (void)state;
    std::vector<float> logits = make_logits(100, 7, 1.0f);
    SamplingParams p = plain(1.0f, 1234);
    p.top_k = 50;
    p.top_p = 0.9f;
    p.min_p = 0.01f;
    Sampler a(p, 100), b(p, 100);
    p.seed = 1235;
    Sampler c(p, 100);
    std::vector<float> w(100);
    int differ = 0, distinct_tokens = 0;
    std::vector<int> seen(100, 0);
    for (int i = 0; i < 1000; i++) {
        w = logits;
        int32_t ta = a.sample(w.data(), nullptr, 0);
        w = logits;
        int32_t tb = b.sample(w.data(), nullptr, 0);
        w = logits;
        int32_t tc = c.sample(w.data(), nullptr, 0);
        assert_int_equal(ta, tb);
        if (ta != tc) differ++;
        if (!seen[ta]++) distinct_tokens++;
    }
    // Many tokens are possible, so another seed must give another sequence.
    assert_true(distinct_tokens > 10);
    assert_true(differ > 500);
}

static void test_golden_sequence(void** state) {
    (void)state;
    // Pins the generator (xoshiro256** seeded by splitmix64) and the chain: a
    // change to either changes what a fixed seed produces for users.
    const std::vector<float> logits = make_logits(300, 5, 6.0f);
    SamplingParams a;  // defaults: temperature 0.8, top_k 40, top_p 0.95, min_p 0.05
    a.seed = 2024;
    SamplingParams b;
    b.seed = 7;
    b.temperature = 1.3f;
    b.top_k = 0;
    b.top_p = 0.9f;
    b.min_p = 0.02f;
    const int32_t want_a[16] = {113, 138, 113, 242, 138, 220, 150, 241, 86, 113, 275, 271, 38, 291, 138, 250};
    const int32_t want_b[16] = {241, 101, 271, 44, 286, 290, 22, 39, 140, 47, 202, 242, 111, 290, 154, 211};
    Sampler sa(a, 300), sb(b, 300);
    for (int i = 0; i < 16; i++) {
        std::vector<float> w = logits;
        assert_int_equal(sa.sample(w.data(), nullptr, 0), want_a[i]);
        w = logits;
        assert_int_equal(sb.sample(w.data(), nullptr, 0), want_b[i]);
    }
}

static void test_distribution_matches_softmax(void** state) {
    (void)state;
    const std::vector<float> logits = {1.0f, 0.5f, -0.3f, 2.0f, 0.0f, -1.5f, 1.2f, 0.7f};
    const long n = 200000;
    // 7 degrees of freedom: the 0.999 quantile of chi-square is 24.32.
    for (float temp : {1.0f, 0.5f, 2.0f}) {
        Sampler s(plain(temp, 99), (int32_t)logits.size());
        std::vector<long> counts = draw_counts(s, logits, n);
        std::vector<double> p = softmax(logits, temp);
        double chi = chi_square(counts, p, n);
        print_message("temperature %.1f: chi-square %.2f\n", temp, chi);
        assert_true(chi < 24.32);
        for (size_t i = 0; i < p.size(); i++)
            assert_true(std::fabs((double)counts[i] / n - p[i]) < 0.01);
    }
}

static void test_top_k(void** state) {
    (void)state;
    // top-k = 1 is greedy whatever the temperature.
    for (uint32_t trial = 0; trial < 50; trial++) {
        std::vector<float> logits = make_logits(2000, 100 + trial, 1.0f);
        std::vector<float> copy = logits;
        Sampler greedy(plain(0.0f), 2000);
        SamplingParams p = plain(1.5f, trial);
        p.top_k = 1;
        Sampler k1(p, 2000);
        assert_int_equal(k1.sample(logits.data(), nullptr, 0), greedy.sample(copy.data(), nullptr, 0));
    }
    // top-k = 3 draws only the three best, in softmax proportion among them.
    const std::vector<float> logits = {0.1f, 2.0f, 1.9f, 0.0f, 1.8f, 1.7f, -1.0f};
    SamplingParams p = plain(1.0f, 5);
    p.top_k = 3;
    Sampler s(p, (int32_t)logits.size());
    const long n = 60000;
    std::vector<long> counts = draw_counts(s, logits, n);
    std::vector<float> top = {2.0f, 1.9f, 1.8f};
    std::vector<double> q = softmax(top, 1.0);
    std::vector<double> expect = {0, q[0], q[1], 0, q[2], 0, 0};
    assert_true(chi_square(counts, expect, n) < 13.82);  // 2 dof, 0.999
}

// Logits whose softmax is exactly the given probabilities.
static std::vector<float> log_probs(const std::vector<double>& p) {
    std::vector<float> v;
    for (double x : p) v.push_back((float)std::log(x));
    return v;
}

static void test_top_p_keeps_nucleus(void** state) {
    (void)state;
    // Cumulative 0.5, 0.7, 0.85 >= 0.8: the nucleus is {0, 1, 2} (order shuffled).
    const std::vector<double> probs = {0.1, 0.5, 0.05, 0.15, 0.2};
    const std::vector<float> logits = log_probs(probs);
    SamplingParams p = plain(1.0f, 17);
    p.top_p = 0.8f;
    Sampler s(p, 5);
    const long n = 50000;
    std::vector<long> counts = draw_counts(s, logits, n);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[2], 0);
    std::vector<double> expect = {0, 0.5 / 0.85, 0, 0.15 / 0.85, 0.2 / 0.85};
    assert_true(chi_square(counts, expect, n) < 13.82);

    // The top token alone reaches p: only it is drawn.
    p.top_p = 0.45f;
    Sampler one(p, 5);
    counts = draw_counts(one, logits, 5000);
    assert_int_equal(counts[1], 5000);
}

static void test_top_p_large_vocab(void** state) {
    (void)state;
    // A flat-ish distribution over 1500 tokens: nuclei of hundreds of tokens,
    // past the sampler's short sorted prefix, so its quickselect finds the cut.
    // The draw runs at a huge temperature, which makes it uniform over the
    // survivors (top-p is judged before temperature): with ~30 draws per kept
    // token, every kept token shows up, so the drawn set IS the kept set.
    const size_t n_vocab = 1500;
    std::vector<float> logits = make_logits(n_vocab, 3, 2.0f);
    std::vector<double> pr = softmax(logits, 1.0);
    std::vector<int32_t> order(n_vocab);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (float top_p : {0.3f, 0.75f, 0.97f}) {
        std::vector<char> in_nucleus(n_vocab, 0);
        double cum = 0;
        size_t nucleus = 0;
        for (int32_t t : order) {
            in_nucleus[t] = 1;
            nucleus++;
            if ((cum += pr[t]) >= top_p) break;
        }
        assert_true(nucleus > 100 && nucleus < n_vocab);
        // The cut is not so close to p that float rounding could move it.
        assert_true(cum > top_p + 1e-5 && cum - pr[order[nucleus - 1]] < top_p - 1e-5);
        SamplingParams p = plain(1e30f, 8);
        p.top_p = top_p;
        Sampler s(p, (int32_t)n_vocab);
        std::vector<long> counts = draw_counts(s, logits, (long)nucleus * 30);
        for (size_t t = 0; t < n_vocab; t++) {
            if (in_nucleus[t] != (counts[t] > 0))
                fail_msg("top_p %.2f: token %zu in nucleus %d but drawn %ld times", top_p, t, in_nucleus[t], counts[t]);
        }
    }
}

static void test_min_p(void** state) {
    (void)state;
    // min_p 0.3 of p_max 0.4 is 0.12: tokens with 0.1 and 0.05 are dropped.
    const std::vector<double> probs = {0.1, 0.3, 0.4, 0.05, 0.15};
    const std::vector<float> logits = log_probs(probs);
    SamplingParams p = plain(1.0f, 21);
    p.min_p = 0.3f;
    Sampler s(p, 5);
    const long n = 50000;
    std::vector<long> counts = draw_counts(s, logits, n);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[3], 0);
    std::vector<double> expect = {0, 0.3 / 0.85, 0.4 / 0.85, 0, 0.15 / 0.85};
    assert_true(chi_square(counts, expect, n) < 13.82);

    // The same after top-k (the sorted path) and with min_p = 1 (only the max).
    p.top_k = 4;
    Sampler sk(p, 5);
    counts = draw_counts(sk, logits, 20000);
    assert_int_equal(counts[0], 0);
    assert_int_equal(counts[3], 0);
    assert_true(counts[1] > 0 && counts[2] > 0 && counts[4] > 0);
    p.min_p = 1.0f;
    Sampler s1(p, 5);
    counts = draw_counts(s1, logits, 2000);
    assert_int_equal(counts[2], 2000);
}

static void test_chain_order(void** state) {
    (void)state;
    // top-p is judged before temperature: at temperature 5 the distribution
    // is nearly flat, yet tokens outside the (temperature 1) nucleus never appear.
    const std::vector<double> probs = {0.6, 0.3, 0.06, 0.04};
    const std::vector<float> logits = log_probs(probs);
    SamplingParams p = plain(5.0f, 3);
    p.top_p = 0.85f;
    Sampler s(p, 4);
    std::vector<long> counts = draw_counts(s, logits, 20000);
    assert_int_equal(counts[2] + counts[3], 0);
    // Among the two kept, temperature 5 flattens 0.6 : 0.3 to 2^(1/5) : 1.
    double ratio = (double)counts[0] / (double)counts[1];
    assert_true(std::fabs(ratio - std::pow(2.0, 0.2)) < 0.06);
}

static void test_repetition_penalty(void** state) {
    (void)state;
    SamplingParams p = plain(0.0f);
    p.repeat_penalty = 1.5f;
    Sampler s(p, 3);
    // Positive logit divided: 2.0 / 1.5 = 1.33 < 1.9, so token 1 wins.
    std::vector<float> l = {2.0f, 1.9f, 0.5f};
    const int32_t hist0[] = {0};
    assert_int_equal(s.sample(l.data(), hist0, 1), 1);
    assert_true(std::fabs(l[0] - 2.0f / 1.5f) < 1e-6f);
    // Without the penalty token 0 wins.
    Sampler off(plain(0.0f), 3);
    l = {2.0f, 1.9f, 0.5f};
    assert_int_equal(off.sample(l.data(), hist0, 1), 0);
    // Negative logit multiplied: -1.0 * 1.5 = -1.5 < -1.2.
    l = {-1.0f, -1.2f, -3.0f};
    assert_int_equal(s.sample(l.data(), hist0, 1), 1);
    // Once per distinct token: 2.0 / 1.5 = 1.33 > 1.0 (2.0 / 1.5^3 would be 0.59).
    l = {2.0f, 1.0f, 0.5f};
    const int32_t hist000[] = {0, 0, 0};
    assert_int_equal(s.sample(l.data(), hist000, 3), 0);
    assert_true(std::fabs(l[0] - 2.0f / 1.5f) < 1e-6f);
    // Only the last repeat_last_n tokens count.
    p.repeat_last_n = 2;
    Sampler win(p, 3);
    l = {2.0f, 1.9f, 0.5f};
    const int32_t hist_old[] = {0, 2, 2};
    assert_int_equal(win.sample(l.data(), hist_old, 3), 0);
    // -1 = the whole history; 0 = off.
    p.repeat_last_n = -1;
    Sampler all(p, 3);
    l = {2.0f, 1.9f, 0.5f};
    const int32_t hist_long[] = {0, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
                                 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
                                 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
                                 2, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    assert_int_equal(all.sample(l.data(), hist_long, sizeof hist_long / sizeof hist_long[0]), 1);
    p.repeat_last_n = 0;
    Sampler zero(p, 3);
    l = {2.0f, 1.9f, 0.5f};
    assert_int_equal(zero.sample(l.data(), hist0, 1), 0);
    // Ids outside the vocabulary in the history are ignored.
    const int32_t bad_hist[] = {-1, 3, 1000};
    l = {2.0f, 1.9f, 0.5f};
    assert_int_equal(s.sample(l.data(), bad_hist, 3), 0);
    // The penalty also applies before a random draw: with top_k 1 the
    // penalized token loses.
    p.repeat_last_n = 64;
    p.temperature = 1.0f;
    p.top_k = 1;
    Sampler k1(p, 3);
    l = {2.0f, 1.9f, 0.5f};
    assert_int_equal(k1.sample(l.data(), hist0, 1), 1);
}

static void test_odd_logits(void** state) {
    (void)state;
    // -inf tokens are never drawn, with or without truncation.
    const std::vector<float> masked = {-INFINITY, 1.0f, -INFINITY, 1.0f, -INFINITY};
    for (int variant = 0; variant < 3; variant++) {
        SamplingParams p = plain(0.7f, 11);
        if (variant == 1) p.top_k = 4;
        if (variant == 2) p.top_p = 0.9f, p.min_p = 0.1f;
        Sampler s(p, 5);
        std::vector<long> counts = draw_counts(s, masked, 10000);
        assert_int_equal(counts[0] + counts[2] + counts[4], 0);
        assert_true(counts[1] > 4500 && counts[3] > 4500);
    }
    // All equal: uniform.
    const std::vector<float> flat(10, 3.0f);
    Sampler u(plain(1.0f, 12), 10);
    std::vector<long> counts = draw_counts(u, flat, 100000);
    std::vector<double> uniform(10, 0.1);
    assert_true(chi_square(counts, uniform, 100000) < 27.88);  // 9 dof, 0.999
    // All -inf: still a valid id; greedy gives 0.
    const std::vector<float> dead(6, -INFINITY);
    Sampler d(plain(1.0f, 13), 6);
    counts = draw_counts(d, dead, 100);
    Sampler dg(plain(0.0f), 6);
    std::vector<float> w = dead;
    assert_int_equal(dg.sample(w.data(), nullptr, 0), 0);
    // NaN is treated as -inf; +inf takes everything.
    const std::vector<float> odd = {NAN, 0.5f, INFINITY, 0.2f};
    SamplingParams p = plain(1.0f, 14);
    p.top_p = 0.5f;
    Sampler o(p, 4);
    counts = draw_counts(o, odd, 1000);
    assert_int_equal(counts[2], 1000);
    const std::vector<float> nan_one = {NAN, 0.5f, 0.4f};
    Sampler g(plain(0.0f), 3);
    w = nan_one;
    assert_int_equal(g.sample(w.data(), nullptr, 0), 1);
    Sampler r(plain(1.0f, 15), 3);
    counts = draw_counts(r, nan_one, 2000);
    assert_int_equal(counts[0], 0);
    // A vanishing temperature behaves like greedy.
    Sampler tiny(plain(1e-30f, 16), 3);
    counts = draw_counts(tiny, nan_one, 200);
    assert_int_equal(counts[1], 200);
}

static void expect_invalid(SamplingParams p, const char* field) {
    const char* msg = mw::validate_sampling(p);
    if (std::strstr(msg, field) == nullptr) fail_msg("expected a message naming %s, got \"%s\"", field, msg);
    bool threw = false;
    try {
        Sampler s(p, 10);
    } catch (const mw::Error& e) {
        threw = true;
        assert_int_equal(e.status(), MW_ERR_INVALID_ARGUMENT);
        assert_non_null(std::strstr(e.what(), field));
    }
    assert_true(threw);
}

static void test_validation(void** state) {
    (void)state;
    SamplingParams ok;
    assert_string_equal(mw::validate_sampling(ok), "");
    ok.temperature = 0.0f;
    ok.top_p = 1.0f;
    ok.min_p = 1.0f;
    ok.repeat_last_n = -1;
    assert_string_equal(mw::validate_sampling(ok), "");

    SamplingParams p;
    p.temperature = -0.1f; expect_invalid(p, "temperature");
    p.temperature = NAN; expect_invalid(p, "temperature");
    p.temperature = INFINITY; expect_invalid(p, "temperature");
    p = SamplingParams(); p.top_k = -1; expect_invalid(p, "top_k");
    p = SamplingParams(); p.top_p = 0.0f; expect_invalid(p, "top_p");
    p = SamplingParams(); p.top_p = 1.01f; expect_invalid(p, "top_p");
    p = SamplingParams(); p.top_p = NAN; expect_invalid(p, "top_p");
    p = SamplingParams(); p.min_p = -0.01f; expect_invalid(p, "min_p");
    p = SamplingParams(); p.min_p = 1.5f; expect_invalid(p, "min_p");
    p = SamplingParams(); p.min_p = NAN; expect_invalid(p, "min_p");
    p = SamplingParams(); p.repeat_penalty = 0.0f; expect_invalid(p, "repeat_penalty");
    p = SamplingParams(); p.repeat_penalty = -1.0f; expect_invalid(p, "repeat_penalty");
    p = SamplingParams(); p.repeat_penalty = NAN; expect_invalid(p, "repeat_penalty");
    p = SamplingParams(); p.repeat_last_n = -2; expect_invalid(p, "repeat_last_n");
    // The message carries the value.
    p = SamplingParams(); p.top_k = -7;
    assert_non_null(std::strstr(mw::validate_sampling(p), "-7"));
    // n_vocab must be positive.
    bool threw = false;
    try {
        Sampler s(SamplingParams(), 0);
    } catch (const mw::Error& e) {
        threw = true;
        assert_non_null(std::strstr(e.what(), "n_vocab"));
    }
    assert_true(threw);
}

static void test_no_allocation(void** state) {
    (void)state;
    const size_t n_vocab = 49152;
    std::vector<float> logits = make_logits(n_vocab, 77, 8.0f);
    std::vector<float> work(n_vocab);
    std::vector<int32_t> history(200);
    for (size_t i = 0; i < history.size(); i++) history[i] = (int32_t)((i * 7919) % n_vocab);
    SamplingParams configs[4] = {SamplingParams(), plain(0.0f), plain(1.0f), plain(0.9f)};
    configs[0].repeat_penalty = 1.1f;
    configs[3].top_p = 0.8f;
    configs[3].min_p = 0.02f;
    for (SamplingParams& p : configs) {
        Sampler s(p, (int32_t)n_vocab);
        long before = g_allocs.load();
        for (int i = 0; i < 20; i++) {
            std::memcpy(work.data(), logits.data(), n_vocab * sizeof(float));
            int32_t t = s.sample(work.data(), history.data(), history.size());
            assert_true(t >= 0 && (size_t)t < n_vocab);
        }
        assert_int_equal(g_allocs.load() - before, 0);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_greedy_picks_argmax),
        cmocka_unit_test(test_seed_reproducible),
        cmocka_unit_test(test_golden_sequence),
        cmocka_unit_test(test_distribution_matches_softmax),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_top_p_keeps_nucleus),
        cmocka_unit_test(test_top_p_large_vocab),
        cmocka_unit_test(test_min_p),
        cmocka_unit_test(test_chain_order),
        cmocka_unit_test(test_repetition_penalty),
        cmocka_unit_test(test_odd_logits),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_no_allocation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
