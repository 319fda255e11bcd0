#include "kernels/cpu/ops.h"

#include "base/half.h"
#include "kernels/cpu/cpu_features.h"

#include <cmath>
#include <cstring>

namespace mw::cpu {

namespace {

// ggml's AVX-512 expf (ggml_v_expf), one lane: x = n*ln2 + b with n an integer
// (ln2 split in two constants), exp(b) by a polynomial, then j * 2^n rounded
// once as _mm512_scalef_ps does (ldexp also rounds once into subnormals).
// |n| > 192 gives 0 or infinity.
float ggml_expf(float x) {
    const float r = 0x1.8p23f;  // adding it rounds to an integer
    const float z = std::fma(x, 0x1.715476p+0f, r);
    const float n = z - r;
    if (n != n) return x;  // NaN
    if (std::fabs(n) > 192) return n <= 0 ? 0.0f : INFINITY;
    const float b = std::fma(-n, 0x1.7f7d1cp-20f, std::fma(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float j = std::fma(std::fma(std::fma(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                                      std::fma(0x1.555e66p-3f, b, 0x1.fffdb6p-2f)),
                             u, std::fma(0x1.ffffecp-1f, b, 1.0f));
    return std::ldexp(j, (int)n);
}

}  // namespace

// ggml_silu_f32: the C library's expf, which ggml's swiglu uses past the last
// whole 16-lane vector.
float silu_libm(float x) { return x / (1.0f + std::exp(-x)); }

namespace {

// Lane additions of _mm512_reduce_add_ps: i + 8, i + 4, i + 2, i + 1.
float reduce16(const float* a) {
    float s8[8], s4[4];
    for (int i = 0; i < 8; i++) s8[i] = a[i] + a[i + 8];
    for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// ---- scalar references of the element-wise ops with AVX2 versions

void silu_mul_ref(float* g, const float* u, int n) {
    const int n16 = n - n % 16;
    for (int i = 0; i < n16; i++) g[i] = g[i] / (1.0f + ggml_expf(-g[i])) * u[i];
    for (int i = n16; i < n; i++) g[i] = silu_libm(g[i]) * u[i];
}

void rope_ref(float* x, int n_heads, int head_dim, int n_rot, const float* cos_t, const float* sin_t, bool neox) {
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float* v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const int a = neox ? i : 2 * i;
            const int b = neox ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            v[a] = std::fma(x0, cos_t[i], -(x1 * sin_t[i]));
            v[b] = std::fma(x0, sin_t[i], x1 * cos_t[i]);
        }
    }
}

const VectorOps kScalarVector = {silu_mul_ref, rope_ref};

const VectorOps& vector_ops() {
    static const VectorOps* chosen =
        (active_isa() >= IsaLevel::Avx2 && vector_ops_avx2()) ? vector_ops_avx2() : &kScalarVector;
    return *chosen;
}

// ---- scalar references of the attention row ops

float dot_tiled_f16_ref(const float* q, const uint16_t* k, int n) {
    float acc[16] = {};
    for (int i = 0; i < n; i++) acc[i % 16] = std::fma(q[i], f16_to_f32(k[i]), acc[i % 16]);
    return reduce16(acc);
}

float load_f32(float x) { return x; }

template <class T, float (*Load)(T)>
float dot_lanes64_ref(const float* q, const T* k, int n) {
    float acc[4][16] = {};
    const int np = n - n % 64;
    for (int i = 0; i < np; i++) acc[(i % 64) / 16][i % 16] = std::fma(q[i], Load(k[i]), acc[(i % 64) / 16][i % 16]);
    float lanes[16];
    for (int l = 0; l < 16; l++) lanes[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    double sum = reduce16(lanes);
    for (int i = np; i < n; i++) sum += (double)(q[i] * Load(k[i]));
    return (float)sum;
}

void axpy_f16_ref(float* y, float a, const uint16_t* v, int n) {
    for (int i = 0; i < n; i++) y[i] = std::fma(a, f16_to_f32(v[i]), y[i]);
}
void axpy_f32_ref(float* y, float a, const float* v, int n) {
    for (int i = 0; i < n; i++) y[i] = std::fma(a, v[i], y[i]);
}

template <class T, void (*Axpy)(float*, float, const T*, int)>
void axpy_lanes_ref(float* acc, int lanes, const float* w, const void* const* v_rows, int n_pos, int n) {
    std::memset(acc, 0, (size_t)lanes * n * sizeof(float));
    for (int p = 0; p < n_pos; p++) Axpy(acc + (size_t)(p % lanes) * n, w[p], (const T*)v_rows[p], n);
}

void dot_tiled_f16_heads_ref(const float* q, int g, const uint16_t* k, int n, float* out) {
    for (int h = 0; h < g; h++) out[h] = dot_tiled_f16_ref(q + (size_t)h * n, k, n);
}

void axpy_lanes_f16_heads_ref(float* acc, int g, int lanes, const float* w, size_t w_stride,
                              const void* const* v_rows, int n_pos, int n) {
    for (int h = 0; h < g; h++)
        axpy_lanes_ref<uint16_t, axpy_f16_ref>(acc + (size_t)h * lanes * n, lanes, w + h * w_stride, v_rows, n_pos, n);
}

double exp_sum_ref(float* x, int n, float max) {
    double sum = 0;
    for (int b = 0; b < n; b += 16) {
        float block[16] = {};
        for (int j = 0; j < 16 && b + j < n; j++) block[j] = x[b + j] = ggml_expf(x[b + j] - max);
        sum += (double)reduce16(block);
    }
    return sum;
}

void scale_ref(float* x, int n, float s, bool round_f16) {
    for (int i = 0; i < n; i++) x[i] = round_f16 ? f16_to_f32(f32_to_f16(x[i] * s)) : x[i] * s;
}

const AttentionRowOps kScalar = {dot_tiled_f16_ref, dot_lanes64_ref<uint16_t, f16_to_f32>,
                                 dot_lanes64_ref<float, load_f32>, axpy_f16_ref, axpy_f32_ref,
                                 axpy_lanes_ref<uint16_t, axpy_f16_ref>, axpy_lanes_ref<float, axpy_f32_ref>,
                                 dot_tiled_f16_heads_ref, axpy_lanes_f16_heads_ref,
                                 exp_sum_ref, scale_ref};

}  // namespace

void rmsnorm(const float* x, const float* w, float* out, int n, float eps) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    const float scale = 1.0f / std::sqrt((float)(sum / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void silu_mul(float* g, const float* u, int n) { vector_ops().silu_mul(g, u, n); }

void add_inplace(float* x, const float* y, int n) {
    for (int i = 0; i < n; i++) x[i] += y[i];
}

void rope(float* x, int n_heads, int head_dim, int n_rot, const float* cos_t, const float* sin_t, bool neox) {
    vector_ops().rope(x, n_heads, head_dim, n_rot, cos_t, sin_t, neox);
}

void rope_angles(int pos, int n_rot, float base, float freq_scale, const float* freq_factors, float* cos_t,
                 float* sin_t) {
    const float theta_scale = std::pow(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        const float factor = freq_factors ? freq_factors[i] : 1.0f;
        const float t = freq_scale * (theta / factor);
        cos_t[i] = std::cos(t);
        sin_t[i] = std::sin(t);
        theta *= theta_scale;
    }
}

const VectorOps& vector_ops_scalar() { return kScalarVector; }

const AttentionRowOps& attention_row_ops_scalar() { return kScalar; }

const AttentionRowOps& attention_row_ops() {
    static const AttentionRowOps* chosen = [] {
        const AttentionRowOps* avx2 = attention_row_ops_avx2();
        return (active_isa() >= IsaLevel::Avx2 && avx2) ? avx2 : &kScalar;
    }();
    return *chosen;
}

}  // namespace mw::cpu
