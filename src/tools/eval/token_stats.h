// Per-position arithmetic on next-token distributions, from raw logits:
// log-softmax normaliser, full-vocabulary KL, top-K extraction and the top-K
// + remainder KL approximation. Sums in double, exponentials in float (as
// llama.cpp's perplexity tool does).
#pragma once

#include <cstdint>
#include <vector>

namespace mw::eval {

struct Normalizer {
    double lse = 0;       // log(sum(exp(logits))): log p_i = logits[i] - lse
    int32_t argmax = 0;   // lowest index among the largest logits
};

Normalizer normalize(const float* logits, int32_t n_vocab);

// KL(P || Q) = sum_i p_i (log p_i - log q_i) over the whole vocabulary.
double kl_full(const float* p_logits, const Normalizer& p, const float* q_logits, const Normalizer& q,
               int32_t n_vocab);

// The k most probable tokens, by decreasing log-probability (ties: lower id
// first); *rest_mass = the summed probability of every other token (summed
// directly, so a tiny remainder keeps its precision).
void top_k(const float* logits, const Normalizer& norm, int32_t n_vocab, int32_t k, int32_t* ids, float* logprobs,
           double* rest_mass, std::vector<int32_t>* scratch);

// KL(P || Q) from P's top-K only: the K tokens exactly, plus one bucket for
// everything else (P's remaining mass against Q's mass outside those K ids).
// By the log-sum inequality this is a lower bound on the full KL, equal to it
// when the top K hold all of P's mass.
double kl_top_k(const int32_t* ids, const float* p_logprobs, int32_t k, double p_rest, const float* q_logits,
                const Normalizer& q);

// Percentile of sorted values with linear interpolation between neighbours
// (llama.cpp's definition). values must be sorted and non-empty.
double percentile(const std::vector<double>& sorted, double fraction);

}  // namespace mw::eval
