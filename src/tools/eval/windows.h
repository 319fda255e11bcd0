// The window convention of evaluation and distillation export (see eval.h):
// non-overlapping windows of n_ctx tokens, first token replaced by BOS where
// the tokenizer adds BOS, positions n_ctx/2 .. n_ctx-2 scored (each predicts
// the token after it). WindowRunner runs one window through one model's
// executor and exposes the logits of the scored positions.
#pragma once

#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/executor.h"
#include "runtime/thread_pool.h"

#include <cstdint>
#include <memory>
#include <vector>

namespace mw::eval {

struct WindowPlan {
    int32_t n_ctx = 0;
    int32_t first = 0;       // first scored position: n_ctx / 2
    int32_t n_scored = 0;    // per window: n_ctx - 1 - first
    int64_t n_windows = 0;
};

// Plans windows over n_tokens tokens. Throws MW_ERR_INVALID_ARGUMENT when
// n_ctx < 4 or the tokens do not fill one window.
WindowPlan plan_windows(int64_t n_tokens, int32_t n_ctx, int32_t max_windows);

// The n_ctx tokens window w feeds the model (BOS in front when bos >= 0).
void window_tokens(const std::vector<int32_t>& tokens, const WindowPlan& plan, int64_t w, int32_t bos,
                   std::vector<int32_t>* out);

class WindowRunner {
public:
    WindowRunner(std::shared_ptr<const Model> model, ThreadPool& pool, const WindowPlan& plan, bool kv_f32);

    // Batches one window is run in (the executor's batch is at most 512 tokens).
    int32_t n_batches() const { return (plan_.n_ctx + batch_ - 1) / batch_; }
    // Runs batch j of the window whose n_ctx tokens are `tokens` (j = 0 starts
    // from an empty KV cache; call the batches in order). Returns how many
    // scored rows it produced; row r is position *first_pos + r.
    int32_t run_batch(const int32_t* tokens, int32_t j, int32_t* first_pos);
    // Logits (n_vocab floats) of row r of the last batch.
    const float* logits(int32_t r) { return exec_->logits(r); }
    const Model& model() const { return *model_; }

private:
    std::shared_ptr<const Model> model_;
    WindowPlan plan_;
    int32_t batch_;
    std::unique_ptr<KvCache> kv_;
    std::unique_ptr<Executor> exec_;
    BlockTable table_;
    Batch b_;
};

}  // namespace mw::eval
