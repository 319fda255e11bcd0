// Element-wise and attention row operations of the forward pass, in F32.
// The generic versions are the scalar reference; the per-row attention dot and
// axpy over F16 keys/values have AVX2 (F16C) versions chosen once at start.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mw::cpu {

// out = x / rms(x) * w   (n elements; sum of squares in double, as llama.cpp)
void rmsnorm(const float* x, const float* w, float* out, int n, float eps);
// g[i] = silu(g[i]) * u[i]
void silu_mul(float* g, const float* u, int n);
// x[i] += y[i]
void add_inplace(float* x, const float* y, int n);
// x[i] += b[i]
inline void add_bias(float* x, const float* b, int n) { add_inplace(x, b, n); }

// Rotates n_heads vectors of head_dim floats in place by the angles of one
// position. cos/sin hold n_rot/2 values. neox: pairs (i, i + n_rot/2),
// otherwise adjacent pairs (2i, 2i+1). Dimensions past n_rot are untouched.
void rope(float* x, int n_heads, int head_dim, int n_rot, const float* cos_t, const float* sin_t, bool neox);
// Angles for one position: theta_i = pos * freq_scale * base^(-2i/n_rot) / factor_i,
// computed the way llama.cpp does (theta multiplied step by step in float).
void rope_angles(int pos, int n_rot, float base, float freq_scale, const float* freq_factors, float* cos_t,
                 float* sin_t);

struct AttentionRowOps {
    float (*dot_f16)(const float* q, const uint16_t* k, int n);
    void (*axpy_f16)(float* y, float a, const uint16_t* v, int n);
    float (*dot_f32)(const float* q, const float* k, int n);
    void (*axpy_f32)(float* y, float a, const float* v, int n);
};

const AttentionRowOps& attention_row_ops();          // for the active ISA level
const AttentionRowOps& attention_row_ops_scalar();   // reference
const AttentionRowOps* attention_row_ops_avx2();     // nullptr when not compiled in

}  // namespace mw::cpu
