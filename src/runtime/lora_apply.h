// LoRA deltas on top of the base model's products, per token row: each row of
// a batch belongs to a sequence that runs with its own adapter (or none), so
// one step may mix several adapters over the same shared base weights.
#pragma once

#include "model/lora_adapter.h"
#include "runtime/thread_pool.h"

#include <vector>

namespace mw {

// y[t] += s_t * B (A x[t]) for every row t < n whose binding (rows[t], may be
// nullptr) has a delta for w; s_t = binding scale * alpha / rank. Rows of x
// are x_stride floats apart, rows of y y_stride. scratch grows to
// n_threads * (rank + n_in) floats once (warm-up), then is reused.
void lora_add(const Weight& w, const LoraBinding* const* rows, const float* x, int32_t n, int64_t x_stride, float* y,
              int64_t y_stride, ThreadPool& pool, std::vector<float>& scratch);

// The embedding row of `token` (x, n_embd floats) += s * B A[token] when the
// binding adapts token_embd.
void lora_add_embedding(const Weight& token_embd, const LoraBinding* binding, int32_t token, float* x);

}  // namespace mw
