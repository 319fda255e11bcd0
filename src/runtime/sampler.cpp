// Sampler implementation. The chain follows llama.cpp's default order
// (penalties -> top-k -> top-p -> min-p -> temperature -> dist):
//  - the repetition penalty edits the logits of tokens seen in the last
//    repeat_last_n tokens (divide positive, multiply non-positive, once each);
//  - top-k, top-p and min-p shrink a candidate list cand_[0..m), judged on the
//    softmax of the logits *before* temperature (temperature comes last);
//  - the draw uses the softmax of logit / temperature over the survivors.
// Weights are kept unnormalized (exp(logit - max)) with sums in double, so no
// pass divides by the total. Nothing sorts the whole vocabulary: top-k is a
// partial sort of k, top-p a branch-free quickselect that carries the weight
// sums. The candidates' order before the draw is fully determined (ties
// broken by id), so a seed gives the same tokens on every platform.
#include "runtime/sampler.h"

#include "base/error.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace mw {

const char* validate_sampling(const SamplingParams& p) {
    thread_local char msg[160];
    msg[0] = '\0';
    if (!std::isfinite(p.temperature) || p.temperature < 0.0f)
        std::snprintf(msg, sizeof msg, "temperature must be finite and >= 0 (got %g)", (double)p.temperature);
    else if (p.top_k < 0)
        std::snprintf(msg, sizeof msg, "top_k must be >= 0 (got %d)", (int)p.top_k);
    else if (!(p.top_p > 0.0f && p.top_p <= 1.0f))  // also rejects NaN
        std::snprintf(msg, sizeof msg, "top_p must be in (0, 1] (got %g)", (double)p.top_p);
    else if (!(p.min_p >= 0.0f && p.min_p <= 1.0f))
        std::snprintf(msg, sizeof msg, "min_p must be in [0, 1] (got %g)", (double)p.min_p);
    else if (!std::isfinite(p.repeat_penalty) || p.repeat_penalty <= 0.0f)
        std::snprintf(msg, sizeof msg, "repeat_penalty must be finite and > 0 (got %g)", (double)p.repeat_penalty);
    else if (p.repeat_last_n < -1)
        std::snprintf(msg, sizeof msg, "repeat_last_n must be >= -1 (got %d)", (int)p.repeat_last_n);
    return msg;
}

