// The forward pass of executor.cpp on a CUDA device, step by step the same:
//   x = token_embd[token]; per layer: rmsnorm, q/k/v (+bias), rope, K/V into
//   the sequence's blocks, paged attention, x += att Wo; rmsnorm,
//   x += (silu(xb Wgate) * (xb Wup)) Wdown; logits = rmsnorm(x) Woutput.
// Everything runs on one stream of this engine; the only waits are on this
// stream's events (never a device-wide sync), and a step copies back just the
// greedy token ids (all logits only when a sampler asks for them).
#include "runtime/cuda/cuda_executor.h"

#include "base/error.h"
#include "kernels/cuda/block_decode.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/kernels.h"
#include "runtime/cuda/cuda_plan.h"

#include <cuda_runtime.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

namespace mw::cuda {

namespace {

void ck(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    if (e == cudaErrorMemoryAllocation)
        fail(MW_ERR_OUT_OF_MEMORY, std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
    fail(MW_ERR_INTERNAL, std::string("CUDA ") + what + ": " + cudaGetErrorString(e));
}

// One device allocation, freed on destruction.
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        if (p_) cudaFree(p_);
    }
    void allocate(size_t bytes, const char* what) {
        if (bytes == 0) return;
        ck(cudaMalloc(&p_, bytes), what);
        bytes_ = bytes;
    }
    uint8_t* get() const { return (uint8_t*)p_; }
    size_t bytes() const { return bytes_; }

private:
    void* p_ = nullptr;
    size_t bytes_ = 0;
};

// Page-locked host memory: copies from it run asynchronously on the copy engine.
class PinnedBuffer {
public:
    PinnedBuffer() = default;
    PinnedBuffer(const PinnedBuffer&) = delete;
    PinnedBuffer& operator=(const PinnedBuffer&) = delete;
    ~PinnedBuffer() {
        if (p_) cudaFreeHost(p_);
    }
    void allocate(size_t bytes, const char* what) {
        if (bytes == 0) return;
        ck(cudaMallocHost(&p_, bytes), what);
        bytes_ = bytes;
    }
    uint8_t* get() const { return (uint8_t*)p_; }
    size_t bytes() const { return bytes_; }

private:
    void* p_ = nullptr;
    size_t bytes_ = 0;
};

// Hands out aligned pieces of one allocation, in order, within its size.
class Carver {
public:
    Carver(uint8_t* base, size_t cap) : base_(base), cap_(cap) {}
    template <typename T>
    T* take(size_t count) {
        const size_t bytes = align_up(count * sizeof(T));
        if (off_ + bytes > cap_) fail(MW_ERR_INTERNAL, "CUDA step buffers exceed their plan");
        T* p = (T*)(base_ + off_);
        off_ += bytes;
        return p;
    }

private:
    uint8_t* base_;
    size_t cap_;
    size_t off_ = 0;
};

struct DevLayer {
    cudak::WeightView wq, wk, wv, wo, bq, bk, bv, w_gate, w_up, w_down;
    const float *attn_norm = nullptr, *ffn_norm = nullptr, *bias_q = nullptr, *bias_k = nullptr, *bias_v = nullptr;
};

class CudaExecutor final : public StepExecutor {
public:
    CudaExecutor(std::shared_ptr<const Model> model, KvCache& kv, const ExecutorOptions& o);
    ~CudaExecutor() override;

