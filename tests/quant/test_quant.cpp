// Block formats and the reference (de)quantizers and dot products: hand-made
// blocks decode to known values, round trips stay within per-type error
// bounds, the reference dot products agree with dot products of the dequantized
// rows, and bad arguments are refused with the right status.
// Project headers come before cmocka.h: cmocka defines a fail() macro that
// would clash with mw::fail in base/error.h.
#include "base/error.h"
#include "base/half.h"
#include "quant/block_formats.h"
#include "quant/quant.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

extern "C" {
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
}
#include "test_util.h"

using namespace mw;
using namespace mw::quant;
using gguf::TensorType;

namespace {

std::vector<float> random_row(size_t n, uint32_t seed, float scale = 1.0f) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> x(n);
    for (float& v : x) v = dist(rng);
    // A few outliers, as real weights have.
    for (size_t i = 0; i < n; i += 97) x[i] *= 4.0f;
    return x;
}

size_t row_bytes_of(TensorType t, size_t n) {
    const gguf::TensorTypeInfo* info = gguf::tensor_type_info((uint32_t)t);
    assert_non_null(info);
    return gguf::row_bytes(*info, n);
}

std::vector<float> round_trip(TensorType t, const std::vector<float>& x) {
    std::vector<uint8_t> q(row_bytes_of(t, x.size()));
    quantize_row(t, x.data(), q.data(), x.size());
    std::vector<float> y(x.size());
    dequantize_row(t, q.data(), y.data(), x.size());
    return y;
}

double rel_rmse(const std::vector<float>& x, const std::vector<float>& y) {
    double e = 0, s = 0;
    for (size_t i = 0; i < x.size(); i++) {
        e += (double)(x[i] - y[i]) * (x[i] - y[i]);
        s += (double)x[i] * x[i];
    }
    return std::sqrt(e / s);
}

// ---- layouts ----

void test_block_sizes_match_type_table(void** state) {
    (void)state;
    struct {
        TensorType t;
        size_t elems, bytes;
    } cases[] = {
        {TensorType::Q4_0, QK, sizeof(BlockQ4_0)}, {TensorType::Q4_1, QK, sizeof(BlockQ4_1)},
        {TensorType::Q5_0, QK, sizeof(BlockQ5_0)}, {TensorType::Q5_1, QK, sizeof(BlockQ5_1)},
        {TensorType::Q8_0, QK, sizeof(BlockQ8_0)}, {TensorType::Q8_1, QK, sizeof(BlockQ8_1)},
        {TensorType::Q4_K, QK_K, sizeof(BlockQ4_K)}, {TensorType::Q5_K, QK_K, sizeof(BlockQ5_K)},
        {TensorType::Q6_K, QK_K, sizeof(BlockQ6_K)}, {TensorType::Q8_K, QK_K, sizeof(BlockQ8_K)},
    };
    for (const auto& c : cases) {
        const gguf::TensorTypeInfo* info = gguf::tensor_type_info((uint32_t)c.t);
        assert_non_null(info);
        assert_int_equal(info->block_elems, c.elems);
        assert_int_equal(info->block_bytes, c.bytes);
    }
    assert_int_equal(offsetof(BlockQ5_0, qs), 6);
    assert_int_equal(offsetof(BlockQ5_1, qh), 4);
    assert_int_equal(offsetof(BlockQ5_1, qs), 8);
    assert_int_equal(offsetof(BlockQ6_K, d), 208);
    assert_int_equal(offsetof(BlockQ5_K, qs), 48);
    assert_int_equal(offsetof(BlockQ8_K, bsums), 260);
}

void test_vec_dot_types(void** state) {
    (void)state;
    assert_int_equal((int)vec_dot_type(TensorType::F32), (int)TensorType::F32);
    assert_int_equal((int)vec_dot_type(TensorType::F16), (int)TensorType::F16);
    assert_int_equal((int)vec_dot_type(TensorType::BF16), (int)TensorType::BF16);
    assert_int_equal((int)vec_dot_type(TensorType::Q4_0), (int)TensorType::Q8_0);
    assert_int_equal((int)vec_dot_type(TensorType::Q8_0), (int)TensorType::Q8_0);
    assert_int_equal((int)vec_dot_type(TensorType::Q4_1), (int)TensorType::Q8_1);
    assert_int_equal((int)vec_dot_type(TensorType::Q5_0), (int)TensorType::Q8_0);
    assert_int_equal((int)vec_dot_type(TensorType::Q5_1), (int)TensorType::Q8_1);
    assert_int_equal((int)vec_dot_type(TensorType::Q4_K), (int)TensorType::Q8_K);
    assert_int_equal((int)vec_dot_type(TensorType::Q5_K), (int)TensorType::Q8_K);
    assert_int_equal((int)vec_dot_type(TensorType::Q6_K), (int)TensorType::Q8_K);
}

