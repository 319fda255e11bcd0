// Attention and element-wise row ops (ops.h, attention.h):
//  - the AVX2 versions give the same bits as the scalar references (both
//    follow llama.cpp's summation orders; the teacher-forced model test checks
//    those orders against llama.cpp itself);
//  - ggml's expf is within a few ulp of exp, flushes to 0 far below;
//  - silu_mul takes the C library's expf for the last n % 16 elements;
//  - attention_head agrees with a double-precision softmax attention, for
//    both kernel orders (batched / single token) and both cache types.
#include "base/half.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/ops.h"

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
using namespace mw::cpu;

namespace {

std::vector<float> randoms(size_t n, float lo, float hi, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

std::vector<uint16_t> to_f16(const std::vector<float>& v) {
    std::vector<uint16_t> h(v.size());
    for (size_t i = 0; i < v.size(); i++) h[i] = f32_to_f16(v[i]);
    return h;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

const int kLengths[] = {1, 5, 15, 16, 17, 63, 64, 65, 100, 128, 130, 1000};

void test_avx2_matches_scalar(void**) {
    const AttentionRowOps* avx2 = attention_row_ops_avx2();
    const VectorOps* vavx2 = vector_ops_avx2();
    if (best_isa() < IsaLevel::Avx2 || !avx2 || !vavx2) {
        std::printf("SKIP: no AVX2 on this CPU\n");
        skip();
    }
    const AttentionRowOps& ref = attention_row_ops_scalar();
    const VectorOps& vref = vector_ops_scalar();
    for (int n : kLengths) {
        const std::vector<float> q = randoms((size_t)n, -2, 2, 1u + n), kf = randoms((size_t)n, -2, 2, 2u + n);
        const std::vector<uint16_t> kh = to_f16(kf);
        if (n % 16 == 0) {
            const float a = ref.dot_tiled_f16(q.data(), kh.data(), n), b = avx2->dot_tiled_f16(q.data(), kh.data(), n);
            assert_true(same_bits(&a, &b, 1));
        }
        float a = ref.dot_lanes64_f16(q.data(), kh.data(), n), b = avx2->dot_lanes64_f16(q.data(), kh.data(), n);
        assert_true(same_bits(&a, &b, 1));
        a = ref.dot_lanes64_f32(q.data(), kf.data(), n), b = avx2->dot_lanes64_f32(q.data(), kf.data(), n);
        assert_true(same_bits(&a, &b, 1));

        std::vector<float> y1 = randoms((size_t)n, -1, 1, 3u + n), y2 = y1;
        ref.axpy_f16(y1.data(), 0.3f, kh.data(), n);
        avx2->axpy_f16(y2.data(), 0.3f, kh.data(), n);
        assert_true(same_bits(y1.data(), y2.data(), (size_t)n));
        ref.axpy_f32(y1.data(), -0.7f, kf.data(), n);
        avx2->axpy_f32(y2.data(), -0.7f, kf.data(), n);
        assert_true(same_bits(y1.data(), y2.data(), (size_t)n));

        // axpy into lane rows: every lane count the attention uses, positions
        // fewer than, equal to and more than the lanes.
        for (int lanes : {16, 64}) {
            for (int n_pos : {1, 15, 64, 67, 300}) {
                const std::vector<float> w = randoms((size_t)n_pos, -1, 1, 6u + n + n_pos);
                std::vector<std::vector<float>> vf((size_t)n_pos);
                std::vector<std::vector<uint16_t>> vh((size_t)n_pos);
                std::vector<const void*> rows_f((size_t)n_pos), rows_h((size_t)n_pos);
                for (int p = 0; p < n_pos; p++) {
                    vf[(size_t)p] = randoms((size_t)n, -3, 3, 100u * p + n);
                    vh[(size_t)p] = to_f16(vf[(size_t)p]);
                    rows_f[(size_t)p] = vf[(size_t)p].data();
                    rows_h[(size_t)p] = vh[(size_t)p].data();
                }
                std::vector<float> a1((size_t)lanes * n, 9.0f), a2((size_t)lanes * n, -9.0f);
                ref.axpy_lanes_f16(a1.data(), lanes, w.data(), rows_h.data(), n_pos, n);
                avx2->axpy_lanes_f16(a2.data(), lanes, w.data(), rows_h.data(), n_pos, n);
                assert_true(same_bits(a1.data(), a2.data(), a1.size()));
                // the reference is the per-position axpy it replaces
                std::vector<float> a3((size_t)lanes * n, 0.0f);
                for (int p = 0; p < n_pos; p++)
                    ref.axpy_f16(a3.data() + (size_t)(p % lanes) * n, w[(size_t)p], vh[(size_t)p].data(), n);
                assert_true(same_bits(a1.data(), a3.data(), a1.size()));
                ref.axpy_lanes_f32(a1.data(), lanes, w.data(), rows_f.data(), n_pos, n);
                avx2->axpy_lanes_f32(a2.data(), lanes, w.data(), rows_f.data(), n_pos, n);
                assert_true(same_bits(a1.data(), a2.data(), a1.size()));
            }
        }

        // Scores spanning the whole range exp is finite and subnormal in.
        std::vector<float> s1 = randoms((size_t)n, -110, 5, 4u + n), s2 = s1;
        const double sum1 = ref.exp_sum(s1.data(), n, 5.0f), sum2 = avx2->exp_sum(s2.data(), n, 5.0f);
        assert_true(sum1 == sum2);
        assert_true(same_bits(s1.data(), s2.data(), (size_t)n));
        for (bool round : {false, true}) {
            std::vector<float> x1 = s1, x2 = s1;
            ref.scale(x1.data(), n, 1.0f / 3, round);
            avx2->scale(x2.data(), n, 1.0f / 3, round);
            assert_true(same_bits(x1.data(), x2.data(), (size_t)n));
        }

        std::vector<float> g1 = randoms((size_t)n, -20, 20, 5u + n), g2 = g1;
        vref.silu_mul(g1.data(), q.data(), n);
        vavx2->silu_mul(g2.data(), q.data(), n);
        assert_true(same_bits(g1.data(), g2.data(), (size_t)n));
    }
    // rope, both pair layouts, a rotated prefix shorter than the head
    const std::vector<float> angles = randoms(32, -100, 100, 7);
    float cs[32], sn[32];
    for (int i = 0; i < 32; i++) cs[i] = std::cos(angles[i]), sn[i] = std::sin(angles[i]);
    for (bool neox : {false, true}) {
        std::vector<float> x1 = randoms(3 * 80, -3, 3, 8), x2 = x1;
        vref.rope(x1.data(), 3, 80, 64, cs, sn, neox);
        vavx2->rope(x2.data(), 3, 80, 64, cs, sn, neox);
        assert_true(same_bits(x1.data(), x2.data(), x1.size()));
    }
}

void test_expf_accuracy(void**) {
    const AttentionRowOps& ops = attention_row_ops();
    std::vector<float> x = randoms(4096, -87, 0, 11);
    x[0] = 0, x[1] = -1e-30f, x[2] = -0.5f, x[3] = -103.0f, x[4] = -200.0f, x[5] = -1e30f;
    std::vector<float> e = x;
    double want_sum = 0;
    ops.exp_sum(e.data(), (int)e.size(), 0.0f);
    for (size_t i = 0; i < x.size(); i++) {
        const double want = std::exp((double)x[i]);
        want_sum += want;
        if (x[i] < -88) {  // subnormal or zero: absolute error at the subnormal spacing
            assert_true(std::fabs(e[i] - want) <= 2e-45);
        } else {
            assert_true(std::fabs(e[i] - want) <= 4 * want * 0x1p-24);
        }
    }
    assert_true(e[4] == 0.0f && e[5] == 0.0f);
    assert_true(e[0] == 1.0f);
    // silu(x) * 1 against x / (1 + exp(-x))
    std::vector<float> g = randoms(1000, -30, 30, 12), ones(1000, 1.0f), s = g;
    silu_mul(s.data(), ones.data(), (int)s.size());
    for (size_t i = 0; i < g.size(); i++) {
        const double want = g[i] / (1.0 + std::exp(-(double)g[i]));
        assert_true(std::fabs(s[i] - want) <= 1e-6 * std::fabs(want) + 1e-30);
    }
}

// swiglu as llama.cpp's AVX-512 build: ggml's expf on whole 16-lane vectors,
// the C library's expf (ggml_silu_f32) on the last n % 16 elements.
void test_silu_mul_tail_uses_libm(void**) {
    size_t head_differs = 0;
    for (int n : {5, 16, 23, 172}) {
        const std::vector<float> g = randoms((size_t)n, -12, 12, 30u + n), u = randoms((size_t)n, -3, 3, 31u + n);
        std::vector<const VectorOps*> impls = {&vector_ops_scalar()};
        if (best_isa() >= IsaLevel::Avx2 && vector_ops_avx2()) impls.push_back(vector_ops_avx2());
        for (const VectorOps* ops : impls) {
            std::vector<float> y = g;
            ops->silu_mul(y.data(), u.data(), n);
            const int n16 = n - n % 16;
            for (int i = n16; i < n; i++) {
                const float want = g[(size_t)i] / (1.0f + std::exp(-g[(size_t)i])) * u[(size_t)i];
                assert_true(std::memcmp(&want, &y[(size_t)i], 4) == 0);
            }
            for (int i = 0; i < n16; i++) {
                const float libm = g[(size_t)i] / (1.0f + std::exp(-g[(size_t)i])) * u[(size_t)i];
                head_differs += std::memcmp(&libm, &y[(size_t)i], 4) != 0;
            }
        }
    }
    // The two expfs differ often enough that the split above is observable.
    printf("ggml's expf and libm's give different silu bits in %zu head elements\n", head_differs);
    assert_true(head_differs > 0);
}

void test_attention_head_vs_double(void**) {
    const int hd = 64;
    for (bool f16 : {true, false}) {
        for (bool batched : {true, false}) {
            for (int n_pos : {1, 2, 17, 300}) {
                const std::vector<float> q = randoms(hd, -1, 1, 21u + n_pos);
                std::vector<float> k = randoms((size_t)n_pos * hd, -1, 1, 22u + n_pos);
                std::vector<float> v = randoms((size_t)n_pos * hd, -1, 1, 23u + n_pos);
                if (f16)  // the cache holds F16 values: the reference sees the same ones
                    for (float* a : {k.data(), v.data()})
                        for (int i = 0; i < n_pos * hd; i++) a[i] = f16_to_f32(f32_to_f16(a[i]));
                const std::vector<uint16_t> kh = to_f16(k), vh = to_f16(v);
                std::vector<const void*> kr((size_t)n_pos), vr((size_t)n_pos);
                for (int p = 0; p < n_pos; p++) {
                    kr[(size_t)p] = f16 ? (const void*)&kh[(size_t)p * hd] : (const void*)&k[(size_t)p * hd];
                    vr[(size_t)p] = f16 ? (const void*)&vh[(size_t)p * hd] : (const void*)&v[(size_t)p * hd];
                }
                std::vector<float> scratch(attention_scratch_floats(hd, n_pos)), out(hd);
                const float scale = 1.0f / 8;
                attention_head(q.data(), hd, n_pos, kr.data(), vr.data(), f16, scale, batched, scratch.data(),
                               out.data());

                std::vector<double> w((size_t)n_pos);
                double mx = -1e300, sum = 0;
                for (int p = 0; p < n_pos; p++) {
                    double s = 0;
                    for (int i = 0; i < hd; i++) s += (double)q[(size_t)i] * k[(size_t)p * hd + i];
                    w[(size_t)p] = s * scale;
                    mx = std::max(mx, w[(size_t)p]);
                }
                for (double& x : w) sum += (x = std::exp(x - mx));
                // F16 rounding of q and of the weights: ~1e-3 relative
                const double tol = f16 ? 4e-3 : 1e-5;
                for (int c = 0; c < hd; c++) {
                    double want = 0;
                    for (int p = 0; p < n_pos; p++) want += w[(size_t)p] / sum * v[(size_t)p * hd + c];
                    assert_true(std::fabs(out[(size_t)c] - want) <= tol);
                }
            }
        }
    }
}

// A GQA group's heads at once (the prompt path with an F16 cache) give each
// head's attention_head result bit for bit, on the active ISA and on scalar.
void test_attention_group_matches_heads(void**) {
    for (int hd : {16, 64, 128}) {
        for (int g : {1, 3, 8}) {
            for (int n_pos : {1, 17, 300}) {
                const uint32_t seed = (uint32_t)(hd * 1000 + g * 100 + n_pos);
                const std::vector<float> q = randoms((size_t)g * hd, -2, 2, seed);
                std::vector<std::vector<uint16_t>> k((size_t)n_pos), v((size_t)n_pos);
                std::vector<const void*> kr((size_t)n_pos), vr((size_t)n_pos);
                for (int p = 0; p < n_pos; p++) {
                    k[(size_t)p] = to_f16(randoms((size_t)hd, -2, 2, seed + 7 * p + 1));
                    v[(size_t)p] = to_f16(randoms((size_t)hd, -2, 2, seed + 7 * p + 2));
                    kr[(size_t)p] = k[(size_t)p].data();
                    vr[(size_t)p] = v[(size_t)p].data();
                }
                const float scale = 1.0f / std::sqrt((float)hd);
                std::vector<float> scratch(attention_group_scratch_floats(hd, n_pos) +
                                           attention_scratch_floats(hd, n_pos));
                std::vector<float> want((size_t)g * hd), got((size_t)g * hd, -1.0f);
                for (int h = 0; h < g; h++)
                    attention_head(q.data() + (size_t)h * hd, hd, n_pos, kr.data(), vr.data(), true, scale, true,
                                   scratch.data(), want.data() + (size_t)h * hd);
                attention_group_f16(q.data(), g, hd, n_pos, kr.data(), vr.data(), scale, scratch.data(), got.data());
                assert_true(same_bits(want.data(), got.data(), want.size()));
            }
        }
    }
    // The grouped row ops against the scalar reference.
    const AttentionRowOps* avx2 = attention_row_ops_avx2();
    if (best_isa() < IsaLevel::Avx2 || !avx2) {
        std::printf("SKIP (grouped ops): no AVX2 on this CPU\n");
        return;
    }
    const AttentionRowOps& ref = attention_row_ops_scalar();
    for (int n : {16, 64, 80}) {
        const int g = 5, n_pos = 40, lanes = 16;
        const std::vector<float> q = randoms((size_t)g * n, -2, 2, 11u + n);
        const std::vector<uint16_t> kh = to_f16(randoms((size_t)n, -2, 2, 12u + n));
        float a[8], b[8];
        ref.dot_tiled_f16_heads(q.data(), g, kh.data(), n, a);
        avx2->dot_tiled_f16_heads(q.data(), g, kh.data(), n, b);
        assert_true(same_bits(a, b, (size_t)g));
        const std::vector<float> w = randoms((size_t)g * n_pos, -1, 1, 13u + n);
        std::vector<std::vector<uint16_t>> vh((size_t)n_pos);
        std::vector<const void*> rows((size_t)n_pos);
        for (int p = 0; p < n_pos; p++) {
            vh[(size_t)p] = to_f16(randoms((size_t)n, -3, 3, 14u + 31 * p + n));
            rows[(size_t)p] = vh[(size_t)p].data();
        }
        std::vector<float> a1((size_t)g * lanes * n, 5.0f), a2((size_t)g * lanes * n, -5.0f);
        ref.axpy_lanes_f16_heads(a1.data(), g, lanes, w.data(), (size_t)n_pos, rows.data(), n_pos, n);
        avx2->axpy_lanes_f16_heads(a2.data(), g, lanes, w.data(), (size_t)n_pos, rows.data(), n_pos, n);
        assert_true(same_bits(a1.data(), a2.data(), a1.size()));
    }
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_avx2_matches_scalar),
        cmocka_unit_test(test_expf_accuracy),
        cmocka_unit_test(test_silu_mul_tail_uses_libm),
        cmocka_unit_test(test_attention_head_vs_double),
        cmocka_unit_test(test_attention_group_matches_heads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
