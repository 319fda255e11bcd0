// The block decoding the CUDA kernels share with the host (kernels/cuda/
// block_decode.h), run on the CPU: every supported weight type, decoded chunk
// by chunk, must equal src/quant's reference dequantization exactly, and the
// Q8_0 block quantizer (for a Q8_0 KV cache) must equal quant::quantize_row.
// Runs everywhere, with or without CUDA.
#include "base/half.h"
#include "kernels/cuda/block_decode.h"
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

using mw::gguf::TensorType;

namespace {

std::vector<float> random_row(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> dist(0.0f, 1.0f);
    std::vector<float> x(n);
    for (float& v : x) v = dist(rng);
    for (size_t i = 0; i < n; i += 53) x[i] *= 5.0f;
    return x;
}

const TensorType kTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
                             TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q4_K,
                             TensorType::Q5_K, TensorType::Q6_K};

void test_decode8_matches_reference(void** state) {
    (void)state;
    const size_t n = 768;  // three K-quant super-blocks, 24 chunks
    for (TensorType t : kTypes) {
        const std::vector<float> x = random_row(n, 7 + (uint32_t)t);
        const uint64_t rb = mw::cudak::row_bytes((uint32_t)t, (int64_t)n);
        assert_true(rb > 0);
        std::vector<uint8_t> q(rb);
        mw::quant::quantize_row(t, x.data(), q.data(), n);
        std::vector<float> want(n), got(n);
        mw::quant::dequantize_row(t, q.data(), want.data(), n);
        for (size_t c = 0; c < n / 32; c++)
            for (int j = 0; j < 4; j++) mw::cudak::decode8((uint32_t)t, q.data(), (int64_t)c, j, &got[c * 32 + 8 * j]);
        for (size_t i = 0; i < n; i++) {
            if (std::memcmp(&want[i], &got[i], 4) != 0) {
                fprintf(stderr, "type %u element %zu: reference %.9g, decode8 %.9g\n", (unsigned)t, i, (double)want[i],
                        (double)got[i]);
                fail();
            }
        }
    }
}

void test_half_conversions_exact(void** state) {
    (void)state;
    // Every half value decodes as base/half.h does; round trips back are exact.
    for (uint32_t h = 0; h < 65536; h++) {
        const float a = mw::f16_to_f32((uint16_t)h), b = mw::cudak::half_to_float((uint16_t)h);
        if (std::isnan(a)) {
            assert_true(std::isnan(b));
            continue;
        }
        assert_memory_equal(&a, &b, 4);
        assert_int_equal(mw::cudak::float_to_half(b), h);
    }
    // Float to half rounds as base/half.h does, on random and boundary values.
    std::mt19937 rng(3);
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = rng();
        float f;
        std::memcpy(&f, &bits, 4);
        if (std::isnan(f)) continue;
        assert_int_equal(mw::cudak::float_to_half(f), mw::f32_to_f16(f));
    }
}

void test_q8_0_block_quantizer(void** state) {
    (void)state;
    std::vector<float> x = random_row(32 * 40, 11);
    for (int k = 0; k < 32; k++) x[32 + k] = 0.0f;                      // an all-zero block
    for (int k = 0; k < 32; k++) x[64 + k] = (float)(k - 16) * 0.5f;    // exact halves after scaling
    std::vector<uint8_t> want(34 * 40), got(34 * 40);
    mw::quant::quantize_row(TensorType::Q8_0, x.data(), want.data(), x.size());
    for (int b = 0; b < 40; b++) mw::cudak::quantize_q8_0_block(&x[32 * (size_t)b], &got[34 * (size_t)b]);
    assert_memory_equal(want.data(), got.data(), want.size());
}

void test_row_bytes_unsupported(void** state) {
    (void)state;
    assert_int_equal(mw::cudak::row_bytes(9 /* Q8_1 */, 64), 0);
    assert_int_equal(mw::cudak::row_bytes(mw::cudak::kQ6_K, 512), 420);
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode8_matches_reference),
        cmocka_unit_test(test_half_conversions_exact),
        cmocka_unit_test(test_q8_0_block_quantizer),
        cmocka_unit_test(test_row_bytes_unsupported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