// ---- hand-made blocks ----

void test_dequantize_q4_0_q4_1_q8_0_blocks(void** state) {
    (void)state;
    float y[QK];
    BlockQ4_0 a;
    a.d = f32_to_f16(0.5f);
    for (int j = 0; j < 16; j++) a.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    dequantize_row(TensorType::Q4_0, &a, y, QK);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 0.5f * (float)(j - 8));
        assert_true(y[j + 16] == 0.5f * (float)(7 - j));
    }
    BlockQ4_1 b;
    b.d = f32_to_f16(0.25f);
    b.m = f32_to_f16(-1.0f);
    for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)((j % 16) | (3 << 4));
    dequantize_row(TensorType::Q4_1, &b, y, QK);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 0.25f * (float)j - 1.0f);
        assert_true(y[j + 16] == 0.25f * 3.0f - 1.0f);
    }
    BlockQ8_0 c;
    c.d = f32_to_f16(-2.0f);
    for (int j = 0; j < QK; j++) c.qs[j] = (int8_t)(j * 8 - 127);
    dequantize_row(TensorType::Q8_0, &c, y, QK);
    for (int j = 0; j < QK; j++) assert_true(y[j] == -2.0f * (float)(j * 8 - 127));
}

// Q5_0 / Q5_1: element e's fifth bit is bit e of qh read as a little-endian
// uint32 (bit e % 8 of byte e / 8); the low 4 bits are Q4_0's nibbles.
void test_dequantize_q5_0_q5_1_blocks(void** state) {
    (void)state;
    float y[QK];
    const uint32_t qh = 0xA5C3F00Fu;  // a different pattern in each byte
    auto want_q = [&](int e) { return (e < 16 ? e : 31 - e) | (int)((qh >> e) & 1) << 4; };
    BlockQ5_0 a;
    a.d = f32_to_f16(0.5f);
    for (int j = 0; j < 4; j++) a.qh[j] = (uint8_t)(qh >> (8 * j));
    for (int j = 0; j < 16; j++) a.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    dequantize_row(TensorType::Q5_0, &a, y, QK);
    for (int e = 0; e < QK; e++) assert_true(y[e] == 0.5f * (float)(want_q(e) - 16));
    BlockQ5_1 b;
    b.d = f32_to_f16(0.25f);
    b.m = f32_to_f16(-3.0f);
    std::memcpy(b.qh, a.qh, 4);
    std::memcpy(b.qs, a.qs, 16);
    dequantize_row(TensorType::Q5_1, &b, y, QK);
    for (int e = 0; e < QK; e++) assert_true(y[e] == 0.25f * (float)want_q(e) - 3.0f);
    // Round trip of exact levels: quantize gives back those bits.
    float x[QK];
    for (int e = 0; e < QK; e++) x[e] = 0.5f * (float)(e - 16);  // -8 .. 7.5: the extreme -8 maps to -16
    BlockQ5_0 c;
    quantize_row(TensorType::Q5_0, x, &c, QK);
    dequantize_row(TensorType::Q5_0, &c, y, QK);
    for (int e = 0; e < QK; e++) assert_true(y[e] == x[e]);
    for (int e = 0; e < QK; e++) x[e] = 0.25f * (float)e - 3.0f;
    BlockQ5_1 d;
    quantize_row(TensorType::Q5_1, x, &d, QK);
    dequantize_row(TensorType::Q5_1, &d, y, QK);
    for (int e = 0; e < QK; e++) assert_true(y[e] == x[e]);
}

