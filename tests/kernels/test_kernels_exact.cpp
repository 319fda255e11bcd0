// Bit-exact kernels: for Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K every ISA level
// follows llama.cpp's x86 dot-product arithmetic lane for lane, so
//  - scalar, AVX2 and AVX-512 give the same bits;
//  - vec_dot, gemv and gemm give the same bits for a (row, token), whatever the
//    other rows and tokens of the call (batch invariance);
//  - the result is the documented order, checked against an independent
//    emulation written here for Q8_0, Q4_1, Q5_0 and Q5_1;
// and the data is such that another summation order would change the bits
// (checked, so the equalities above have teeth). F32 and F16 weights at
// AVX-512 follow llama.cpp's orders for them (tiled when n % 16 == 0, its dot
// product's otherwise), checked against an emulation written here.
#include "base/half.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/kernels.h"
#include "kernels/cpu/kernels_impl.h"
#include "quant/block_formats.h"
#include "quant/quant.h"

#include <cmath>
#include <cstring>
#include <random>
#include <string>
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
using namespace mw::cpu;
using gguf::TensorType;

namespace {

const TensorType kExact[] = {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_1, TensorType::Q5_0,
                             TensorType::Q5_1, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K};

const char* type_name(TensorType t) { return gguf::tensor_type_info((uint32_t)t)->name; }
size_t row_bytes_of(TensorType t, size_t n) { return gguf::row_bytes(*gguf::tensor_type_info((uint32_t)t), n); }
size_t block_of(TensorType t) { return gguf::tensor_type_info((uint32_t)t)->block_elems; }

// Every table this CPU can run: each ISA level, and the AVX-512 level both
// without and with its GFNI entries (the dispatch picks one by CPU).
struct Table {
    std::string name;
    KernelTable t;
};

const std::vector<Table>& tables() {
    static const std::vector<Table> v = [] {
        std::vector<Table> out;
        for (int l = 0; l <= (int)best_isa(); l++) out.push_back({isa_name((IsaLevel)l), kernels_for((IsaLevel)l)});
        if ((int)best_isa() >= (int)IsaLevel::Avx512) {
            Table t{"avx512-no-gfni", {}};
            detail::fill_scalar(t.t);
            detail::fill_avx2(t.t);
            detail::fill_avx512(t.t);
            out.push_back(t);
            if (__builtin_cpu_supports("gfni")) {
                t.name = "avx512-gfni";
                detail::fill_avx512_gfni(t.t);
                out.push_back(t);
            }
        }
        return out;
    }();
    return v;
}

uint32_t bits(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
}

// F16 fields (d, m, dmin) of each block: byte offsets within the block.
std::vector<size_t> f16_fields(TensorType t) {
    switch (t) {
    case TensorType::Q4_1:
    case TensorType::Q5_1:
    case TensorType::Q4_K:
    case TensorType::Q5_K: return {0, 2};
    case TensorType::Q6_K: return {208};
    default: return {0};
    }
}

// Rows alternate between the reference quantizer on normal data and raw random
// bytes (every quant value, -128 in Q8_0, every scale bit) with sane F16 scales.
struct Matrix {
    TensorType type, act_type;
    size_t n, nrows, ntok, w_row, a_row;
    std::vector<uint8_t> w, a;
};

Matrix make_matrix(TensorType type, size_t n, size_t nrows, size_t ntok, uint32_t seed) {
    Matrix m;
    m.type = type;
    m.act_type = quant::vec_dot_type(type);
    m.n = n;
    m.nrows = nrows;
    m.ntok = ntok;
    m.w_row = row_bytes_of(type, n);
    m.a_row = row_bytes_of(m.act_type, n);
    m.w.resize(m.w_row * nrows);
    m.a.resize(m.a_row * ntok);
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::uniform_real_distribution<float> scale(0.0005f, 0.05f);
    std::vector<float> x(n);
    const size_t bsize = gguf::tensor_type_info((uint32_t)type)->block_bytes;
    for (size_t r = 0; r < nrows; r++) {
        uint8_t* row = m.w.data() + r * m.w_row;
        if (r % 2 == 0) {
            for (float& v : x) v = 0.05f * dist(rng);
            quant::quantize_row(type, x.data(), row, n);
        } else {
            for (size_t i = 0; i < m.w_row; i++) row[i] = (uint8_t)rng();
            for (size_t b = 0; b < m.w_row / bsize; b++)
                for (size_t off : f16_fields(type)) {
                    const uint16_t h = f32_to_f16((rng() & 1 ? -1.0f : 1.0f) * scale(rng));
                    std::memcpy(row + b * bsize + off, &h, 2);
                }
        }
    }
    const KernelTable& ref = kernels_for(IsaLevel::Scalar);
    for (size_t t = 0; t < ntok; t++) {
        for (size_t i = 0; i < n; i++) x[i] = dist(rng) * (i % 61 == 0 ? 8.0f : 1.0f);
        ref.quantize_act[(uint32_t)m.act_type](x.data(), m.a.data() + t * m.a_row, n);
    }
    return m;
}

// y[t][r] by vec_dot of a table.
std::vector<float> by_vec_dot(const KernelTable& kt, const Matrix& m) {
    std::vector<float> y(m.ntok * m.nrows);
    for (size_t t = 0; t < m.ntok; t++)
        for (size_t r = 0; r < m.nrows; r++)
            y[t * m.nrows + r] = kt.vec_dot[(uint32_t)m.type](m.n, m.w.data() + r * m.w_row, m.a.data() + t * m.a_row);
    return y;
}

std::vector<float> by_gemm(const KernelTable& kt, const Matrix& m) {
    std::vector<float> y(m.ntok * m.nrows, -7.0f);
    kt.gemm[(uint32_t)m.type](m.n, m.w.data(), m.w_row, m.nrows, m.a.data(), m.a_row, m.ntok, y.data(), m.nrows);
    return y;
}

std::vector<float> by_gemv(const KernelTable& kt, const Matrix& m) {
    std::vector<float> y(m.ntok * m.nrows, -7.0f);
    for (size_t t = 0; t < m.ntok; t++)
        kt.gemv[(uint32_t)m.type](m.n, m.w.data(), m.w_row, m.nrows, m.a.data() + t * m.a_row, y.data() + t * m.nrows);
    return y;
}

void expect_same_bits(const std::vector<float>& want, const std::vector<float>& got, const Matrix& m, const char* what,
                      const std::string& table) {
    for (size_t i = 0; i < want.size(); i++)
        if (bits(want[i]) != bits(got[i]))
            fail_msg("%s %s %s n=%zu rows=%zu toks=%zu: [t=%zu r=%zu] got %.9g (0x%08x) want %.9g (0x%08x)",
                     table.c_str(), type_name(m.type), what, m.n, m.nrows, m.ntok, i / m.nrows, i % m.nrows,
                     got[i], bits(got[i]), want[i], bits(want[i]));
}

std::vector<size_t> widths(TensorType t) {
    if (block_of(t) == 256) return {256, 512, 768, 4864};
    return {32, 64, 96, 576, 1536, 4672};
}

// ---- every level, every entry point: the scalar table's bits ----

void test_levels_bit_identical(void** state) {
    (void)state;
    std::string names;
    for (const Table& tb : tables()) names += " " + tb.name;
    printf("tables compared with the scalar one:%s\n", names.c_str());
    // (rows, tokens); 131 tokens cross the gemm's 64-token chunks with an odd one left over
    const size_t shapes[][2] = {{1, 1}, {3, 2}, {5, 5}, {8, 3}, {9, 9}, {17, 4}, {70, 6}, {6, 131}};
    uint32_t seed = 1;
    for (TensorType t : kExact) {
        for (size_t n : widths(t)) {
            for (const auto& s : shapes) {
                if (n * s[0] * s[1] > 4864 * 70 * 3) continue;  // keep the scalar side quick
                const Matrix m = make_matrix(t, n, s[0], s[1], seed++);
                const std::vector<float> want = by_vec_dot(kernels_for(IsaLevel::Scalar), m);
                for (const Table& tb : tables()) {
                    expect_same_bits(want, by_vec_dot(tb.t, m), m, "vec_dot", tb.name);
                    expect_same_bits(want, by_gemv(tb.t, m), m, "gemv", tb.name);
                    expect_same_bits(want, by_gemm(tb.t, m), m, "gemm", tb.name);
                }
            }
        }
    }
}

// ---- batch invariance: a (row, token) result never depends on its neighbours ----

void test_batch_invariance(void** state) {
    (void)state;
    for (const Table& tb : tables()) {
        const KernelTable& kt = tb.t;
        const char* l = tb.name.c_str();
        for (TensorType t : kExact) {
            const size_t n = block_of(t) == 256 ? 768 : 576, nrows = 75, ntok = 11;
            const Matrix m = make_matrix(t, n, nrows, ntok, 4242 + (uint32_t)t);
            const std::vector<float> full = by_gemm(kt, m);
            expect_same_bits(full, by_gemv(kt, m), m, "gemv vs gemm", tb.name);
            // Sub-batches at every token offset and size 1..5, on row windows that
            // start at odd offsets, so every (row, token) sits at other tile positions.
            const uint32_t i = (uint32_t)t;
            for (size_t t0 = 0; t0 < ntok; t0++) {
                for (size_t nt = 1; nt <= 5 && t0 + nt <= ntok; nt++) {
                    const size_t r0 = (t0 * 7 + nt) % 13, nr = nrows - r0 - (nt % 3);
                    std::vector<float> y(nt * nr);
                    kt.gemm[i](n, m.w.data() + r0 * m.w_row, m.w_row, nr, m.a.data() + t0 * m.a_row, m.a_row, nt, y.data(),
                               nr);
                    for (size_t tk = 0; tk < nt; tk++)
                        for (size_t r = 0; r < nr; r++)
                            if (bits(y[tk * nr + r]) != bits(full[(t0 + tk) * nrows + r0 + r]))
                                fail_msg("%s %s gemm sub-batch t0=%zu nt=%zu r0=%zu: [t=%zu r=%zu] %.9g vs %.9g", l, type_name(t), t0, nt, r0, t0 + tk, r0 + r, y[tk * nr + r],
                                         full[(t0 + tk) * nrows + r0 + r]);
                    std::vector<float> yv(nr);
                    kt.gemv[i](n, m.w.data() + r0 * m.w_row, m.w_row, nr, m.a.data() + t0 * m.a_row, yv.data());
                    for (size_t r = 0; r < nr; r++)
                        if (bits(yv[r]) != bits(full[t0 * nrows + r0 + r]))
                            fail_msg("%s %s gemv window r0=%zu: [t=%zu r=%zu] %.9g vs %.9g", l, type_name(t),
                                     r0, t0, r0 + r, yv[r], full[t0 * nrows + r0 + r]);
                }
            }
        }
    }
}

// ---- the order itself, written out independently for Q8_0, Q4_1, Q5_0, Q5_1 ----

// Element e's 5-bit quant: low nibble of qs[e] (e < 16) or high of qs[e - 16],
// plus bit e of qh read as a little-endian uint32.
int q5_of(const uint8_t* qh4, const uint8_t* qs, int e) {
    const uint32_t qh = (uint32_t)qh4[0] | (uint32_t)qh4[1] << 8 | (uint32_t)qh4[2] << 16 | (uint32_t)qh4[3] << 24;
    return (e < 16 ? qs[e] & 15 : qs[e - 16] >> 4) | (int)((qh >> e) & 1) << 4;
}

// 8 lanes of 4 products per block; acc_i = fma(d_w * d_a, lane_i, acc_i);
// ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)); Q4_1 then adds its fma chain of m * s.
float spec_dot(TensorType t, size_t n, const uint8_t* w, const uint8_t* a) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0}, summs = 0.0f;
    for (size_t b = 0; b < n / 32; b++) {
        int32_t lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        float dw, da;
        if (t == TensorType::Q8_0) {
            const auto* wb = (const quant::BlockQ8_0*)w + b;
            const auto* ab = (const quant::BlockQ8_0*)a + b;
            for (int e = 0; e < 32; e++) lanes[e / 4] += wb->qs[e] * ab->qs[e];
            dw = f16_to_f32(wb->d);
            da = f16_to_f32(ab->d);
        } else if (t == TensorType::Q5_0) {
            const auto* wb = (const quant::BlockQ5_0*)w + b;
            const auto* ab = (const quant::BlockQ8_0*)a + b;
            for (int e = 0; e < 32; e++) lanes[e / 4] += (q5_of(wb->qh, wb->qs, e) - 16) * ab->qs[e];
            dw = f16_to_f32(wb->d);
            da = f16_to_f32(ab->d);
        } else if (t == TensorType::Q5_1) {
            const auto* wb = (const quant::BlockQ5_1*)w + b;
            const auto* ab = (const quant::BlockQ8_1*)a + b;
            for (int e = 0; e < 32; e++) lanes[e / 4] += q5_of(wb->qh, wb->qs, e) * ab->qs[e];
            dw = f16_to_f32(wb->d);
            da = f16_to_f32(ab->d);
            summs = std::fma(f16_to_f32(wb->m), f16_to_f32(ab->s), summs);
        } else {
            const auto* wb = (const quant::BlockQ4_1*)w + b;
            const auto* ab = (const quant::BlockQ8_1*)a + b;
            for (int e = 0; e < 16; e++) {
                lanes[e / 4] += (wb->qs[e] & 15) * ab->qs[e];
                lanes[4 + e / 4] += (wb->qs[e] >> 4) * ab->qs[16 + e];
            }
            dw = f16_to_f32(wb->d);
            da = f16_to_f32(ab->d);
            summs = std::fma(f16_to_f32(wb->m), f16_to_f32(ab->s), summs);
        }
        const float d = dw * da;
        for (int i = 0; i < 8; i++) acc[i] = std::fma(d, (float)lanes[i], acc[i]);
    }
    const float s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    return t == TensorType::Q4_1 || t == TensorType::Q5_1 ? s + summs : s;
}

