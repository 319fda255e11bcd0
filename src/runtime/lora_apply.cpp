#include "runtime/lora_apply.h"

#include "base/half.h"

#include <algorithm>

namespace mw {

namespace {

float round_f16(float v) { return f16_to_f32(f32_to_f16(v)); }

// y[0..n_out) += s * B (A x). An F16 matrix multiplies an F16-rounded input
// (x, then h), as llama.cpp pairs F16 weights with F16 activations, so the
// same adapter gives the same results in both. xr (n_in floats) and h (rank
// floats) are scratch.
void add_row(const LoraWeight& lw, float s, const float* x, float* xr, float* h, float* y) {
    const float* xa = x;
    if (lw.a.type == gguf::TensorType::F16) {
        for (int64_t i = 0; i < lw.a.cols; i++) xr[i] = round_f16(x[i]);
        xa = xr;
    }
    for (int32_t r = 0; r < lw.rank; r++) h[r] = lw.a.dot(r, xa);
    if (lw.b.type == gguf::TensorType::F16)
        for (int32_t r = 0; r < lw.rank; r++) h[r] = round_f16(h[r]);
    for (int64_t o = 0; o < lw.b.rows; o++) y[o] += s * lw.b.dot(o, h);
}

}  // namespace

void lora_add(const Weight& w, const LoraBinding* const* rows, const float* x, int32_t n, int64_t x_stride, float* y,
              int64_t y_stride, ThreadPool& pool, std::vector<float>& scratch) {
    int32_t max_rank = 0;
    int64_t work = 0;
    for (int32_t t = 0; t < n; t++) {
        if (!rows[t] || !rows[t]->adapter) continue;
        if (const LoraWeight* lw = rows[t]->adapter->find(w)) {
            max_rank = std::max(max_rank, lw->rank);
            work += (int64_t)lw->rank * (w.n_in + w.n_out);
        }
    }
    if (max_rank == 0) return;
    const size_t per_thread = (size_t)max_rank + (size_t)w.n_in;
    const size_t need = (size_t)pool.size() * per_thread;
    if (scratch.size() < need) scratch.resize(need);
    // Each row is computed whole by one thread, in a fixed order: a row's
    // result does not depend on what else shares the batch.
    pool.run_sized(work, [&](int ti, int nt) {
        int64_t t0, t1;
        ThreadPool::chunk(n, 1, ti, nt, &t0, &t1);
        float* h = scratch.data() + (size_t)ti * per_thread;
        float* xr = h + max_rank;
        for (int64_t t = t0; t < t1; t++) {
            if (!rows[t] || !rows[t]->adapter) continue;
            const LoraWeight* lw = rows[t]->adapter->find(w);
            if (!lw) continue;
            add_row(*lw, rows[t]->scale * lw->alpha_scale, x + t * x_stride, xr, h, y + t * y_stride);
        }
    });
}

void lora_add_embedding(const Weight& token_embd, const LoraBinding* binding, int32_t token, float* x) {
    if (!binding || !binding->adapter) return;
    const LoraWeight* lw = binding->adapter->find(token_embd);
    if (!lw) return;
    // A is stored [n_vocab, rank]: the token's row is its rank-vector.
    const float s = binding->scale * lw->alpha_scale;
    float h[256];
    std::vector<float> big;
    float* hp = h;
    if (lw->rank > 256) {
        big.resize((size_t)lw->rank);
        hp = big.data();
    }
    for (int32_t r = 0; r < lw->rank; r++) hp[r] = lw->a.at(token, r);
    for (int64_t o = 0; o < lw->b.rows; o++) x[o] += s * lw->b.dot(o, hp);
}

}  // namespace mw
