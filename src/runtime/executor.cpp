// The forward pass of the llama family, one step over a batch of tokens:
//
//   x = token_embd[token]
//   for each layer:
//     xb = rmsnorm(x) * attn_norm
//     q, k, v = xb Wq (+bq), xb Wk (+bk), xb Wv (+bv)   rope(q, k) at each token's position
//     store k, v in the sequence's KV blocks
//     att = softmax(q K^T / sqrt(hd)) V   over the sequence's positions <= pos
//     x += att Wo
//     xb = rmsnorm(x) * ffn_norm
//     x += (silu(xb Wgate) * (xb Wup)) Wdown
//   logits = rmsnorm(x) * output_norm  Woutput    (only rows that want logits)
#include "runtime/executor.h"

#include "base/error.h"
#include "base/half.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_flash.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/ops.h"
#include "quant/quant.h"
#include "runtime/lora_apply.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

namespace mw {

namespace {

size_t act_row_bytes(gguf::TensorType weight_type, int64_t n) {
    const gguf::TensorTypeInfo* ti = gguf::tensor_type_info((uint32_t)quant::vec_dot_type(weight_type));
    return gguf::row_bytes(*ti, (uint64_t)n);
}

// Largest activation row any weight of the model needs, in bytes.
size_t max_act_row_bytes(const ModelConfig& c) {
    const int64_t n = std::max<int64_t>({c.n_embd, c.max_n_ff(), (int64_t)c.max_n_head() * c.head_dim});
    return (size_t)n * 4 + 64;  // F32 is the widest vec_dot type
}

// Most query heads that share one KV head, over the layers.
int32_t max_group(const ModelConfig& c) {
    int32_t g = 1;
    for (const LayerConfig& lc : c.layers)
        if (lc.n_head > 0 && lc.n_head_kv > 0) g = std::max(g, lc.n_head / lc.n_head_kv);
    return g;
}

// Positions the exact attention path serves: below kFlashMinPositions when
// longer contexts go to the flash path.
int32_t exact_positions(int32_t n_ctx) { return std::min(n_ctx, Executor::kFlashMinPositions); }
static_assert(Executor::kFlashMinPositions >= cpu::kFlashChunk, "flash items borrow the exact path's row pointers");
bool flash_enabled(int32_t n_ctx) { return n_ctx > Executor::kFlashMinPositions; }

// Floats of the flash path's partials: kFlashSlots tokens at a time.
size_t flash_part_floats(const ModelConfig& c, int32_t n_ctx) {
    if (!flash_enabled(n_ctx)) return 0;
    return (size_t)Executor::kFlashSlots * c.max_n_head() * cpu::flash_chunks(n_ctx) *
           cpu::flash_partial_floats(c.head_dim);
}

// Floats of one thread's attention scratch. The two paths run in separate
// regions, so they share it: the exact path's scores (and, for a Q8_0 cache,
// one KV head's K and V rows as F32), or the flash path's chunk scratch.
size_t thread_scratch_floats(const ModelConfig& c, int32_t n_ctx, KvType kv_type) {
    const int32_t exact = exact_positions(n_ctx);
    size_t n = cpu::attention_scratch_floats(c.head_dim, exact);
    if (kv_type == KvType::Q8_0) n += (size_t)2 * exact * c.head_dim;
    if (kv_type == KvType::F16 && c.head_dim % 16 == 0 && max_group(c) > 1)
        n = std::max(n, cpu::attention_group_scratch_floats(c.head_dim, exact));
    if (flash_enabled(n_ctx)) n = std::max(n, cpu::flash_scratch_floats(max_group(c), c.head_dim));
    return (n + 15) / 16 * 16;  // each thread's share on its own cache lines
}

}  // namespace

Executor::Executor(std::shared_ptr<const Model> model, KvCache& kv, ThreadPool& pool, int32_t max_batch_tokens,
                   int32_t max_logit_rows, int32_t n_ctx)
    : model_(std::move(model)), kv_(kv), pool_(pool), max_batch_(max_batch_tokens), max_logit_rows_(max_logit_rows),
      n_ctx_(n_ctx),
      arena_(scratch_bytes_for(model_->config(), max_batch_tokens, max_logit_rows, n_ctx, pool.size(), kv.type())) {
    // Buffers that keep their size for the engine's life come first and survive reset().
    const ModelConfig& c = model_->config();
    const int32_t exact = exact_positions(n_ctx_);
    thread_scratch_ = thread_scratch_floats(c, n_ctx_, kv_.type());
    scores_ = arena_.alloc<float>((size_t)pool_.size() * thread_scratch_);
    row_ptrs_ = arena_.alloc<const void*>((size_t)pool_.size() * 2 * (size_t)exact);
    if (flash_enabled(n_ctx_)) flash_parts_ = arena_.alloc<float>(flash_part_floats(c, n_ctx_));
    arena_.mark();
    lora_tokens_.reserve((size_t)max_batch_tokens);
    lora_logits_.reserve((size_t)max_logit_rows);
}

void Executor::allocate_step(int32_t n, int32_t n_logits) {
    // Every step buffer is sized to this batch: a decode step touches only a
    // few pages of an arena reserved for the largest prefill chunk.
    const ModelConfig& c = model_->config();
    const size_t B = (size_t)n;
    const size_t q_dim = (size_t)c.max_n_head() * c.head_dim;
    arena_.reset();
    x_ = arena_.alloc<float>(B * c.n_embd);
    xb_ = arena_.alloc<float>(B * c.n_embd);
    tmp_ = arena_.alloc<float>(B * c.n_embd);
    q_ = arena_.alloc<float>(B * q_dim);
    att_ = arena_.alloc<float>(B * q_dim);
    k_ = arena_.alloc<float>(B * c.max_kv_dim());
    v_ = arena_.alloc<float>(B * c.max_kv_dim());
    g_ = arena_.alloc<float>(B * c.max_n_ff());
    u_ = arena_.alloc<float>(B * c.max_n_ff());
    rope_cs_ = arena_.alloc<float>(B * (size_t)c.n_rot);
    act_slice_ = B * max_act_row_bytes(c);
    act_ = arena_.alloc<uint8_t>(3 * act_slice_);  // up to three activation types at once
    logits_ = arena_.alloc<float>((size_t)n_logits * c.n_vocab);
}

size_t Executor::scratch_bytes_for(const ModelConfig& c, int32_t max_batch, int32_t max_logit_rows, int32_t n_ctx,
                                   int n_threads, KvType kv_type) {
    const size_t B = (size_t)max_batch;
    const size_t q_dim = (size_t)c.max_n_head() * c.head_dim;
    size_t floats = B * (3 * (size_t)c.n_embd + 2 * q_dim + 2 * (size_t)c.max_kv_dim() + 2 * (size_t)c.max_n_ff() +
                         (size_t)c.n_rot);
    const int32_t exact = exact_positions(n_ctx);
    floats += (size_t)max_logit_rows * c.n_vocab + (size_t)n_threads * thread_scratch_floats(c, n_ctx, kv_type);
    floats += (size_t)n_threads * exact * 2 * sizeof(void*) / sizeof(float);  // K/V row pointers
    floats += flash_part_floats(c, n_ctx);
    const size_t alignment_slack = 17 * 64;  // each of the 16 buffers starts on a 64-byte boundary
    const size_t seq_counts = (size_t)max_logit_rows * sizeof(int32_t) + 64;  // tokens per sequence (<= one per logit row)
    return floats * sizeof(float) + 3 * B * max_act_row_bytes(c) + alignment_slack + seq_counts;
}

size_t Executor::scratch_bytes() const {
    return scratch_bytes_for(model_->config(), max_batch_, max_logit_rows_, n_ctx_, pool_.size(), kv_.type());
}

void Executor::matmul(const Weight& w, const float* x, int32_t n, int32_t x_stride, float* y) {
    const Weight* ws[1] = {&w};
    float* ys[1] = {y};
    matmul_shared(ws, 1, x, n, x_stride, ys);
}

void Executor::matmul_shared(const Weight* const* ws, int nw, const float* x, int32_t n, int32_t x_stride,
                             float* const* ys) {
    const cpu::KernelTable& kt = cpu::kernels();
    // Convert the activations once per distinct vec_dot type (mixed-precision
    // files may give q, k and v different types), in parallel when there are many rows.
    const size_t slice = act_slice_;
    gguf::TensorType act_types[3];
    const uint8_t* acts[3];
    size_t arbs[3];
    int n_act = 0;
    for (int i = 0; i < nw; i++) {
        const gguf::TensorType at = quant::vec_dot_type(ws[i]->type);
        int j = 0;
        while (j < n_act && act_types[j] != at) j++;
        arbs[i] = act_row_bytes(ws[i]->type, ws[i]->n_in);
        if (j < n_act) {
            acts[i] = act_ + (size_t)j * slice;
            continue;
        }
        act_types[n_act++] = at;
        uint8_t* dst = act_ + (size_t)j * slice;
        acts[i] = dst;
        const cpu::QuantizeActFn quantize = kt.quantize_act[(uint32_t)at];
        const size_t arb = arbs[i];
        const size_t n_in = (size_t)ws[i]->n_in;
        if (n >= 4) {
            pool_.run_sized((int64_t)n * (int64_t)n_in, [&](int ti, int nt) {
                int64_t t0, t1;
                ThreadPool::chunk(n, 1, ti, nt, &t0, &t1);
                for (int64_t t = t0; t < t1; t++) quantize(x + t * x_stride, dst + t * arb, n_in);
            });
        } else {
            for (int32_t t = 0; t < n; t++) quantize(x + (size_t)t * x_stride, dst + t * arb, n_in);
        }
    }
    // Split every weight's rows across the threads; each thread does its share
    // of each (decode: rows taken in chunks, gemv_chunked).
    int64_t work = 0;
    for (int i = 0; i < nw; i++) work += ws[i]->n_out * ws[i]->n_in * n;
    if (n == 1 && pool_.size() > 1 && work >= ThreadPool::kMinParallelWork) gemv_chunked(ws, nw, acts, ys);
    else pool_.run_sized(work, [&](int ti, int nt) {
        for (int i = 0; i < nw; i++) {
            const Weight& w = *ws[i];
            int64_t r0, r1;
            ThreadPool::chunk(w.n_out, 16, ti, nt, &r0, &r1);
            if (r0 >= r1) continue;
            const uint8_t* wrows = w.data + (size_t)r0 * w.row_bytes;
            if (n == 1) {
                kt.gemv[(uint32_t)w.type]((size_t)w.n_in, wrows, w.row_bytes, (size_t)(r1 - r0), acts[i], ys[i] + r0);
            } else {
                kt.gemm[(uint32_t)w.type]((size_t)w.n_in, wrows, w.row_bytes, (size_t)(r1 - r0), acts[i], arbs[i],
                                          (size_t)n, ys[i] + r0, (size_t)w.n_out);
            }
        }
    });
    if (lora_rows_)
        for (int i = 0; i < nw; i++)
            lora_add(*ws[i], lora_rows_, x, n, x_stride, ys[i], ws[i]->n_out, pool_, lora_scratch_);
}

void Executor::gemv_chunked(const Weight* const* ws, int nw, const uint8_t* const* acts, float* const* ys) {
    // Decode: the weights' rows in chunks that the threads take in turn from a
    // shared counter, so a thread that streams slower (a busy sibling core, a
    // late wake-up) does fewer chunks instead of keeping the others waiting at
    // the end. Each chunk is still a gemv over several row streams; every row's
    // result is computed the same way whichever thread takes it.
    const cpu::KernelTable& kt = cpu::kernels();
    const int nt = pool_.size();
    const int64_t cpt = kGemvChunksPerThread;
    int64_t chunk_rows[3], first[4];
    first[0] = 0;
    for (int i = 0; i < nw; i++) {
        const int64_t rows = (ws[i]->n_out + nt * cpt - 1) / (nt * cpt);
        chunk_rows[i] = std::max<int64_t>(kGemvMinChunkRows, (rows + 15) / 16 * 16);
        first[i + 1] = first[i] + (ws[i]->n_out + chunk_rows[i] - 1) / chunk_rows[i];
    }
    std::atomic<int64_t> next{0};
    pool_.run([&](int, int) {
        for (int64_t c = next.fetch_add(1, std::memory_order_relaxed); c < first[nw];
             c = next.fetch_add(1, std::memory_order_relaxed)) {
            int i = 0;
            while (c >= first[i + 1]) i++;
            const Weight& w = *ws[i];
            const int64_t r0 = (c - first[i]) * chunk_rows[i];
            const int64_t r1 = std::min<int64_t>(w.n_out, r0 + chunk_rows[i]);
            kt.gemv[(uint32_t)w.type]((size_t)w.n_in, w.data + (size_t)r0 * w.row_bytes, w.row_bytes,
                                      (size_t)(r1 - r0), acts[i], ys[i] + r0);
        }
    });
}

void Executor::rmsnorm_rows(const float* x, const Weight& w, int32_t n, float* out) {
    const ModelConfig& c = model_->config();
    const float* wn = (const float*)w.data;
    for_rows(n, (int64_t)c.n_embd * 4,
             [&](int64_t t) { cpu::rmsnorm(x + t * c.n_embd, wn, out + t * c.n_embd, c.n_embd, c.rms_eps); });
}

void Executor::embed(const Batch& batch) {
    const ModelConfig& c = model_->config();
    const Weight& e = model_->weights().token_embd;
    for (size_t t = 0; t < batch.tokens.size(); t++) {
        const int32_t id = batch.tokens[t].token;
        if (id < 0 || id >= c.n_vocab) fail(MW_ERR_INVALID_ARGUMENT, "token id " + std::to_string(id) + " out of range");
        quant::dequantize_row(e.type, e.data + (size_t)id * e.row_bytes, x_ + t * c.n_embd, (size_t)c.n_embd);
        if (lora_rows_) lora_add_embedding(e, lora_rows_[t], id, x_ + t * c.n_embd);
    }
}

void Executor::attention_layer(const Batch& batch, int32_t il) {
    const ModelConfig& c = model_->config();
    const LayerConfig& lc = c.layers[(size_t)il];
    const LayerWeights& lw = model_->weights().layers[(size_t)il];
    const int32_t n = (int32_t)batch.tokens.size();
    const int32_t hd = c.head_dim;
    const int32_t q_dim = lc.n_head * hd, kv_dim = lc.n_head_kv * hd;
    const int32_t half = c.n_rot / 2;

    rmsnorm_rows(x_, lw.attn_norm, n, xb_);
    const Weight* ws[3] = {&lw.wq, &lw.wk, &lw.wv};
    float* ys[3] = {q_, k_, v_};
    // q, k, v are written with row strides q_dim / kv_dim (gemm's y_stride = n_out).
    matmul_shared(ws, 3, xb_, n, c.n_embd, ys);

    // Bias, RoPE, and the K/V store, per token.
    const bool neox = c.rope_order == RopeOrder::Neox;
    const bool f16 = kv_.type() == KvType::F16;
    const bool q8 = kv_.type() == KvType::Q8_0;
    auto prepare = [&](int64_t t) {
        float* q = q_ + t * q_dim;
        float* k = k_ + t * kv_dim;
        float* v = v_ + t * kv_dim;
        if (lw.bq) {
            cpu::add_bias(q, (const float*)lw.bq.data, q_dim);
            cpu::add_bias(k, (const float*)lw.bk.data, kv_dim);
            cpu::add_bias(v, (const float*)lw.bv.data, kv_dim);
        }
        const float* cs = rope_cs_ + t * c.n_rot;
        cpu::rope(q, lc.n_head, hd, c.n_rot, cs, cs + half, neox);
        cpu::rope(k, lc.n_head_kv, hd, c.n_rot, cs, cs + half, neox);
        const BatchToken& bt = batch.tokens[(size_t)t];
        const BlockTable& table = *batch.tables[(size_t)bt.seq];
        uint8_t* kd = kv_.k_row(table, il, bt.pos);
        uint8_t* vd = kv_.v_row(table, il, bt.pos);
        if (q8) {
            KvCache::quantize_q8_0(k, kd, kv_dim);
            KvCache::quantize_q8_0(v, vd, kv_dim);
        } else if (f16) {
            uint16_t* kh = (uint16_t*)kd;
            uint16_t* vh = (uint16_t*)vd;
            for (int32_t i = 0; i < kv_dim; i++) {
                kh[i] = f32_to_f16(k[i]);
                vh[i] = f32_to_f16(v[i]);
            }
        } else {
            std::memcpy(kd, k, (size_t)kv_dim * 4);
            std::memcpy(vd, v, (size_t)kv_dim * 4);
        }
    };
    for_rows(n, (int64_t)(q_dim + kv_dim) * 4, prepare);

    // Attention over each (token, head) pair, split across the threads.
    const float scale = 1.0f / std::sqrt((float)hd);
    const int32_t group = lc.n_head / lc.n_head_kv;
    const int64_t items = (int64_t)n * lc.n_head;
    int64_t work = 0, n_flash = 0;
    for (const auto& bt : batch.tokens) {
        if (use_flash(bt.pos + 1)) n_flash++;
        else work += (int64_t)(bt.pos + 1) * q_dim * 2;
    }
    // First (token, head) item at which `target` positions' worth of work has
    // been done, items in order (flash tokens count nothing here).
    auto item_at_work = [&](int64_t target) -> int64_t {
        int64_t done = 0;
        for (int32_t t = 0; t < n; t++) {
            const int32_t n_pos = batch.tokens[(size_t)t].pos + 1;
            if (use_flash(n_pos)) continue;
            const int64_t cost = (int64_t)n_pos * lc.n_head;
            if (done + cost > target) return (int64_t)t * lc.n_head + (target - done) / n_pos;
            done += cost;
        }
        return items;
    };
    if (n_flash < n) pool_.run_sized(work, [&](int ti, int nt) {
        // Contiguous ranges of (token, head) items of equal work, counted in
        // positions attended: a prompt's later tokens attend to more positions,
        // so equal item counts would leave the first threads waiting.
        const int64_t total = work / ((int64_t)q_dim * 2) * lc.n_head;
        const int64_t i0 = ti == 0 ? 0 : item_at_work(total * ti / nt);
        const int64_t i1 = ti == nt - 1 ? items : item_at_work(total * (ti + 1) / nt);
        const int32_t exact = exact_positions(n_ctx_);  // positions of the per-thread buffers
        float* scratch = scores_ + (size_t)ti * thread_scratch_;
        const void** k_rows = row_ptrs_ + (size_t)ti * 2 * exact;
        const void** v_rows = k_rows + exact;
        int64_t rows_for = -1;  // token whose row pointers are loaded, per KV group
        int32_t rows_group = -1;
        for (int64_t item = i0; item < i1; item++) {
            const int64_t t = item / lc.n_head;
            const int32_t h = (int32_t)(item % lc.n_head);
            const BatchToken& bt = batch.tokens[(size_t)t];
            const int32_t n_pos = bt.pos + 1;
            if (use_flash(n_pos)) continue;
            if (rows_for != t || rows_group != h / group) {
                const BlockTable& table = *batch.tables[(size_t)bt.seq];
                if (q8) {  // dequantize the group's slice of every row once per (token, group)
                    float* kf = scratch + cpu::attention_scratch_floats(hd, exact);
                    float* vf = kf + (size_t)exact * hd;
                    const int32_t start = (h / group) * hd;
                    for (int32_t p = 0; p < n_pos; p++) {
                        KvCache::dequantize_q8_0(kv_.k_row(table, il, p), start, hd, kf + (size_t)p * hd);
                        KvCache::dequantize_q8_0(kv_.v_row(table, il, p), start, hd, vf + (size_t)p * hd);
                        k_rows[p] = kf + (size_t)p * hd;
                        v_rows[p] = vf + (size_t)p * hd;
                    }
                } else {
                    const size_t koff = (size_t)(h / group) * hd * (f16 ? 2 : 4);
                    for (int32_t p = 0; p < n_pos; p++) {
                        k_rows[p] = kv_.k_row(table, il, p) + koff;
                        v_rows[p] = kv_.v_row(table, il, p) + koff;
                    }
                }
                rows_for = t;
                rows_group = h / group;
            }
            // Prompt tokens (and any run of 2+ tokens of one sequence) use the
            // batched order, a decode token the single-token order, whatever
            // else the batch holds: a sequence's results never depend on its
            // neighbours or on how its prompt was chunked.
            const bool chunk = !bt.decode && (bt.prompt || seq_tokens_[bt.seq] > 1);
            if (f16 && chunk && hd % 16 == 0 && group > 1) {
                // The group's heads up to kMaxGroupHeads at a time, sharing each
                // K/V row; a run belongs to the thread whose range holds its first head.
                const int32_t in_group = h % group;
                if (in_group % cpu::kMaxGroupHeads != 0) continue;
                const int g = std::min(cpu::kMaxGroupHeads, group - in_group);
                cpu::attention_group_f16(q_ + t * q_dim + (size_t)h * hd, g, hd, n_pos, k_rows, v_rows, scale, scratch,
                                         att_ + t * q_dim + (size_t)h * hd);
                continue;
            }
            cpu::attention_head(q_ + t * q_dim + (size_t)h * hd, hd, n_pos, k_rows, v_rows, f16, scale, chunk,
                                scratch, att_ + t * q_dim + (size_t)h * hd);
        }
    });

    if (n_flash > 0) flash_attention(batch, il, scale);

    matmul(lw.wo, att_, n, q_dim, tmp_);
    for_rows(n, c.n_embd, [&](int64_t t) { cpu::add_inplace(x_ + t * c.n_embd, tmp_ + t * c.n_embd, c.n_embd); });
}

void Executor::flash_attention(const Batch& batch, int32_t il, float scale) {
    // Tokens with long contexts, kFlashSlots at a time. Items (segment, KV
    // head, chunk) spread over the threads give partials, a segment being
    // consecutive tokens of one sequence (a prompt chunk) that share each
    // loaded chunk; then each (token, head) merges its partials in chunk
    // order. A token's partials use only its own positions, whatever segment
    // it is in, so chunks and merge order depend on its position alone.
    const ModelConfig& c = model_->config();
    const LayerConfig& lc = c.layers[(size_t)il];
    const int32_t hd = c.head_dim, q_dim = lc.n_head * hd;
    const int32_t group = lc.n_head / lc.n_head_kv;
    const int32_t max_chunks = cpu::flash_chunks(n_ctx_);
    const size_t pf = cpu::flash_partial_floats(hd);
    const cpu::KvElem elem = kv_.type() == KvType::F16 ? cpu::KvElem::F16
                             : kv_.type() == KvType::F32 ? cpu::KvElem::F32
                                                         : cpu::KvElem::Q8_0;
    int32_t slot_token[kFlashSlots];
    int seg_slot[kFlashSlots + 1];        // first slot of each segment
    int64_t seg_item[kFlashSlots + 1];    // first item of each segment
    auto part = [&](int s, int32_t h, int32_t ch) {
        return flash_parts_ + (((size_t)s * lc.n_head + h) * max_chunks + ch) * pf;
    };
    auto n_pos = [&](int s) { return batch.tokens[(size_t)slot_token[s]].pos + 1; };
    const int32_t n = (int32_t)batch.tokens.size();
    for (int32_t t_next = 0; t_next < n;) {
        int n_slots = 0, n_segs = 0;
        for (; t_next < n && n_slots < kFlashSlots; t_next++) {
            if (!use_flash(batch.tokens[(size_t)t_next].pos + 1)) continue;
            slot_token[n_slots] = t_next;
            const bool extends = n_slots > 0 && slot_token[n_slots - 1] == t_next - 1 &&
                                 batch.tokens[(size_t)t_next - 1].seq == batch.tokens[(size_t)t_next].seq;
            if (!extends) seg_slot[n_segs++] = n_slots;
            n_slots++;
        }
        if (n_slots == 0) break;
        seg_slot[n_segs] = n_slots;
        seg_item[0] = 0;
        for (int k = 0; k < n_segs; k++)  // the segment's last token has the most chunks
            seg_item[k + 1] = seg_item[k] + (int64_t)lc.n_head_kv * cpu::flash_chunks(n_pos(seg_slot[k + 1] - 1));
        std::atomic<int64_t> next{0};
        pool_.run([&](int ti, int) {
            float* scratch = scores_ + (size_t)ti * thread_scratch_;
            const void** k_rows = row_ptrs_ + (size_t)ti * 2 * exact_positions(n_ctx_);
            const void** v_rows = k_rows + cpu::kFlashChunk;
            cpu::FlashChunkRows rows;
            for (int64_t item = next.fetch_add(1, std::memory_order_relaxed); item < seg_item[n_segs];
                 item = next.fetch_add(1, std::memory_order_relaxed)) {
                int k = 0;
                while (item >= seg_item[k + 1]) k++;
                const int32_t last = n_pos(seg_slot[k + 1] - 1);
                const int32_t n_chunks = cpu::flash_chunks(last);
                const int32_t g = (int32_t)((item - seg_item[k]) / n_chunks);
                const int32_t ch = (int32_t)((item - seg_item[k]) % n_chunks);
                const int32_t p0 = ch * cpu::kFlashChunk;
                const int32_t len = std::min(cpu::kFlashChunk, last - p0);
                const BatchToken& bt = batch.tokens[(size_t)slot_token[seg_slot[k]]];
                const BlockTable& table = *batch.tables[(size_t)bt.seq];
                for (int32_t i = 0; i < len; i++) {
                    k_rows[i] = kv_.k_row(table, il, p0 + i);
                    v_rows[i] = kv_.v_row(table, il, p0 + i);
                }
                cpu::flash_load_chunk(len, k_rows, v_rows, g * hd, elem, hd, group, scratch, &rows);
                for (int s = seg_slot[k]; s < seg_slot[k + 1]; s++) {
                    const int32_t own = std::min(cpu::kFlashChunk, n_pos(s) - p0);  // positions <= the token's
                    if (own <= 0) continue;
                    cpu::flash_partial(q_ + (size_t)slot_token[s] * q_dim + (size_t)g * group * hd, (size_t)hd, group,
                                       hd, own, rows, scale, scratch, part(s, g * group, ch), (size_t)max_chunks * pf);
                }
            }
        });
        const int64_t merges = (int64_t)n_slots * lc.n_head;
        pool_.run_sized(merges * max_chunks * hd, [&](int ti, int nt) {
            int64_t i0, i1;
            ThreadPool::chunk(merges, 1, ti, nt, &i0, &i1);
            for (int64_t i = i0; i < i1; i++) {
                const int s = (int)(i / lc.n_head);
                const int32_t h = (int32_t)(i % lc.n_head);
                cpu::attention_merge(hd, cpu::flash_chunks(n_pos(s)), part(s, h, 0), pf,
                                     att_ + (size_t)slot_token[s] * q_dim + (size_t)h * hd);
            }
        });
    }
}

void Executor::ffn_layer(int32_t n, int32_t il) {
    const ModelConfig& c = model_->config();
    const LayerConfig& lc = c.layers[(size_t)il];
    const LayerWeights& lw = model_->weights().layers[(size_t)il];
    rmsnorm_rows(x_, lw.ffn_norm, n, xb_);
    const Weight* ws[2] = {&lw.w_gate, &lw.w_up};
    float* ys[2] = {g_, u_};
    matmul_shared(ws, 2, xb_, n, c.n_embd, ys);
    for_rows(n, (int64_t)lc.n_ff * 8, [&](int64_t t) { cpu::silu_mul(g_ + t * lc.n_ff, u_ + t * lc.n_ff, lc.n_ff); });
    matmul(lw.w_down, g_, n, lc.n_ff, tmp_);
    for_rows(n, c.n_embd, [&](int64_t t) { cpu::add_inplace(x_ + t * c.n_embd, tmp_ + t * c.n_embd, c.n_embd); });
}

void Executor::output(const Batch& batch) {
    const ModelConfig& c = model_->config();
    const ModelWeights& w = model_->weights();
    // Gather the rows that want logits, normalise, project to the vocabulary.
    int32_t m = 0;
    lora_logits_.clear();
    for (size_t t = 0; t < batch.tokens.size(); t++) {
        if (!batch.tokens[t].want_logits) continue;
        if (lora_rows_) lora_logits_.push_back(lora_rows_[t]);
        cpu::rmsnorm(x_ + t * c.n_embd, (const float*)w.output_norm.data, xb_ + (size_t)m * c.n_embd,
                     c.n_embd, c.rms_eps);
        m++;
    }
    if (lora_rows_) lora_rows_ = lora_logits_.data();
    if (m > 0) matmul(w.output, xb_, m, c.n_embd, logits_);
}

void Executor::forward(const Batch& batch) {
    const ModelConfig& c = model_->config();
    const int32_t n = (int32_t)batch.tokens.size();
    if (n == 0) return;
    if (n > max_batch_) fail(MW_ERR_INTERNAL, "batch of " + std::to_string(n) + " tokens exceeds the step size");
    if (batch.n_logits() > max_logit_rows_) fail(MW_ERR_INTERNAL, "too many logit rows in one batch");
    for (const auto& bt : batch.tokens) {
        if (bt.pos < 0 || bt.pos >= n_ctx_) fail(MW_ERR_INTERNAL, "position beyond the context");
        const BlockTable& table = *batch.tables[(size_t)bt.seq];
        if ((size_t)(bt.pos / kv_.block_tokens()) >= table.blocks.size())
            fail(MW_ERR_INTERNAL, "position not covered by the sequence's KV blocks");
    }
    allocate_step(n, batch.n_logits());
    seq_tokens_ = arena_.alloc<int32_t>(batch.tables.size());
    for (size_t i = 0; i < batch.tables.size(); i++) seq_tokens_[i] = 0;
    for (const auto& bt : batch.tokens) seq_tokens_[bt.seq]++;
    // Which rows carry a LoRA delta (none at all: the plain path).
    lora_rows_ = nullptr;
    lora_tokens_.clear();
    bool any_lora = false;
    for (const LoraBinding* b : batch.loras) any_lora = any_lora || b != nullptr;
    if (any_lora) {
        for (const auto& bt : batch.tokens)
            lora_tokens_.push_back((size_t)bt.seq < batch.loras.size() ? batch.loras[(size_t)bt.seq] : nullptr);
        lora_rows_ = lora_tokens_.data();
    }
    embed(batch);
    const float* factors = model_->weights().rope_freq_factors.empty() ? nullptr
                                                                        : model_->weights().rope_freq_factors.data();
    for (int32_t t = 0; t < n; t++) {
        float* cs = rope_cs_ + (size_t)t * c.n_rot;
        cpu::rope_angles(batch.tokens[(size_t)t].pos, c.n_rot, c.rope_theta, c.rope_freq_scale, factors, cs,
                         cs + c.n_rot / 2);
    }
    for (int32_t l = 0; l < c.n_layer; l++) {
        if (c.layers[(size_t)l].n_head > 0) attention_layer(batch, l);
        if (c.layers[(size_t)l].n_ff > 0) ffn_layer(n, l);
    }
    output(batch);
    lora_rows_ = nullptr;
}

}  // namespace mw
