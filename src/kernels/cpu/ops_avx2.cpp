// AVX2 + FMA + F16C versions of silu_mul, rope and the attention row operations (see
// ops.h). They give the same bits as the scalar references in ops.cpp: 16
// lanes are held as two 8-lane halves, lo (lanes 0-7) and hi (lanes 8-15).
#include "kernels/cpu/ops.h"

#include <immintrin.h>

#include <cmath>

namespace mw::cpu {

namespace {

// Horizontal sum of 16 lanes given as halves, in _mm512_reduce_add_ps order:
// lane i + 8, then i + 4, i + 2, i + 1.
inline float reduce16(__m256 lo, __m256 hi) {
    const __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)p)); }
inline float load1(float x) { return x; }
inline float load1(uint16_t h) { return _cvtsh_ss(h); }

void rope_rows(float* x, int n_heads, int head_dim, int n_rot, const float* cos_t, const float* sin_t, bool neox) {
    // Same code as the scalar reference; here std::fma is one instruction.
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

float dot_tiled_f16(const float* q, const uint16_t* k, int n) {
    __m256 lo = _mm256_setzero_ps(), hi = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        lo = _mm256_fmadd_ps(load8(q + i), load8(k + i), lo);
        hi = _mm256_fmadd_ps(load8(q + i + 8), load8(k + i + 8), hi);
    }
    return reduce16(lo, hi);
}

// dot_tiled_f16 for G heads: each 16 elements of k converted once. G is a
// template argument so the accumulators stay in registers.
template <int G>
void dot_tiled_f16_g(const float* q, const uint16_t* k, int n, float* out) {
    __m256 lo[G], hi[G];
    for (int h = 0; h < G; h++) lo[h] = hi[h] = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 16) {
        const __m256 kl = load8(k + i), kh = load8(k + i + 8);
        for (int h = 0; h < G; h++) {
            const float* qh = q + (size_t)h * n + i;
            lo[h] = _mm256_fmadd_ps(load8(qh), kl, lo[h]);
            hi[h] = _mm256_fmadd_ps(load8(qh + 8), kh, hi[h]);
        }
    }
    for (int h = 0; h < G; h++) out[h] = reduce16(lo[h], hi[h]);
}

// axpy_lanes for G heads: per lane row and 8 columns, one register per head;
// each 8 elements of a V row converted once for all heads.
template <int G>
void axpy_lanes_f16_g(float* acc, int lanes, const float* w, size_t w_stride, const void* const* v_rows, int n_pos,
                      int n) {
    for (int l = 0; l < lanes; l++) {
        int c = 0;
        for (; c + 8 <= n; c += 8) {
            __m256 r[G];
            for (int h = 0; h < G; h++) r[h] = _mm256_setzero_ps();
            for (int p = l; p < n_pos; p += lanes) {
                const __m256 v = load8((const uint16_t*)v_rows[p] + c);
                for (int h = 0; h < G; h++) r[h] = _mm256_fmadd_ps(_mm256_set1_ps(w[h * w_stride + p]), v, r[h]);
            }
            for (int h = 0; h < G; h++) _mm256_storeu_ps(acc + ((size_t)h * lanes + l) * n + c, r[h]);
        }
        for (; c < n; c++)
            for (int h = 0; h < G; h++) {
                float r = 0.0f;
                for (int p = l; p < n_pos; p += lanes)
                    r = std::fma(w[h * w_stride + p], load1(((const uint16_t*)v_rows[p])[c]), r);
                acc[((size_t)h * lanes + l) * n + c] = r;
            }
    }
}

// At most 4 heads per pass: 8 accumulators and the two converted halves of k
// fit AVX2's 16 registers (8 heads would spill).
void dot_tiled_f16_heads(const float* q, int g, const uint16_t* k, int n, float* out) {
    for (int h0 = 0; h0 < g; h0 += 4) {
        const float* qh = q + (size_t)h0 * n;
        switch (g - h0 < 4 ? g - h0 : 4) {
            case 1: dot_tiled_f16_g<1>(qh, k, n, out + h0); break;
            case 2: dot_tiled_f16_g<2>(qh, k, n, out + h0); break;
            case 3: dot_tiled_f16_g<3>(qh, k, n, out + h0); break;
            default: dot_tiled_f16_g<4>(qh, k, n, out + h0); break;
        }
    }
}

