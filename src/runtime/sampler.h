// Sampler: picks the next token from a row of logits. Repetition penalty, then
// greedy when temperature is 0; otherwise top-k -> top-p -> min-p ->
// temperature -> draw, in llama.cpp's order. A seeded generator of our own
// (not std::) makes runs reproducible across platforms and library versions.
// Works in a scratch buffer sized once, so sampling allocates nothing per token.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
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

// Returns "" when valid, else a message naming the bad field and value (a
// thread-local buffer, valid until the next call on the same thread).
const char* validate_sampling(const SamplingParams& p);

class Sampler {
public:
    // Throws mw::Error(MW_ERR_INVALID_ARGUMENT) for invalid params or n_vocab <= 0.
    // params.seed must be concrete (the caller resolves MW_SEED_RANDOM).
    // Scratch (about 13 bytes per vocabulary entry) comes from mr: the engine's heap.
    Sampler(const SamplingParams& params, int32_t n_vocab,
            std::pmr::memory_resource* mr = std::pmr::get_default_resource());
    // logits: n_vocab floats (modified in place by the repetition penalty; a
    // NaN counts as -inf). history: previously seen tokens (prompt +
    // generated), for the penalty; ids outside [0, n_vocab) are ignored.
    // Allocates nothing.
    int32_t sample(float* logits, const int32_t* history, size_t n_history);
    // sample() is then the plain argmax (greedy_argmax in step_executor.h).
    bool greedy() const { return params_.temperature == 0.0f && params_.repeat_penalty == 1.0f; }

private:
    // One candidate token: its logit and its softmax weight (exp(logit - max)),
    // kept side by side so the partial sorts move contiguous data.
    struct Candidate {
        float logit;
        float weight;
        int32_t id;
    };
    uint64_t next_u64();    // xoshiro256**
    double next_uniform();  // [0, 1)
    void apply_penalty(float* logits, const int32_t* history, size_t n_history);
    SamplingParams params_;
    int32_t n_vocab_;
    uint64_t rng_[4];
    std::pmr::vector<Candidate> cand_;  // n_vocab entries; a prefix of them is kept
    std::pmr::vector<uint8_t> seen_;    // by token id: penalized already this call
};

}  // namespace mw
