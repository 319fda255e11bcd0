// Scalar Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K and Q6_K rows that give the same bits as
// the SIMD kernels, which follow llama.cpp's x86 (AVX2) dot products:
//  - per block (per super-block for the K-quants) the integer products go into
//    8 int32 lanes, lane i holding elements 4i..4i+3 of every 32-element chunk
//    (times the chunk's sub-block scale for the K-quants);
//  - the lanes are converted to float and fused-multiply-added, lane by lane,
//    into 8 float accumulators with the block's scale d_w * d_a (rounded to
//    float first), block after block;
//  - the mins (Q4_1/Q5_1 m * s, Q4_K/Q5_K dmin * sum m_j * bsum_j) accumulate on
//    their own as the x86 code does, and join after the horizontal sum;
//  - the horizontal sum of the 8 lanes is ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)).
// Integer sums are exact in any order, so only the float steps are pinned here.
// Nothing below may be contracted or reassociated: every fused multiply-add is
// an explicit std::fma and there are no other a * b + c expressions.
#include "base/half.h"
#include "kernels/cpu/kernels_impl.h"
#include "quant/block_formats.h"

#include <cmath>
#include <cstring>

namespace mw::cpu::detail {

namespace {

using quant::BlockQ4_0;
using quant::BlockQ4_1;
using quant::BlockQ4_K;
using quant::BlockQ5_0;
using quant::BlockQ5_1;
using quant::BlockQ5_K;
using quant::BlockQ6_K;
using quant::BlockQ8_0;
using quant::BlockQ8_1;
using quant::BlockQ8_K;
using quant::QK;
using quant::QK_K;

struct Lanes {
    float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};

    // v[i] = fma(d, float(l[i]), v[i]): one block's contribution.
    void add(float d, const int32_t* l) {
        for (int i = 0; i < 8; i++) v[i] = std::fma(d, (float)l[i], v[i]);
    }
    // The x86 horizontal sum: high half onto the low, then pairs, then the last two.
    float sum() const {
        const float t0 = v[0] + v[4], t1 = v[1] + v[5], t2 = v[2] + v[6], t3 = v[3] + v[7];
        return (t0 + t2) + (t1 + t3);
    }
};

// Lane of element e of a 32-element chunk.
inline int lane(int e) { return (e & 31) >> 2; }

float f16(uint16_t h) { return f16_to_f32(h); }

// Q4_0 / Q4_1 quant of element e (0..31) of a block: low nibbles first.
inline int nibble(const uint8_t* qs, int e) { return e < 16 ? qs[e] & 0xF : qs[e - 16] >> 4; }

float dot_q8_0(size_t n, const void* vw, const void* va) {
    const BlockQ8_0* w = (const BlockQ8_0*)vw;
    const BlockQ8_0* a = (const BlockQ8_0*)va;
    Lanes acc;
    for (size_t b = 0; b < n / QK; b++) {
        int32_t l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int e = 0; e < QK; e++) l[lane(e)] += w[b].qs[e] * a[b].qs[e];
        acc.add(f16(w[b].d) * f16(a[b].d), l);
    }
    return acc.sum();
}

float dot_q4_0(size_t n, const void* vw, const void* va) {
    const BlockQ4_0* w = (const BlockQ4_0*)vw;
    const BlockQ8_0* a = (const BlockQ8_0*)va;
    Lanes acc;
    for (size_t b = 0; b < n / QK; b++) {
        int32_t l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int e = 0; e < QK; e++) l[lane(e)] += (nibble(w[b].qs, e) - 8) * a[b].qs[e];
        acc.add(f16(w[b].d) * f16(a[b].d), l);
    }
    return acc.sum();
}

