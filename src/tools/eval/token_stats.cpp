#include "tools/eval/token_stats.h"

#include <algorithm>
#include <cmath>

namespace mw::eval {

Normalizer normalize(const float* logits, int32_t n_vocab) {
    Normalizer r;
    float mx = logits[0];
    for (int32_t i = 1; i < n_vocab; i++)
        if (logits[i] > mx) { mx = logits[i]; r.argmax = i; }
    double sum = 0;
    for (int32_t i = 0; i < n_vocab; i++) sum += std::exp(logits[i] - mx);
    r.lse = (double)mx + std::log(sum);
    return r;
}

double kl_full(const float* p_logits, const Normalizer& p, const float* q_logits, const Normalizer& q,
               int32_t n_vocab) {
    double kl = 0;
    for (int32_t i = 0; i < n_vocab; i++) {
        const double lp = (double)p_logits[i] - p.lse;
        const double lq = (double)q_logits[i] - q.lse;
        kl += (double)std::exp((float)lp) * (lp - lq);
    }
    // Rounding can leave a tiny negative value for identical distributions.
    return std::max(0.0, kl);
}

void top_k(const float* logits, const Normalizer& norm, int32_t n_vocab, int32_t k, int32_t* ids, float* logprobs,
           double* rest_mass, std::vector<int32_t>* scratch) {
    std::vector<int32_t>& idx = *scratch;
    idx.resize((size_t)n_vocab);
    for (int32_t i = 0; i < n_vocab; i++) idx[(size_t)i] = i;
    auto before = [logits](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), before);
    for (int32_t j = 0; j < k; j++) {
        const int32_t id = idx[(size_t)j];
        ids[j] = id;
        logprobs[j] = (float)((double)logits[id] - norm.lse);
    }
    double rest = 0;
    for (int32_t j = k; j < n_vocab; j++) rest += std::exp((double)logits[idx[(size_t)j]] - norm.lse);
    *rest_mass = rest;
}

double kl_top_k(const int32_t* ids, const float* p_logprobs, int32_t k, double p_rest, const float* q_logits,
                const Normalizer& q) {
    double kl = 0, q_top = 0;
    for (int32_t j = 0; j < k; j++) {
        const double lp = p_logprobs[j];
        const double lq = (double)q_logits[ids[j]] - q.lse;
        kl += std::exp(lp) * (lp - lq);
        q_top += std::exp(lq);
    }
    // The remainder bucket; Q's outside mass is kept above zero so a Q that
    // puts (numerically) everything on P's top K gives a large, finite term.
    const double q_rest = std::max(1e-30, 1.0 - q_top);
    if (p_rest > 0) kl += p_rest * std::log(p_rest / q_rest);
    return std::max(0.0, kl);
}

double percentile(const std::vector<double>& sorted, double fraction) {
    if (fraction <= 0) return sorted.front();
    if (fraction >= 1) return sorted.back();
    const double p = fraction * (double)(sorted.size() - 1);
    const size_t i = (size_t)p;
    const double t = p - (double)i;
    return (1 - t) * sorted[i] + t * sorted[std::min(i + 1, sorted.size() - 1)];
}

}  // namespace mw::eval
