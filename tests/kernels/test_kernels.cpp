// Every kernel table the CPU can run (scalar, AVX2, AVX-512) against the quant
// reference: activation converters bit for bit, vec_dot / gemv / gemm within
// float-summation tolerance, over widths and row/token counts that exercise
// tile remainders. Also the ISA dispatch and the MEMWISE_ISA override.
// (test_kernels_exact.cpp checks the quantized types bit for bit across levels.)
//
// Run as `test_kernels --expect-active NAME` it only checks that active_isa()
// is NAME, or best_isa() for "best" (CTest runs it that way with MEMWISE_ISA set).
#include "base/error.h"
#include "base/half.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/kernels.h"
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

const TensorType kTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
                             TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q4_K,
                             TensorType::Q5_K, TensorType::Q6_K};

const char* type_name(TensorType t) { return gguf::tensor_type_info((uint32_t)t)->name; }

size_t row_bytes_of(TensorType t, size_t n) { return gguf::row_bytes(*gguf::tensor_type_info((uint32_t)t), n); }

std::vector<IsaLevel> levels_here() {
    std::vector<IsaLevel> v;
    for (int l = 0; l <= (int)best_isa(); l++) v.push_back((IsaLevel)l);
    return v;
}

// Widths: the default model's 576 and 1536, a K-quant multiple (256, 768), and for
// the float types widths that leave SIMD tails.
std::vector<size_t> widths_for(TensorType t) {
    const uint32_t block = gguf::tensor_type_info((uint32_t)t)->block_elems;
    if (block == 256) return {256, 768, 1536};
    if (block == 32) return {32, 256, 576, 1536};
    return {7, 33, 256, 576, 1536};
}

std::vector<float> random_floats(size_t n, std::mt19937& rng, float scale) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> x(n);
    for (float& v : x) v = dist(rng);
    for (size_t i = 0; i < n; i += 61) x[i] *= 5.0f;
    return x;
}

struct Case {
    TensorType type, act_type;
    size_t n, nrows, ntok, w_row, a_row;
    std::vector<uint8_t> w, a;                 // quantized weights (nrows rows), activations (ntok rows)
    std::vector<float> ref, mag;               // vec_dot_ref per (t, r), and sum |w_i a_i| for the tolerance
};

// Weights quantized by the reference quantizer; activations by the table under test
// (which must equal the scalar converter, checked separately).
Case make_case(const KernelTable& kt, TensorType type, size_t n, size_t nrows, size_t ntok, uint32_t seed) {
    Case c;
    c.type = type;
    c.act_type = quant::vec_dot_type(type);
    c.n = n;
    c.nrows = nrows;
    c.ntok = ntok;
    c.w_row = row_bytes_of(type, n);
    c.a_row = row_bytes_of(c.act_type, n);
    std::mt19937 rng(seed);
    c.w.resize(c.w_row * nrows);
    c.a.resize(c.a_row * ntok);
    for (size_t r = 0; r < nrows; r++) {
        const std::vector<float> x = random_floats(n, rng, 0.05f);
        quant::quantize_row(type, x.data(), c.w.data() + r * c.w_row, n);
    }
    for (size_t t = 0; t < ntok; t++) {
        const std::vector<float> x = random_floats(n, rng, 1.0f);
        kt.quantize_act[(uint32_t)c.act_type](x.data(), c.a.data() + t * c.a_row, n);
    }
    std::vector<float> dw(n), da(n);
    c.ref.resize(nrows * ntok);
    c.mag.resize(nrows * ntok);
    for (size_t t = 0; t < ntok; t++) {
        quant::dequantize_row(c.act_type, c.a.data() + t * c.a_row, da.data(), n);
        for (size_t r = 0; r < nrows; r++) {
            quant::dequantize_row(type, c.w.data() + r * c.w_row, dw.data(), n);
            double m = 0;
            for (size_t i = 0; i < n; i++) m += std::fabs((double)dw[i] * da[i]);
            c.ref[t * nrows + r] = quant::vec_dot_ref(type, n, c.w.data() + r * c.w_row, c.a.data() + t * c.a_row);
            c.mag[t * nrows + r] = (float)m;
        }
    }
    return c;
}