    Backend backend() const override { return Backend::Cuda; }
    void forward(const Batch& batch) override;
    float* logits(int32_t row) override;
    bool has_device_argmax() const override { return true; }
    int32_t argmax(int32_t row) override { return ids_host_[row]; }
    size_t activations_reserved() const override { return staging_.bytes(); }
    size_t activations_high_water() const override { return staging_.bytes(); }
    DeviceMemory device_memory() const override;
    void copy_kv_block(int32_t src, int32_t dst) override;
    void read_kv_block(int32_t block, void* out) override;
    void write_kv_block(int32_t block, const void* in) override;

private:
    void check_block(int32_t block) const {
        if (block < 0 || block >= kv_.n_blocks()) fail(MW_ERR_INTERNAL, "KV block " + std::to_string(block) + " out of range");
    }
    // Copies on this engine's stream and waits for just that copy.
    void copy_and_wait(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind);
    void upload_weights();
    cudak::WeightView device_weight(const Weight& w);
    void matmul(const cudak::WeightView& w, const float* x, int32_t n, int64_t x_stride, float* y, bool accumulate);
    // Queues the whole forward pass of a staged step on the stream.
    void compute(int32_t n, int32_t m);
    // compute() through a CUDA graph captured once per (n, m): decode steps of
    // up to kGemvMaxTokens tokens are hundreds of small kernels, and one graph
    // launch replaces their launch costs. Falls back to compute() for good if
    // capture fails.
    void compute_graph(int32_t n, int32_t m);
    void attention_layer(int32_t n, int32_t il);
    void ffn_layer(int32_t n, int32_t il);
    cudak::KvLayerView kv_view(int32_t il) const;
    cudak::KvElem kv_elem() const {
        return kv_.type() == KvType::F16 ? cudak::KvElem::F16
               : kv_.type() == KvType::F32 ? cudak::KvElem::F32
                                           : cudak::KvElem::Q8_0;
    }

    std::shared_ptr<const Model> model_;
    KvCache& kv_;
    ExecutorOptions opts_;
    StepLayout layout_;
    // The stream and its events, destroyed even when the constructor throws.
    struct StreamHandles {
        cudaStream_t stream = nullptr;
        cudaEvent_t done = nullptr;
        cudaEvent_t staged[2] = {nullptr, nullptr};
        StreamHandles() = default;
        StreamHandles(const StreamHandles&) = delete;
        StreamHandles& operator=(const StreamHandles&) = delete;
        ~StreamHandles() {
            if (stream) cudaStreamSynchronize(stream);
            for (cudaEvent_t e : staged)
                if (e) cudaEventDestroy(e);
            if (done) cudaEventDestroy(done);
            if (stream) cudaStreamDestroy(stream);
        }
    } h_;

    DeviceBuffer weights_buf_, kv_buf_, act_buf_, ws_buf_;
    PinnedBuffer staging_;  // step inputs, then greedy ids and logits coming back
    std::unordered_map<const uint8_t*, const uint8_t*> uploaded_;  // host tensor -> device copy
    size_t weights_used_ = 0;

    cudak::WeightView embd_, output_;
    const float* output_norm_ = nullptr;
    const float* rope_factors_ = nullptr;
    std::vector<DevLayer> layers_;
    std::vector<uint64_t> layer_offset_;
    std::unique_ptr<cudak::LtGemm> gemm_;

    // device step buffers
    float *x_ = nullptr, *xb_ = nullptr, *q_ = nullptr, *att_ = nullptr, *k_ = nullptr, *v_ = nullptr;
    float *g_ = nullptr, *u_ = nullptr, *logits_ = nullptr;
    int32_t *ids_ = nullptr, *meta_ = nullptr;
    void *act16_ = nullptr, *tile_ = nullptr, *lt_ws_ = nullptr;
    // host staging (pinned)
    int32_t* meta_host_ = nullptr;
    int32_t* ids_host_ = nullptr;
    float* logits_host_ = nullptr;
    size_t meta_count_ = 0;