float dot_q4_1(size_t n, const void* vw, const void* va) {
    const BlockQ4_1* w = (const BlockQ4_1*)vw;
    const BlockQ8_1* a = (const BlockQ8_1*)va;
    Lanes acc;
    float summs = 0.0f;
    for (size_t b = 0; b < n / QK; b++) {
        summs = std::fma(f16(w[b].m), f16(a[b].s), summs);
        int32_t l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int e = 0; e < QK; e++) l[lane(e)] += nibble(w[b].qs, e) * a[b].qs[e];
        acc.add(f16(w[b].d) * f16(a[b].d), l);
    }
    return acc.sum() + summs;
}

float dot_q5_0(size_t n, const void* vw, const void* va) {
    const BlockQ5_0* w = (const BlockQ5_0*)vw;
    const BlockQ8_0* a = (const BlockQ8_0*)va;
    Lanes acc;
    for (size_t b = 0; b < n / QK; b++) {
        int32_t l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int e = 0; e < QK; e++) l[lane(e)] += (quant::q5_quant(w[b].qs, w[b].qh, e) - 16) * a[b].qs[e];
        acc.add(f16(w[b].d) * f16(a[b].d), l);
    }
    return acc.sum();
}

float dot_q5_1(size_t n, const void* vw, const void* va) {
    const BlockQ5_1* w = (const BlockQ5_1*)vw;
    const BlockQ8_1* a = (const BlockQ8_1*)va;
    Lanes acc;
    float summs = 0.0f;
    for (size_t b = 0; b < n / QK; b++) {
        summs = std::fma(f16(w[b].m), f16(a[b].s), summs);
        int32_t l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int e = 0; e < QK; e++) l[lane(e)] += quant::q5_quant(w[b].qs, w[b].qh, e) * a[b].qs[e];
        acc.add(f16(w[b].d) * f16(a[b].d), l);
    }
    return acc.sum() + summs;
}

// Q4_K/Q5_K mins term of one super-block as 4 int32 lanes: lane k covers
// sub-blocks 2k and 2k+1, each min times the sum of its 32 activations.
void k4_min_lanes(const uint8_t* scales, const BlockQ8_K& a, int32_t out[4]) {
    for (int k = 0; k < 4; k++) {
        out[k] = 0;
        for (int j = 2 * k; j < 2 * k + 2; j++) {
            uint8_t sc, m;
            quant::scale_min_k4(j, scales, &sc, &m);
            out[k] += m * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
        }
    }
}

// Sub-block scale times quant products, into lanes: q(e) is the 0..31 (or 0..63) quant of element e.
template <class Q>
void k4_lanes(const uint8_t* scales, const BlockQ8_K& a, Q q, int32_t l[8]) {
    for (int i = 0; i < 8; i++) l[i] = 0;
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        quant::scale_min_k4(j, scales, &sc, &m);
        for (int e = 32 * j; e < 32 * j + 32; e++) l[lane(e)] += sc * q(e) * a.qs[e];
    }
}

float dot_q4_k(size_t n, const void* vw, const void* va) {
    const BlockQ4_K* w = (const BlockQ4_K*)vw;
    const BlockQ8_K* a = (const BlockQ8_K*)va;
    Lanes acc;
    float acc_m[4] = {0, 0, 0, 0};
    for (size_t b = 0; b < n / QK_K; b++) {
        const float d = a[b].d * f16(w[b].d);
        const float dmin = -a[b].d * f16(w[b].dmin);
        int32_t pm[4];
        k4_min_lanes(w[b].scales, a[b], pm);
        for (int k = 0; k < 4; k++) acc_m[k] = std::fma(dmin, (float)pm[k], acc_m[k]);
        // Element e sits in group e / 64: low nibbles for the first 32, high for the next.
        const uint8_t* qs = w[b].qs;
        int32_t l[8];
        k4_lanes(w[b].scales, a[b], [qs](int e) { return (e & 32) ? qs[32 * (e >> 6) + (e & 31)] >> 4
                                                                  : qs[32 * (e >> 6) + (e & 31)] & 0xF; },
                 l);
        acc.add(d, l);
    }
    return acc.sum() + ((acc_m[0] + acc_m[2]) + (acc_m[1] + acc_m[3]));
}

