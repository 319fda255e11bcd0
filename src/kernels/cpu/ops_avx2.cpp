// AVX2 + F16C versions of the attention row operations (see ops.h).
#include "kernels/cpu/ops.h"

#include "base/half.h"

#include <immintrin.h>

namespace mw::cpu {

namespace {

inline float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

float dot_f16(const float* q, const uint16_t* k, int n) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(k + i))), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8),
                               _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(k + i + 8))), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(k + i))), acc0);
    float s = hsum(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += q[i] * f16_to_f32(k[i]);
    return s;
}

void axpy_f16(float* y, float a, const uint16_t* v, int n) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(v + i)));
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, x, _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) y[i] += a * f16_to_f32(v[i]);
}

float dot_f32(const float* q, const float* k, int n) {
    __m256 acc = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), acc);
    float s = hsum(acc);
    for (; i < n; i++) s += q[i] * k[i];
    return s;
}

void axpy_f32(float* y, float a, const float* v, int n) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(v + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * v[i];
}

const AttentionRowOps kAvx2 = {dot_f16, axpy_f16, dot_f32, axpy_f32};

}  // namespace

const AttentionRowOps* attention_row_ops_avx2() { return &kAvx2; }

}  // namespace mw::cpu
