// Element-wise and row kernels of the forward pass: RMSNorm, RoPE, SwiGLU,
// bias, F16/BF16 conversion of GEMM inputs, the KV store and greedy argmax.
#include "kernels/cuda/block_decode.h"
#include "kernels/cuda/kernels.h"

#include "base/error.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <climits>
#include <cmath>
#include <string>
#include <type_traits>

namespace mw::cudak {

namespace {

void check_launch(const char* what) {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) fail(MW_ERR_INTERNAL, std::string(what) + ": " + cudaGetErrorString(e));
}

unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

// Sum over a block of 256 threads; every thread gets the result.
__device__ float block_sum(float v, float* shared8) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if ((threadIdx.x & 31) == 0) shared8[threadIdx.x / 32] = v;
    __syncthreads();
    float t = 0.0f;
    for (int i = 0; i < (int)(blockDim.x / 32); i++) t += shared8[i];
    __syncthreads();
    return t;
}

__global__ void rmsnorm_kernel(const float* __restrict__ x, const float* __restrict__ w, int n, float eps,
                               const int32_t* __restrict__ ids, float* __restrict__ out) {
    __shared__ float part[8];
    const int64_t r = blockIdx.x;
    const float* xr = x + (ids ? (int64_t)ids[r] : r) * n;
    float ss = 0.0f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) ss = fmaf(xr[i], xr[i], ss);
    ss = block_sum(ss, part);
    const float scale = rsqrtf(ss / (float)n + eps);
    float* o = out + r * n;
    for (int i = threadIdx.x; i < n; i += blockDim.x) o[i] = xr[i] * scale * w[i];
}

__global__ void rope_kernel(float* __restrict__ x, int64_t stride, int n_heads, int head_dim, int n_rot,
                            const int32_t* __restrict__ pos, float base, float freq_scale,
                            const float* __restrict__ factors, int neox) {
    const int t = blockIdx.y;
    const int half = n_rot / 2;
    const int p = blockIdx.x * blockDim.x + threadIdx.x;  // pair index over all heads
    if (p >= n_heads * half) return;
    const int h = p / half, i = p % half;
    float theta = (float)pos[t] * powf(base, -2.0f * (float)i / (float)n_rot);
    if (factors) theta /= factors[i];
    theta *= freq_scale;
    float sn, cs;
    sincosf(theta, &sn, &cs);
    float* xh = x + (int64_t)t * stride + (int64_t)h * head_dim;
    const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    const float x0 = xh[a], x1 = xh[b];
    xh[a] = x0 * cs - x1 * sn;
    xh[b] = x0 * sn + x1 * cs;
}

__global__ void silu_mul_kernel(float* __restrict__ g, const float* __restrict__ u, int64_t n) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) {
        const float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

__global__ void add_bias_kernel(float* __restrict__ x, const float* __restrict__ b, int n, int64_t total) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < total) x[i] += b[i % n];
}

template <typename OutT>
__global__ void to_half_kernel(const float* __restrict__ x, int n, int64_t x_stride, OutT* __restrict__ out) {
    const int64_t t = blockIdx.y;
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float v = x[t * x_stride + i];
    if constexpr (std::is_same<OutT, __half>::value) out[t * n + i] = __float2half_rn(v);
    else out[t * n + i] = __float2bfloat16_rn(v);
}

__global__ void kv_store_kernel(const float* __restrict__ k, const float* __restrict__ v, const int32_t* __restrict__ pos,
                                const int32_t* __restrict__ seq, KvLayerView kv) {
    const int t = blockIdx.x;
    const int p = pos[t];
    const int32_t block = kv.tables[(int64_t)seq[t] * kv.max_blocks + p / kv.block_tokens];
    const int slot = p % kv.block_tokens;
    const uint64_t rb = kv_row_bytes(kv.elem, kv.kv_dim);
    uint8_t* layer = kv.base + (uint64_t)block * kv.block_bytes + kv.layer_offset;
    uint8_t* kd = layer + (uint64_t)slot * rb;
    uint8_t* vd = layer + ((uint64_t)kv.block_tokens + slot) * rb;
    const float* kr = k + (int64_t)t * kv.kv_dim;
    const float* vr = v + (int64_t)t * kv.kv_dim;
    if (kv.elem == KvElem::Q8_0) {
        for (int j = threadIdx.x; j < kv.kv_dim / 32; j += blockDim.x) {
            quantize_q8_0_block(kr + 32 * j, kd + 34 * j);
            quantize_q8_0_block(vr + 32 * j, vd + 34 * j);
        }
        return;
    }
    for (int i = threadIdx.x; i < kv.kv_dim; i += blockDim.x) {
        if (kv.elem == KvElem::F16) {
            ((__half*)kd)[i] = __float2half_rn(kr[i]);
            ((__half*)vd)[i] = __float2half_rn(vr[i]);
        } else {
            ((float*)kd)[i] = kr[i];
            ((float*)vd)[i] = vr[i];
        }
    }
}

