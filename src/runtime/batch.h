// Batch: the tokens one forward step runs, from any number of sequences.
#pragma once

#include "kv/kv_cache.h"

#include <cstdint>
#include <vector>

namespace mw {

struct LoraBinding;

struct BatchToken {
    int32_t token;
    int32_t pos;          // position in its sequence
    int32_t seq;          // index into Batch::tables
    bool want_logits;     // produce a logits row for this token
    // Part of a prompt of two or more tokens: its attention sums in the order
    // a whole-prompt pass uses, even when the prompt arrives in chunks that
    // share steps with other sequences (so results never depend on them).
    bool prompt = false;
    // A generated token run again after its sequence was preempted (recompute):
    // its attention takes the single-token order it had when it was first
    // decoded, even inside a run of several tokens, so its K/V come out the same.
    bool decode = false;
};

struct Batch {
    std::vector<BatchToken> tokens;
    // Block table of each sequence in the batch. A sequence's tokens in one
    // batch have consecutive positions and its table already covers them.
    std::vector<BlockTable*> tables;
    // The LoRA adapter each sequence runs with (nullptr: none); may be shorter
    // than tables (missing entries: none).
    std::vector<const LoraBinding*> loras;

    void clear() {
        tokens.clear();
        tables.clear();
        loras.clear();
    }
    int32_t n_logits() const {
        int32_t n = 0;
        for (const auto& t : tokens) n += t.want_logits ? 1 : 0;
        return n;
    }
};

}  // namespace mw
