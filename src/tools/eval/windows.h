// The windows of evaluation and distillation export, and WindowRunner, which
// runs one window through one model's executor and exposes the logits of its
// scored positions.
//
// A window is a slice of the token stream (the text tokenized with BOS where
// the model adds one), run from an empty KV cache with its first token
// replaced by BOS where the model adds one. It scores a contiguous range of
// its positions: the logits at window position p predict the token at p + 1.
//
// Two plans:
//  - evaluation (llama.cpp's llama-perplexity without --ppl-stride):
//    n_tokens / n_ctx non-overlapping windows of n_ctx tokens, positions
//    n_ctx/2 .. n_ctx-2 of each scored, the tail that fills no window unused;
//  - export (distillation export format 2): window 0 = tokens 0 .. n_ctx-1
//    scoring all its positions 0 .. n_ctx-2; window w > 0 starts at
//    w * (n_ctx/2), or at n_tokens - n_ctx when that is earlier (the last
//    window ends at the last token), and scores only the positions no earlier
//    window scored. Every stream position 0 .. n_tokens-2 is scored exactly
//    once, in order; outside window 0 each with at least n_ctx/2 tokens of
//    input. A text shorter than n_ctx is one window of all its tokens.
#pragma once

#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/executor.h"
#include "runtime/thread_pool.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace mw::eval {

struct Window {
    int64_t start = 0;       // stream offset of the window's token 0
    int32_t n_tokens = 0;    // tokens fed
    int32_t first = 0;       // first scored window position
    int32_t n_scored = 0;    // scored positions first .. first + n_scored - 1 (< n_tokens - 1)
};

// llama-perplexity's windows over n_tokens tokens (max_windows > 0: at most
// that many). Throws MW_ERR_INVALID_ARGUMENT when n_ctx < 4 or the tokens do
// not fill one window.
std::vector<Window> plan_eval_windows(int64_t n_tokens, int32_t n_ctx, int32_t max_windows);

// The export's overlapping windows (see above; max_windows > 0: the first that
// many). Throws MW_ERR_INVALID_ARGUMENT when n_ctx < 4 or n_tokens < 2.
std::vector<Window> plan_export_windows(int64_t n_tokens, int32_t n_ctx, int32_t max_windows);

// The tokens window w feeds the model (slot 0 replaced by bos when bos >= 0).
void window_tokens(const std::vector<int32_t>& tokens, const Window& w, int32_t bos, std::vector<int32_t>* out);

class WindowRunner {
public:
    // Runs windows of at most max_tokens tokens.
    WindowRunner(std::shared_ptr<const Model> model, ThreadPool& pool, int32_t max_tokens, bool kv_f32);

    // Batches window w is run in (the executor's batch is at most 512 tokens).
    int32_t n_batches(const Window& w) const { return (w.n_tokens + batch_ - 1) / batch_; }
    // Runs batch j of window w whose w.n_tokens tokens are `tokens` (j = 0
    // starts from an empty KV cache; call the batches in order). Returns how
    // many scored rows it produced; row r is window position *first_pos + r.
    int32_t run_batch(const int32_t* tokens, const Window& w, int32_t j, int32_t* first_pos);
    // Logits (n_vocab floats) of row r of the last batch.
    const float* logits(int32_t r) { return exec_->logits(r); }
    const Model& model() const { return *model_; }

private:
    std::shared_ptr<const Model> model_;
    int32_t max_tokens_;
    int32_t batch_;
    std::unique_ptr<KvCache> kv_;
    std::unique_ptr<Executor> exec_;
    BlockTable table_;
    Batch b_;
};

}  // namespace mw::eval