    // this step
    const int32_t *tokens_d_ = nullptr, *pos_d_ = nullptr, *seq_d_ = nullptr, *rows_d_ = nullptr, *tables_d_ = nullptr;
    int32_t n_logits_ = 0;
    bool logits_on_host_ = false;
    bool graphs_enabled_ = true;  // MEMWISE_CUDA_GRAPHS=0 turns them off (for comparison)
    std::unordered_map<int64_t, cudaGraphExec_t> graphs_;
};

CudaExecutor::CudaExecutor(std::shared_ptr<const Model> model, KvCache& kv, const ExecutorOptions& o)
    : model_(std::move(model)), kv_(kv), opts_(o) {
    const ModelConfig& c = model_->config();
    // Q8_0 rows as KvCache lays them out (kv_dim / 32 blocks of an F16 scale
    // and 32 int8), which the kernels read per head: a head must start on a block.
    if (kv_.type() == KvType::Q8_0 && c.head_dim % 32 != 0)
        fail(MW_ERR_UNSUPPORTED, "the CUDA backend's Q8_0 KV cache needs head_dim a multiple of 32; this model has " +
                                     std::to_string(c.head_dim) + " (use an F16 or F32 KV cache)");
    if (o.max_batch_tokens > 65535)
        fail(MW_ERR_INVALID_ARGUMENT, "the CUDA backend runs at most 65535 tokens per step (max_batch_tokens)");
    if (c.head_dim > 512) fail(MW_ERR_UNSUPPORTED, "the CUDA backend supports head_dim up to 512");
    layout_ = step_layout(c, o.max_batch_tokens, o.max_logit_rows, o.n_ctx, kv_.block_tokens());
    if (o.step_bytes != 0 && o.step_bytes != layout_.activations + layout_.workspace)
        fail(MW_ERR_INTERNAL, "CUDA step buffers differ from the engine plan");

    // Every weight the pass reads must be a type the kernels decode.
    const ModelWeights& mw = model_->weights();
    auto check_type = [](const Weight& w, const char* what) {
        if (w && !cudak::type_supported((uint32_t)w.type))
            fail(MW_ERR_UNSUPPORTED, std::string("the CUDA backend cannot decode the type of ") + what +
                                         (w.info ? " (" + w.info->name + ")" : std::string()));
    };
    check_type(mw.token_embd, "token_embd");
    check_type(mw.output, "output");
    for (const LayerWeights& l : mw.layers) {
        for (const Weight* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) check_type(*w, "a layer weight");
        for (const Weight* w : {&l.attn_norm, &l.ffn_norm, &l.bq, &l.bk, &l.bv})
            if (*w && w->type != gguf::TensorType::F32) fail(MW_ERR_UNSUPPORTED, "norm weights and biases must be F32");
    }

    ck(cudaSetDevice(o.device), "set device");
    // Weights, KV and step buffers must all fit in what the device has free.
    size_t weight_bytes = 0;
    {
        std::unordered_map<const uint8_t*, bool> seen;
        auto add = [&](const Weight& w) {
            if (w && seen.emplace(w.data, true).second) weight_bytes += align_up(w.row_bytes * (size_t)w.n_out);
        };
        add(mw.token_embd);
        add(mw.output);
        add(mw.output_norm);
        for (const LayerWeights& l : mw.layers)
            for (const Weight* w : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.bq, &l.bk, &l.bv, &l.ffn_norm,
                                    &l.w_gate, &l.w_up, &l.w_down})
                add(*w);
        weight_bytes += align_up(mw.rope_freq_factors.size() * sizeof(float));
    }
    size_t free_b = 0, total_b = 0;
    ck(cudaMemGetInfo(&free_b, &total_b), "memory info");
    const size_t need = weight_bytes + kv_.total_bytes() + layout_.activations + layout_.workspace;
    if (need > free_b)
        fail(MW_ERR_BUDGET, "CUDA device " + std::to_string(o.device) + " has " + std::to_string(free_b) +
                                " bytes free; this engine needs " + std::to_string(need) + " (" +
                                std::to_string(weight_bytes) + " weights + " + std::to_string(kv_.total_bytes()) +
                                " KV + " + std::to_string(layout_.activations + layout_.workspace) +
                                " step buffers): lower max_sequences, n_ctx or memory_budget_bytes");

    ck(cudaStreamCreateWithFlags(&h_.stream, cudaStreamNonBlocking), "stream");
    ck(cudaEventCreateWithFlags(&h_.done, cudaEventDisableTiming), "event");
    for (auto& e : h_.staged) ck(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "event");

    weights_buf_.allocate(weight_bytes, "weights allocation");
    kv_buf_.allocate(kv_.total_bytes(), "KV pool allocation");
    act_buf_.allocate(layout_.activations, "step buffer allocation");
    ws_buf_.allocate(layout_.workspace, "GEMM workspace allocation");

