// Emulation of how llama.cpp's llama-perplexity stores a KL base
// (--kl-divergence-base) and sums KL against it (--kl-divergence), so that
// memwise's KL can be compared with llama.cpp's number for number. Not the
// default: memwise's own KL uses the reference's exact log-probabilities.
//
// Per position llama-perplexity keeps the base's log-probabilities as 16-bit
// steps: lo = max(smallest logit, largest logit - 16); every logit above lo
// becomes round((logit - lo) / scale) with scale = (max - lo) / 65535, every
// other one step 0; the stored log-probability of step s is
// scale * s + (lo - max - log Σ exp(logit - max)). KL then sums
// p (log p - log q) only over tokens whose stored log-probability is above
// -16 nats (tokens clamped to step 0 under a 16-nat range fall below that), and
// the base's perplexity and argmax ("Same top p") come from the stored values.
// Arithmetic in float where llama.cpp uses float, sums in double.
#pragma once

#include "tools/eval/token_stats.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mw::eval {

// Tokens at or below this stored log-probability (nats) are left out of KL.
constexpr float kRoundedBaseFloor = -16.0f;

struct RoundedBase {
    float scale = 0;          // nats per step (0 when every logit is equal)
    float min_log_prob = 0;   // log-probability of step 0
    std::vector<uint16_t> steps;

    float logprob(int32_t i) const { return scale * (float)steps[(size_t)i] + min_log_prob; }
    // The first token with the largest stored log-probability.
    int32_t argmax() const;
};

// Stores the distribution of logits[0..n_vocab) as llama-perplexity does.
void round_base(const float* logits, int32_t n_vocab, RoundedBase* out);

// KL(P || Q) with P the stored base, summed as llama-perplexity does (tokens
// with a stored log-probability <= kRoundedBaseFloor left out).
double kl_rounded_base(const RoundedBase& p, const float* q_logits, const Normalizer& q, int32_t n_vocab);

}  // namespace mw::eval
