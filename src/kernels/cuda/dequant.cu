// Dequantizing kernels: GEMV for decode steps, weight tiles for the prefill
// GEMMs, and the embedding lookup. Decoding is block_decode.h, the code the
// CPU tests check; each kernel is instantiated per weight type so the type
// switch folds away.
#include "kernels/cuda/block_decode.h"
#include "kernels/cuda/kernels.h"

#include "base/error.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <string>
#include <type_traits>

namespace mw::cudak {

namespace {

__host__ __device__ constexpr bool is_float_type(uint32_t t) { return t == kF32 || t == kF16 || t == kBF16; }

template <uint32_t T>
__device__ __forceinline__ float load_elem(const uint8_t* row, int64_t i) {
    if (T == kF32) return ((const float*)row)[i];
    if (T == kF16) return __half2float(((const __half*)row)[i]);
    return __bfloat162float(((const __nv_bfloat16*)row)[i]);
}

template <typename OutT>
__device__ __forceinline__ OutT from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) { return v; }
template <>
__device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

constexpr int kGemvThreads = 256;  // 8 warps: 8 weight rows per block

template <uint32_t T, int NT>
__global__ void gemv_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_in, int64_t n_out,
                            const float* __restrict__ x, int64_t x_stride, int n_tok, float* __restrict__ y,
                            int64_t y_stride, int accumulate) {
    const int lane = threadIdx.x & 31;
    const int64_t r = (int64_t)blockIdx.x * (kGemvThreads / 32) + threadIdx.x / 32;
    if (r >= n_out) return;
    const uint8_t* row = w + r * row_bytes;
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    if (is_float_type(T)) {
        // Any n_in: element by element, consecutive lanes on consecutive elements.
        for (int64_t i = lane; i < n_in; i += 32) {
            const float wv = load_elem<T>(row, i);
#pragma unroll
            for (int t = 0; t < NT; t++)
                if (t < n_tok) acc[t] = fmaf(wv, x[t * x_stride + i], acc[t]);
        }
    } else {
        // Quarter chunks (8 elements): neighbouring lanes read neighbouring bytes of a block.
        const int64_t units = n_in / 8;
#pragma unroll 2
        for (int64_t u = lane; u < units; u += 32) {
            float wv[8];
            decode8(T, row, u >> 2, (int)(u & 3), wv);
            const int64_t e = u * 8;
#pragma unroll
            for (int t = 0; t < NT; t++) {
                if (t < n_tok) {
                    const float* xp = x + t * x_stride + e;
                    float s = 0.0f;
#pragma unroll
                    for (int k = 0; k < 8; k++) s = fmaf(wv[k], xp[k], s);
                    acc[t] += s;
                }
            }
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = warp_sum(acc[t]);
    if (lane == 0) {
        for (int t = 0; t < n_tok && t < NT; t++) {
            float* yp = y + t * y_stride + r;
            *yp = accumulate ? *yp + acc[t] : acc[t];
        }
    }
}

// Rows of W (ids[y] or r0 + y) into out[y * n_in ...]: one grid row per weight row.
template <uint32_t T, typename OutT>
__global__ void dequant_rows_kernel(const uint8_t* __restrict__ w, uint64_t row_bytes, int64_t n_in,
                                    const int32_t* __restrict__ ids, int64_t r0, OutT* __restrict__ out) {
    const int64_t y = blockIdx.y;
    const int64_t r = ids ? (int64_t)ids[y] : r0 + y;
    const uint8_t* row = w + r * row_bytes;
    OutT* o = out + y * n_in;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (is_float_type(T)) {
        if (i < n_in) o[i] = from_float<OutT>(load_elem<T>(row, i));
    } else if (i < n_in / 8) {
        float wv[8];
        decode8(T, row, i >> 2, (int)(i & 3), wv);
#pragma unroll
        for (int k = 0; k < 8; k++) o[i * 8 + k] = from_float<OutT>(wv[k]);
    }
}

[[noreturn]] void bad_type(uint32_t type) {
    fail(MW_ERR_UNSUPPORTED, "the CUDA kernels do not decode tensor type " + std::to_string(type));
}

void check_launch(const char* what) {
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) fail(MW_ERR_INTERNAL, std::string(what) + ": " + cudaGetErrorString(e));
}

// Calls f(std::integral_constant<uint32_t, T>) for the weight type.
template <typename F>
void dispatch_type(uint32_t type, F&& f) {
    switch (type) {
    case kF32: f(std::integral_constant<uint32_t, kF32>()); break;
    case kF16: f(std::integral_constant<uint32_t, kF16>()); break;
    case kBF16: f(std::integral_constant<uint32_t, kBF16>()); break;
    case kQ8_0: f(std::integral_constant<uint32_t, kQ8_0>()); break;
    case kQ4_0: f(std::integral_constant<uint32_t, kQ4_0>()); break;
    case kQ4_1: f(std::integral_constant<uint32_t, kQ4_1>()); break;
    case kQ5_0: f(std::integral_constant<uint32_t, kQ5_0>()); break;
    case kQ5_1: f(std::integral_constant<uint32_t, kQ5_1>()); break;
    case kQ4_K: f(std::integral_constant<uint32_t, kQ4_K>()); break;
    case kQ5_K: f(std::integral_constant<uint32_t, kQ5_K>()); break;
    case kQ6_K: f(std::integral_constant<uint32_t, kQ6_K>()); break;
    default: bad_type(type);
    }
}

template <typename OutT>
void launch_dequant(const WeightView& w, const int32_t* ids, int64_t r0, int64_t rows, OutT* out, cudaStream_t s) {
    if (rows <= 0) return;
    if (rows > 65535) fail(MW_ERR_INTERNAL, "dequantize_rows: more than 65535 rows in one launch");
    dispatch_type(w.type, [&](auto tc) {
        constexpr uint32_t T = decltype(tc)::value;
        const int64_t units = is_float_type(T) ? w.n_in : w.n_in / 8;
        const dim3 grid((unsigned)((units + 255) / 256), (unsigned)rows);
        dequant_rows_kernel<T, OutT><<<grid, 256, 0, s>>>(w.data, w.row_bytes, w.n_in, ids, r0, out);
    });
    check_launch("dequantize kernel");
}

}  // namespace