void axpy_lanes_f16_heads(float* acc, int g, int lanes, const float* w, size_t w_stride, const void* const* v_rows,
                          int n_pos, int n) {
    switch (g) {
        case 1: return axpy_lanes_f16_g<1>(acc, lanes, w, w_stride, v_rows, n_pos, n);
        case 2: return axpy_lanes_f16_g<2>(acc, lanes, w, w_stride, v_rows, n_pos, n);
        case 3: return axpy_lanes_f16_g<3>(acc, lanes, w, w_stride, v_rows, n_pos, n);
        case 4: return axpy_lanes_f16_g<4>(acc, lanes, w, w_stride, v_rows, n_pos, n);
        case 5: return axpy_lanes_f16_g<5>(acc, lanes, w, w_stride, v_rows, n_pos, n);
        case 6: return axpy_lanes_f16_g<6>(acc, lanes, w, w_stride, v_rows, n_pos, n);
        case 7: return axpy_lanes_f16_g<7>(acc, lanes, w, w_stride, v_rows, n_pos, n);
        default: return axpy_lanes_f16_g<8>(acc, lanes, w, w_stride, v_rows, n_pos, n);
    }
}

template <class T>
float dot_lanes64(const float* q, const T* k, int n) {
    __m256 acc[8];  // accumulator a = acc[2a] (lo), acc[2a + 1] (hi)
    for (__m256& a : acc) a = _mm256_setzero_ps();
    const int np = n - n % 64;
    for (int i = 0; i < np; i += 64)
        for (int a = 0; a < 8; a++) acc[a] = _mm256_fmadd_ps(load8(q + i + 8 * a), load8(k + i + 8 * a), acc[a]);
    const __m256 lo = _mm256_add_ps(_mm256_add_ps(acc[0], acc[4]), _mm256_add_ps(acc[2], acc[6]));
    const __m256 hi = _mm256_add_ps(_mm256_add_ps(acc[1], acc[5]), _mm256_add_ps(acc[3], acc[7]));
    double sum = reduce16(lo, hi);
    for (int i = np; i < n; i++) sum += (double)(q[i] * load1(k[i]));
    return (float)sum;
}

template <class T>
void axpy(float* y, float a, const T* v, int n) {
    const __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load8(v + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = std::fma(a, load1(v[i]), y[i]);
}

template <class T>
void axpy_lanes(float* acc, int lanes, const float* w, const void* const* v_rows, int n_pos, int n) {
    for (int l = 0; l < lanes; l++) {
        float* y = acc + (size_t)l * n;
        int c = 0;
        for (; c + 64 <= n; c += 64) {
            __m256 r[8];
            for (__m256& v : r) v = _mm256_setzero_ps();
            for (int p = l; p < n_pos; p += lanes) {
                const __m256 vw = _mm256_set1_ps(w[p]);
                const T* v = (const T*)v_rows[p] + c;
                for (int a = 0; a < 8; a++) r[a] = _mm256_fmadd_ps(vw, load8(v + 8 * a), r[a]);
            }
            for (int a = 0; a < 8; a++) _mm256_storeu_ps(y + c + 8 * a, r[a]);
        }
        for (; c + 8 <= n; c += 8) {
            __m256 r = _mm256_setzero_ps();
            for (int p = l; p < n_pos; p += lanes) r = _mm256_fmadd_ps(_mm256_set1_ps(w[p]), load8((const T*)v_rows[p] + c), r);
            _mm256_storeu_ps(y + c, r);
        }
        for (; c < n; c++) {
            float r = 0.0f;
            for (int p = l; p < n_pos; p += lanes) r = std::fma(w[p], load1(((const T*)v_rows[p])[c]), r);
            y[c] = r;
        }
    }
}

// ggml's AVX-512 expf on 8 lanes (see ggml_expf in ops.cpp). _mm512_scalef_ps
// (j * 2^n, rounded once) becomes two products: j * 2^n1 with n1 clamped to
// [-125, 127] is exact (j is in [0.7, 1.42]), so only the second one rounds.
__m256 expf8(__m256 x) {
    const __m256 r = _mm256_set1_ps(0x1.8p23f);
    const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), r);
    const __m256 n = _mm256_sub_ps(z, r);
    const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f),
                                      _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
    const __m256 u = _mm256_mul_ps(b, b);
    const __m256 j = _mm256_fmadd_ps(
        _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), u,
                        _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
        u, _mm256_fmadd_ps(_mm256_set1_ps(0x1.ffffecp-1f), b, _mm256_set1_ps(1.0f)));
    const __m256 n1 = _mm256_min_ps(_mm256_max_ps(n, _mm256_set1_ps(-125.0f)), _mm256_set1_ps(127.0f));
    const __m256 n2 = _mm256_sub_ps(n, n1);
    auto pow2 = [](__m256 e) {
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(e), _mm256_set1_epi32(127)), 23));
    };
    const __m256 res = _mm256_mul_ps(_mm256_mul_ps(j, pow2(n1)), pow2(n2));
    // |n| > 192: 0 below, infinity above (n2 is meaningless there).
    const __m256 big = _mm256_cmp_ps(_mm256_andnot_ps(_mm256_set1_ps(-0.0f), n), _mm256_set1_ps(192.0f), _CMP_GT_OQ);
    const __m256 alt = _mm256_andnot_ps(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ),
                                        _mm256_set1_ps(INFINITY));
    return _mm256_blendv_ps(res, alt, big);
}