    // Layer offsets inside a block, as KvCache lays them out.
    uint64_t off = 0;
    for (int32_t l = 0; l < c.n_layer; l++) {
        layer_offset_.push_back(off);
        if (kv_.row_bytes(l) != cudak::kv_row_bytes(kv_elem(), kv_.kv_dim(l)))
            fail(MW_ERR_INTERNAL, "CUDA KV row size differs from the KV cache's");
        off += 2 * (uint64_t)kv_.block_tokens() * (uint64_t)kv_.row_bytes(l);
    }
    if (off != kv_.block_bytes()) fail(MW_ERR_INTERNAL, "CUDA KV layout differs from the KV cache's");

    const size_t B = (size_t)o.max_batch_tokens, R = (size_t)o.max_logit_rows;
    const size_t q_dim = (size_t)c.max_n_head() * c.head_dim, kvd = (size_t)c.max_kv_dim(), ff = (size_t)c.max_n_ff();
    Carver a(act_buf_.get(), act_buf_.bytes());
    x_ = a.take<float>(B * c.n_embd);
    xb_ = a.take<float>(B * c.n_embd);
    q_ = a.take<float>(B * q_dim);
    att_ = a.take<float>(B * q_dim);
    k_ = a.take<float>(B * kvd);
    v_ = a.take<float>(B * kvd);
    g_ = a.take<float>(B * ff);
    u_ = a.take<float>(B * ff);
    logits_ = a.take<float>(R * (size_t)c.n_vocab);
    ids_ = a.take<int32_t>(R);
    meta_count_ = 4 * B + R + R * (size_t)layout_.max_blocks;
    meta_ = a.take<int32_t>(meta_count_);
    if (layout_.workspace) {
        Carver w(ws_buf_.get(), ws_buf_.bytes());
        act16_ = w.take<uint16_t>(B * (size_t)layout_.max_in);
        tile_ = w.take<uint16_t>((size_t)layout_.tile_rows * (size_t)layout_.max_in);
        lt_ws_ = w.take<uint8_t>(kGemmWorkspaceBytes);
        gemm_ = std::make_unique<cudak::LtGemm>();
    }

    // Pinned staging: the step's inputs, the ids and the logits coming back;
    // the same bytes serve as the upload bounce buffer for the weights first.
    const size_t meta_bytes = align_up(meta_count_ * 4), ids_bytes = align_up(R * 4);
    const size_t logits_bytes = align_up(R * (size_t)c.n_vocab * 4);
    staging_.allocate(std::max<size_t>(meta_bytes + ids_bytes + logits_bytes, 2 * (4u << 20)), "pinned staging");
    meta_host_ = (int32_t*)staging_.get();
    ids_host_ = (int32_t*)(staging_.get() + meta_bytes);
    logits_host_ = (float*)(staging_.get() + meta_bytes + ids_bytes);

    const char* graphs = std::getenv("MEMWISE_CUDA_GRAPHS");
    graphs_enabled_ = !(graphs && std::strcmp(graphs, "0") == 0);
    upload_weights();
}

CudaExecutor::~CudaExecutor() {
    // Members release the rest (buffers, cuBLASLt, then the stream) on this device.
    cudaSetDevice(opts_.device);
    if (h_.stream) cudaStreamSynchronize(h_.stream);
    for (auto& g : graphs_) cudaGraphExecDestroy(g.second);
}

cudak::WeightView CudaExecutor::device_weight(const Weight& w) {
    cudak::WeightView v;
    if (!w) return v;
    v.type = (uint32_t)w.type;
    v.row_bytes = w.row_bytes;
    v.n_in = w.n_in;
    v.n_out = w.n_out;
    auto it = uploaded_.find(w.data);
    if (it != uploaded_.end()) {  // tied output: the embedding's copy
        v.data = it->second;
        return v;
    }
    const size_t bytes = w.row_bytes * (size_t)w.n_out;
    uint8_t* dst = weights_buf_.get() + weights_used_;
    weights_used_ += align_up(bytes);
    if (weights_used_ > weights_buf_.bytes()) fail(MW_ERR_INTERNAL, "CUDA weights exceed their allocation");
    // Through two pinned halves in turn: the copy of one overlaps filling the other.
    const size_t half = staging_.bytes() / 2;
    for (size_t done = 0, i = 0; done < bytes; done += half, i ^= 1) {
        const size_t n = std::min(half, bytes - done);
        ck(cudaEventSynchronize(h_.staged[i]), "upload wait");
        std::memcpy(staging_.get() + i * half, w.data + done, n);
        ck(cudaMemcpyAsync(dst + done, staging_.get() + i * half, n, cudaMemcpyHostToDevice, h_.stream), "upload");
        ck(cudaEventRecord(h_.staged[i], h_.stream), "upload event");
    }
    uploaded_.emplace(w.data, dst);
    v.data = dst;
    return v;
}