float dot_q5_k(size_t n, const void* vw, const void* va) {
    const BlockQ5_K* w = (const BlockQ5_K*)vw;
    const BlockQ8_K* a = (const BlockQ8_K*)va;
    Lanes acc;
    float summs = 0.0f;
    for (size_t b = 0; b < n / QK_K; b++) {
        const float d = a[b].d * f16(w[b].d);
        const float dmin = -a[b].d * f16(w[b].dmin);
        int32_t pm[4];
        k4_min_lanes(w[b].scales, a[b], pm);
        summs = std::fma(dmin, (float)(pm[0] + pm[1] + pm[2] + pm[3]), summs);
        const uint8_t* qs = w[b].qs;
        const uint8_t* qh = w[b].qh;
        int32_t l[8];
        k4_lanes(w[b].scales, a[b],
                 [qs, qh](int e) {
                     const int g = e >> 6, k = e & 31, hi = (e >> 5) & 1;  // group, index, high half
                     const int low = hi ? qs[32 * g + k] >> 4 : qs[32 * g + k] & 0xF;
                     return low | (((qh[k] >> (2 * g + hi)) & 1) << 4);
                 },
                 l);
        acc.add(d, l);
    }
    return acc.sum() + summs;
}

float dot_q6_k(size_t n, const void* vw, const void* va) {
    const BlockQ6_K* w = (const BlockQ6_K*)vw;
    const BlockQ8_K* a = (const BlockQ8_K*)va;
    Lanes acc;
    for (size_t b = 0; b < n / QK_K; b++) {
        int32_t l[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int e = 0; e < QK_K; e++) {
            const int half = e >> 7, k = e & 31, part = (e >> 5) & 3;  // part: which 32 of the half
            const uint8_t* ql = w[b].ql + 64 * half + (part & 1) * 32;
            const int low = part < 2 ? ql[k] & 0xF : ql[k] >> 4;
            const int q = low | (((w[b].qh[32 * half + k] >> (2 * part)) & 3) << 4);
            l[lane(e)] += w[b].scales[e >> 4] * (q - 32) * a[b].qs[e];
        }
        acc.add(a[b].d * f16(w[b].d), l);
    }
    return acc.sum();
}

template <float (*Dot)(size_t, const void*, const void*)>
struct Rows {
    static float vec_dot(size_t n, const void* w, const void* a) { return Dot(n, w, a); }
    static void gemv(size_t n, const uint8_t* w, size_t row_stride, size_t nrows, const void* a, float* y) {
        for (size_t r = 0; r < nrows; r++) y[r] = Dot(n, w + r * row_stride, a);
    }
    static void gemm(size_t n, const uint8_t* w, size_t w_stride, size_t nrows, const uint8_t* a, size_t a_stride,
                     size_t ntok, float* y, size_t y_stride) {
        for (size_t t = 0; t < ntok; t++)
            for (size_t r = 0; r < nrows; r++) y[t * y_stride + r] = Dot(n, w + r * w_stride, a + t * a_stride);
    }
    static void set(KernelTable& t, TensorType type) {
        const uint32_t i = (uint32_t)type;
        t.vec_dot[i] = vec_dot;
        t.gemv[i] = gemv;
        t.gemm[i] = gemm;
    }
};

}  // namespace

void fill_scalar_quant(KernelTable& t) {
    Rows<dot_q8_0>::set(t, TensorType::Q8_0);
    Rows<dot_q4_0>::set(t, TensorType::Q4_0);
    Rows<dot_q4_1>::set(t, TensorType::Q4_1);
    Rows<dot_q5_0>::set(t, TensorType::Q5_0);
    Rows<dot_q5_1>::set(t, TensorType::Q5_1);
    Rows<dot_q4_k>::set(t, TensorType::Q4_K);
    Rows<dot_q5_k>::set(t, TensorType::Q5_K);
    Rows<dot_q6_k>::set(t, TensorType::Q6_K);
}

}  // namespace mw::cpu::detail
