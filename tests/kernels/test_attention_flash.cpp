// Flash-decoding attention (attention_flash.h): chunk partials merged in order
// against a double-precision softmax attention over the same stored K/V, for
// odd lengths (one chunk, exactly one, one more, many), GQA groups (one K/V
// slice serving 1, 3, 4 or 9 query heads, at a nonzero offset in the row, head
// sizes 64 and 80) and F32, F16 and Q8_0 rows. Tolerance: 2e-5 absolute with
// |v| <= 1 (float rounding over a few thousand positions; an off-by-one
// position or a wrong rescale is orders of magnitude larger).
#include "base/half.h"
#include "kernels/cpu/attention_flash.h"
#include "quant/block_formats.h"

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

constexpr double kTolerance = 2e-5;

// One cache row of kv_dim elements in a KV element type, and its values as stored.
struct Rows {
    std::vector<std::vector<uint8_t>> bytes;
    std::vector<std::vector<double>> values;
    std::vector<const void*> ptrs;
};

Rows make_rows(int n, int kv_dim, KvElem elem, std::mt19937& rng, float range) {
    std::uniform_real_distribution<float> d(-range, range);
    Rows r;
    for (int p = 0; p < n; p++) {
        std::vector<float> x((size_t)kv_dim);
        for (float& v : x) v = d(rng);
        std::vector<uint8_t> b;
        std::vector<double> val((size_t)kv_dim);
        if (elem == KvElem::F32) {
            b.resize((size_t)kv_dim * 4);
            std::memcpy(b.data(), x.data(), b.size());
            for (int i = 0; i < kv_dim; i++) val[(size_t)i] = x[(size_t)i];
        } else if (elem == KvElem::F16) {
            b.resize((size_t)kv_dim * 2);
            for (int i = 0; i < kv_dim; i++) {
                const uint16_t h = f32_to_f16(x[(size_t)i]);
                std::memcpy(b.data() + 2 * i, &h, 2);
                val[(size_t)i] = f16_to_f32(h);
            }
        } else {
            const int nb = kv_dim / quant::QK;
            b.resize((size_t)nb * sizeof(quant::BlockQ8_0));
            for (int k = 0; k < nb; k++) {
                float amax = 0;
                for (int j = 0; j < quant::QK; j++) amax = std::fmax(amax, std::fabs(x[(size_t)(k * quant::QK + j)]));
                const uint16_t dh = f32_to_f16(amax / 127.0f);
                const float dd = f16_to_f32(dh), id = dd != 0 ? 1.0f / dd : 0.0f;
                uint8_t* blk = b.data() + (size_t)k * sizeof(quant::BlockQ8_0);
                std::memcpy(blk, &dh, 2);
                for (int j = 0; j < quant::QK; j++) {
                    const int qv = (int)std::lround(x[(size_t)(k * quant::QK + j)] * id);
                    const int8_t q8 = (int8_t)(qv < -127 ? -127 : qv > 127 ? 127 : qv);
                    blk[2 + j] = (uint8_t)q8;
                    val[(size_t)(k * quant::QK + j)] = (double)dd * q8;
                }
            }
        }
        r.bytes.push_back(std::move(b));
        r.values.push_back(std::move(val));
    }
    for (auto& b : r.bytes) r.ptrs.push_back(b.data());
    return r;
}

// The flash result of n_heads heads: chunks computed in reverse order (as
// threads might), merged in order.
std::vector<float> flash(const std::vector<float>& q, int n_heads, int hd, int n, const Rows& k, const Rows& v,
                         int start, KvElem elem, float scale) {
    const int nc = flash_chunks(n);
    const size_t pf = flash_partial_floats(hd);
    std::vector<float> parts((size_t)n_heads * nc * pf, NAN), scratch(flash_scratch_floats(n_heads, hd));
    for (int c = nc - 1; c >= 0; c--) {
        const int p0 = c * kFlashChunk, len = n - p0 < kFlashChunk ? n - p0 : kFlashChunk;
        attention_chunk(q.data(), (size_t)hd, n_heads, hd, len, k.ptrs.data() + p0, v.ptrs.data() + p0, start, elem,
                        scale, scratch.data(), parts.data() + (size_t)c * pf, (size_t)nc * pf);
    }
    std::vector<float> out((size_t)n_heads * hd);
    for (int h = 0; h < n_heads; h++)
        attention_merge(hd, nc, parts.data() + (size_t)h * nc * pf, pf, out.data() + (size_t)h * hd);
    return out;
}

