// K-quants (256-element super-blocks): dequantization, and quantization with a
// small scale search like ggml's reference quantizer (weighted least squares over
// a sweep of candidate scales), so round trips keep a small error. Q8_K is the
// activation format of the K-quant dot products.
#include "base/half.h"
#include "quant/quant_internal.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace mw::quant::detail {

namespace {

// Fits x[i] ~= scale * L[i] - neg_min with L in 0..nmax, scale >= 0, neg_min >= 0,
// minimising sum w[i] * err^2. Starts from the plain min/max mapping, then sweeps
// the number of levels the range maps to (nmax + rmin + k * rdelta) and refits
// scale and min by weighted least squares for each candidate rounding.
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min, float rmin,
                    float rdelta, int nstep) {
    float min = x[0], max = x[0], sum_w = 0.0f, sum_x = 0.0f;
    for (int i = 0; i < n; i++) {
        min = std::min(min, x[i]);
        max = std::max(max, x[i]);
        sum_w += w[i];
        sum_x += w[i] * x[i];
    }
    if (min > 0) min = 0;  // the min term only ever subtracts
    if (max == min) {
        std::fill(L, L + n, 0);
        *neg_min = -min;
        return 0.0f;
    }
    float iscale = (float)nmax / (max - min);
    float scale = 1.0f / iscale;
    float best_err = 0.0f;
    for (int i = 0; i < n; i++) {
        const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
        L[i] = (uint8_t)l;
        const float diff = scale * (float)l + min - x[i];
        best_err += w[i] * diff * diff;
    }
    uint8_t cand[QK_K];
    for (int step = 0; step <= nstep; step++) {
        iscale = (rmin + rdelta * (float)step + (float)nmax) / (max - min);
        float sum_l = 0.0f, sum_l2 = 0.0f, sum_xl = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = std::clamp(nearest_int(iscale * (x[i] - min)), 0, nmax);
            cand[i] = (uint8_t)l;
            sum_l += w[i] * (float)l;
            sum_l2 += w[i] * (float)l * (float)l;
            sum_xl += w[i] * (float)l * x[i];
        }
        const float det = sum_w * sum_l2 - sum_l * sum_l;
        if (det <= 0) continue;
        float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
        float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
        if (this_min > 0) {  // a positive offset is not representable: refit the scale alone
            this_min = 0;
            this_scale = sum_xl / sum_l2;
        }
        float err = 0.0f;
        for (int i = 0; i < n; i++) {
            const float diff = this_scale * (float)cand[i] + this_min - x[i];
            err += w[i] * diff * diff;
        }
        if (err < best_err) {
            std::memcpy(L, cand, (size_t)n);
            best_err = err;
            scale = this_scale;
            min = this_min;
        }
    }
    *neg_min = -min;
    return scale;
}

// Fits x[i] ~= scale * (L[i] - nmax) with L - nmax in -nmax..nmax-1, weights x^2.
// The value of largest magnitude maps to -nmax; a sweep of nearby scales keeps
// the one with the best weighted least-squares fit. Returns the (signed) scale.
float fit_symmetric(int n, int nmax, const float* x, int8_t* L) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++)
        if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); max = x[i]; }
    if (amax < 1e-15f) {
        std::fill(L, L + n, 0);
        return 0.0f;
    }
    auto fit = [&](float iscale, float* sumlx, float* suml2) {
        *sumlx = *suml2 = 0.0f;
        for (int i = 0; i < n; i++) {
            const int l = std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1);
            const float w = x[i] * x[i];
            *sumlx += w * x[i] * (float)l;
            *suml2 += w * (float)l * (float)l;
        }
    };
    auto assign = [&](float iscale) {
        for (int i = 0; i < n; i++) L[i] = (int8_t)(nmax + std::clamp(nearest_int(iscale * x[i]), -nmax, nmax - 1));
    };
    float iscale = -(float)nmax / max;
    float sumlx, suml2;
    fit(iscale, &sumlx, &suml2);
    assign(iscale);
    float scale = suml2 > 0 ? sumlx / suml2 : 0.0f;
    float best = scale * sumlx;
    for (int step = -9; step <= 9; step++) {
        if (step == 0) continue;
        iscale = -((float)nmax + 0.1f * (float)step) / max;
        fit(iscale, &sumlx, &suml2);
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            assign(iscale);
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// Packs 6-bit scale ls and min lm of sub-block j into the 12-byte layout scale_min_k4 reads.
void pack_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* s) {
    if (j < 4) {
        s[j] = ls;
        s[j + 4] = lm;
    } else {
        s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        s[j - 4] |= (uint8_t)((ls >> 4) << 6);
        s[j] |= (uint8_t)((lm >> 4) << 6);
    }
}