void test_documented_order(void** state) {
    (void)state;
    size_t differs_from_ref = 0, total = 0;
    for (TensorType t : {TensorType::Q8_0, TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1}) {
        for (size_t n : {(size_t)64, (size_t)576, (size_t)1536}) {
            const Matrix m = make_matrix(t, n, 24, 3, 99 + (uint32_t)n);
            const std::vector<float> got = by_vec_dot(kernels(), m);
            for (size_t tk = 0; tk < m.ntok; tk++) {
                for (size_t r = 0; r < m.nrows; r++) {
                    const uint8_t* w = m.w.data() + r * m.w_row;
                    const uint8_t* a = m.a.data() + tk * m.a_row;
                    const float want = spec_dot(t, n, w, a);
                    if (bits(want) != bits(got[tk * m.nrows + r]))
                        fail_msg("%s %s n=%zu [t=%zu r=%zu]: %.9g, the documented order gives %.9g", isa_name(active_isa()),
                                 type_name(t), n, tk, r, got[tk * m.nrows + r], want);
                    // The plain block-by-block order of the quant reference.
                    differs_from_ref += bits(want) != bits(quant::vec_dot_ref(t, n, w, a));
                    total++;
                }
            }
        }
    }
    printf("documented order differs from the plain block order in %zu of %zu dot products\n", differs_from_ref, total);
    // Otherwise these cases could not tell one summation order from another.
    assert_true(differs_from_ref * 4 > total);
}

