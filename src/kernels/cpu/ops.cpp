#include "kernels/cpu/ops.h"

#include "base/half.h"
#include "kernels/cpu/cpu_features.h"

#include <cmath>

namespace mw::cpu {

void rmsnorm(const float* x, const float* w, float* out, int n, float eps) {
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (double)x[i] * x[i];
    const float scale = 1.0f / std::sqrt((float)(sum / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * w[i];
}

void silu_mul(float* g, const float* u, int n) {
    for (int i = 0; i < n; i++) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void add_inplace(float* x, const float* y, int n) {
    for (int i = 0; i < n; i++) x[i] += y[i];
}

void rope_angles(int pos, int n_rot, float base, float freq_scale, const float* freq_factors, float* cos_t,
                 float* sin_t) {
    const float theta_scale = std::pow(base, -2.0f / (float)n_rot);
    float theta = (float)pos;
    for (int i = 0; i < n_rot / 2; i++) {
        const float factor = freq_factors ? freq_factors[i] : 1.0f;
        const float t = freq_scale * theta / factor;
        cos_t[i] = std::cos(t);
        sin_t[i] = std::sin(t);
        theta *= theta_scale;
    }
}

void rope(float* x, int n_heads, int head_dim, int n_rot, const float* cos_t, const float* sin_t, bool neox) {
    const int half = n_rot / 2;
    for (int h = 0; h < n_heads; h++) {
        float* v = x + (size_t)h * head_dim;
        for (int i = 0; i < half; i++) {
            const int a = neox ? i : 2 * i;
            const int b = neox ? i + half : 2 * i + 1;
            const float x0 = v[a], x1 = v[b];
            v[a] = x0 * cos_t[i] - x1 * sin_t[i];
            v[b] = x0 * sin_t[i] + x1 * cos_t[i];
        }
    }
}

namespace {

float dot_f16_ref(const float* q, const uint16_t* k, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += q[i] * f16_to_f32(k[i]);
    return s;
}
void axpy_f16_ref(float* y, float a, const uint16_t* v, int n) {
    for (int i = 0; i < n; i++) y[i] += a * f16_to_f32(v[i]);
}
float dot_f32_ref(const float* q, const float* k, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += q[i] * k[i];
    return s;
}
void axpy_f32_ref(float* y, float a, const float* v, int n) {
    for (int i = 0; i < n; i++) y[i] += a * v[i];
}

const AttentionRowOps kScalar = {dot_f16_ref, axpy_f16_ref, dot_f32_ref, axpy_f32_ref};

}  // namespace

const AttentionRowOps& attention_row_ops_scalar() { return kScalar; }

const AttentionRowOps& attention_row_ops() {
    static const AttentionRowOps* chosen = [] {
        const AttentionRowOps* avx2 = attention_row_ops_avx2();
        return (active_isa() >= IsaLevel::Avx2 && avx2) ? avx2 : &kScalar;
    }();
    return *chosen;
}

}  // namespace mw::cpu
