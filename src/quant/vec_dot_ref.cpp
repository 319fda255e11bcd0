// Reference dot products of a weight row with an activation row in the weight
// type's vec_dot_type. Quantized types sum quant products in integers per block
// (exact) and combine blocks in float the way llama.cpp does, so every SIMD
// kernel must agree with these up to float summation order.
#include "base/half.h"
#include "quant/quant_internal.h"

namespace mw::quant::detail {

float dot_f32(size_t n, const float* w, const float* a) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)w[i] * (double)a[i];
    return (float)sum;
}

float dot_f16(size_t n, const uint16_t* w, const uint16_t* a) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)(f16_to_f32(w[i]) * f16_to_f32(a[i]));
    return (float)sum;
}

float dot_bf16(size_t n, const uint16_t* w, const uint16_t* a) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += (double)(bf16_to_f32(w[i]) * bf16_to_f32(a[i]));
    return (float)sum;
}

float dot_q4_0(size_t n, const BlockQ4_0* w, const BlockQ8_0* a) {
    float sum = 0.0f;
    for (size_t b = 0; b < n / QK; b++) {
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++) {
            sumi += ((w[b].qs[j] & 0xF) - 8) * a[b].qs[j];
            sumi += ((w[b].qs[j] >> 4) - 8) * a[b].qs[j + QK / 2];
        }
        sum += (f16_to_f32(w[b].d) * f16_to_f32(a[b].d)) * (float)sumi;
    }
    return sum;
}

// sum (d_w q_w + m_w)(d_a q_a) = d_w d_a sum(q_w q_a) + m_w * s_a, with s_a = d_a sum(q_a).
float dot_q4_1(size_t n, const BlockQ4_1* w, const BlockQ8_1* a) {
    float sum = 0.0f;
    for (size_t b = 0; b < n / QK; b++) {
        int sumi = 0;
        for (int j = 0; j < QK / 2; j++) {
            sumi += (w[b].qs[j] & 0xF) * a[b].qs[j];
            sumi += (w[b].qs[j] >> 4) * a[b].qs[j + QK / 2];
        }
        sum += (f16_to_f32(w[b].d) * f16_to_f32(a[b].d)) * (float)sumi + f16_to_f32(w[b].m) * f16_to_f32(a[b].s);
    }
    return sum;
}

float dot_q5_0(size_t n, const BlockQ5_0* w, const BlockQ8_0* a) {
    float sum = 0.0f;
    for (size_t b = 0; b < n / QK; b++) {
        int sumi = 0;
        for (int e = 0; e < QK; e++) sumi += (q5_quant(w[b].qs, w[b].qh, e) - 16) * a[b].qs[e];
        sum += (f16_to_f32(w[b].d) * f16_to_f32(a[b].d)) * (float)sumi;
    }
    return sum;
}

// As Q4_1: d_w d_a sum(q_w q_a) + m_w * s_a.
float dot_q5_1(size_t n, const BlockQ5_1* w, const BlockQ8_1* a) {
    float sum = 0.0f;
    for (size_t b = 0; b < n / QK; b++) {
        int sumi = 0;
        for (int e = 0; e < QK; e++) sumi += q5_quant(w[b].qs, w[b].qh, e) * a[b].qs[e];
        sum += (f16_to_f32(w[b].d) * f16_to_f32(a[b].d)) * (float)sumi + f16_to_f32(w[b].m) * f16_to_f32(a[b].s);
    }
    return sum;
}

float dot_q8_0(size_t n, const BlockQ8_0* w, const BlockQ8_0* a) {
    float sum = 0.0f;
    for (size_t b = 0; b < n / QK; b++) {
        int sumi = 0;
        for (int j = 0; j < QK; j++) sumi += w[b].qs[j] * a[b].qs[j];
        sum += (f16_to_f32(w[b].d) * f16_to_f32(a[b].d)) * (float)sumi;
    }
    return sum;
}

// Per super-block: d * sum_j sc_j * dot_j  -  dmin * sum_j m_j * (sum of the 32 activations of j),
// both integer sums exact; the activation sums come from the Q8_K bsums.
float dot_q4_K(size_t n, const BlockQ4_K* w, const BlockQ8_K* a) {
    float sum = 0.0f;
    for (size_t b = 0; b < n / QK_K; b++) {
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            scale_min_k4(j, w[b].scales, &sc, &m);
            const uint8_t* q = w[b].qs + 32 * (j / 2);
            const int shift = (j % 2) * 4;
            int dot = 0;
            for (int l = 0; l < 32; l++) dot += ((q[l] >> shift) & 0xF) * a[b].qs[32 * j + l];
            sumi += sc * dot;
            summ += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        const float d = f16_to_f32(w[b].d) * a[b].d;
        const float dmin = f16_to_f32(w[b].dmin) * a[b].d;
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

float dot_q5_K(size_t n, const BlockQ5_K* w, const BlockQ8_K* a) {
    float sum = 0.0f;
    for (size_t b = 0; b < n / QK_K; b++) {
        int sumi = 0, summ = 0;
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            scale_min_k4(j, w[b].scales, &sc, &m);
            const uint8_t* q = w[b].qs + 32 * (j / 2);
            const int shift = (j % 2) * 4;
            int dot = 0;
            for (int l = 0; l < 32; l++) {
                const int hi = (w[b].qh[l] >> j) & 1;
                dot += (((q[l] >> shift) & 0xF) | (hi << 4)) * a[b].qs[32 * j + l];
            }
            sumi += sc * dot;
            summ += m * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        const float d = f16_to_f32(w[b].d) * a[b].d;
        const float dmin = f16_to_f32(w[b].dmin) * a[b].d;
        sum += d * (float)sumi - dmin * (float)summ;
    }
    return sum;
}

float dot_q6_K(size_t n, const BlockQ6_K* w, const BlockQ8_K* a) {
    float sum = 0.0f;
    int8_t q[QK_K];
    for (size_t b = 0; b < n / QK_K; b++) {
        for (int half = 0; half < 2; half++) {
            const uint8_t* ql = w[b].ql + 64 * half;
            const uint8_t* qh = w[b].qh + 32 * half;
            int8_t* o = q + 128 * half;
            for (int l = 0; l < 32; l++) {
                o[l] = (int8_t)(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                o[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                o[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                o[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        }
        int sumi = 0;
        for (int j = 0; j < QK_K / 16; j++) {
            int dot = 0;
            for (int l = 0; l < 16; l++) dot += q[16 * j + l] * a[b].qs[16 * j + l];
            sumi += w[b].scales[j] * dot;
        }
        sum += (f16_to_f32(w[b].d) * a[b].d) * (float)sumi;
    }
    return sum;
}

}  // namespace mw::quant::detail