// ---- F32 and F16 weights at AVX-512: llama.cpp's orders ----

// _mm512_reduce_add_ps: lanes i + 8, then i + 4, then (0 + 2) + (1 + 3).
float reduce16(const float* v) {
    float s8[8], s4[4];
    for (int i = 0; i < 8; i++) s8[i] = v[i] + v[i + 8];
    for (int i = 0; i < 4; i++) s4[i] = s8[i] + s8[i + 4];
    return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

// n % 16 == 0: tinyBLAS's (one 16-lane fma accumulator); otherwise
// ggml_vec_dot_f32/f16's: four 16-lane accumulators over steps of 64, added
// (0 + 2) + (1 + 3), reduced, then the last n % 64 products one at a time
// (F16: in double; F32: in float, product rounded before the add).
float spec_float_dot(bool f16, size_t n, const float* w, const float* a) {
    if (n % 16 == 0) {
        float acc[16] = {};
        for (size_t i = 0; i < n; i++) acc[i % 16] = std::fma(w[i], a[i], acc[i % 16]);
        return reduce16(acc);
    }
    float acc[4][16] = {};
    const size_t np = n - n % 64;
    for (size_t i = 0; i < np; i++) acc[(i % 64) / 16][i % 16] = std::fma(w[i], a[i], acc[(i % 64) / 16][i % 16]);
    float lanes[16];
    for (int l = 0; l < 16; l++) lanes[l] = (acc[0][l] + acc[2][l]) + (acc[1][l] + acc[3][l]);
    const float head = reduce16(lanes);
    if (f16) {
        double s = head;
        for (size_t i = np; i < n; i++) s += (double)(w[i] * a[i]);
        return (float)s;
    }
    float s = head;
    for (size_t i = np; i < n; i++) {
        volatile float p = w[i] * a[i];
        s += p;
    }
    return s;
}

void test_float_llama_order(void** state) {
    (void)state;
    if ((int)best_isa() < (int)IsaLevel::Avx512) {
        printf("SKIP: no AVX-512 on this CPU (the orders checked are its kernels')\n");
        skip();
    }
    const KernelTable& kt = kernels_for(IsaLevel::Avx512);
    size_t differs_from_tiled = 0, total_untiled = 0;
    for (TensorType t : {TensorType::F32, TensorType::F16}) {
        const bool f16 = t == TensorType::F16;
        for (size_t n : {(size_t)7, (size_t)40, (size_t)100, (size_t)172, (size_t)200, (size_t)16, (size_t)64,
                         (size_t)176}) {
            const size_t nrows = 9, ntok = 6;
            Matrix m;
            m.type = m.act_type = t;
            m.n = n, m.nrows = nrows, m.ntok = ntok;
            m.w_row = row_bytes_of(t, n), m.a_row = row_bytes_of(t, n);
            m.w.resize(m.w_row * nrows);
            m.a.resize(m.a_row * ntok);
            std::mt19937 rng(7 + (uint32_t)n + 1000 * f16);
            std::normal_distribution<float> dist(0.0f, 1.0f);
            std::vector<float> wf(n * nrows), af(n * ntok), x(n);
            for (size_t r = 0; r < nrows; r++) {
                for (float& v : x) v = 0.05f * dist(rng);
                quant::quantize_row(t, x.data(), m.w.data() + r * m.w_row, n);
                quant::dequantize_row(t, m.w.data() + r * m.w_row, wf.data() + r * n, n);
            }
            for (size_t tk = 0; tk < ntok; tk++) {
                for (size_t i = 0; i < n; i++) x[i] = dist(rng) * (i % 61 == 0 ? 8.0f : 1.0f);
                kt.quantize_act[(uint32_t)t](x.data(), m.a.data() + tk * m.a_row, n);
                quant::dequantize_row(t, m.a.data() + tk * m.a_row, af.data() + tk * n, n);
            }
            std::vector<float> want(ntok * nrows);
            for (size_t tk = 0; tk < ntok; tk++)
                for (size_t r = 0; r < nrows; r++) {
                    const float* w = wf.data() + r * n;
                    const float* a = af.data() + tk * n;
                    want[tk * nrows + r] = spec_float_dot(f16, n, w, a);
                    if (n % 16 != 0) {
                        float acc[16] = {};
                        for (size_t i = 0; i < n; i++) acc[i % 16] = std::fma(w[i], a[i], acc[i % 16]);
                        differs_from_tiled += bits(reduce16(acc)) != bits(want[tk * nrows + r]);
                        total_untiled++;
                    }
                }
            expect_same_bits(want, by_vec_dot(kt, m), m, "vec_dot", "avx512");
            expect_same_bits(want, by_gemv(kt, m), m, "gemv", "avx512");
            expect_same_bits(want, by_gemm(kt, m), m, "gemm", "avx512");
        }
    }
    printf("ggml_vec_dot's order differs from the tiled one in %zu of %zu dot products\n", differs_from_tiled,
           total_untiled);
    assert_true(differs_from_tiled * 4 > total_untiled);
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels_bit_identical),
        cmocka_unit_test(test_batch_invariance),
        cmocka_unit_test(test_documented_order),
        cmocka_unit_test(test_float_llama_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
