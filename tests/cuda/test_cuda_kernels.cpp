// Every CUDA kernel against a CPU reference on random inputs of odd sizes:
// dequantizing GEMV (every weight type, 1 and 5 tokens), dequantized tiles +
// cuBLASLt GEMM, RMSNorm, RoPE (normal and NeoX), SwiGLU, KV store + paged
// attention (F16, F32 and Q8_0 KV, grouped heads, scattered blocks), greedy argmax.
// Exits 77 (CTest: skipped) with "SKIP: ..." when no CUDA driver or device.
#include "base/half.h"
#include "kernels/cuda/block_decode.h"
#include "kernels/cuda/gemm.h"
#include "kernels/cuda/kernels.h"
#include "quant/quant.h"
#include "runtime/cuda/cuda_executor.h"

#include <cuda_runtime_api.h>

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

using mw::gguf::TensorType;

namespace {

std::mt19937 rng(1234);

std::vector<float> randn(size_t n, float scale = 1.0f) {
    std::normal_distribution<float> d(0.0f, scale);
    std::vector<float> v(n);
    for (float& x : v) x = d(rng);
    return v;
}

// Device copy of a host vector, freed at scope exit.
template <typename T>
struct Dev {
    T* p = nullptr;
    size_t n = 0;
    explicit Dev(size_t count) : n(count) { assert_int_equal(cudaMalloc((void**)&p, count * sizeof(T) + 1), cudaSuccess); }
    explicit Dev(const std::vector<T>& h) : Dev(h.size()) {
        assert_int_equal(cudaMemcpy(p, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
    }
    ~Dev() { cudaFree(p); }
    std::vector<T> get() const {
        std::vector<T> h(n);
        assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
        assert_int_equal(cudaMemcpy(h.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
        return h;
    }
};

// |got - want| <= tol * (1 + |want|) elementwise, reporting the first miss.
void expect_close(const std::vector<float>& got, const std::vector<float>& want, double tol, const char* what) {
    assert_int_equal(got.size(), want.size());
    for (size_t i = 0; i < got.size(); i++) {
        if (!(std::fabs((double)got[i] - want[i]) <= tol * (1.0 + std::fabs((double)want[i])))) {
            fprintf(stderr, "%s: element %zu: got %.7g want %.7g\n", what, i, (double)got[i], (double)want[i]);
            fail();
        }
    }
}

struct HostWeight {
    TensorType type;
    int64_t n_in, n_out;
    size_t row_bytes;
    std::vector<uint8_t> data;
    std::vector<float> deq;  // what the kernels must compute with
};

HostWeight make_weight(TensorType t, int64_t n_in, int64_t n_out) {
    HostWeight w{t, n_in, n_out, (size_t)mw::cudak::row_bytes((uint32_t)t, n_in), {}, {}};
    w.data.resize(w.row_bytes * n_out);
    w.deq.resize((size_t)(n_in * n_out));
    for (int64_t r = 0; r < n_out; r++) {
        const std::vector<float> x = randn((size_t)n_in, 0.5f);
        mw::quant::quantize_row(t, x.data(), w.data.data() + r * w.row_bytes, (size_t)n_in);
        mw::quant::dequantize_row(t, w.data.data() + r * w.row_bytes, &w.deq[(size_t)(r * n_in)], (size_t)n_in);
    }
    return w;
}

std::vector<float> ref_matmul(const HostWeight& w, const std::vector<float>& x, int n) {
    std::vector<float> y((size_t)n * w.n_out);
    for (int t = 0; t < n; t++)
        for (int64_t r = 0; r < w.n_out; r++) {
            double s = 0;
            for (int64_t i = 0; i < w.n_in; i++) s += (double)w.deq[(size_t)(r * w.n_in + i)] * x[(size_t)(t * w.n_in + i)];
            y[(size_t)(t * w.n_out + r)] = (float)s;
        }
    return y;
}

const TensorType kTypes[] = {TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0, TensorType::Q4_0,
                             TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::Q4_K,
                             TensorType::Q5_K, TensorType::Q6_K};

void test_gemv_all_types(void** state) {
    (void)state;
    for (TensorType t : kTypes) {
        const bool k = t == TensorType::Q4_K || t == TensorType::Q5_K || t == TensorType::Q6_K;
        const bool flt = t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
        const int64_t n_in = k ? 768 : flt ? 173 : 352, n_out = 77;
        const HostWeight w = make_weight(t, n_in, n_out);
        Dev<uint8_t> wd(w.data);
        const mw::cudak::WeightView v{(uint32_t)t, wd.p, w.row_bytes, n_in, n_out};
        for (int n : {1, 5}) {
            const std::vector<float> x = randn((size_t)(n * n_in));
            Dev<float> xd(x);
            // accumulate onto a known y: y = y0 + W x
            const std::vector<float> y0 = randn((size_t)(n * n_out));
            Dev<float> yd(y0);
            mw::cudak::gemv(v, xd.p, n_in, n, yd.p, n_out, true, nullptr);
            std::vector<float> want = ref_matmul(w, x, n);
            for (size_t i = 0; i < want.size(); i++) want[i] += y0[i];
            expect_close(yd.get(), want, 1e-4, "gemv");
        }
    }
}

void test_gemm_tiles(void** state) {
    (void)state;
    mw::cudak::LtGemm gemm;
    for (TensorType t : {TensorType::Q4_K, TensorType::Q8_0, TensorType::BF16, TensorType::F16}) {
        const int64_t n_in = 512, n_out = 301, tile = 128;
        const int n = 37;
        const HostWeight w = make_weight(t, n_in, n_out);
        Dev<uint8_t> wd(w.data);
        const mw::cudak::WeightView v{(uint32_t)t, wd.p, w.row_bytes, n_in, n_out};
        const std::vector<float> x = randn((size_t)(n * n_in));
        Dev<float> xd(x);
        Dev<float> yd((size_t)(n * n_out));
        Dev<uint16_t> act((size_t)(n * n_in)), tl((size_t)(tile * n_in));
        Dev<uint8_t> ws(8u << 20);
        const auto ht = t == TensorType::BF16 ? mw::cudak::HalfType::BF16 : mw::cudak::HalfType::F16;
        mw::cudak::to_half(xd.p, n, (int)n_in, n_in, act.p, ht, nullptr);
        for (int64_t r0 = 0; r0 < n_out; r0 += tile) {
            const int64_t rows = std::min(tile, n_out - r0);
            mw::cudak::dequantize_rows(v, r0, rows, tl.p, ht, nullptr);
            gemm.run(ht, rows, n, n_in, tl.p, act.p, yd.p + r0, n_out, false, ws.p, ws.n, nullptr);
        }
        // Inputs rounded to 16 bits: a looser bound than the GEMV's.
        expect_close(yd.get(), ref_matmul(w, x, n), ht == mw::cudak::HalfType::BF16 ? 5e-2 : 1e-2, "gemm");
        assert_true(gemm.cached_shapes() > 0);
    }
}

void test_rmsnorm_rope_silu(void** state) {
    (void)state;
    const int rows = 7, n = 200;
    const std::vector<float> x = randn((size_t)rows * n), w = randn((size_t)n);
    Dev<float> xd(x), wd(w), od((size_t)rows * n);
    mw::cudak::rmsnorm(xd.p, wd.p, rows, n, 1e-5f, nullptr, od.p, nullptr);
    std::vector<float> want((size_t)rows * n);
    for (int r = 0; r < rows; r++) {
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (double)x[(size_t)(r * n + i)] * x[(size_t)(r * n + i)];
        const double sc = 1.0 / std::sqrt(ss / n + 1e-5);
        for (int i = 0; i < n; i++) want[(size_t)(r * n + i)] = (float)(x[(size_t)(r * n + i)] * sc * w[(size_t)i]);
    }
    expect_close(od.get(), want, 1e-5, "rmsnorm");

    for (bool neox : {false, true}) {
        const int n_tok = 3, heads = 5, hd = 48, n_rot = 32;
        const std::vector<float> q = randn((size_t)n_tok * heads * hd);
        const std::vector<int32_t> pos = {0, 17, 1001};
        const std::vector<float> factors = {1, 1, 2, 2, 4, 4, 8, 8, 1, 1, 1, 1, 2, 2, 2, 2};
        Dev<float> qd(q), fd(factors);
        Dev<int32_t> pd(pos);
        mw::cudak::rope(qd.p, n_tok, heads * hd, heads, hd, n_rot, pd.p, 10000.0f, 0.5f, fd.p, neox, nullptr);
        std::vector<float> want = q;
        for (int t = 0; t < n_tok; t++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < n_rot / 2; i++) {
                    const double theta = 0.5 * pos[(size_t)t] * std::pow(10000.0, -2.0 * i / n_rot) / factors[(size_t)i];
                    float* xh = &want[(size_t)((t * heads + h) * hd)];
                    const int a = neox ? i : 2 * i, b = neox ? i + n_rot / 2 : 2 * i + 1;
                    const double x0 = xh[a], x1 = xh[b];
                    xh[a] = (float)(x0 * std::cos(theta) - x1 * std::sin(theta));
                    xh[b] = (float)(x0 * std::sin(theta) + x1 * std::cos(theta));
                }
        expect_close(qd.get(), want, 2e-4, neox ? "rope neox" : "rope");
    }

    const std::vector<float> g = randn(999, 3.0f), u = randn(999);
    Dev<float> gd(g), ud(u);
    mw::cudak::silu_mul(gd.p, ud.p, 999, nullptr);
    std::vector<float> want_g(999);
    for (size_t i = 0; i < 999; i++) want_g[i] = (float)(g[i] / (1.0 + std::exp(-(double)g[i])) * u[i]);
    expect_close(gd.get(), want_g, 1e-5, "silu_mul");
}

void test_paged_attention(void** state) {
    (void)state;
    using mw::cudak::KvElem;
    for (KvElem elem : {KvElem::F16, KvElem::F32, KvElem::Q8_0}) {
        for (int hd : {64, 80, 128}) {
            if (elem == KvElem::Q8_0 && hd % 32 != 0) continue;  // heads must start on a Q8_0 block
            const int n_head = 6, n_kv = 2, kv_dim = n_kv * hd, B = 16, n_blocks = 12, max_blocks = 5;
            const uint64_t rb = mw::cudak::kv_row_bytes(elem, kv_dim);
            const uint64_t block_bytes = 2ull * B * rb * 2;  // two layers
            const uint64_t layer_off = 2ull * B * rb;        // test layer 1
            // Two sequences with scattered blocks; tokens: seq 0 at pos 70 (decode), seq 1 at 0..2 (prefill).
            const std::vector<int32_t> tables = {7, 2, 11, 0, 5, 3, 9, 0, 0, 0};
            const std::vector<int32_t> pos = {70, 0, 1, 2}, seq = {0, 1, 1, 1};
            const int n_tok = 4;
            Dev<uint8_t> kvd(block_bytes * n_blocks);
            Dev<int32_t> td(tables), pd(pos), sd(seq);
            mw::cudak::KvLayerView kv;
            kv.base = kvd.p;
            kv.block_bytes = block_bytes;
            kv.layer_offset = layer_off;
            kv.block_tokens = B;
            kv.kv_dim = kv_dim;
            kv.elem = elem;
            kv.tables = td.p;
            kv.max_blocks = max_blocks;
            // The values the cache holds after the store: rounded to F16, or Q8_0 round trip.
            auto stored = [&](const float* row, float* out) {
                if (elem == KvElem::F32) {
                    std::memcpy(out, row, (size_t)kv_dim * 4);
                } else if (elem == KvElem::F16) {
                    for (int i = 0; i < kv_dim; i++) out[i] = mw::f16_to_f32(mw::f32_to_f16(row[i]));
                } else {
                    std::vector<uint8_t> q(rb);
                    mw::quant::quantize_row(TensorType::Q8_0, row, q.data(), (size_t)kv_dim);
                    mw::quant::dequantize_row(TensorType::Q8_0, q.data(), out, (size_t)kv_dim);
                }
            };
            std::vector<std::vector<float>> K(2, std::vector<float>(71 * (size_t)kv_dim)), V = K;
            auto store = [&](const std::vector<int32_t>& p, const std::vector<int32_t>& s) {
                const size_t n = p.size();
                const std::vector<float> k = randn(n * kv_dim), v = randn(n * kv_dim);
                for (size_t t = 0; t < n; t++) {
                    stored(&k[t * kv_dim], &K[(size_t)s[t]][(size_t)p[t] * kv_dim]);
                    stored(&v[t * kv_dim], &V[(size_t)s[t]][(size_t)p[t] * kv_dim]);
                }
                Dev<float> kd(k), vd(v);
                Dev<int32_t> pp(p), ss(s);
                mw::cudak::kv_store(kd.p, vd.p, (int)n, pp.p, ss.p, kv, nullptr);
                assert_int_equal(cudaDeviceSynchronize(), cudaSuccess);
            };
            std::vector<int32_t> hp, hs;
            for (int p = 0; p < 70; p++) {
                hp.push_back(p);
                hs.push_back(0);
            }
            store(hp, hs);
            store(pos, seq);
            if (elem == KvElem::Q8_0) {
                // The device's Q8_0 rows are byte for byte the reference quantizer's.
                const std::vector<uint8_t> bytes = kvd.get();
                std::vector<float> back((size_t)kv_dim);
                mw::quant::dequantize_row(TensorType::Q8_0, &bytes[(size_t)(7 * block_bytes + layer_off)], back.data(),
                                          (size_t)kv_dim);
                for (int i = 0; i < kv_dim; i++) assert_true(back[(size_t)i] == K[0][(size_t)i]);  // seq 0, pos 0
            }
            const std::vector<float> q = randn((size_t)n_tok * n_head * hd);
            Dev<float> qd(q), od((size_t)n_tok * n_head * hd);
            const float scale = 1.0f / std::sqrt((float)hd);
            mw::cudak::paged_attention(qd.p, n_tok, n_head, n_kv, hd, pd.p, sd.p, kv, scale, od.p, nullptr);
            std::vector<float> want((size_t)n_tok * n_head * hd);
            for (int t = 0; t < n_tok; t++)
                for (int h = 0; h < n_head; h++) {
                    const int g = h / (n_head / n_kv), np = pos[(size_t)t] + 1;
                    const auto& Ks = K[(size_t)seq[(size_t)t]];
                    const auto& Vs = V[(size_t)seq[(size_t)t]];
                    std::vector<double> s((size_t)np);
                    double mx = -1e300, sum = 0;
                    for (int p = 0; p < np; p++) {
                        double d = 0;
                        for (int i = 0; i < hd; i++)
                            d += (double)q[(size_t)((t * n_head + h) * hd + i)] * Ks[(size_t)(p * kv_dim + g * hd + i)];
                        s[(size_t)p] = d * scale;
                        mx = std::max(mx, s[(size_t)p]);
                    }
                    for (auto& e : s) sum += (e = std::exp(e - mx));
                    for (int i = 0; i < hd; i++) {
                        double o = 0;
                        for (int p = 0; p < np; p++) o += s[(size_t)p] * Vs[(size_t)(p * kv_dim + g * hd + i)];
                        want[(size_t)((t * n_head + h) * hd + i)] = (float)(o / sum);
                    }
                }
            expect_close(od.get(), want, 1e-4, elem == KvElem::F16 ? "attention f16" : elem == KvElem::F32 ? "attention f32" : "attention q8_0");
        }
    }
}

void test_argmax(void** state) {
    (void)state;
    const int rows = 4, n = 50001;
    std::vector<float> l = randn((size_t)rows * n);
    l[(size_t)(0 * n + 777)] = 100.0f;  // row 0: a clear winner
    l[(size_t)(1 * n + 5)] = 50.0f;     // row 1: a tie, lowest id wins
    l[(size_t)(1 * n + 40000)] = 50.0f;
    l[(size_t)(1 * n + 3)] = NAN;       // NaN never chosen
    for (int i = 0; i < n; i++) l[(size_t)(2 * n + i)] = NAN;  // row 2: all NaN -> 0
    Dev<float> ld(l);
    Dev<int32_t> ids((size_t)rows);
    mw::cudak::argmax_rows(ld.p, rows, n, ids.p, nullptr);
    const std::vector<int32_t> got = ids.get();
    assert_int_equal(got[0], 777);
    assert_int_equal(got[1], 5);
    assert_int_equal(got[2], 0);
    int32_t want3 = 0;
    for (int i = 1; i < n; i++)
        if (l[(size_t)(3 * n + i)] > l[(size_t)(3 * n + want3)]) want3 = i;
    assert_int_equal(got[3], want3);
}

}  // namespace

int main(void) {
    std::string why;
    if (mw::cuda::device_count(&why) == 0) {
        printf("SKIP: CUDA kernel tests need a GPU: %s\n", why.c_str());
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemv_all_types), cmocka_unit_test(test_gemm_tiles),
        cmocka_unit_test(test_rmsnorm_rope_silu), cmocka_unit_test(test_paged_attention),
        cmocka_unit_test(test_argmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
