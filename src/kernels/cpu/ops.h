// Element-wise and attention row operations of the forward pass, in F32.
// The generic versions are the scalar reference; silu_mul, rope and the attention row
// ops have AVX2 (FMA, F16C) versions with identical results, chosen once.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mw::cpu {

// out = x / rms(x) * w   (n elements; as llama.cpp: squares in float, summed in
// double; scale = 1 / sqrtf(mean + eps) in float; (x * scale) * w)
void rmsnorm(const float* x, const float* w, float* out, int n, float eps);
// g[i] = silu(g[i]) * u[i], silu(x) = x / (1 + exp(-x)), as llama.cpp's
// AVX-512 swiglu: ggml's expf (AttentionRowOps::exp_sum) on whole 16-lane
// vectors, the C library's expf (silu_libm) on the last n % 16 elements.
void silu_mul(float* g, const float* u, int n);
// x / (1 + expf(-x)) with the C library's expf (ggml_silu_f32).
float silu_libm(float x);
// x[i] += y[i]
void add_inplace(float* x, const float* y, int n);
// x[i] += b[i]
inline void add_bias(float* x, const float* b, int n) { add_inplace(x, b, n); }

// Rotates n_heads vectors of head_dim floats in place by the angles of one
// position. cos/sin hold n_rot/2 values. neox: pairs (i, i + n_rot/2),
// otherwise adjacent pairs (2i, 2i+1). Dimensions past n_rot are untouched.
// Each pair is rotated as llama.cpp's CPU build computes it (GCC contracts its
// x0*cos - x1*sin into fma(x0, cos, -(x1*sin)) and x0*sin + x1*cos into
// fma(x0, sin, x1*cos)); plain products would differ in the last bit.
void rope(float* x, int n_heads, int head_dim, int n_rot, const float* cos_t, const float* sin_t, bool neox);
// Angles for one position: theta_i = freq_scale * (pos * base^(-2i/n_rot) / factor_i),
// computed the way llama.cpp does (theta multiplied step by step in float).
void rope_angles(int pos, int n_rot, float base, float freq_scale, const float* freq_factors, float* cos_t,
                 float* sin_t);

// Row operations of attention (attention.h), in the summation orders of
// llama.cpp's CPU matmul kernels so that results agree with it bit for bit:
//  - tiled (its GEMM, llamafile tinyBLAS): element i of a dot product goes to
//    lane i % 16 of one accumulator; n must be a multiple of 16.
//  - lanes64 (its dot kernel, ggml_vec_dot_f16): element i < n - n % 64 goes to
//    lane i % 16 of accumulator (i % 64) / 16; the four are added as
//    (0 + 2) + (1 + 3); the rest is added in double after the lanes.
// The 16 lanes are then added as x86's _mm512_reduce_add_ps does: lane i + 8
// to lane i, then i + 4, then i + 2, then i + 1. Every product is fused (fma).
// With F16 operands products are exact, so only these orders matter.
struct AttentionRowOps {
    float (*dot_tiled_f16)(const float* q, const uint16_t* k, int n);
    float (*dot_lanes64_f16)(const float* q, const uint16_t* k, int n);
    float (*dot_lanes64_f32)(const float* q, const float* k, int n);
    // y[i] = fma(a, v[i], y[i])
    void (*axpy_f16)(float* y, float a, const uint16_t* v, int n);
    void (*axpy_f32)(float* y, float a, const float* v, int n);
    // acc[l * n + i] = sum over positions p = l, l + lanes, ... < n_pos, in
    // that order, of fma(w[p], v_rows[p][i], .) from 0: axpy into lane rows,
    // each row kept in registers while its positions pass.
    void (*axpy_lanes_f16)(float* acc, int lanes, const float* w, const void* const* v_rows, int n_pos, int n);
    void (*axpy_lanes_f32)(float* acc, int lanes, const float* w, const void* const* v_rows, int n_pos, int n);
    // Several heads sharing each K or V row (a GQA group, g <= 8), each with
    // exactly the results of the one-head op: dot_tiled_f16 of q + h * n
    // against k into out[h]; axpy_lanes_f16 with weights w + h * w_stride into
    // acc + h * lanes * n. Each row is loaded and converted once for all heads.
    void (*dot_tiled_f16_heads)(const float* q, int g, const uint16_t* k, int n, float* out);
    void (*axpy_lanes_f16_heads)(float* acc, int g, int lanes, const float* w, size_t w_stride,
                                 const void* const* v_rows, int n_pos, int n);
    // x[i] = exp(x[i] - max) with ggml's AVX-512 expf (a degree-5 polynomial,
    // scaled by 2^k); returns the sum as ggml_vec_soft_max_f32 forms it: each
    // block of 16 (zero-padded) added as above in float, the blocks in double.
    double (*exp_sum)(float* x, int n, float max);
    // x[i] *= s, then rounded to the nearest F16 when round_f16.
    void (*scale)(float* x, int n, float s, bool round_f16);
};

const AttentionRowOps& attention_row_ops();          // for the active ISA level
const AttentionRowOps& attention_row_ops_scalar();   // reference (same results)
const AttentionRowOps* attention_row_ops_avx2();     // nullptr when not compiled in

// AVX2 + FMA versions of silu_mul and rope (same results as the scalar ones,
// which are used without AVX2); nullptr when not compiled in.
struct VectorOps {
    void (*silu_mul)(float* g, const float* u, int n);
    void (*rope)(float* x, int n_heads, int head_dim, int n_rot, const float* cos_t, const float* sin_t, bool neox);
};
const VectorOps& vector_ops_scalar();
const VectorOps* vector_ops_avx2();

}  // namespace mw::cpu
