// Sampler: picks the next token from a row of logits. Greedy when temperature
// is 0; otherwise the chain repetition penalty -> top-k -> top-p -> min-p ->
// temperature -> draw, in llama.cpp's order. A seeded generator of our own
// (not std::) makes runs reproducible across platforms and library versions.
// Works in a scratch buffer sized once, so sampling allocates nothing per token.
#pragma once

#include <cstdint>
#include <vector>

namespace mw {

struct SamplingParams {
    float temperature = 0.8f;
    int32_t top_k = 40;
    float top_p = 0.95f;
    float min_p = 0.05f;
    float repeat_penalty = 1.0f;
    int32_t repeat_last_n = 64;
    uint64_t seed = 0;
};

// Returns "" when valid, else a message naming the bad field and value.
const char* validate_sampling(const SamplingParams& p);

class Sampler {
public:
    Sampler(const SamplingParams& params, int32_t n_vocab);
    // logits: n_vocab floats (modified in place: penalties, temperature).
    // history: previously seen tokens (prompt + generated), for the penalty.
    int32_t sample(float* logits, const int32_t* history, size_t n_history);

private:
    double next_uniform();  // [0, 1)
    SamplingParams params_;
    int32_t n_vocab_;
    uint64_t rng_state_;
    std::vector<int32_t> idx_;
    std::vector<float> probs_;
};

}  // namespace mw