// Shared by Q4_K and Q5_K: per-sub-block scale/min search, 6-bit quantization of
// the scales and mins against their maxima, then final levels L (0..nmax) under
// the scales the block actually stores.
void quantize_k_scales(const float* x, int nmax, float rmin, float rdelta, int nstep, uint16_t* d_out,
                       uint16_t* dmin_out, uint8_t* scales, uint8_t* L) {
    float sc[8], mn[8], w[32];
    float max_scale = 0.0f, max_min = 0.0f;
    for (int j = 0; j < 8; j++) {
        const float* xs = x + 32 * j;
        float sum_x2 = 0.0f;
        for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; l++) w[l] = av_x + std::fabs(xs[l]);
        sc[j] = fit_scale_min(32, nmax, xs, w, L + 32 * j, &mn[j], rmin, rdelta, nstep);
        max_scale = std::max(max_scale, sc[j]);
        max_min = std::max(max_min, mn[j]);
    }
    const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
    const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
    std::memset(scales, 0, 12);
    for (int j = 0; j < 8; j++) {
        const uint8_t ls = (uint8_t)std::min(63, nearest_int(inv_scale * sc[j]));
        const uint8_t lm = (uint8_t)std::min(63, nearest_int(inv_min * mn[j]));
        pack_scale_min_k4(j, ls, lm, scales);
    }
    *d_out = f32_to_f16(max_scale / 63.0f);
    *dmin_out = f32_to_f16(max_min / 63.0f);
    const float d = f16_to_f32(*d_out), dmin = f16_to_f32(*dmin_out);
    for (int j = 0; j < 8; j++) {
        uint8_t ls, lm;
        scale_min_k4(j, scales, &ls, &lm);
        const float ds = d * ls;
        if (ds == 0.0f) continue;
        const float dm = dmin * lm;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)std::clamp(nearest_int((x[32 * j + i] + dm) / ds), 0, nmax);
    }
}

}  // namespace

void dequantize_q4_K(const BlockQ4_K* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK_K; b++) {
        const float d = f16_to_f32(x[b].d), dmin = f16_to_f32(x[b].dmin);
        const uint8_t* q = x[b].qs;
        for (int g = 0; g < 4; g++, q += 32) {
            uint8_t sc0, m0, sc1, m1;
            scale_min_k4(2 * g, x[b].scales, &sc0, &m0);
            scale_min_k4(2 * g + 1, x[b].scales, &sc1, &m1);
            const float d0 = d * sc0, d1 = d * sc1, mm0 = dmin * m0, mm1 = dmin * m1;
            for (int l = 0; l < 32; l++) *y++ = d0 * (float)(q[l] & 0xF) - mm0;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)(q[l] >> 4) - mm1;
        }
    }
}

void dequantize_q5_K(const BlockQ5_K* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK_K; b++) {
        const float d = f16_to_f32(x[b].d), dmin = f16_to_f32(x[b].dmin);
        const uint8_t* q = x[b].qs;
        const uint8_t* qh = x[b].qh;
        for (int g = 0; g < 4; g++, q += 32) {
            uint8_t sc0, m0, sc1, m1;
            scale_min_k4(2 * g, x[b].scales, &sc0, &m0);
            scale_min_k4(2 * g + 1, x[b].scales, &sc1, &m1);
            const float d0 = d * sc0, d1 = d * sc1, mm0 = dmin * m0, mm1 = dmin * m1;
            const uint8_t u0 = (uint8_t)(1u << (2 * g)), u1 = (uint8_t)(2u << (2 * g));
            for (int l = 0; l < 32; l++) *y++ = d0 * (float)((q[l] & 0xF) + (qh[l] & u0 ? 16 : 0)) - mm0;
            for (int l = 0; l < 32; l++) *y++ = d1 * (float)((q[l] >> 4) + (qh[l] & u1 ? 16 : 0)) - mm1;
        }
    }
}

