// Importance-weighted block quantization (see quant_weighted.h). Every block
// format gets the same treatment: a sweep of candidate scales, each mapping
// the values to integer levels by rounding, a weighted least-squares refit of
// the scale (and min) for those levels, and the candidate with the smallest
// weighted error wins. Final levels are rounded again under the F16 scales the
// block actually stores, which is optimal for those scales.
#include "quant/quant_weighted.h"

#include "base/error.h"
#include "base/half.h"
#include "quant/block_formats.h"
#include "quant/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

namespace mw::quant {

namespace {

using gguf::TensorType;

// Candidate scales are evaluated together: the loop over a block's values is
// outside, the loop over candidates inside (the compiler vectorizes it), and
// each candidate's sums still run over the values in order, so every sum is
// bit for bit what a candidate-by-candidate loop gives.
constexpr int kMaxCand = 128;

// Symmetric fit x ~= d * q, q in qmin..qmax. Candidates map the value of largest
// magnitude to qmin or qmax, stretched by up to +-`spread` levels.
float fit_symmetric_w(int n, const float* x, const float* w, int qmin, int qmax, float spread, int steps) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++)
        if (std::fabs(x[i]) > amax) { amax = std::fabs(x[i]); max = x[i]; }
    if (amax < 1e-30f) return 0.0f;
    // Candidate c: side c / (2 steps + 1), s = c % (2 steps + 1) - steps.
    const int per_side = 2 * steps + 1, nc = 2 * per_side;
    float iscale[kMaxCand];
    bool used[kMaxCand];
    for (int c = 0; c < nc; c++) {
        const int side = c / per_side, s = c % per_side - steps;
        const float ref = side == 0 ? (float)-qmin : (float)qmax;  // levels the extreme maps to
        const float levels = ref + spread * (float)s / (float)steps;
        used[c] = levels > 0.5f;
        iscale[c] = (side == 0 ? -levels : levels) / max;
    }
    double sxq[kMaxCand] = {}, sqq[kMaxCand] = {};
    for (int i = 0; i < n; i++) {
        const double wx = (double)w[i] * x[i], wd = (double)w[i];
        const float xi = x[i];
        for (int c = 0; c < nc; c++) {
            const int q = std::clamp(nearest_int(iscale[c] * xi), qmin, qmax);
            sxq[c] += wx * q;
            sqq[c] += wd * q * q;
        }
    }
    float best_d = 0.0f, best_score = -1.0f;
    for (int c = 0; c < nc; c++) {
        if (!used[c] || sqq[c] <= 0) continue;
        // With the least-squares d = sxq / sqq the error is sum w x^2 - sxq^2 / sqq.
        const double score = sxq[c] * sxq[c] / sqq[c];
        if (score > best_score) {
            best_score = (float)score;
            best_d = (float)(sxq[c] / sqq[c]);
        }
    }
    return best_d;
}

// Affine fit x ~= d * q + m, q in 0..nmax, d >= 0. When `nonpos_min`, m <= 0 (the
// K-quants store -m as an unsigned 6-bit value). Returns d; *m_out the offset.
float fit_affine_w(int n, const float* x, const float* w, int nmax, bool nonpos_min, float* m_out, int steps) {
    float min = x[0], max = x[0];
    for (int i = 1; i < n; i++) { min = std::min(min, x[i]); max = std::max(max, x[i]); }
    if (nonpos_min && min > 0) min = 0;
    if (max - min < 1e-30f) {
        *m_out = nonpos_min ? std::min(0.0f, min) : min;
        return 0.0f;
    }
    double sw = 0, swx = 0, swxx = 0;
    for (int i = 0; i < n; i++) { sw += w[i]; swx += (double)w[i] * x[i]; swxx += (double)w[i] * x[i] * x[i]; }
    const int nc = 2 * steps + 1;
    float iscale[kMaxCand];
    for (int c = 0; c < nc; c++) iscale[c] = ((float)nmax + (float)(c - steps) / (float)steps) / (max - min);  // nmax +- 1 levels
    double sl[kMaxCand] = {}, sll[kMaxCand] = {}, sxl[kMaxCand] = {};
    for (int i = 0; i < n; i++) {
        const float xm = x[i] - min;
        const double wd = (double)w[i];
        const double xd = x[i];
        for (int c = 0; c < nc; c++) {
            const int l = std::clamp(nearest_int(iscale[c] * xm), 0, nmax);
            sl[c] += wd * l;
            sll[c] += wd * l * l;
            sxl[c] += wd * l * xd;
        }
    }
    float best_d = (max - min) / (float)nmax, best_m = min;
    double best_err = 1e300;
    for (int c = 0; c < nc; c++) {
        const double det = sw * sll[c] - sl[c] * sl[c];
        if (det <= 0) continue;
        double d = (sw * sxl[c] - swx * sl[c]) / det;
        double m = (sll[c] * swx - sl[c] * sxl[c]) / det;
        if (nonpos_min && m > 0) { m = 0; d = sxl[c] / sll[c]; }
        if (d < 0) continue;
        // err = sum w (d l + m - x)^2, expanded.
        const double err = d * d * sll[c] + 2 * d * m * sl[c] + m * m * sw - 2 * d * sxl[c] - 2 * m * swx + swxx;
        if (err < best_err) { best_err = err; best_d = (float)d; best_m = (float)m; }
    }
    *m_out = best_m;
    return best_d;
}

