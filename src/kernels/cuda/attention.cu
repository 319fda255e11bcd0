// Paged attention for the CUDA backend: one thread block per (token, query
// head), four warps splitting the sequence's positions, each keeping an online
// softmax (running max, sum and weighted V) over its share; the four are merged
// at the end. Positions are found through the sequence's block table exactly
// as on the CPU (block = table[pos / block_tokens], slot = pos % block_tokens).
#include "kernels/cuda/block_decode.h"
#include "kernels/cuda/kernels.h"

#include "base/error.h"

#include <cuda_fp16.h>

#include <cmath>
#include <string>

namespace mw::cudak {

namespace {

constexpr int kWarps = 4;

// Element d of a K/V row (row points at the head's first element).
template <KvElem E>
__device__ __forceinline__ float kv_load(const uint8_t* row, int d) {
    if constexpr (E == KvElem::F16) return __half2float(((const __half*)row)[d]);
    else if constexpr (E == KvElem::F32) return ((const float*)row)[d];
    else {
        const uint8_t* b = row + (d >> 5) * 34;
        return half_to_float(load_u16(b)) * (float)(int8_t)b[2 + (d & 31)];
    }
}

// DPL: head dims per lane (head_dim <= 32 * DPL).
template <KvElem E, int DPL>
__global__ void paged_attention_kernel(const float* __restrict__ q, int n_head, int group, int head_dim,
                                       const int32_t* __restrict__ pos, const int32_t* __restrict__ seq,
                                       KvLayerView kv, float scale, float* __restrict__ out) {
    __shared__ float s_m[kWarps], s_l[kWarps];
    __shared__ float s_acc[kWarps][32 * DPL];
    const int h = blockIdx.x, t = blockIdx.y;
    const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    const int q_dim = n_head * head_dim;
    const float* qh = q + (int64_t)t * q_dim + (int64_t)h * head_dim;
    float qv[DPL], acc[DPL];
#pragma unroll
    for (int i = 0; i < DPL; i++) {
        const int d = lane + 32 * i;
        qv[i] = d < head_dim ? qh[d] : 0.0f;
        acc[i] = 0.0f;
    }
    const int n_pos = pos[t] + 1;
    const int32_t* table = kv.tables + (int64_t)seq[t] * kv.max_blocks;
    const uint64_t rb = kv_row_bytes(E, kv.kv_dim);
    const uint64_t head_off = kv_row_bytes(E, (h / group) * head_dim);
    float m = -INFINITY, l = 0.0f;
    for (int p = warp; p < n_pos; p += kWarps) {
        const uint8_t* layer = kv.base + (uint64_t)table[p / kv.block_tokens] * kv.block_bytes + kv.layer_offset;
        const int slot = p % kv.block_tokens;
        const uint8_t* krow = layer + (uint64_t)slot * rb + head_off;
        const uint8_t* vrow = layer + ((uint64_t)kv.block_tokens + slot) * rb + head_off;
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int d = lane + 32 * i;
            if (d < head_dim) dot = fmaf(qv[i], kv_load<E>(krow, d), dot);
        }
        for (int o = 16; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        const float s = dot * scale;
        const float m_new = fmaxf(m, s);
        const float corr = expf(m - m_new);  // 0 on the first position (m = -inf)
        const float w = expf(s - m_new);
        l = l * corr + w;
#pragma unroll
        for (int i = 0; i < DPL; i++) {
            const int d = lane + 32 * i;
            acc[i] = acc[i] * corr + (d < head_dim ? w * kv_load<E>(vrow, d) : 0.0f);
        }
        m = m_new;
    }
    if (lane == 0) {
        s_m[warp] = m;
        s_l[warp] = l;
    }
#pragma unroll
    for (int i = 0; i < DPL; i++) s_acc[warp][lane + 32 * i] = acc[i];
    __syncthreads();
    // Merge the warps' partial softmaxes (a warp without positions has l = 0).
    float M = -INFINITY;
    for (int w = 0; w < kWarps; w++) M = fmaxf(M, s_m[w]);
    float L = 0.0f, f[kWarps];
    for (int w = 0; w < kWarps; w++) {
        f[w] = s_l[w] > 0.0f ? expf(s_m[w] - M) : 0.0f;
        L += s_l[w] * f[w];
    }
    float* oh = out + (int64_t)t * q_dim + (int64_t)h * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float v = 0.0f;
        for (int w = 0; w < kWarps; w++) v += s_acc[w][d] * f[w];
        oh[d] = v / L;
    }
}

template <KvElem E>
void launch(const float* q, int n_tok, int n_head, int group, int head_dim, const int32_t* pos, const int32_t* seq,
            const KvLayerView& kv, float scale, float* out, cudaStream_t s) {
    const dim3 grid((unsigned)n_head, (unsigned)n_tok);
    const int threads = 32 * kWarps;
    if (head_dim <= 64)
        paged_attention_kernel<E, 2><<<grid, threads, 0, s>>>(q, n_head, group, head_dim, pos, seq, kv, scale, out);
    else if (head_dim <= 128)
        paged_attention_kernel<E, 4><<<grid, threads, 0, s>>>(q, n_head, group, head_dim, pos, seq, kv, scale, out);
    else if (head_dim <= 256)
        paged_attention_kernel<E, 8><<<grid, threads, 0, s>>>(q, n_head, group, head_dim, pos, seq, kv, scale, out);
    else
        paged_attention_kernel<E, 16><<<grid, threads, 0, s>>>(q, n_head, group, head_dim, pos, seq, kv, scale, out);
}

}  // namespace

void paged_attention(const float* q, int n_tok, int n_head, int n_head_kv, int head_dim, const int32_t* pos,
                     const int32_t* seq, const KvLayerView& kv, float scale, float* out, cudaStream_t s) {
    if (n_tok <= 0 || n_head <= 0) return;
    if (head_dim > 512) fail(MW_ERR_UNSUPPORTED, "CUDA attention: head_dim " + std::to_string(head_dim) + " above 512");
    if (n_head_kv <= 0 || n_head % n_head_kv != 0) fail(MW_ERR_INTERNAL, "CUDA attention: bad head counts");
    if (n_tok > 65535) fail(MW_ERR_INTERNAL, "CUDA attention: more than 65535 tokens in one step");
    const int group = n_head / n_head_kv;
    switch (kv.elem) {
    case KvElem::F16: launch<KvElem::F16>(q, n_tok, n_head, group, head_dim, pos, seq, kv, scale, out, s); break;
    case KvElem::F32: launch<KvElem::F32>(q, n_tok, n_head, group, head_dim, pos, seq, kv, scale, out, s); break;
    case KvElem::Q8_0:
        if (head_dim % 32 != 0) fail(MW_ERR_UNSUPPORTED, "a Q8_0 KV cache needs head_dim a multiple of 32");
        launch<KvElem::Q8_0>(q, n_tok, n_head, group, head_dim, pos, seq, kv, scale, out, s);
        break;
    }
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) fail(MW_ERR_INTERNAL, std::string("attention kernel: ") + cudaGetErrorString(e));
}

}  // namespace mw::cudak