void test_dequantize_q4_K_block(void** state) {
    (void)state;
    BlockQ4_K b;
    std::memset(&b, 0, sizeof b);
    b.d = f32_to_f16(1.0f);
    b.dmin = f32_to_f16(0.5f);
    // Sub-block j: scale 10 + 7j (6 bits: 10..59), min 60 - 5j (60..25).
    // Packing: j < 4 in the low 6 bits of bytes j / j+4; j >= 4 low nibbles in byte j+4,
    // top two bits in bits 6..7 of bytes j-4 (scale) and j (min).
    for (int j = 0; j < 8; j++) {
        const int sc = 10 + 7 * j, m = 60 - 5 * j;
        if (j < 4) {
            b.scales[j] |= (uint8_t)sc;
            b.scales[j + 4] |= (uint8_t)m;
        } else {
            b.scales[j + 4] = (uint8_t)((sc & 0xF) | ((m & 0xF) << 4));
            b.scales[j - 4] |= (uint8_t)((sc >> 4) << 6);
            b.scales[j] |= (uint8_t)((m >> 4) << 6);
        }
    }
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        scale_min_k4(j, b.scales, &sc, &m);
        assert_int_equal(sc, 10 + 7 * j);
        assert_int_equal(m, 60 - 5 * j);
    }
    // Element e of sub-block j: quant (e + j) % 16; sub-block 2g low nibbles of qs[32g..], 2g+1 high.
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++)
            b.qs[32 * g + l] = (uint8_t)(((l + 2 * g) % 16) | (((l + 2 * g + 1) % 16) << 4));
    float y[QK_K];
    dequantize_row(TensorType::Q4_K, &b, y, QK_K);
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++)
            assert_true(y[32 * j + l] == (float)(10 + 7 * j) * (float)((l + j) % 16) - 0.5f * (float)(60 - 5 * j));
}

void test_dequantize_q5_K_block(void** state) {
    (void)state;
    BlockQ5_K b;
    std::memset(&b, 0, sizeof b);
    b.d = f32_to_f16(2.0f);
    b.dmin = f32_to_f16(1.0f);
    for (int j = 0; j < 4; j++) {
        b.scales[j] = (uint8_t)(j + 1);  // scale j+1, min 0 for sub-blocks 0..3
    }
    for (int j = 4; j < 8; j++) b.scales[j + 4] = (uint8_t)((j + 1) | (3 << 4));  // scale j+1, min 3
    // Quant of element e (sub-block j = e / 32, l = e % 32): (l + j) % 32; bit 4 goes to qh bit j.
    for (int g = 0; g < 4; g++) {
        for (int l = 0; l < 32; l++) {
            const int q0 = (l + 2 * g) % 32, q1 = (l + 2 * g + 1) % 32;
            b.qs[32 * g + l] = (uint8_t)((q0 & 0xF) | ((q1 & 0xF) << 4));
            if (q0 & 16) b.qh[l] |= (uint8_t)(1u << (2 * g));
            if (q1 & 16) b.qh[l] |= (uint8_t)(1u << (2 * g + 1));
        }
    }
    float y[QK_K];
    dequantize_row(TensorType::Q5_K, &b, y, QK_K);
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) {
            const float want = 2.0f * (float)(j + 1) * (float)((l + j) % 32) - (j < 4 ? 0.0f : 3.0f);
            assert_true(y[32 * j + l] == want);
        }
}

