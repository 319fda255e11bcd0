// Executor: runs one forward step of the model over a Batch on the CPU.
// It owns the step's scratch buffers (sized once for the largest batch) and no
// policy: which tokens run, and what happens to the logits, is the scheduler's.
#pragma once

#include "kv/kv_cache.h"
#include "memory/arena.h"
#include "model/model.h"
#include "runtime/batch.h"
#include "runtime/step_executor.h"
#include "runtime/thread_pool.h"

#include <cstring>
#include <memory>
#include <vector>

namespace mw {

class Executor final : public StepExecutor {
public:
    // Sequences longer than this many positions use flash attention.
    static constexpr int32_t kFlashMinPositions = 1024;
    static constexpr int kFlashSlots = 8;  // long-context tokens per flash region
    Executor(std::shared_ptr<const Model> model, KvCache& kv, ThreadPool& pool, int32_t max_batch_tokens,
             int32_t max_logit_rows, int32_t n_ctx);

    // Runs the batch: writes K/V of every token into its sequence's blocks and
    // fills logits() with one row of n_vocab floats per token that wants
    // logits, in batch order. batch.tokens.size() <= max_batch_tokens.
    void forward(const Batch& batch) override;
    float* logits(int32_t row) override { return logits_ + (size_t)row * (size_t)model_->config().n_vocab; }
    int32_t argmax(int32_t row) override { return greedy_argmax(logits(row), model_->config().n_vocab); }
    Backend backend() const override { return Backend::Cpu; }
    size_t activations_reserved() const override { return arena_.reserved(); }
    size_t activations_high_water() const override { return arena_.resident(); }
    void copy_kv_block(int32_t src, int32_t dst) override {
        std::memcpy(kv_.block_data(dst), kv_.block_data(src), kv_.block_bytes());
    }
    void read_kv_block(int32_t block, void* out) override { std::memcpy(out, kv_.block_data(block), kv_.block_bytes()); }
    void write_kv_block(int32_t block, const void* in) override {
        std::memcpy(kv_.block_data(block), in, kv_.block_bytes());
    }

    // Bytes of scratch this executor holds (for accounting and planning).
    size_t scratch_bytes() const;
    const memory::Arena& arena() const { return arena_; }
    // Scratch bytes an executor with these limits needs.
    // A Q8_0 cache adds per-thread F32 rows for one head's dequantized K/V
    // (up to 1024 positions); n_ctx > 1024 adds the flash path's partials.
    static size_t scratch_bytes_for(const ModelConfig& c, int32_t max_batch_tokens, int32_t max_logit_rows,
                                    int32_t n_ctx, int n_threads, KvType kv_type = KvType::F16);

private:
    void embed(const Batch& batch);
    void attention_layer(const Batch& batch, int32_t layer);
    void ffn_layer(int32_t n, int32_t layer);
    void output(const Batch& batch);
    // y[t][0..w.n_out) = W x[t] for t < n (rows of x are x_stride floats apart).
    void matmul(const Weight& w, const float* x, int32_t n, int32_t x_stride, float* y);
    // Same input for up to three weights (q/k/v, gate/up): x is quantized once.
    void matmul_shared(const Weight* const* ws, int nw, const float* x, int32_t n, int32_t x_stride, float* const* ys);
    // A token whose sequence holds n_pos positions (itself included), more
    // than kFlashMinPositions, takes the flash-decoding path
    // (attention_flash.h), split over the KV length; a shorter one the exact
    // path (attention.h). Chosen by the sequence's own length only, so a
    // result never depends on the batch.
    bool use_flash(int32_t n_pos) const { return flash_parts_ != nullptr && n_pos > kFlashMinPositions; }
    void flash_attention(const Batch& batch, int32_t layer, float scale);
    // The n == 1 case of matmul_shared on several threads: rows in chunks taken dynamically.
    void gemv_chunked(const Weight* const* ws, int nw, const uint8_t* const* acts, float* const* ys);
    static constexpr int kGemvChunksPerThread = 4;  // measured: 1, 2, 4, 6, 8, 16 (docs/BENCHMARKS.md)
    static constexpr int64_t kGemvMinChunkRows = 64;
    void rmsnorm_rows(const float* x, const Weight& w, int32_t n, float* out);
    // body(t) for every token t of a step, split across the threads when there
    // are enough (work_per_row: a rough count of operations per token).
    template <class F>
    void for_rows(int32_t n, int64_t work_per_row, F&& body) {
        pool_.run_sized(n >= 8 ? (int64_t)n * work_per_row : 0, [&](int ti, int nt) {
            int64_t t0, t1;
            ThreadPool::chunk(n, 1, ti, nt, &t0, &t1);
            for (int64_t t = t0; t < t1; t++) body(t);
        });
    }
    void allocate_step(int32_t n, int32_t n_logits);

    std::shared_ptr<const Model> model_;
    KvCache& kv_;
    ThreadPool& pool_;
    int32_t max_batch_;
    int32_t max_logit_rows_;
    int32_t n_ctx_;
    // The step arena and what it holds: [n][dim] row-major buffers carved per
    // step (allocate_step), after the per-thread attention scratch.
    memory::Arena arena_;
    float *x_ = nullptr, *xb_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *att_ = nullptr;
    float *g_ = nullptr, *u_ = nullptr, *tmp_ = nullptr, *logits_ = nullptr, *rope_cs_ = nullptr, *scores_ = nullptr;
    const void** row_ptrs_ = nullptr;  // per thread: K and V row of each position
    size_t thread_scratch_ = 0;        // floats of scores_ per thread (either attention path's scratch)
    float* flash_parts_ = nullptr;     // flash path: per slot, head and chunk, a partial (nullptr: path off)
    uint8_t* act_ = nullptr;           // activations converted to the weights' vec_dot types
    size_t act_slice_ = 0;             // bytes of one activation type's rows
    int32_t* seq_tokens_ = nullptr;    // tokens each sequence has in this step
    // LoRA: the binding of each row of the current matmul input (nullptr when
    // no sequence of the step uses an adapter), per token and per logits row.
    const LoraBinding* const* lora_rows_ = nullptr;
    std::vector<const LoraBinding*> lora_tokens_, lora_logits_;
    std::vector<float> lora_scratch_;
};

}  // namespace mw