void CudaExecutor::upload_weights() {
    const ModelWeights& mw = model_->weights();
    for (auto& e : h_.staged) ck(cudaEventRecord(e, h_.stream), "event");
    embd_ = device_weight(mw.token_embd);
    output_ = device_weight(mw.output);
    output_norm_ = (const float*)device_weight(mw.output_norm).data;
    for (const LayerWeights& l : mw.layers) {
        DevLayer d;
        d.attn_norm = (const float*)device_weight(l.attn_norm).data;
        d.ffn_norm = (const float*)device_weight(l.ffn_norm).data;
        d.wq = device_weight(l.wq);
        d.wk = device_weight(l.wk);
        d.wv = device_weight(l.wv);
        d.wo = device_weight(l.wo);
        d.bias_q = (const float*)device_weight(l.bq).data;
        d.bias_k = (const float*)device_weight(l.bk).data;
        d.bias_v = (const float*)device_weight(l.bv).data;
        d.w_gate = device_weight(l.w_gate);
        d.w_up = device_weight(l.w_up);
        d.w_down = device_weight(l.w_down);
        layers_.push_back(d);
    }
    if (!mw.rope_freq_factors.empty()) {
        const size_t bytes = mw.rope_freq_factors.size() * sizeof(float);
        uint8_t* dst = weights_buf_.get() + weights_used_;
        weights_used_ += align_up(bytes);
        ck(cudaStreamSynchronize(h_.stream), "upload");
        std::memcpy(staging_.get(), mw.rope_freq_factors.data(), bytes);
        ck(cudaMemcpyAsync(dst, staging_.get(), bytes, cudaMemcpyHostToDevice, h_.stream), "upload");
        rope_factors_ = (const float*)dst;
    }
    ck(cudaStreamSynchronize(h_.stream), "upload");
    if (opts_.release_host_weights) {
        // The mapping is file-backed and read-only: dropping its pages loses
        // nothing (a CPU engine on the same model faults them back in).
        const long page = sysconf(_SC_PAGESIZE);
        const gguf::File& f = model_->file();
        const uintptr_t b = (uintptr_t)f.base();
        const uintptr_t start = (b + (uintptr_t)page - 1) / (uintptr_t)page * (uintptr_t)page;
        const uintptr_t end = (b + f.file_size()) / (uintptr_t)page * (uintptr_t)page;
        if (end > start) madvise((void*)start, end - start, MADV_DONTNEED);
    }
}

cudak::KvLayerView CudaExecutor::kv_view(int32_t il) const {
    cudak::KvLayerView v;
    v.base = kv_buf_.get();
    v.block_bytes = kv_.block_bytes();
    v.layer_offset = layer_offset_[(size_t)il];
    v.block_tokens = kv_.block_tokens();
    v.kv_dim = kv_.kv_dim(il);
    v.elem = kv_elem();
    v.tables = tables_d_;
    v.max_blocks = layout_.max_blocks;
    return v;
}