// Float summation order differs between kernels; integer parts are exact, so a
// relative 2e-5 of sum |w_i a_i| is ample and any indexing bug is far outside it.
void check_close(const Case& c, size_t t, size_t r, float got, const char* what, IsaLevel level) {
    const float want = c.ref[t * c.nrows + r];
    const float tol = 2e-5f * c.mag[t * c.nrows + r] + 1e-30f;
    if (!(std::fabs(got - want) <= tol))
        fail_msg("%s %s %s n=%zu rows=%zu toks=%zu: [t=%zu r=%zu] got %.9g want %.9g (tol %.3g)", isa_name(level),
                 type_name(c.type), what, c.n, c.nrows, c.ntok, t, r, got, want, tol);
}

// ---- dispatch ----

void test_dispatch(void** state) {
    (void)state;
    const CpuFeatures& f = cpu_features();
    printf("cpu: avx2=%d fma=%d f16c=%d avx512f=%d bw=%d vl=%d vnni=%d bf16=%d -> best %s, active %s\n", f.avx2, f.fma,
           f.f16c, f.avx512f, f.avx512bw, f.avx512vl, f.avx512vnni, f.avx512bf16, isa_name(best_isa()),
           isa_name(active_isa()));
    if (f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni && f.avx2 && f.fma && f.f16c)
        assert_int_equal((int)best_isa(), (int)IsaLevel::Avx512);
    else if (f.avx2 && f.fma && f.f16c)
        assert_int_equal((int)best_isa(), (int)IsaLevel::Avx2);
    const char* env = getenv("MEMWISE_ISA");
    if (!env || !*env) assert_int_equal((int)active_isa(), (int)best_isa());
    assert_ptr_equal(&kernels(), &kernels_for(active_isa()));
    for (IsaLevel l : levels_here()) {
        const KernelTable& kt = kernels_for(l);
        assert_int_equal((int)kt.level, (int)l);
        for (TensorType t : kTypes) {
            const uint32_t i = (uint32_t)t;
            assert_non_null(kt.vec_dot[i]);
            assert_non_null(kt.gemv[i]);
            assert_non_null(kt.gemm[i]);
            // A weight type's converter slot and its activation type's slot agree.
            assert_ptr_equal((void*)kt.quantize_act[i], (void*)kt.quantize_act[(uint32_t)quant::vec_dot_type(t)]);
        }
    }
    if ((int)best_isa() < (int)IsaLevel::Avx512) {
        try {
            (void)kernels_for(IsaLevel::Avx512);
            fail_msg("kernels_for(avx512) accepted on a CPU without it");
        } catch (const Error& e) {
            assert_int_equal(e.status(), MW_ERR_UNSUPPORTED);
        }
    }
}

// ---- activation converters ----

// Every table's converters produce exactly the scalar reference's bytes (these
// match llama.cpp's x86 quantizers, which the golden outputs depend on).
void test_quantize_act_bit_exact(void** state) {
    (void)state;
    const KernelTable& ref = kernels_for(IsaLevel::Scalar);
    const TensorType acts[] = {TensorType::F32, TensorType::F16, TensorType::BF16,
                               TensorType::Q8_0, TensorType::Q8_1, TensorType::Q8_K};
    std::mt19937 rng(3);
    for (IsaLevel l : levels_here()) {
        const KernelTable& kt = kernels_for(l);
        for (TensorType at : acts) {
            const uint32_t block = gguf::tensor_type_info((uint32_t)at)->block_elems;
            for (size_t n : {(size_t)256, (size_t)768, (size_t)1536, (size_t)(block == 1 ? 37 : 256)}) {
                std::vector<float> x = random_floats(n, rng, 2.0f);
                // Ties for round-half-even, exact zeros, a zero block.
                for (size_t i = 0; i < 8 && i < n; i++) x[i] = 0.0f;
                if (n >= 64) for (size_t i = 32; i < 64; i++) x[i] = 0.0f;
                if (n >= 100) { x[70] = 127.0f; x[71] = 0.5f; x[72] = -1.5f; x[73] = 2.5f; }
                // A block whose largest magnitude is subnormal: 127 / amax overflows to inf.
                if (n >= 256) for (size_t i = 224; i < 256; i++) x[i] = (i % 3 ? 1e-40f : -3e-39f);
                std::vector<uint8_t> a(row_bytes_of(at, n)), b(row_bytes_of(at, n));
                ref.quantize_act[(uint32_t)at](x.data(), a.data(), n);
                kt.quantize_act[(uint32_t)at](x.data(), b.data(), n);
                if (std::memcmp(a.data(), b.data(), a.size()) != 0)
                    fail_msg("%s quantize_act %s n=%zu differs from the scalar converter", isa_name(l), type_name(at), n);
            }
        }
    }
}