// (value, index) with "none" as index INT_MAX: the greedy order of Sampler.
struct Best {
    float v;
    int i;
};
__device__ __forceinline__ Best better(Best a, Best b) {
    if (a.i == INT_MAX) return b;
    if (b.i == INT_MAX) return a;
    return (a.v > b.v || (a.v == b.v && a.i < b.i)) ? a : b;
}

__global__ void argmax_kernel(const float* __restrict__ logits, int n, int32_t* __restrict__ ids) {
    __shared__ float sv[8];
    __shared__ int si[8];
    const float* row = logits + (int64_t)blockIdx.x * n;
    Best b{-INFINITY, INT_MAX};
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        const float v = row[i];
        if (!isnan(v)) b = better(b, Best{v, i});
    }
    for (int o = 16; o > 0; o >>= 1) {
        const Best other{__shfl_xor_sync(0xffffffffu, b.v, o), __shfl_xor_sync(0xffffffffu, b.i, o)};
        b = better(b, other);
    }
    if ((threadIdx.x & 31) == 0) {
        sv[threadIdx.x / 32] = b.v;
        si[threadIdx.x / 32] = b.i;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
        Best r{sv[0], si[0]};
        for (int w = 1; w < (int)(blockDim.x / 32); w++) r = better(r, Best{sv[w], si[w]});
        ids[blockIdx.x] = r.i == INT_MAX ? 0 : r.i;
    }
}

}  // namespace

void rmsnorm(const float* x, const float* w, int rows, int n, float eps, const int32_t* ids, float* out,
             cudaStream_t s) {
    if (rows <= 0) return;
    rmsnorm_kernel<<<rows, 256, 0, s>>>(x, w, n, eps, ids, out);
    check_launch("rmsnorm kernel");
}

void rope(float* x, int n_tok, int64_t stride, int n_heads, int head_dim, int n_rot, const int32_t* pos, float base,
          float freq_scale, const float* factors, bool neox, cudaStream_t s) {
    if (n_tok <= 0 || n_rot < 2) return;
    const int pairs = n_heads * (n_rot / 2);
    rope_kernel<<<dim3(blocks_for(pairs, 128), (unsigned)n_tok), 128, 0, s>>>(x, stride, n_heads, head_dim, n_rot, pos,
                                                                              base, freq_scale, factors, neox ? 1 : 0);
    check_launch("rope kernel");
}

void silu_mul(float* g, const float* u, int64_t n, cudaStream_t s) {
    if (n <= 0) return;
    silu_mul_kernel<<<blocks_for(n, 256), 256, 0, s>>>(g, u, n);
    check_launch("silu_mul kernel");
}

void add_bias(float* x, const float* b, int rows, int n, cudaStream_t s) {
    const int64_t total = (int64_t)rows * n;
    if (total <= 0) return;
    add_bias_kernel<<<blocks_for(total, 256), 256, 0, s>>>(x, b, n, total);
    check_launch("add_bias kernel");
}

void to_half(const float* x, int rows, int n, int64_t x_stride, void* out, HalfType ht, cudaStream_t s) {
    if (rows <= 0) return;
    const dim3 grid(blocks_for(n, 256), (unsigned)rows);
    if (ht == HalfType::F16) to_half_kernel<__half><<<grid, 256, 0, s>>>(x, n, x_stride, (__half*)out);
    else to_half_kernel<__nv_bfloat16><<<grid, 256, 0, s>>>(x, n, x_stride, (__nv_bfloat16*)out);
    check_launch("to_half kernel");
}

void kv_store(const float* k, const float* v, int n_tok, const int32_t* pos, const int32_t* seq,
              const KvLayerView& kv, cudaStream_t s) {
    if (n_tok <= 0) return;
    kv_store_kernel<<<n_tok, 128, 0, s>>>(k, v, pos, seq, kv);
    check_launch("kv_store kernel");
}

void argmax_rows(const float* logits, int rows, int n, int32_t* ids, cudaStream_t s) {
    if (rows <= 0) return;
    argmax_kernel<<<rows, 256, 0, s>>>(logits, n, ids);
    check_launch("argmax kernel");
}

}  // namespace mw::cudak
