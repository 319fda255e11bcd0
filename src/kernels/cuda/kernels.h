// CUDA kernels of the forward pass, as host functions that launch on a stream.
// All pointers are device pointers; nothing here synchronizes. Weight rows are
// GGUF rows as in the file (block_decode.h decodes them on the device).
#pragma once

#include "kernels/cuda/block_decode.h"

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mw::cudak {

// A weight matrix in device memory: n_out rows of n_in elements.
struct WeightView {
    uint32_t type = 0;  // gguf::TensorType value
    const uint8_t* data = nullptr;
    uint64_t row_bytes = 0;
    int64_t n_in = 0, n_out = 0;
};

// Types the kernels decode: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K.
bool type_supported(uint32_t type);

// y[t * y_stride + r] (+)= sum_i W[r][i] * x[t * x_stride + i] for t < n_tok
// (n_tok <= 8): one warp per weight row, the row decoded once for all tokens.
void gemv(const WeightView& w, const float* x, int64_t x_stride, int n_tok, float* y, int64_t y_stride,
          bool accumulate, cudaStream_t s);

// Element type of dequantized tiles and GEMM activations.
enum class HalfType { F16, BF16 };

// out[(r - r0) * n_in + i] = W[r][i] for r in [r0, r0 + rows) (rows <= 65535).
void dequantize_rows(const WeightView& w, int64_t r0, int64_t rows, void* out, HalfType ht, cudaStream_t s);
// x[t * n_in + i] = W[ids[t]][i] in F32, t < n (the embedding lookup).
void gather_rows_f32(const WeightView& w, const int32_t* ids, int n, float* x, cudaStream_t s);
// out[t * n + i] = x[t * x_stride + i] as F16/BF16.
void to_half(const float* x, int rows, int n, int64_t x_stride, void* out, HalfType ht, cudaStream_t s);

// out[r] = x[src] / rms(x[src]) * w, src = ids ? ids[r] : r; rows of n floats.
void rmsnorm(const float* x, const float* w, int rows, int n, float eps, const int32_t* ids, float* out,
             cudaStream_t s);
// Rotates the first n_rot dims of each of n_heads heads of token t (row t, stride
// floats apart) by the angles of pos[t]: theta_i = freq_scale * pos / (base^(2i/n_rot) * factor_i).
// neox: pairs (i, i + n_rot/2); else (2i, 2i+1). factors may be null.
void rope(float* x, int n_tok, int64_t stride, int n_heads, int head_dim, int n_rot, const int32_t* pos, float base,
          float freq_scale, const float* factors, bool neox, cudaStream_t s);
// g[i] = silu(g[i]) * u[i], i < n.
void silu_mul(float* g, const float* u, int64_t n, cudaStream_t s);
// x[t * n + i] += b[i], t < rows.
void add_bias(float* x, const float* b, int rows, int n, cudaStream_t s);

// Element type of a KV row: F16, F32, or Q8_0 (kv_dim / 32 blocks of 34
// bytes, an F16 scale then 32 int8, as the Q8_0 weight block; head_dim must
// then be a multiple of 32 so every head starts on a block).
enum class KvElem { F16, F32, Q8_0 };

// Bytes of one K or V row of kv_dim elements.
MW_HD uint64_t kv_row_bytes(KvElem e, int kv_dim) {
    return e == KvElem::F16 ? 2ull * kv_dim : e == KvElem::F32 ? 4ull * kv_dim : (uint64_t)(kv_dim / 32) * 34;
}

// Where the KV bytes of one layer are: the engine's block layout (kv_cache.h),
// blocks of block_bytes, K[block_tokens] rows then V rows at layer_offset.
struct KvLayerView {
    uint8_t* base = nullptr;
    uint64_t block_bytes = 0, layer_offset = 0;
    int block_tokens = 0, kv_dim = 0;
    KvElem elem = KvElem::F16;
    const int32_t* tables = nullptr;  // [n_seqs][max_blocks] block ids
    int max_blocks = 0;
};
// Writes the K and V rows (kv_dim floats each, rows of token t) into slot pos[t]
// of sequence seq[t], converted to the view's element type (Q8_0 as
// block_decode.h's quantize_q8_0_block, ggml's reference rounding).
void kv_store(const float* k, const float* v, int n_tok, const int32_t* pos, const int32_t* seq,
              const KvLayerView& kv, cudaStream_t s);
// out[t][h] = softmax(q[t][h] . K[0..pos[t]] * scale) V, per token and head,
// reading the sequence's blocks; n_head / n_head_kv query heads share a KV head.
// head_dim <= 512. q and out rows are n_head * head_dim floats.
void paged_attention(const float* q, int n_tok, int n_head, int n_head_kv, int head_dim, const int32_t* pos,
                     const int32_t* seq, const KvLayerView& kv, float scale, float* out, cudaStream_t s);

// ids[r] = argmax of row r (n floats): lowest index on ties, NaN never, 0 when all NaN.
void argmax_rows(const float* logits, int rows, int n, int32_t* ids, cudaStream_t s);

}  // namespace mw::cudak