// The scalar Q8_0/Q8_1 converters follow llama.cpp's x86 rule: d = amax/127, q =
// round-half-even(x * 127/amax), s = d * sum(q).
void test_quantize_act_q8_rule(void** state) {
    (void)state;
    const KernelTable& kt = kernels_for(IsaLevel::Scalar);
    float x[32];
    for (int j = 0; j < 32; j++) x[j] = (float)(j - 16) * 0.25f;  // amax 4 at j=0
    x[5] = 4.0f * 2.5f / 127.0f;                                     // x * 127/amax = 2.5 exactly -> 2 (half to even)
    quant::BlockQ8_0 q0;
    quant::BlockQ8_1 q1;
    kt.quantize_act[(uint32_t)TensorType::Q8_0](x, &q0, 32);
    kt.quantize_act[(uint32_t)TensorType::Q8_1](x, &q1, 32);
    assert_true(f16_to_f32(q0.d) == f16_to_f32(f32_to_f16(4.0f / 127.0f)));
    assert_int_equal(q0.qs[0], -127);
    assert_int_equal(q0.qs[5], 2);
    int sum = 0;
    for (int j = 0; j < 32; j++) {
        assert_int_equal(q0.qs[j], q1.qs[j]);
        assert_int_equal(q0.qs[j], (int)std::nearbyint(x[j] * (127.0f / 4.0f)));
        sum += q1.qs[j];
    }
    assert_int_equal(q1.s, f32_to_f16(4.0f / 127.0f * (float)sum));
}

// ---- products ----

void test_vec_dot_and_gemv(void** state) {
    (void)state;
    const size_t row_counts[] = {1, 3, 4, 7, 17};
    uint32_t seed = 100;
    for (IsaLevel l : levels_here()) {
        const KernelTable& kt = kernels_for(l);
        for (TensorType t : kTypes) {
            for (size_t n : widths_for(t)) {
                for (size_t nrows : row_counts) {
                    const Case c = make_case(kt, t, n, nrows, 1, seed++);
                    const uint32_t i = (uint32_t)t;
                    for (size_t r = 0; r < nrows; r++)
                        check_close(c, 0, r, kt.vec_dot[i](n, c.w.data() + r * c.w_row, c.a.data()), "vec_dot", l);
                    // Output guard: gemv writes exactly nrows values.
                    std::vector<float> y(nrows + 1, -7.0f);
                    kt.gemv[i](n, c.w.data(), c.w_row, nrows, c.a.data(), y.data());
                    for (size_t r = 0; r < nrows; r++) check_close(c, 0, r, y[r], "gemv", l);
                    assert_true(y[nrows] == -7.0f);
                }
            }
        }
    }
}

void test_gemm(void** state) {
    (void)state;
    const size_t shapes[][2] = {{1, 1}, {3, 2}, {4, 4}, {7, 3}, {17, 7}, {5, 17}, {9, 8}};
    uint32_t seed = 1000;
    for (IsaLevel l : levels_here()) {
        const KernelTable& kt = kernels_for(l);
        for (TensorType t : kTypes) {
            for (size_t n : widths_for(t)) {
                for (const auto& s : shapes) {
                    const size_t nrows = s[0], ntok = s[1];
                    const Case c = make_case(kt, t, n, nrows, ntok, seed++);
                    // y is [ntok][y_stride] with y_stride > nrows; the gap must stay untouched.
                    const size_t y_stride = nrows + 3;
                    std::vector<float> y(ntok * y_stride, -7.0f);
                    kt.gemm[(uint32_t)t](n, c.w.data(), c.w_row, nrows, c.a.data(), c.a_row, ntok, y.data(), y_stride);
                    for (size_t tk = 0; tk < ntok; tk++) {
                        for (size_t r = 0; r < nrows; r++) check_close(c, tk, r, y[tk * y_stride + r], "gemm", l);
                        for (size_t r = nrows; r < y_stride; r++) assert_true(y[tk * y_stride + r] == -7.0f);
                    }
                }
            }
        }
    }
}