double block_err_affine(int n, const float* x, const float* w, float d, float m, int nmax, uint8_t* L) {
    double err = 0;
    for (int i = 0; i < n; i++) {
        const int l = d > 0 ? std::clamp(nearest_int((x[i] - m) / d), 0, nmax) : 0;
        if (L) L[i] = (uint8_t)l;
        const double e = (double)d * l + m - x[i];
        err += w[i] * e * e;
    }
    return err;
}

void q8_0(const float* x, const float* w, BlockQ8_0* y, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += QK, w += QK) {
        const float d = fit_symmetric_w(QK, x, w, -127, 127, 2.0f, 8);
        y[b].d = f32_to_f16(d);
        const float ds = f16_to_f32(y[b].d);
        for (int i = 0; i < QK; i++) y[b].qs[i] = (int8_t)(ds != 0 ? std::clamp(nearest_int(x[i] / ds), -127, 127) : 0);
    }
}

void q4_0(const float* x, const float* w, BlockQ4_0* y, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += QK, w += QK) {
        const float d = fit_symmetric_w(QK, x, w, -8, 7, 3.0f, 30);
        y[b].d = f32_to_f16(d);
        const float ds = f16_to_f32(y[b].d);
        uint8_t q[QK];
        for (int i = 0; i < QK; i++) q[i] = (uint8_t)(8 + (ds != 0 ? std::clamp(nearest_int(x[i] / ds), -8, 7) : 0));
        for (int j = 0; j < QK / 2; j++) y[b].qs[j] = (uint8_t)(q[j] | (q[j + QK / 2] << 4));
    }
}

void q4_1(const float* x, const float* w, BlockQ4_1* y, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += QK, w += QK) {
        float m;
        const float d = fit_affine_w(QK, x, w, 15, false, &m, 20);
        y[b].d = f32_to_f16(d);
        y[b].m = f32_to_f16(m);
        uint8_t q[QK];
        block_err_affine(QK, x, w, f16_to_f32(y[b].d), f16_to_f32(y[b].m), 15, q);
        for (int j = 0; j < QK / 2; j++) y[b].qs[j] = (uint8_t)(q[j] | (q[j + QK / 2] << 4));
    }
}

// Q5_0 / Q5_1: the Q4_0 / Q4_1 sweeps over 32 levels instead of 16.
void q5_0(const float* x, const float* w, BlockQ5_0* y, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += QK, w += QK) {
        const float d = fit_symmetric_w(QK, x, w, -16, 15, 3.0f, 30);
        y[b].d = f32_to_f16(d);
        const float ds = f16_to_f32(y[b].d);
        uint8_t q[QK];
        for (int i = 0; i < QK; i++) q[i] = (uint8_t)(16 + (ds != 0 ? std::clamp(nearest_int(x[i] / ds), -16, 15) : 0));
        q5_pack(q, y[b].qs, y[b].qh);
    }
}

void q5_1(const float* x, const float* w, BlockQ5_1* y, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += QK, w += QK) {
        float m;
        const float d = fit_affine_w(QK, x, w, 31, false, &m, 20);
        y[b].d = f32_to_f16(d);
        y[b].m = f32_to_f16(m);
        uint8_t q[QK];
        block_err_affine(QK, x, w, f16_to_f32(y[b].d), f16_to_f32(y[b].m), 31, q);
        q5_pack(q, y[b].qs, y[b].qh);
    }
}