void CudaExecutor::matmul(const cudak::WeightView& w, const float* x, int32_t n, int64_t x_stride, float* y,
                          bool accumulate) {
    // Decode-sized steps and F32 weights: GEMV (exact F32 products). Larger
    // steps: dequantized tiles through cuBLASLt, F16 (BF16 for BF16 weights).
    if (n <= kGemvMaxTokens || w.type == cudak::kF32 || !gemm_) {
        for (int32_t t0 = 0; t0 < n; t0 += kGemvMaxTokens)
            cudak::gemv(w, x + t0 * x_stride, x_stride, std::min(kGemvMaxTokens, n - t0), y + (int64_t)t0 * w.n_out,
                        w.n_out, accumulate, h_.stream);
        return;
    }
    const cudak::HalfType ht = w.type == cudak::kBF16 ? cudak::HalfType::BF16 : cudak::HalfType::F16;
    cudak::to_half(x, n, (int)w.n_in, x_stride, act16_, ht, h_.stream);
    for (int64_t r0 = 0; r0 < w.n_out; r0 += layout_.tile_rows) {
        const int64_t rows = std::min(layout_.tile_rows, w.n_out - r0);
        cudak::dequantize_rows(w, r0, rows, tile_, ht, h_.stream);
        gemm_->run(ht, rows, n, w.n_in, tile_, act16_, y + r0, w.n_out, accumulate, lt_ws_, kGemmWorkspaceBytes,
                   h_.stream);
    }
}

void CudaExecutor::attention_layer(int32_t n, int32_t il) {
    const ModelConfig& c = model_->config();
    const LayerConfig& lc = c.layers[(size_t)il];
    const DevLayer& l = layers_[(size_t)il];
    const int32_t hd = c.head_dim, q_dim = lc.n_head * hd, kv_dim = lc.n_head_kv * hd;
    cudak::rmsnorm(x_, l.attn_norm, n, c.n_embd, c.rms_eps, nullptr, xb_, h_.stream);
    matmul(l.wq, xb_, n, c.n_embd, q_, false);
    matmul(l.wk, xb_, n, c.n_embd, k_, false);
    matmul(l.wv, xb_, n, c.n_embd, v_, false);
    if (l.bias_q) {
        cudak::add_bias(q_, l.bias_q, n, q_dim, h_.stream);
        cudak::add_bias(k_, l.bias_k, n, kv_dim, h_.stream);
        cudak::add_bias(v_, l.bias_v, n, kv_dim, h_.stream);
    }
    const bool neox = c.rope_order == RopeOrder::Neox;
    cudak::rope(q_, n, q_dim, lc.n_head, hd, c.n_rot, pos_d_, c.rope_theta, c.rope_freq_scale, rope_factors_, neox,
                h_.stream);
    cudak::rope(k_, n, kv_dim, lc.n_head_kv, hd, c.n_rot, pos_d_, c.rope_theta, c.rope_freq_scale, rope_factors_, neox,
                h_.stream);
    const cudak::KvLayerView kv = kv_view(il);
    cudak::kv_store(k_, v_, n, pos_d_, seq_d_, kv, h_.stream);
    cudak::paged_attention(q_, n, lc.n_head, lc.n_head_kv, hd, pos_d_, seq_d_, kv, 1.0f / std::sqrt((float)hd), att_,
                           h_.stream);
    matmul(l.wo, att_, n, q_dim, x_, true);  // x += att Wo
}

void CudaExecutor::ffn_layer(int32_t n, int32_t il) {
    const ModelConfig& c = model_->config();
    const LayerConfig& lc = c.layers[(size_t)il];
    const DevLayer& l = layers_[(size_t)il];
    cudak::rmsnorm(x_, l.ffn_norm, n, c.n_embd, c.rms_eps, nullptr, xb_, h_.stream);
    matmul(l.w_gate, xb_, n, c.n_embd, g_, false);
    matmul(l.w_up, xb_, n, c.n_embd, u_, false);
    cudak::silu_mul(g_, u_, (int64_t)n * lc.n_ff, h_.stream);
    matmul(l.w_down, g_, n, lc.n_ff, x_, true);  // x += ffn
}