bool type_supported(uint32_t type) {
    switch (type) {
    case kF32: case kF16: case kBF16: case kQ8_0: case kQ4_0: case kQ4_1: case kQ5_0: case kQ5_1: case kQ4_K: case kQ5_K: case kQ6_K:
        return true;
    default:
        return false;
    }
}

void gemv(const WeightView& w, const float* x, int64_t x_stride, int n_tok, float* y, int64_t y_stride,
          bool accumulate, cudaStream_t s) {
    if (n_tok <= 0 || w.n_out <= 0) return;
    if (n_tok > 8) fail(MW_ERR_INTERNAL, "gemv: more than 8 tokens");
    const unsigned blocks = (unsigned)((w.n_out + kGemvThreads / 32 - 1) / (kGemvThreads / 32));
    dispatch_type(w.type, [&](auto tc) {
        constexpr uint32_t T = decltype(tc)::value;
        if (n_tok == 1)
            gemv_kernel<T, 1><<<blocks, kGemvThreads, 0, s>>>(w.data, w.row_bytes, w.n_in, w.n_out, x, x_stride, 1, y,
                                                               y_stride, accumulate ? 1 : 0);
        else
            gemv_kernel<T, 8><<<blocks, kGemvThreads, 0, s>>>(w.data, w.row_bytes, w.n_in, w.n_out, x, x_stride,
                                                               n_tok, y, y_stride, accumulate ? 1 : 0);
    });
    check_launch("gemv kernel");
}

void dequantize_rows(const WeightView& w, int64_t r0, int64_t rows, void* out, HalfType ht, cudaStream_t s) {
    if (ht == HalfType::F16) launch_dequant(w, nullptr, r0, rows, (__half*)out, s);
    else launch_dequant(w, nullptr, r0, rows, (__nv_bfloat16*)out, s);
}

void gather_rows_f32(const WeightView& w, const int32_t* ids, int n, float* x, cudaStream_t s) {
    for (int t0 = 0; t0 < n; t0 += 65535)  // the grid's height limit
        launch_dequant(w, ids + t0, 0, std::min(n - t0, 65535), x + (int64_t)t0 * w.n_in, s);
}

}  // namespace mw::cudak