void pack_scale_min_k4(int j, uint8_t ls, uint8_t lm, uint8_t* s) {
    if (j < 4) {
        s[j] = (uint8_t)((s[j] & 0xC0) | ls);
        s[j + 4] = (uint8_t)((s[j + 4] & 0xC0) | lm);
    } else {
        s[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
        s[j - 4] = (uint8_t)((s[j - 4] & 0x3F) | ((ls >> 4) << 6));
        s[j] = (uint8_t)((s[j] & 0x3F) | ((lm >> 4) << 6));
    }
}

// Q4_K / Q5_K: 8 sub-blocks of 32, x ~= d*ls*L - dmin*lm, ls and lm 6-bit.
// Sub-block fits, 6-bit quantization of scales and mins, then each sub-block's
// (ls, lm) is nudged by +-1 where that lowers its weighted error.
void k_scales(const float* x, const float* w, int nmax, uint16_t* d_out, uint16_t* dmin_out, uint8_t* scales,
              uint8_t* L) {
    float sc[8], mn[8];
    float max_sc = 0, max_mn = 0;
    for (int j = 0; j < 8; j++) {
        float m;
        sc[j] = fit_affine_w(32, x + 32 * j, w + 32 * j, nmax, true, &m, 15);
        mn[j] = -m;
        max_sc = std::max(max_sc, sc[j]);
        max_mn = std::max(max_mn, mn[j]);
    }
    *d_out = f32_to_f16(max_sc / 63.0f);
    *dmin_out = f32_to_f16(max_mn / 63.0f);
    const float d = f16_to_f32(*d_out), dmin = f16_to_f32(*dmin_out);
    std::memset(scales, 0, 12);
    for (int j = 0; j < 8; j++) {
        const int ls0 = d > 0 ? std::clamp(nearest_int(sc[j] / d), 0, 63) : 0;
        const int lm0 = dmin > 0 ? std::clamp(nearest_int(mn[j] / dmin), 0, 63) : 0;
        int best_ls = ls0, best_lm = lm0;
        double best = 1e300;
        for (int a = -1; a <= 1; a++)
            for (int c = -1; c <= 1; c++) {
                const int ls = ls0 + a, lm = lm0 + c;
                if (ls < 0 || ls > 63 || lm < 0 || lm > 63) continue;
                const double e = block_err_affine(32, x + 32 * j, w + 32 * j, d * ls, -dmin * lm, nmax, nullptr);
                if (e < best) { best = e; best_ls = ls; best_lm = lm; }
            }
        pack_scale_min_k4(j, (uint8_t)best_ls, (uint8_t)best_lm, scales);
        block_err_affine(32, x + 32 * j, w + 32 * j, d * best_ls, -dmin * best_lm, nmax, L + 32 * j);
    }
}

void q4_K(const float* x, const float* w, BlockQ4_K* y, size_t nb) {
    uint8_t L[QK_K];
    for (size_t b = 0; b < nb; b++, x += QK_K, w += QK_K) {
        k_scales(x, w, 15, &y[b].d, &y[b].dmin, y[b].scales, L);
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++) y[b].qs[32 * g + l] = (uint8_t)(L[64 * g + l] | (L[64 * g + 32 + l] << 4));
    }
}

void q5_K(const float* x, const float* w, BlockQ5_K* y, size_t nb) {
    uint8_t L[QK_K];
    for (size_t b = 0; b < nb; b++, x += QK_K, w += QK_K) {
        k_scales(x, w, 31, &y[b].d, &y[b].dmin, y[b].scales, L);
        std::memset(y[b].qh, 0, sizeof y[b].qh);
        for (int g = 0; g < 4; g++)
            for (int l = 0; l < 32; l++) {
                const int l0 = L[64 * g + l], l1 = L[64 * g + 32 + l];
                if (l0 > 15) y[b].qh[l] |= (uint8_t)(1u << (2 * g));
                if (l1 > 15) y[b].qh[l] |= (uint8_t)(2u << (2 * g));
                y[b].qs[32 * g + l] = (uint8_t)((l0 & 0xF) | ((l1 & 0xF) << 4));
            }
    }
}

double sym_err(int n, const float* x, const float* w, float ds, int qmin, int qmax, int8_t* L) {
    double err = 0;
    for (int i = 0; i < n; i++) {
        const int q = ds != 0 ? std::clamp(nearest_int(x[i] / ds), qmin, qmax) : 0;
        if (L) L[i] = (int8_t)q;
        const double e = (double)ds * q - x[i];
        err += w[i] * e * e;
    }
    return err;
}