void CudaExecutor::forward(const Batch& batch) {
    const ModelConfig& c = model_->config();
    const int32_t n = (int32_t)batch.tokens.size();
    n_logits_ = 0;
    logits_on_host_ = false;
    if (n == 0) return;
    if (n > opts_.max_batch_tokens) fail(MW_ERR_INTERNAL, "batch of " + std::to_string(n) + " tokens exceeds the step size");
    const int32_t m = batch.n_logits();
    if (m > opts_.max_logit_rows || (int32_t)batch.tables.size() > opts_.max_logit_rows)
        fail(MW_ERR_INTERNAL, "too many logit rows or sequences in one batch");

    // Stage the inputs: tokens, positions, sequences, logit rows, block tables.
    int32_t* tok = meta_host_;
    int32_t* pos = tok + n;
    int32_t* seq = pos + n;
    int32_t* rows = seq + n;
    int32_t* tables = rows + m;
    const int32_t max_blocks = layout_.max_blocks;
    int32_t r = 0;
    for (int32_t t = 0; t < n; t++) {
        const BatchToken& bt = batch.tokens[(size_t)t];
        if (bt.token < 0 || bt.token >= c.n_vocab)
            fail(MW_ERR_INVALID_ARGUMENT, "token id " + std::to_string(bt.token) + " out of range");
        if (bt.pos < 0 || bt.pos >= opts_.n_ctx) fail(MW_ERR_INTERNAL, "position beyond the context");
        if (bt.seq < 0 || (size_t)bt.seq >= batch.tables.size()) fail(MW_ERR_INTERNAL, "bad sequence index");
        if ((size_t)(bt.pos / kv_.block_tokens()) >= batch.tables[(size_t)bt.seq]->blocks.size())
            fail(MW_ERR_INTERNAL, "position not covered by the sequence's KV blocks");
        tok[t] = bt.token;
        pos[t] = bt.pos;
        seq[t] = bt.seq;
        if (bt.want_logits) rows[r++] = t;
    }
    for (size_t s = 0; s < batch.tables.size(); s++) {
        const std::vector<int32_t>& blocks = batch.tables[s]->blocks;
        if (blocks.size() > (size_t)max_blocks) fail(MW_ERR_INTERNAL, "block table longer than a full context");
        int32_t* dst = tables + s * (size_t)max_blocks;
        for (int32_t i = 0; i < max_blocks; i++) dst[i] = (size_t)i < blocks.size() ? blocks[(size_t)i] : 0;
    }
    const size_t count = (size_t)(3 * n + m) + batch.tables.size() * (size_t)max_blocks;

    ck(cudaSetDevice(opts_.device), "set device");  // the engine thread is not the creating one
    ck(cudaMemcpyAsync(meta_, meta_host_, count * 4, cudaMemcpyHostToDevice, h_.stream), "input upload");
    tokens_d_ = meta_;
    pos_d_ = meta_ + n;
    seq_d_ = meta_ + 2 * n;
    rows_d_ = meta_ + 3 * n;
    tables_d_ = meta_ + 3 * n + m;

    // Same (n, m): same buffers and kernel arguments; what differs from step to
    // step (tokens, positions, tables) is read from device memory.
    if (graphs_enabled_ && n <= kGemvMaxTokens) compute_graph(n, m);
    else compute(n, m);
    if (m > 0) ck(cudaMemcpyAsync(ids_host_, ids_, (size_t)m * 4, cudaMemcpyDeviceToHost, h_.stream), "ids download");
    ck(cudaEventRecord(h_.done, h_.stream), "event");
    ck(cudaEventSynchronize(h_.done), "step");  // also: the staging buffer is free again
    n_logits_ = m;
}

void CudaExecutor::compute(int32_t n, int32_t m) {
    const ModelConfig& c = model_->config();
    cudak::gather_rows_f32(embd_, tokens_d_, n, x_, h_.stream);
    for (int32_t l = 0; l < c.n_layer; l++) {
        if (c.layers[(size_t)l].n_head > 0) attention_layer(n, l);
        if (c.layers[(size_t)l].n_ff > 0) ffn_layer(n, l);
    }
    if (m > 0) {
        cudak::rmsnorm(x_, output_norm_, m, c.n_embd, c.rms_eps, rows_d_, xb_, h_.stream);
        matmul(output_, xb_, m, c.n_embd, logits_, false);
        cudak::argmax_rows(logits_, m, c.n_vocab, ids_, h_.stream);
    }
}