void dequantize_q6_K(const BlockQ6_K* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK_K; b++) {
        const float d = f16_to_f32(x[b].d);
        const uint8_t* ql = x[b].ql;
        const uint8_t* qh = x[b].qh;
        const int8_t* sc = x[b].scales;
        for (int half = 0; half < 2; half++, y += 128, ql += 64, qh += 32, sc += 8) {
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}

void dequantize_q8_K(const BlockQ8_K* x, float* y, size_t n) {
    for (size_t b = 0; b < n / QK_K; b++)
        for (int j = 0; j < QK_K; j++) *y++ = x[b].d * (float)x[b].qs[j];
}

void quantize_q4_K(const float* x, BlockQ4_K* y, size_t n) {
    uint8_t L[QK_K];
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        quantize_k_scales(x, 15, -1.0f, 0.1f, 20, &y[b].d, &y[b].dmin, y[b].scales, L);
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++) y[b].qs[32 * g + l] = (uint8_t)(L[64 * g + l] | (L[64 * g + 32 + l] << 4));
    }
}

void quantize_q5_K(const float* x, BlockQ5_K* y, size_t n) {
    uint8_t L[QK_K];
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        quantize_k_scales(x, 31, -0.5f, 0.1f, 15, &y[b].d, &y[b].dmin, y[b].scales, L);
        std::memset(y[b].qh, 0, sizeof y[b].qh);
        for (int g = 0; g < 4; g++) {
            for (int l = 0; l < 32; l++) {
                const int l0 = L[64 * g + l], l1 = L[64 * g + 32 + l];
                if (l0 > 15) y[b].qh[l] |= (uint8_t)(1u << (2 * g));
                if (l1 > 15) y[b].qh[l] |= (uint8_t)(2u << (2 * g));
                y[b].qs[32 * g + l] = (uint8_t)((l0 & 0xF) | ((l1 & 0xF) << 4));
            }
        }
    }
}

void quantize_q6_K(const float* x, BlockQ6_K* y, size_t n) {
    int8_t L[QK_K];
    float scales[QK_K / 16];
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float max_scale = 0.0f, max_abs = 0.0f;
        for (int j = 0; j < QK_K / 16; j++) {
            scales[j] = fit_symmetric(16, 32, x + 16 * j, L + 16 * j);
            if (std::fabs(scales[j]) > max_abs) { max_abs = std::fabs(scales[j]); max_scale = scales[j]; }
        }
        std::memset(&y[b], 0, sizeof y[b]);
        if (max_abs < 1e-15f) continue;  // all zero: d = 0
        // The sub-block scale of largest magnitude maps to -128.
        const float iscale = -128.0f / max_scale;
        y[b].d = f32_to_f16(1.0f / iscale);
        for (int j = 0; j < QK_K / 16; j++) y[b].scales[j] = (int8_t)std::min(127, nearest_int(iscale * scales[j]));
        const float d = f16_to_f32(y[b].d);
        for (int j = 0; j < QK_K / 16; j++) {
            const float ds = d * y[b].scales[j];
            if (ds == 0.0f) continue;
            for (int i = 0; i < 16; i++)
                L[16 * j + i] = (int8_t)(32 + std::clamp(nearest_int(x[16 * j + i] / ds), -32, 31));
        }
        for (int half = 0; half < 2; half++) {
            uint8_t* ql = y[b].ql + 64 * half;
            uint8_t* qh = y[b].qh + 32 * half;
            const int8_t* Lh = L + 128 * half;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
                qh[l] = (uint8_t)((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) | ((Lh[l + 64] >> 4) << 4) |
                                  ((Lh[l + 96] >> 4) << 6));
            }
        }
    }
}

// ggml's Q8_K: the value of largest magnitude maps to -127 (so d carries the
// opposite sign of that value), round half to even, plus sums of 16.
void quantize_q8_K(const float* x, BlockQ8_K* y, size_t n) {
    for (size_t b = 0; b < n / QK_K; b++, x += QK_K) {
        float amax = 0.0f, max = 0.0f;
        for (int j = 0; j < QK_K; j++)
            if (std::fabs(x[j]) > amax) { amax = std::fabs(x[j]); max = x[j]; }
        if (amax == 0.0f) {
            std::memset(&y[b], 0, sizeof y[b]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int j = 0; j < QK_K; j++) y[b].qs[j] = (int8_t)std::min(127, nearest_int(iscale * x[j]));
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int i = 0; i < 16; i++) sum += y[b].qs[16 * j + i];
            y[b].bsums[j] = (int16_t)sum;
        }
        y[b].d = 1.0f / iscale;
    }
}

}  // namespace mw::quant::detail
