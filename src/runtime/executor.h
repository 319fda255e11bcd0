// Executor: runs one forward step of the model over a Batch on the CPU.
// It owns the step's scratch buffers (sized once for the largest batch) and no
// policy: which tokens run, and what happens to the logits, is the scheduler's.
#pragma once

#include "kv/kv_cache.h"
#include "model/model.h"
#include "runtime/batch.h"
#include "runtime/thread_pool.h"

#include <memory>
#include <vector>

namespace mw {

class Executor {
public:
    Executor(std::shared_ptr<const Model> model, KvCache& kv, ThreadPool& pool, int32_t max_batch_tokens,
             int32_t max_logit_rows, int32_t n_ctx);

    // Runs the batch: writes K/V of every token into its sequence's blocks and
    // fills logits() with one row of n_vocab floats per token that wants
    // logits, in batch order. batch.tokens.size() <= max_batch_tokens.
    void forward(const Batch& batch);
    float* logits(int32_t row) { return logits_.data() + (size_t)row * (size_t)model_->config().n_vocab; }

    // Bytes of scratch this executor holds (for accounting and planning).
    size_t scratch_bytes() const;
    // Scratch bytes an executor with these limits needs.
    static size_t scratch_bytes_for(const ModelConfig& c, int32_t max_batch_tokens, int32_t max_logit_rows,
                                    int32_t n_ctx, int n_threads);

private:
    void embed(const Batch& batch);
    void attention_layer(const Batch& batch, int32_t layer);
    void ffn_layer(int32_t n, int32_t layer);
    void output(const Batch& batch);
    // y[t][0..w.n_out) = W x[t] for t < n (rows of x are x_stride floats apart).
    void matmul(const Weight& w, const float* x, int32_t n, int32_t x_stride, float* y);
    // Same input for up to three weights (q/k/v, gate/up): x is quantized once.
    void matmul_shared(const Weight* const* ws, int nw, const float* x, int32_t n, int32_t x_stride, float* const* ys);
    void rmsnorm_rows(const float* x, const Weight& w, int32_t n, float* out);

    std::shared_ptr<const Model> model_;
    KvCache& kv_;
    ThreadPool& pool_;
    int32_t max_batch_;
    int32_t max_logit_rows_;
    int32_t n_ctx_;
    // Scratch, [max_batch][dim] row-major.
    std::vector<float> x_, xb_, q_, k_, v_, att_, g_, u_, tmp_, logits_, rope_cs_, scores_;
    std::vector<const void*> row_ptrs_;  // per thread: K and V row of each position
    std::vector<uint8_t> act_;  // activations converted to the weights' vec_dot type
};

}  // namespace mw