// Q6_K: 16 sub-blocks of 16, x ~= d * sc[j] * q, q in -32..31, sc int8.
void q6_K(const float* x, const float* w, BlockQ6_K* y, size_t nb) {
    int8_t L[QK_K];
    for (size_t b = 0; b < nb; b++, x += QK_K, w += QK_K) {
        float sc[16], max_abs = 0, max_sc = 0;
        for (int j = 0; j < 16; j++) {
            sc[j] = fit_symmetric_w(16, x + 16 * j, w + 16 * j, -32, 31, 2.0f, 10);
            if (std::fabs(sc[j]) > max_abs) { max_abs = std::fabs(sc[j]); max_sc = sc[j]; }
        }
        std::memset(&y[b], 0, sizeof y[b]);
        if (max_abs < 1e-30f) continue;
        y[b].d = f32_to_f16(max_sc / -128.0f);
        const float d = f16_to_f32(y[b].d);
        for (int j = 0; j < 16; j++) {
            const int s0 = d != 0 ? std::clamp(nearest_int(sc[j] / d), -128, 127) : 0;
            int best_s = s0;
            double best = 1e300;
            for (int a = -1; a <= 1; a++) {
                const int s = s0 + a;
                if (s < -128 || s > 127) continue;
                const double e = sym_err(16, x + 16 * j, w + 16 * j, d * s, -32, 31, nullptr);
                if (e < best) { best = e; best_s = s; }
            }
            y[b].scales[j] = (int8_t)best_s;
            sym_err(16, x + 16 * j, w + 16 * j, d * best_s, -32, 31, L + 16 * j);
        }
        for (int i = 0; i < QK_K; i++) L[i] = (int8_t)(L[i] + 32);
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

}  // namespace

void quantize_row_weighted(TensorType type, const float* src, void* dst, size_t n, const float* imp) {
    const gguf::TensorTypeInfo* info = gguf::tensor_type_info((uint32_t)type);
    if (!info) fail(MW_ERR_UNSUPPORTED, "quantize_row_weighted: unknown tensor type " + std::to_string((uint32_t)type));
    if (n % info->block_elems != 0)
        fail(MW_ERR_INVALID_ARGUMENT, "quantize_row_weighted: " + std::to_string(n) + " elements is not a multiple of the " +
                                          info->name + " block of " + std::to_string(info->block_elems));
    // Weights: the importance plus 1% of its mean, so a column never seen active
    // on the calibration text still counts a little.
    std::vector<float> w(n, 1.0f);
    if (imp) {
        double mean = 0;
        for (size_t i = 0; i < n; i++) mean += imp[i];
        mean /= (double)n;
        const float floor = mean > 0 ? (float)(0.01 * mean) : 1.0f;
        for (size_t i = 0; i < n; i++) w[i] = std::max(0.0f, imp[i]) + floor;
    }
    switch (type) {
    case TensorType::F32:
    case TensorType::F16:
    case TensorType::BF16: quantize_row(type, src, dst, n); break;
    case TensorType::Q8_0: q8_0(src, w.data(), (BlockQ8_0*)dst, n / QK); break;
    case TensorType::Q4_0: q4_0(src, w.data(), (BlockQ4_0*)dst, n / QK); break;
    case TensorType::Q4_1: q4_1(src, w.data(), (BlockQ4_1*)dst, n / QK); break;
    case TensorType::Q5_0: q5_0(src, w.data(), (BlockQ5_0*)dst, n / QK); break;
    case TensorType::Q5_1: q5_1(src, w.data(), (BlockQ5_1*)dst, n / QK); break;
    case TensorType::Q4_K: q4_K(src, w.data(), (BlockQ4_K*)dst, n / QK_K); break;
    case TensorType::Q5_K: q5_K(src, w.data(), (BlockQ5_K*)dst, n / QK_K); break;
    case TensorType::Q6_K: q6_K(src, w.data(), (BlockQ6_K*)dst, n / QK_K); break;
    default: fail(MW_ERR_UNSUPPORTED, std::string("quantize_row_weighted: cannot quantize to ") + info->name);
    }
}

double weighted_sq_error(const float* a, const float* b, const float* w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        const double e = (double)a[i] - b[i];
        s += (w ? w[i] : 1.0) * e * e;
    }
    return s;
}

}  // namespace mw::quant