void test_dequantize_q6_K_and_q8_K_blocks(void** state) {
    (void)state;
    BlockQ6_K b;
    std::memset(&b, 0, sizeof b);
    b.d = f32_to_f16(0.5f);
    for (int j = 0; j < 16; j++) b.scales[j] = (int8_t)(j % 2 ? -(j + 1) : (j + 1));
    // Quant of element e: (e * 5) % 64, stored per the documented layout.
    auto q_of = [](int e) { return (e * 5) % 64; };
    for (int half = 0; half < 2; half++) {
        for (int l = 0; l < 32; l++) {
            const int e = 128 * half + l;
            const int q1 = q_of(e), q2 = q_of(e + 32), q3 = q_of(e + 64), q4 = q_of(e + 96);
            b.ql[64 * half + l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
            b.ql[64 * half + l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
            b.qh[32 * half + l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
        }
    }
    float y[QK_K];
    dequantize_row(TensorType::Q6_K, &b, y, QK_K);
    for (int e = 0; e < QK_K; e++) assert_true(y[e] == 0.5f * (float)b.scales[e / 16] * (float)(q_of(e) - 32));

    BlockQ8_K k;
    k.d = -0.125f;
    for (int e = 0; e < QK_K; e++) k.qs[e] = (int8_t)(e - 128);
    dequantize_row(TensorType::Q8_K, &k, y, QK_K);
    for (int e = 0; e < QK_K; e++) assert_true(y[e] == -0.125f * (float)(e - 128));
}

// ---- round trips ----

void test_f16_bf16_exact(void** state) {
    (void)state;
    // Every finite F16 / non-NaN BF16 bit pattern survives dequantize + quantize.
    std::vector<uint16_t> all(65536), back(65536);
    std::vector<float> f(65536);
    for (uint32_t i = 0; i < 65536; i++) all[i] = (uint16_t)i;
    dequantize_row(TensorType::F16, all.data(), f.data(), all.size());
    quantize_row(TensorType::F16, f.data(), back.data(), all.size());
    for (uint32_t i = 0; i < 65536; i++)
        if ((i & 0x7c00) != 0x7c00) assert_int_equal(back[i], all[i]);
    dequantize_row(TensorType::BF16, all.data(), f.data(), all.size());
    quantize_row(TensorType::BF16, f.data(), back.data(), all.size());
    for (uint32_t i = 0; i < 65536; i++)
        if ((i & 0x7f80) != 0x7f80 || (i & 0x7f) == 0) assert_int_equal(back[i], all[i]);
    // Rounding of arbitrary floats: relative error at most half an ulp.
    const std::vector<float> x = random_row(4096, 7);
    const std::vector<float> h = round_trip(TensorType::F16, x), b = round_trip(TensorType::BF16, x);
    for (size_t i = 0; i < x.size(); i++) {
        if (std::fabs(x[i]) > 1e-4f) assert_true(std::fabs(h[i] - x[i]) <= std::fabs(x[i]) * 0x1p-11f);
        assert_true(std::fabs(b[i] - x[i]) <= std::fabs(x[i]) * 0x1p-8f);
    }
}

// Q8_0 / Q8_1: error per element at most d/2 plus what storing d as F16 costs (127 |d - f16(d)|).
void test_q8_round_trip_bound(void** state) {
    (void)state;
    for (TensorType t : {TensorType::Q8_0, TensorType::Q8_1}) {
        const std::vector<float> x = random_row(32 * 64, 11, 3.0f);
        const std::vector<float> y = round_trip(t, x);
        for (size_t b = 0; b < x.size() / QK; b++) {
            float amax = 0;
            for (int j = 0; j < QK; j++) amax = std::fmax(amax, std::fabs(x[b * QK + j]));
            const float d = amax / 127.0f;
            const float bound = (d / 2 + 127.0f * std::fabs(d - f16_to_f32(f32_to_f16(d)))) * (1 + 1e-5f);
            for (int j = 0; j < QK; j++) assert_true(std::fabs(x[b * QK + j] - y[b * QK + j]) <= bound);
        }
        assert_true(rel_rmse(x, y) < 0.01);
    }
    // Q8_1's s is d times the sum of the quants.
    const std::vector<float> x = random_row(64, 5);
    BlockQ8_1 q[2];
    quantize_row(TensorType::Q8_1, x.data(), q, 64);
    for (const BlockQ8_1& b : q) {
        int sum = 0;
        for (int j = 0; j < QK; j++) sum += b.qs[j];
        assert_true(f16_to_f32(b.s) == f16_to_f32(f32_to_f16(f16_to_f32(b.d) * (float)sum)) ||
                    std::fabs(f16_to_f32(b.s) - f16_to_f32(b.d) * (float)sum) <= std::fabs(f16_to_f32(b.s)) * 0x1p-9f);
    }
}

void test_q4_round_trip_bound(void** state) {
    (void)state;
    const std::vector<float> x = random_row(32 * 64, 13, 0.5f);
    // Q4_1: within d/2 of the value, plus F16 rounding of d (times up to 15) and of m.
    const std::vector<float> y1 = round_trip(TensorType::Q4_1, x);
    for (size_t b = 0; b < x.size() / QK; b++) {
        float mn = x[b * QK], mx = x[b * QK];
        for (int j = 0; j < QK; j++) {
            mn = std::fmin(mn, x[b * QK + j]);
            mx = std::fmax(mx, x[b * QK + j]);
        }
        const float d = (mx - mn) / 15;
        const float bound = d / 2 + 15 * std::fabs(d - f16_to_f32(f32_to_f16(d))) +
                            std::fabs(mn - f16_to_f32(f32_to_f16(mn))) + 1e-6f;
        for (int j = 0; j < QK; j++) assert_true(std::fabs(x[b * QK + j] - y1[b * QK + j]) <= bound);
    }
    // Q4_0: the extreme maps to -8 exactly; the other side clamps at +7, so the error is within |d|.
    const std::vector<float> y0 = round_trip(TensorType::Q4_0, x);
    for (size_t b = 0; b < x.size() / QK; b++) {
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = std::fmax(amax, std::fabs(x[b * QK + j]));
        const float d = amax / 8;
        const float bound = d + 8 * std::fabs(d - f16_to_f32(f32_to_f16(d))) + 1e-6f;
        for (int j = 0; j < QK; j++) assert_true(std::fabs(x[b * QK + j] - y0[b * QK + j]) <= bound);
    }
    assert_true(rel_rmse(x, y1) < 0.10);
    assert_true(rel_rmse(x, y0) < 0.13);
}

// Q5_0 / Q5_1: as Q4_0 / Q4_1 with 32 levels, so half the step and about half the error.
void test_q5_round_trip_bound(void** state) {
    (void)state;
    const std::vector<float> x = random_row(32 * 64, 13, 0.5f);
    const std::vector<float> y1 = round_trip(TensorType::Q5_1, x);
    for (size_t b = 0; b < x.size() / QK; b++) {
        float mn = x[b * QK], mx = x[b * QK];
        for (int j = 0; j < QK; j++) {
            mn = std::fmin(mn, x[b * QK + j]);
            mx = std::fmax(mx, x[b * QK + j]);
        }
        const float d = (mx - mn) / 31;
        const float bound = d / 2 + 31 * std::fabs(d - f16_to_f32(f32_to_f16(d))) +
                            std::fabs(mn - f16_to_f32(f32_to_f16(mn))) + 1e-6f;
        for (int j = 0; j < QK; j++) assert_true(std::fabs(x[b * QK + j] - y1[b * QK + j]) <= bound);
    }
    const std::vector<float> y0 = round_trip(TensorType::Q5_0, x);
    for (size_t b = 0; b < x.size() / QK; b++) {
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = std::fmax(amax, std::fabs(x[b * QK + j]));
        const float d = amax / 16;
        const float bound = d + 16 * std::fabs(d - f16_to_f32(f32_to_f16(d))) + 1e-6f;
        for (int j = 0; j < QK; j++) assert_true(std::fabs(x[b * QK + j] - y0[b * QK + j]) <= bound);
    }
    const double e1 = rel_rmse(x, y1), e0 = rel_rmse(x, y0);
    const double e41 = rel_rmse(x, round_trip(TensorType::Q4_1, x)), e40 = rel_rmse(x, round_trip(TensorType::Q4_0, x));
    printf("relative RMSE: Q5_0 %.4f (Q4_0 %.4f), Q5_1 %.4f (Q4_1 %.4f)\n", e0, e40, e1, e41);
    assert_true(e1 < 0.6 * e41);
    assert_true(e0 < 0.6 * e40);
}

// K-quants: relative RMSE bounds on gaussian data with outliers (measured about
// 0.079 / 0.040 / 0.021 / 0.013 on this data; a layout or search bug lands far above).
void test_k_round_trip_rmse(void** state) {
    (void)state;
    const std::vector<float> x = random_row(QK_K * 32, 17, 0.02f);
    const double e4 = rel_rmse(x, round_trip(TensorType::Q4_K, x));
    const double e5 = rel_rmse(x, round_trip(TensorType::Q5_K, x));
    const double e6 = rel_rmse(x, round_trip(TensorType::Q6_K, x));
    const double e8 = rel_rmse(x, round_trip(TensorType::Q8_K, x));
    printf("relative RMSE: Q4_K %.4f Q5_K %.4f Q6_K %.4f Q8_K %.4f\n", e4, e5, e6, e8);
    assert_true(e4 < 0.085);
    assert_true(e5 < 0.042);
    assert_true(e6 < 0.022);
    assert_true(e8 < 0.015);
    assert_true(e5 < e4 && e6 < e5);
    // The scale search beats plain min/max rounding: Q4_K is better than Q4_1 on the same data.
    assert_true(e4 < rel_rmse(x, round_trip(TensorType::Q4_1, x)));
    // All-zero blocks stay zero.
    std::vector<float> z(QK_K, 0.0f);
    for (TensorType t : {TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K, TensorType::Q8_K}) {
        const std::vector<float> r = round_trip(t, z);
        for (float v : r) assert_true(v == 0.0f);
    }
}

// Q8_K: the value of largest magnitude maps to -127, so d has the opposite sign; bsums add up.
void test_q8_K_convention(void** state) {
    (void)state;
    std::vector<float> x = random_row(QK_K, 19);
    x[37] = 9.0f;  // positive extreme
    BlockQ8_K b;
    quantize_row(TensorType::Q8_K, x.data(), &b, QK_K);
    assert_int_equal(b.qs[37], -127);
    assert_true(b.d == 1.0f / (-127.0f / 9.0f));
    for (int j = 0; j < 16; j++) {
        int s = 0;
        for (int l = 0; l < 16; l++) s += b.qs[16 * j + l];
        assert_int_equal(b.bsums[j], s);
    }
}

// ---- reference dot products ----

// vec_dot_ref equals the float dot product of the two dequantized rows, up to
// float rounding (and, for Q4_1, the F16 rounding of Q8_1's s).
void test_vec_dot_ref_matches_dequantized(void** state) {
    (void)state;
    const TensorType types[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q4_0, TensorType::Q4_1,
                                TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};
    const size_t n = 1536;
    const std::vector<float> w = random_row(n, 23), a = random_row(n, 29);
    for (TensorType t : types) {
        const TensorType at = vec_dot_type(t);
        std::vector<uint8_t> qw(row_bytes_of(t, n)), qa(row_bytes_of(at, n));
        quantize_row(t, w.data(), qw.data(), n);
        quantize_row(at, a.data(), qa.data(), n);
        std::vector<float> dw(n), da(n);
        dequantize_row(t, qw.data(), dw.data(), n);
        dequantize_row(at, qa.data(), da.data(), n);
        double want = 0, mag = 0;
        for (size_t i = 0; i < n; i++) {
            want += (double)dw[i] * da[i];
            mag += std::fabs((double)dw[i] * da[i]);
        }
        const float got = vec_dot_ref(t, n, qw.data(), qa.data());
        const double tol = (t == TensorType::Q4_1 || t == TensorType::Q5_1 ? 2e-3 : 1e-5) * mag;
        if (std::fabs(got - want) > tol)
            fail_msg("type %u: vec_dot_ref %g, dequantized dot %g (tol %g)", (unsigned)t, got, want, tol);
    }
}

// ---- errors ----

void test_errors(void** state) {
    (void)state;
    float x[64] = {0};
    uint8_t buf[1024];
    try {
        quantize_row(TensorType::Q8_0, x, buf, 33);
        fail_msg("n not a multiple of the block was accepted");
    } catch (const Error& e) {
        assert_int_equal(e.status(), MW_ERR_INVALID_ARGUMENT);
        assert_non_null(strstr(e.what(), "33"));
    }
    try {
        dequantize_row(TensorType::Q3_K, buf, x, 256);
        fail_msg("Q3_K was accepted");
    } catch (const Error& e) {
        assert_int_equal(e.status(), MW_ERR_UNSUPPORTED);
        assert_non_null(strstr(e.what(), "Q3_K"));
    }
    try {
        (void)vec_dot_type(TensorType::Q2_K);
        fail_msg("Q2_K was accepted");
    } catch (const Error& e) {
        assert_int_equal(e.status(), MW_ERR_UNSUPPORTED);
    }
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_sizes_match_type_table),
        cmocka_unit_test(test_vec_dot_types),
        cmocka_unit_test(test_dequantize_q4_0_q4_1_q8_0_blocks),
        cmocka_unit_test(test_dequantize_q5_0_q5_1_blocks),
        cmocka_unit_test(test_dequantize_q4_K_block),
        cmocka_unit_test(test_dequantize_q5_K_block),
        cmocka_unit_test(test_dequantize_q6_K_and_q8_K_blocks),
        cmocka_unit_test(test_f16_bf16_exact),
        cmocka_unit_test(test_q8_round_trip_bound),
        cmocka_unit_test(test_q4_round_trip_bound),
        cmocka_unit_test(test_q5_round_trip_bound),
        cmocka_unit_test(test_k_round_trip_rmse),
        cmocka_unit_test(test_q8_K_convention),
        cmocka_unit_test(test_vec_dot_ref_matches_dequantized),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