std::vector<double> reference(const std::vector<float>& q, int n_heads, int hd, int n, const Rows& k, const Rows& v,
                              int start, float scale) {
    std::vector<double> out((size_t)n_heads * hd, 0.0), s((size_t)n);
    for (int h = 0; h < n_heads; h++) {
        double mx = -INFINITY, sum = 0;
        for (int p = 0; p < n; p++) {
            double dot = 0;
            for (int i = 0; i < hd; i++) dot += (double)q[(size_t)(h * hd + i)] * k.values[(size_t)p][(size_t)(start + i)];
            s[(size_t)p] = dot * scale;
            mx = std::fmax(mx, s[(size_t)p]);
        }
        for (int p = 0; p < n; p++) sum += (s[(size_t)p] = std::exp(s[(size_t)p] - mx));
        for (int p = 0; p < n; p++)
            for (int i = 0; i < hd; i++)
                out[(size_t)(h * hd + i)] += s[(size_t)p] / sum * v.values[(size_t)p][(size_t)(start + i)];
    }
    return out;
}

void check(KvElem elem) {
    const int lengths[] = {1, 17, 255, 256, 257, 1000, 3001};
    const int head_dims[] = {64, 80};
    std::mt19937 rng(1234 + (int)elem);
    const int groups[] = {1, 3, 4, 9};  // the AVX2 loops tile 3, 6 and 8 heads
    for (int hd : head_dims) {
        for (int n : lengths) {
          for (int group : groups) {
            const int n_kv = 2, kv_dim = n_kv * hd, start = hd;  // the second KV head's slice
            // Keys large enough that the softmax is peaked somewhere and flat elsewhere.
            const Rows k = make_rows(n, kv_dim, elem, rng, 1.0f), v = make_rows(n, kv_dim, elem, rng, 1.0f);
            std::uniform_real_distribution<float> dq(-4.0f, 4.0f);
            std::vector<float> q((size_t)group * hd);
            for (float& x : q) x = dq(rng);
            const float scale = 1.0f / std::sqrt((float)hd);
            const std::vector<float> got = flash(q, group, hd, n, k, v, start, elem, scale);
            const std::vector<double> want = reference(q, group, hd, n, k, v, start, scale);
            double worst = 0;
            for (size_t i = 0; i < got.size(); i++) worst = std::fmax(worst, std::fabs((double)got[i] - want[i]));
            if (!(worst <= kTolerance))
                std::printf("elem %d hd %d n %d: max error %g > %g\n", (int)elem, hd, n, worst, kTolerance);
            assert_true(worst <= kTolerance);
          }
        }
    }
}

void test_f32(void**) { check(KvElem::F32); }
void test_f16(void**) { check(KvElem::F16); }
void test_q8_0(void**) { check(KvElem::Q8_0); }

// Very different chunk maxima (one chunk holds a score far above the rest):
// the merge's rescale must not overflow or lose the small chunks' mass.
void test_rescale(void**) {
    const int hd = 64, n = 700;
    std::mt19937 rng(7);
    Rows k = make_rows(n, hd, KvElem::F32, rng, 0.1f);
    const Rows v = make_rows(n, hd, KvElem::F32, rng, 1.0f);
    std::vector<float> q((size_t)hd, 1.0f);
    float* k600 = (float*)k.bytes[600].data();
    for (int i = 0; i < hd; i++) k600[i] = 1.5f;  // score 96 * scale against ~0 elsewhere
    for (int i = 0; i < hd; i++) k.values[600][(size_t)i] = 1.5;
    const float scale = 0.1f;
    const std::vector<float> got = flash(q, 1, hd, n, k, v, 0, KvElem::F32, scale);
    const std::vector<double> want = reference(q, 1, hd, n, k, v, 0, scale);
    for (int i = 0; i < hd; i++) assert_true(std::fabs((double)got[(size_t)i] - want[(size_t)i]) <= kTolerance);
}

}  // namespace

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f32),
        cmocka_unit_test(test_f16),
        cmocka_unit_test(test_q8_0),
        cmocka_unit_test(test_rescale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