void CudaExecutor::compute_graph(int32_t n, int32_t m) {
    const int64_t key = (int64_t)n << 32 | (int64_t)m;
    auto it = graphs_.find(key);
    if (it == graphs_.end()) {
        cudaGraph_t g = nullptr;
        cudaGraphExec_t ge = nullptr;
        ck(cudaStreamBeginCapture(h_.stream, cudaStreamCaptureModeThreadLocal), "graph capture");
        bool captured = true;
        try {
            compute(n, m);
        } catch (const Error&) {
            captured = false;
        }
        const cudaError_t e_end = cudaStreamEndCapture(h_.stream, &g);
        cudaError_t e_inst = cudaErrorUnknown;
        if (captured && e_end == cudaSuccess && g) e_inst = cudaGraphInstantiate(&ge, g, 0);
        if (g) cudaGraphDestroy(g);
        if (!captured || e_end != cudaSuccess || e_inst != cudaSuccess) {
            // Nothing ran while capturing: run the step directly, and from now on.
            cudaGetLastError();
            graphs_enabled_ = false;
            compute(n, m);
            return;
        }
        it = graphs_.emplace(key, ge).first;
    }
    ck(cudaGraphLaunch(it->second, h_.stream), "graph launch");
}

float* CudaExecutor::logits(int32_t row) {
    const ModelConfig& c = model_->config();
    if (row < 0 || row >= n_logits_) fail(MW_ERR_INTERNAL, "logits row out of range");
    if (!logits_on_host_) {
        ck(cudaSetDevice(opts_.device), "set device");
        ck(cudaMemcpyAsync(logits_host_, logits_, (size_t)n_logits_ * c.n_vocab * 4, cudaMemcpyDeviceToHost, h_.stream),
           "logits download");
        ck(cudaEventRecord(h_.done, h_.stream), "event");
        ck(cudaEventSynchronize(h_.done), "logits download");
        logits_on_host_ = true;
    }
    return logits_host_ + (size_t)row * c.n_vocab;
}

void CudaExecutor::copy_and_wait(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
    ck(cudaSetDevice(opts_.device), "set device");
    ck(cudaMemcpyAsync(dst, src, bytes, kind, h_.stream), "KV block copy");
    ck(cudaEventRecord(h_.done, h_.stream), "event");
    ck(cudaEventSynchronize(h_.done), "KV block copy");
}

void CudaExecutor::copy_kv_block(int32_t src, int32_t dst) {
    check_block(src);
    check_block(dst);
    const size_t bb = kv_.block_bytes();
    copy_and_wait(kv_buf_.get() + (size_t)dst * bb, kv_buf_.get() + (size_t)src * bb, bb, cudaMemcpyDeviceToDevice);
}

void CudaExecutor::read_kv_block(int32_t block, void* out) {
    check_block(block);
    const size_t bb = kv_.block_bytes();
    copy_and_wait(out, kv_buf_.get() + (size_t)block * bb, bb, cudaMemcpyDeviceToHost);
}

void CudaExecutor::write_kv_block(int32_t block, const void* in) {
    check_block(block);
    const size_t bb = kv_.block_bytes();
    copy_and_wait(kv_buf_.get() + (size_t)block * bb, in, bb, cudaMemcpyHostToDevice);
}

DeviceMemory CudaExecutor::device_memory() const {
    DeviceMemory d;
    d.weights = weights_buf_.bytes();
    d.kv = kv_buf_.bytes();
    d.activations = act_buf_.bytes();
    d.workspace = ws_buf_.bytes();
    d.total = d.weights + d.kv + d.activations + d.workspace;
    return d;
}

}  // namespace

int device_count(std::string* why) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error
        *why = std::string("no usable CUDA driver or device (") + cudaGetErrorString(e) + ")";
        return 0;
    }
    if (n == 0) *why = "no CUDA device found";
    return n;
}

std::unique_ptr<StepExecutor> make_executor(std::shared_ptr<const Model> model, KvCache& kv,
                                            const ExecutorOptions& opts) {
    return std::make_unique<CudaExecutor>(std::move(model), kv, opts);
}

}  // namespace mw::cuda
