// AVX2 + FMA + F16C inner loops of the flash attention (attention_flash.h).
#include "kernels/cpu/attention_flash.h"

#include <immintrin.h>

namespace mw::cpu {

namespace {

// Eight vectors to one: lane j is the horizontal sum of a[j].
inline __m256 transpose_sum8(const __m256* a) {
    const __m256 t0 = _mm256_hadd_ps(a[0], a[1]), t1 = _mm256_hadd_ps(a[2], a[3]);
    const __m256 t2 = _mm256_hadd_ps(a[4], a[5]), t3 = _mm256_hadd_ps(a[6], a[7]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    // u0 = (s0 s1 s2 s3 | s0' s1' s2' s3') halves of rows 0-3, u1 likewise for rows 4-7.
    const __m256 lo = _mm256_permute2f128_ps(u0, u1, 0x20), hi = _mm256_permute2f128_ps(u0, u1, 0x31);
    return _mm256_add_ps(lo, hi);
}

// Scores eight positions at a time: the eight K rows stay in L1 while every
// head of the group passes over them. head_dim % 8 == 0 (else scalar tail).
void scores(const float* q, size_t q_stride, int n_heads, int hd, int n, const float* const* k_rows, float scale,
            float* s) {
    const int hd8 = hd - hd % 8;
    const __m256 vs = _mm256_set1_ps(scale);
    for (int p0 = 0; p0 < n; p0 += 8) {
        const int m = n - p0 < 8 ? n - p0 : 8;
        const float* k[8];
        for (int j = 0; j < 8; j++) k[j] = k_rows[p0 + (j < m ? j : 0)];  // missing rows repeat the first
        for (int h = 0; h < n_heads; h++) {
            const float* qh = q + (size_t)h * q_stride;
            __m256 acc[8];
            for (int j = 0; j < 8; j++) acc[j] = _mm256_setzero_ps();
            for (int i = 0; i < hd8; i += 8) {
                const __m256 qv = _mm256_loadu_ps(qh + i);
                for (int j = 0; j < 8; j++) acc[j] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k[j] + i), acc[j]);
            }
            alignas(32) float out[8];
            _mm256_store_ps(out, _mm256_mul_ps(transpose_sum8(acc), vs));
            for (int j = 0; j < m; j++) {
                float v = out[j];
                if (hd8 < hd) {  // the tail, unscaled sum then scaled
                    float t = 0;
                    for (int i = hd8; i < hd; i++) t += qh[i] * k[j][i];
                    v += t * scale;
                }
                s[(size_t)h * kFlashChunk + p0 + j] = v;
            }
        }
    }
}

// CB blocks of eight columns for up to NH heads at once, the accumulators in
// registers: each V element is loaded once for the group, and NH * CB
// independent fma chains hide the fma latency.
template <int NH, int CB>
inline void weighted_sum_tile(const float* w, int nh, int n, const float* const* v_rows, int c, float* part,
                              size_t part_stride) {
    __m256 acc[NH][CB];
    for (int h = 0; h < NH; h++)
        for (int b = 0; b < CB; b++) acc[h][b] = _mm256_setzero_ps();
    for (int p = 0; p < n; p++) {
        __m256 v[CB];
        for (int b = 0; b < CB; b++) v[b] = _mm256_loadu_ps(v_rows[p] + c + 8 * b);
        for (int h = 0; h < NH; h++) {
            if (h >= nh) break;
            const __m256 wv = _mm256_broadcast_ss(w + (size_t)h * kFlashChunk + p);
            for (int b = 0; b < CB; b++) acc[h][b] = _mm256_fmadd_ps(wv, v[b], acc[h][b]);
        }
    }
    for (int h = 0; h < nh && h < NH; h++)
        for (int b = 0; b < CB; b++) _mm256_storeu_ps(part + (size_t)h * part_stride + c + 8 * b, acc[h][b]);
}

void weighted_sum(const float* w, int n_heads, int hd, int n, const float* const* v_rows, float* part,
                  size_t part_stride) {
    const int hd8 = hd - hd % 8;
    for (int h0 = 0; h0 < n_heads; h0 += 8) {
        const int nh = n_heads - h0 < 8 ? n_heads - h0 : 8;
        const float* wh = w + (size_t)h0 * kFlashChunk;
        float* ph = part + (size_t)h0 * part_stride;
        int c = 0;
        if (nh <= 3)
            for (; c + 32 <= hd8; c += 32) weighted_sum_tile<3, 4>(wh, nh, n, v_rows, c, ph, part_stride);
        if (nh <= 6)
            for (; c + 16 <= hd8; c += 16) weighted_sum_tile<6, 2>(wh, nh, n, v_rows, c, ph, part_stride);
        for (; c < hd8; c += 8) weighted_sum_tile<8, 1>(wh, nh, n, v_rows, c, ph, part_stride);
        for (c = hd8; c < hd; c++)
            for (int h = 0; h < nh; h++) {
                float a = 0;
                for (int p = 0; p < n; p++) a += wh[(size_t)h * kFlashChunk + p] * v_rows[p][c];
                ph[(size_t)h * part_stride + c] = a;
            }
    }
}

void f16_to_f32(const uint16_t* x, float* y, int n) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(x + i))));
    for (; i < n; i++) y[i] = _cvtsh_ss(x[i]);
}

const FlashRowOps kAvx2 = {scores, weighted_sum, f16_to_f32};

}  // namespace

const FlashRowOps* flash_row_ops_avx2() { return &kAvx2; }

}  // namespace mw::cpu