// Rows at a stride wider than the row (a row inside a wider tensor) and buffers
// that are not 64-byte aligned (only the 4-byte alignment GGUF rows always have).
void test_strided_unaligned(void** state) {
    (void)state;
    for (IsaLevel l : levels_here()) {
        const KernelTable& kt = kernels_for(l);
        for (TensorType t : kTypes) {
            const size_t n = t == TensorType::Q4_K || t == TensorType::Q5_K || t == TensorType::Q6_K ? 512 : 576;
            const Case c = make_case(kt, t, n, 9, 5, 77);
            const size_t stride = c.w_row + 4, astride = c.a_row + 4;
            std::vector<uint32_t> wbuf((stride * 9 + 8) / 4 + 1), abuf((astride * 5 + 8) / 4 + 1);
            uint8_t* w = (uint8_t*)wbuf.data() + 4;
            uint8_t* a = (uint8_t*)abuf.data() + 4;
            for (size_t r = 0; r < 9; r++) std::memcpy(w + r * stride, c.w.data() + r * c.w_row, c.w_row);
            for (size_t tk = 0; tk < 5; tk++) std::memcpy(a + tk * astride, c.a.data() + tk * c.a_row, c.a_row);
            std::vector<float> y(9), yy(5 * 9);
            kt.gemv[(uint32_t)t](n, w, stride, 9, a, y.data());
            for (size_t r = 0; r < 9; r++) check_close(c, 0, r, y[r], "gemv strided", l);
            kt.gemm[(uint32_t)t](n, w, stride, 9, a, astride, 5, yy.data(), 9);
            for (size_t tk = 0; tk < 5; tk++)
                for (size_t r = 0; r < 9; r++) check_close(c, tk, r, yy[tk * 9 + r], "gemm strided", l);
        }
    }
}

// More rows than a gemm row block (64) and rows wider than the AVX-512 kernels'
// activation chunk (4096 elements), so blocked loops and partial sums are exercised.
void test_large_shapes(void** state) {
    (void)state;
    for (IsaLevel l : levels_here()) {
        const KernelTable& kt = kernels_for(l);
        for (TensorType t : kTypes) {
            const size_t n = gguf::tensor_type_info((uint32_t)t)->block_elems == 256 ? 4864 : 4672;
            const size_t nrows = 130, ntok = 9;
            const Case c = make_case(kt, t, n, nrows, ntok, 555);
            std::vector<float> y(ntok * nrows);
            kt.gemm[(uint32_t)t](n, c.w.data(), c.w_row, nrows, c.a.data(), c.a_row, ntok, y.data(), nrows);
            for (size_t tk = 0; tk < ntok; tk++)
                for (size_t r = 0; r < nrows; r++) check_close(c, tk, r, y[tk * nrows + r], "gemm large", l);
            kt.gemv[(uint32_t)t](n, c.w.data(), c.w_row, nrows, c.a.data() + 2 * c.a_row, y.data());
            for (size_t r = 0; r < nrows; r++) check_close(c, 2, r, y[r], "gemv large", l);
        }
    }
}

void test_print_coverage(void** state) {
    (void)state;
    std::string s;
    for (IsaLevel l : levels_here()) s += std::string(" ") + isa_name(l);
    printf("covered ISA levels:%s (best on this CPU: %s)\n", s.c_str(), isa_name(best_isa()));
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 3 && std::strcmp(argv[1], "--expect-active") == 0) {
        printf("MEMWISE_ISA=%s -> active %s (best %s)\n", getenv("MEMWISE_ISA") ? getenv("MEMWISE_ISA") : "",
               isa_name(active_isa()), isa_name(best_isa()));
        const char* want = std::strcmp(argv[2], "best") == 0 ? isa_name(best_isa()) : argv[2];
        const bool ok = std::strcmp(isa_name(active_isa()), want) == 0 && &kernels() == &kernels_for(active_isa());
        return ok ? 0 : 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_quantize_act_bit_exact),
        cmocka_unit_test(test_quantize_act_q8_rule),
        cmocka_unit_test(test_vec_dot_and_gemv),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_strided_unaligned),
        cmocka_unit_test(test_large_shapes),
        cmocka_unit_test(test_print_coverage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