namespace {

uint64_t splitmix64(uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// Highest logit first; ties by lower id, so the order is total and every
// result deterministic (logits hold no NaN by then). Bitwise, not short-circuit,
// operators: the partition below must not branch on it.
template <class C>
bool better(const C& a, const C& b) {
    return (a.logit > b.logit) | ((a.logit == b.logit) & (a.id < b.id));
}

// Writes exp((logit - max) / temp) into each candidate of c[0..m) and returns
// their sum. `sorted`: c[0] is known to hold the max. An infinite max (all
// -inf, or some +inf) gives the candidates equal to it weight 1, the rest 0.
template <class C>
double set_weights(C* c, size_t m, bool sorted, float temp) {
    float mx = -INFINITY;
    if (sorted) {
        mx = c[0].logit;
    } else {
        for (size_t i = 0; i < m; i++) mx = std::max(mx, c[i].logit);
    }
    double sum = 0.0;
    if (std::isinf(mx)) {
        for (size_t i = 0; i < m; i++) sum += (c[i].weight = c[i].logit == mx ? 1.0f : 0.0f);
        return sum;
    }
    // Divide rather than multiply by 1/temp: 1/temp overflows for tiny temps.
    for (size_t i = 0; i < m; i++) sum += (c[i].weight = std::exp((c[i].logit - mx) / temp));
    return sum;
}

// Among c[lo..hi) (all worse than c[0..lo), whose weights sum to cum), finds
// the fewest best candidates whose weights bring the sum to goal, moves them
// to the front of the range and returns the end of the kept range. A
// quickselect: each round partitions around a median-of-three pivot and keeps
// only the side where the cut falls, so it costs about two passes in all. The
// partition is branch-free (a coin-flip branch per token would dominate).
template <class C>
size_t select_nucleus(C* c, size_t lo, size_t hi, double cum, double goal) {
    int rounds_left = 64;  // then sort what is left: bounds the worst case
    while (hi - lo > 32 && rounds_left-- > 0) {
        const C& a = c[lo];
        const C& b = c[lo + (hi - lo) / 2];
        const C& d = c[hi - 1];
        // The median of three distinct candidates: one is worse, so the split
        // below always falls strictly inside (lo, hi).
        const C pivot = better(a, b) ? (better(b, d) ? b : (better(a, d) ? d : a))
                                     : (better(a, d) ? a : (better(b, d) ? d : b));
        // Lomuto: c[lo..store) ends up holding the candidates not worse than
        // the pivot.
        size_t store = lo;
        for (size_t i = lo; i < hi; i++) {
            const C x = c[i];
            const bool keep = !better(pivot, x);
            c[i] = c[store];
            c[store] = x;
            store += keep;
        }
        double s = 0.0;  // their weight
        for (size_t i = lo; i < store; i++) s += c[i].weight;
        if (cum + s >= goal) {
            hi = store;  // the cut is inside [lo, store)
        } else {
            cum += s;
            lo = store;
        }
    }
    std::sort(c + lo, c + hi, [](const C& x, const C& y) { return better(x, y); });
    for (size_t i = lo; i < hi; i++) {
        cum += c[i].weight;
        if (cum >= goal) return i + 1;
    }
    return hi;  // rounding kept cum below goal: keep the whole range
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t n_vocab, std::pmr::memory_resource* mr)
    : params_(params), n_vocab_(n_vocab), cand_(mr), seen_(mr) {
    const char* err = validate_sampling(params);
    if (err[0] != '\0') fail(MW_ERR_INVALID_ARGUMENT, err);
    if (n_vocab <= 0) fail(MW_ERR_INVALID_ARGUMENT, "sampler: n_vocab must be > 0 (got " + std::to_string(n_vocab) + ")");
    uint64_t s = params.seed;
    for (uint64_t& r : rng_) r = splitmix64(s);  // splitmix64 outputs are never all zero
    cand_.resize((size_t)n_vocab);
    seen_.assign((size_t)n_vocab, 0);
}

uint64_t Sampler::next_u64() {
    const uint64_t result = rotl(rng_[1] * 5, 7) * 9;
    const uint64_t t = rng_[1] << 17;
    rng_[2] ^= rng_[0];
    rng_[3] ^= rng_[1];
    rng_[1] ^= rng_[2];
    rng_[0] ^= rng_[3];
    rng_[2] ^= t;
    rng_[3] = rotl(rng_[3], 45);
    return result;
}

double Sampler::next_uniform() { return (double)(next_u64() >> 11) * 0x1.0p-53; }

void Sampler::apply_penalty(float* logits, const int32_t* history, size_t n_history) {
    const float pen = params_.repeat_penalty;
    if (pen == 1.0f || params_.repeat_last_n == 0 || n_history == 0) return;
    size_t n = n_history;
    if (params_.repeat_last_n > 0) n = std::min(n, (size_t)params_.repeat_last_n);
    const int32_t* h = history + (n_history - n);
    for (size_t i = 0; i < n; i++) {
        int32_t t = h[i];
        if (t < 0 || t >= n_vocab_ || seen_[t]) continue;
        seen_[t] = 1;
        // Dividing a negative logit would make the token *more* likely.
        logits[t] = logits[t] <= 0.0f ? logits[t] * pen : logits[t] / pen;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t t = h[i];
        if (t >= 0 && t < n_vocab_) seen_[t] = 0;
    }
}

int32_t Sampler::sample(float* logits, const int32_t* history, size_t n_history) {
    const size_t n = (size_t)n_vocab_;
    apply_penalty(logits, history, n_history);

    if (params_.temperature == 0.0f) {
        // Four running maxima break the dependency chain of a single one; NaN
        // never compares greater, so it is never chosen. Then the first index
        // holding the max: the lowest id wins ties.
        float mx[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
        size_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (size_t k = 0; k < 4; k++)
                if (logits[i + k] > mx[k]) mx[k] = logits[i + k];
        for (; i < n; i++)
            if (logits[i] > mx[0]) mx[0] = logits[i];
        const float best = std::max(std::max(mx[0], mx[1]), std::max(mx[2], mx[3]));
        for (i = 0; i < n; i++)
            if (logits[i] == best) return (int32_t)i;
        return 0;  // all NaN
    }

    // NaN would break the ordering the sorts rely on: it becomes -inf.
    Candidate* c = cand_.data();
    for (size_t i = 0; i < n; i++)
        c[i] = Candidate{std::isnan(logits[i]) ? -INFINITY : logits[i], 0.0f, (int32_t)i};
    auto cmp = [](const Candidate& a, const Candidate& b) { return better(a, b); };
    size_t m = n;       // candidates still in play: c[0..m)
    size_t sorted = 0;  // c[0..sorted) are the best ones, in order

    // top-k: keep the k highest logits.
    if (params_.top_k > 0 && (size_t)params_.top_k < m) {
        std::partial_sort(c, c + params_.top_k, c + m, cmp);
        m = sorted = (size_t)params_.top_k;
    }

    // top-p: the smallest prefix (by probability) whose mass reaches p. Found
    // by selection, not by sorting: the kept tokens end up first, in an order
    // fixed by this code alone (not by the standard library's sort), so a
    // seed draws the same token everywhere.
    if (params_.top_p < 1.0f) {
        const double goal = (double)params_.top_p * set_weights(c, m, sorted > 0, 1.0f);
        const bool was_sorted = sorted == m;
        m = select_nucleus(c, 0, m, 0.0, goal);
        sorted = was_sorted ? m : 0;  // selecting keeps sorted input sorted
    }

    // min-p: drop tokens whose probability is below min_p times the largest.
    if (params_.min_p > 0.0f) {
        set_weights(c, m, sorted > 0, 1.0f);
        float wmax = 0.0f;
        for (size_t i = 0; i < m; i++) wmax = std::max(wmax, c[i].weight);
        const float floor = params_.min_p * wmax;
        // Compact the survivors in place, keeping their order (so a sorted
        // prefix stays sorted: min-p only ever drops its tail).
        size_t keep = 0;
        for (size_t i = 0; i < m; i++)
            if (c[i].weight >= floor) c[keep++] = c[i];
        sorted = std::min(sorted, keep);
        m = keep;  // >= 1: the largest weight always passes
    }

    // temperature, then the draw over what is left.
    const double total = set_weights(c, m, sorted > 0, params_.temperature);
    const double r = next_uniform() * total;
    double cum = 0.0;
    int32_t last_positive = c[0].id;
    for (size_t i = 0; i < m; i++) {
        if (c[i].weight <= 0.0f) continue;
        cum += c[i].weight;
        last_positive = c[i].id;
        if (cum > r) return c[i].id;
    }
    return last_positive;  // r rounded up to the total
}

}  // namespace mw