// g = silu(g) * u as ggml_vec_swiglu_f32 (AVX-512): g / (1 + exp(0 - g)) * u
// with ggml's expf over whole 16-lane vectors, the last n % 16 with libm's.
void silu_mul_rows(float* g, const float* u, int n) {
    const __m256 one = _mm256_set1_ps(1.0f);
    const int n16 = n - n % 16;
    int i = 0;
    for (; i < n16; i += 8) {
        const __m256 x = _mm256_loadu_ps(g + i);
        const __m256 e = expf8(_mm256_sub_ps(_mm256_setzero_ps(), x));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(x, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) g[i] = silu_libm(g[i]) * u[i];
}

double exp_sum(float* x, int n, float max) {
    const __m256 vm = _mm256_set1_ps(max);
    double sum = 0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 lo = expf8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
        const __m256 hi = expf8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm));
        _mm256_storeu_ps(x + i, lo);
        _mm256_storeu_ps(x + i + 8, hi);
        sum += (double)reduce16(lo, hi);
    }
    if (i < n) {  // last partial block: padding of -inf gives exp = 0
        float block[16];
        for (int j = 0; j < 16; j++) block[j] = i + j < n ? x[i + j] : -INFINITY;
        const __m256 lo = expf8(_mm256_sub_ps(_mm256_loadu_ps(block), vm));
        const __m256 hi = expf8(_mm256_sub_ps(_mm256_loadu_ps(block + 8), vm));
        _mm256_storeu_ps(block, lo);
        _mm256_storeu_ps(block + 8, hi);
        for (int j = 0; i + j < n; j++) x[i + j] = block[j];
        sum += (double)reduce16(lo, hi);
    }
    return sum;
}

void scale(float* x, int n, float s, bool round_f16) {
    const __m256 vs = _mm256_set1_ps(s);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        if (round_f16) v = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        _mm256_storeu_ps(x + i, v);
    }
    for (; i < n; i++) x[i] = round_f16 ? _cvtsh_ss(_cvtss_sh(x[i] * s, _MM_FROUND_TO_NEAREST_INT)) : x[i] * s;
}

const AttentionRowOps kAvx2 = {dot_tiled_f16,         dot_lanes64<uint16_t>, dot_lanes64<float>, axpy<uint16_t>,
                               axpy<float>,           axpy_lanes<uint16_t>,  axpy_lanes<float>,  dot_tiled_f16_heads,
                               axpy_lanes_f16_heads,  exp_sum,               scale};

}  // namespace

const AttentionRowOps* attention_row_ops_avx2() { return &kAvx2; }
const VectorOps* vector_ops_avx2() {
    static const VectorOps ops = {silu_mul_rows, rope_rows};
    return &ops;
}

}  // namespace mw::cpu
